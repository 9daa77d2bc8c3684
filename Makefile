# berth: build, test, benchmark and clean up.
#
#   sudo make demo    install what is missing, build every stage, take the tour
#   sudo make test    the whole suite as CI runs it (.ci/run calls exactly this)
#
#   sudo make check CHAPTER=07 EXERCISE=2    check an exercise of the book
#
# Other targets: build, install (bin/berth and bin/berth-monitor into
# /usr/local/bin), setup, rootfs (FORCE=1 or rootfs-force rebuilds it),
# lint, bench, clean. Everything that touches namespaces needs root.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

# Go: on PATH, or where go.dev's tarball puts it. sudo's secure_path leaves
# /usr/local/go/bin out, so `sudo make` would not find it otherwise.
GO ?= $(shell command -v go 2>/dev/null || { test -x /usr/local/go/bin/go && echo /usr/local/go/bin/go; } || echo go)
ifneq ($(findstring /,$(GO)),)
# Tests and scripts that call plain `go` find the same one.
export PATH := $(patsubst %/,%,$(dir $(GO))):$(PATH)
endif
GOFMT = $(shell $(GO) env GOROOT)/bin/gofmt
# VCS stamping runs git, which refuses a checkout owned by another user
# (sudo make in your own clone): the binaries do not need the stamp.
export GOFLAGS ?= -buildvcs=false

# Who builds. Run as root (sudo make demo, sudo make test), make still
# builds as the owner of this checkout, so that bin/ and Go's build and
# module caches stay that user's: after `sudo make demo`, a plain
# `make build` (every exercise needs one) works, where a bin/ owned by root
# would fail with "permission denied". BUILD_AS=root builds as root anyway;
# run as anyone else, make builds as that user.
BUILD_AS ?= $(shell [ "$$(id -u)" -eq 0 ] && stat -c %U . 2>/dev/null | grep -vx -e root -e UNKNOWN)
AS_BUILDER := $(if $(filter-out root,$(BUILD_AS)),runuser -u $(BUILD_AS) --)

# Every numbered folder with a main.go is a stage: 01-uts -> bin/01-uts.
STAGES := $(sort $(patsubst %/main.go,%,$(wildcard [0-9][0-9]-*/main.go)))

# The busybox root filesystem (make rootfs). The stages find it at the same
# default place: $BERTH_ROOTFS, else <data root>/busybox.
ROOTFS ?= $(or $(BERTH_ROOTFS),$(or $(BERTH_DATA_ROOT),/var/lib/berth)/busybox)
export BERTH_ROOTFS := $(ROOTFS)

TEST_TIMEOUT ?= 30m
STATICCHECK_VERSION ?= v0.8.2

# The VM suite (tools/vmtest/vmtest.mk: every package's tests again on a
# second kernel with pure cgroup v2) runs after the host suite, whose events
# it reads from $(HOST_TEST_JSON), and ends with both side by side: that
# table is the last thing CI prints. make test VM_SUITE= leaves it out.
VM_SUITE ?= 1
include tools/vmtest/vmtest.mk

# setup must finish before build and rootfs use what it installs.
.NOTPARALLEL:

.PHONY: build monitor install setup rootfs rootfs-force demo test check lint bench clean

# berth links C (exec's nsenter constructor, 09-full/nsenter), statically,
# as the VM suite builds it (tools/vmtest/build.go:goBuild): the sealed
# copy exec re-executes is then the whole program, and nothing is loaded
# from any filesystem after the namespaces are joined. netgo,osusergo keep
# the static C library from ever loading NSS modules.
BERTH_STATIC := -tags netgo,osusergo -ldflags '-linkmode external -extldflags -static'

# Stage 09's command is bin/berth (bin/09-full is the same file, so the
# pattern above holds), with its small monitor bin/berth-monitor beside it:
# berth finds the monitor there. The monitor is C (09-full/berth-monitor:
# one idles beside every container, and a Go runtime alone costs more idle
# memory than conmon), linked dynamically, as conmon is: its libc pages
# are the ones every process on the machine maps, so its share of them
# (Pss) is next to nothing; static, a lone monitor's Pss is its whole
# 0.9 MB program (docs/09-full.md has both measured). It never enters a
# container, so nothing it loads comes from one. The VM's guest has no C
# library: tools/vmtest builds it static (make monitor MONITOR_LINK=-static).
MONITOR_SRC := $(wildcard 09-full/berth-monitor/*.c)
MONITOR_CFLAGS := -std=gnu11 -Wall -Wextra -Werror -O2 -D_FORTIFY_SOURCE=2 -fstack-protector-strong
MONITOR_LINK ?=
MONITOR_OUT ?= bin/berth-monitor
build:
	@if [ -n "$(AS_BUILDER)" ] && [ -d bin ] && [ "$$(stat -c %U bin)" != "$(BUILD_AS)" ]; then \
		echo "build: bin/ belongs to $$(stat -c %U bin): giving it to $(BUILD_AS), who owns this checkout"; \
		chown -R "$(BUILD_AS):" bin; \
	fi
	@$(AS_BUILDER) mkdir -p bin
	$(AS_BUILDER) $(GO) build -o bin/ $(addprefix ./,$(filter-out 09-full,$(STAGES)))
	$(AS_BUILDER) env CGO_ENABLED=1 $(GO) build $(BERTH_STATIC) -o bin/09-full ./09-full
	$(AS_BUILDER) ln -f bin/09-full bin/berth
	$(AS_BUILDER) gcc $(MONITOR_CFLAGS) $(MONITOR_LINK) -s -o bin/berth-monitor $(MONITOR_SRC)
	$(AS_BUILDER) env CGO_ENABLED=1 $(GO) build $(BERTH_STATIC) -o bin/berth-oci ./09-full/berth-oci

# The monitor alone (MONITOR_OUT=FILE puts it elsewhere: tools/vmtest).
monitor:
	$(AS_BUILDER) gcc $(MONITOR_CFLAGS) $(MONITOR_LINK) -s -o $(MONITOR_OUT) $(MONITOR_SRC)

# sudo make install: berth, its monitor and berth-oci in $(PREFIX)/bin.
PREFIX ?= /usr/local
install: build
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 bin/berth bin/berth-monitor bin/berth-oci $(DESTDIR)$(PREFIX)/bin/

setup:
	GO=$(GO) scripts/setup.sh

rootfs:
	@if [ -n "$(FORCE)" ] || [ ! -x "$(ROOTFS)/bin/busybox" ]; then \
		scripts/rootfs.sh "$(ROOTFS)"; \
	else \
		echo "rootfs: $(ROOTFS) is there (make rootfs FORCE=1 rebuilds it)"; \
	fi

rootfs-force:
	$(MAKE) rootfs FORCE=1

demo: setup build rootfs
	scripts/tour.sh

# The host suite prints as go test does (vmtest -format) and keeps its
# events; the VM suite runs even when the host suite failed, so that both
# columns show, and either failing fails make test. The host suite runs in
# a network namespace standing in for the host (scripts/standin-host.sh):
# no test can reach a network outside this machine.
test: setup build rootfs
	@[ "$$(id -u)" -eq 0 ] || echo "make test: not root: the integration tests and the chapters will skip (run sudo make test)"
	@mkdir -p $(dir $(HOST_TEST_JSON))
	status=0; \
	BERTH_BIN=$(CURDIR)/bin scripts/standin-host.sh $(GO) test -p 1 -count=1 -timeout $(TEST_TIMEOUT) -json ./... \
		| tee $(HOST_TEST_JSON) | $(GO) run ./tools/vmtest -format || status=1; \
	$(if $(VM_SUITE),$(VMTEST) || status=1;) \
	exit $$status

# An exercise's check (docs/exercises): sudo make check CHAPTER=07 EXERCISE=2,
# or every exercise of a chapter without EXERCISE. It builds bin/ as make
# build does, then runs the check as root, in a network namespace of its own.
# (Through expr: printf alone reads 08 and 09 as octal, and fails.)
CHAPTER_NN = $(shell printf %02d "$$(expr '$(CHAPTER)' + 0)" 2>/dev/null)
check: build
	@[ -n "$(CHAPTER)" ] || { echo "check: which exercise? sudo make check CHAPTER=07 EXERCISE=2 (without EXERCISE, the whole chapter)"; exit 2; }
	@[ "$$(id -u)" -eq 0 ] || { echo "check: the checks run containers: sudo make check CHAPTER=$(CHAPTER) EXERCISE=$(EXERCISE)"; exit 2; }
	@t=$$(mktemp -d); trap 'rm -rf "$$t"' EXIT; \
	$(GO) test -c -tags exercise -o "$$t/checks.test" ./docs/exercises && \
	cd docs/exercises && re='^TestExercise$(CHAPTER_NN)_$(or $(EXERCISE),[0-9]+)$$' && \
	if [ -z "$$("$$t/checks.test" -test.list "$$re")" ]; then \
		echo "check: chapter $(CHAPTER) has no exercise $(or $(EXERCISE),with a check) (docs/exercises)"; exit 2; fi && \
	BERTH_BIN=$(CURDIR)/bin "$$t/checks.test" -test.v -test.count=1 -test.run "$$re"

lint:
	@out=$$($(GOFMT) -l $$(find . -name '*.go' -not -path './.git/*')); \
	if [ -n "$$out" ]; then echo "gofmt: run gofmt -w on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags exercise ./docs/exercises
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) -tags exercise ./docs/exercises
	gcc $(MONITOR_CFLAGS) -fsyntax-only $(MONITOR_SRC)

bench: setup build rootfs
	BIN=$(CURDIR)/bin GO=$(GO) bench/run.sh

clean:
	scripts/clean.sh
