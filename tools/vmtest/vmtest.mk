# The VM suite (tools/vmtest), included by the top-level Makefile:
#
#   make vm-test    every package's tests again, inside a throwaway QEMU VM
#                   (Debian's kernel, pure cgroup v2), side by side with the
#                   host run's results; fails if anything failed in the VM
#   make vm-shell   the same VM with a root shell, to follow the book safely
#
# make test runs the host suite first and writes its events with
#   go test -json -count=1 ./... > $(HOST_TEST_JSON)
# which vm-test reads for the host column (without it, that column is empty).
# Extra flags: make vm-test VMTEST_FLAGS='-run TestOOM -v' (go run ./tools/vmtest -h).

HOST_TEST_JSON ?= tmp/host-test.json
VMTEST_FLAGS ?=

.PHONY: vm-test vm-shell
vm-test:
	go run ./tools/vmtest -host-json $(HOST_TEST_JSON) $(VMTEST_FLAGS)

vm-shell:
	go run ./tools/vmtest -shell $(VMTEST_FLAGS)
