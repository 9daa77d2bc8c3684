#!/usr/bin/env bash
# Installs what berth needs on a fresh Debian 12 or Ubuntu machine, then
# downloads the Go modules. Idempotent: a package already installed is left
# alone, and apt-get runs (with its update) only when one is missing, so a
# second run touches nothing. Needs root only when it has to install.
#
#   sudo scripts/setup.sh        (make setup, make demo and make test call it)
#
# Go itself is not a Debian package here (Debian 12's is too old): install
# Go >= 1.26 from https://go.dev/dl into /usr/local/go, or put it on PATH.
set -euo pipefail

# The Debian packages berth uses, one line each with why. A stage that needs
# another package adds its line here.
PACKAGES=(
	ca-certificates # Go fetches modules over HTTPS
	gcc             # cgo: the C constructor of 09-full/nsenter (exec joins before the Go runtime starts)
	libc6-dev       # libc.a: binaries with cgo are linked statically (09-full/nsenter/README.md, "Linking")
	busybox-static  # the default root filesystem (scripts/rootfs.sh)
	util-linux      # unshare, nsenter, lsns, flock: the chapters' host-side tools
	procps          # ps, pgrep
	iproute2        # ip: links, addresses, routes (04-net)
	nftables        # nft: NAT and port publishing (04-net)
	passwd          # useradd, usermod: the rootless tests' unprivileged user (05-user)
	uidmap          # newuidmap, newgidmap: rootless containers (05-user)
	libcap2-bin     # capsh: reading capability sets in the chapters (05-user)
	slirp4netns     # user-mode networking for rootless containers (05-user)
	e2fsprogs       # mkfs.ext4: scratch file systems (07-unionfs, benchmarks)
	curl            # the chapters reach published ports with it (04-net)
	attr            # getfattr, setfattr: overlay's xattrs, in 07-unionfs's chapter and exercises
	strace          # the exercises of 01-uts and 07-unionfs watch system calls with it
	conntrack       # 04-net's exercise 1 reads the connection table with it
	jq              # bench/run.sh reads hyperfine's JSON and edits OCI configs
	hyperfine       # make bench
	runc            # make bench: reference OCI runtime
	crun            # make bench: reference OCI runtime
	qemu-system-x86 # make vm-test: a second kernel with pure cgroup v2
	docker-registry # a registry on 127.0.0.1 for pull and push (08-image)
	skopeo          # the reference image tool the 08-image tests compare with
	umoci           # a second reference that reads OCI layouts (08-image)
	tini            # tini-static: a tiny init as PID 1 for --init, as Docker's docker-init (09-full)
	conmon          # make bench: podman's per-container monitor, measured beside berth-monitor (09-full)
	podman          # make bench: podman run --rm beside berth run --rm (09-full)
	containerd      # ctr run --runc-binary bin/berth-oci: containerd drives berth-oci as runc (09-full/oci's test)
	docker.io       # dockerd --add-runtime berth=bin/berth-oci (09-full/oci's test; the docker CLI drives it)
	containernetworking-plugins # bridge, host-local, loopback: the CNI plugins containerd's CRI plugin gives a pod (09-full/oci's CRI test)
)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")

installed() {
	[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

missing=()
for p in "${PACKAGES[@]}"; do
	installed "$p" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "setup: missing packages: ${missing[*]}" >&2
		echo "setup: installing them needs root: run sudo make setup" >&2
		exit 1
	fi
	echo "setup: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt_opts=(-q -y -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
	apt-get "${apt_opts[@]}" update
	# Services these packages bring (docker-registry on every address,
	# containerd, dockerd, which would make a docker0 bridge and change
	# the host's iptables) must not start at all: the tests start their
	# own on private sockets and roots. policy-rc.d answering 101 is
	# Debian's way to say "do not start services now"; ours only while
	# apt runs, and never over one the machine already has.
	policy=/usr/sbin/policy-rc.d
	own_policy=
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\n# berth setup: no service starts while packages install\nexit 101\n' >"$policy"
		chmod 0755 "$policy"
		own_policy=1
		trap '[ -n "$own_policy" ] && rm -f "$policy"' EXIT
	fi
	apt-get "${apt_opts[@]}" install --no-install-recommends "${missing[@]}" </dev/null
	if [ -n "$own_policy" ]; then
		rm -f "$policy"
		own_policy=
	fi
	for p in "${missing[@]}"; do
		installed "$p" || { echo "setup: $p is still not installed" >&2; exit 1; }
	done
	# Debian starts docker-registry as a service on every address, port
	# 5000. The book and the tests run their own on 127.0.0.1 when they
	# need one: stop and disable the one this install started.
	if [[ " ${missing[*]} " == *" docker-registry "* ]] && command -v systemctl >/dev/null &&
		systemctl is-enabled docker-registry >/dev/null 2>&1; then
		systemctl disable --now docker-registry >/dev/null 2>&1 &&
			echo "setup: stopped and disabled the docker-registry service Debian started (port 5000)"
	fi
	# The same for containerd and dockerd (not started, above; disabled
	# here so a reboot does not start them either): the tests start their
	# own on a private socket, root and state.
	for svc in containerd docker.socket docker; do
		if [[ " ${missing[*]} " == *" ${svc%.socket} "* || " ${missing[*]} " == *" docker.io "* ]] &&
			command -v systemctl >/dev/null && systemctl is-enabled "$svc" >/dev/null 2>&1; then
			systemctl disable --now "$svc" >/dev/null 2>&1 &&
				echo "setup: stopped and disabled the $svc service Debian started"
		fi
	done
else
	echo "setup: all ${#PACKAGES[@]} Debian packages present"
fi

# Go: on PATH, or where go.dev's tarball puts it (sudo's secure_path leaves
# /usr/local/go/bin out, so look there too).
go=${GO:-$(command -v go || true)}
if [ -z "$go" ] && [ -x /usr/local/go/bin/go ]; then
	go=/usr/local/go/bin/go
fi
if [ -z "$go" ] || [ ! -x "$go" ]; then
	echo "setup: no Go toolchain found (PATH, /usr/local/go/bin): install Go >= 1.26 from https://go.dev/dl into /usr/local/go" >&2
	exit 1
fi
cd "$repo"
# Inside the module, go picks the toolchain go.mod asks for (or says why not).
version=$("$go" env GOVERSION)
case "$version" in
go1.2[6-9]* | go1.[3-9][0-9]* | go[2-9]*) ;;
*)
	echo "setup: $go is $version; berth needs Go >= 1.26 (https://go.dev/dl)" >&2
	exit 1
	;;
esac
"$go" mod download
# make builds as the owner of the checkout (see the Makefile, BUILD_AS),
# with that user's module cache: fill it too, while the network is at hand.
owner=$(stat -c %U "$repo")
if [ "$(id -u)" -eq 0 ] && [ "$owner" != root ] && [ "$owner" != UNKNOWN ]; then
	runuser -u "$owner" -- "$go" mod download
fi
echo "setup: Go modules ready ($version, $go)"

# crictl, the command line of Kubernetes' node interface (CRI), is not in
# Debian 12: build it from the Go module proxy (09-full/oci's CRI test
# drives containerd's CRI plugin with it). About 40 MB; the build took
# 10.5 minutes of wall time (1m47s user) on a loaded 2-core machine with
# an empty module cache. Skipped when the installed one was built from the
# same module version (go version -m reads it from the binary: crictl
# built with go install does not know its own --version).
crictl_version=v1.37.0
crictl=/usr/local/bin/crictl
if [ -x "$crictl" ] && "$go" version -m "$crictl" 2>/dev/null |
	grep -q "^[[:space:]]*mod[[:space:]]*sigs.k8s.io/cri-tools[[:space:]]*$crictl_version[[:space:]]"; then
	echo "setup: crictl $crictl_version present ($crictl)"
elif [ "$(id -u)" -ne 0 ]; then
	echo "setup: crictl $crictl_version is missing: installing it into $(dirname "$crictl") needs root: run sudo make setup" >&2
	exit 1
else
	echo "setup: building crictl $crictl_version (go install sigs.k8s.io/cri-tools/cmd/crictl)"
	gobin=$(mktemp -d)
	GOBIN=$gobin "$go" install "sigs.k8s.io/cri-tools/cmd/crictl@$crictl_version"
	install -m 0755 "$gobin/crictl" "$crictl"
	rm -rf "$gobin"
	echo "setup: crictl $crictl_version installed ($crictl)"
fi
