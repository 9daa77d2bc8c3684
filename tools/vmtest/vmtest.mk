# The VM suite (tools/vmtest), included by the top-level Makefile:
#
#   make vm-test     every package's tests again, inside a throwaway QEMU VM
#                    (Debian's kernel, pure cgroup v2), side by side with the
#                    host run's results; fails if anything failed in the VM
#   make vm-shell    the same VM with a root shell, to follow the book safely
#   make vm-summary  the table of the last vm-test run again, beside the host
#                    results as they are now (runs nothing; fails as it failed)
#
# The host column comes from the host suite's events:
#   go test -json ... ./... > $(HOST_TEST_JSON)
# make test runs the host suite so, then $(VMTEST); run in the other order,
# vm-summary prints the table once both are done.
# Extra flags: make vm-test VMTEST_FLAGS='-run TestOOM -v' (go run ./tools/vmtest -h).

GO ?= go
HOST_TEST_JSON ?= tmp/host-test.json
VMTEST_FLAGS ?=

VMTEST = $(GO) run ./tools/vmtest -host-json $(HOST_TEST_JSON) $(VMTEST_FLAGS)

.PHONY: vm-test vm-shell vm-summary
vm-test:
	$(VMTEST)

vm-shell:
	$(GO) run ./tools/vmtest -shell $(VMTEST_FLAGS)

vm-summary:
	$(GO) run ./tools/vmtest -summary -host-json $(HOST_TEST_JSON)
