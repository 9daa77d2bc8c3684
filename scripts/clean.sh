#!/usr/bin/env bash
# Removes what berth's make targets created: the binaries in bin/, the
# benchmark results, the busybox root filesystem, 04-net's bridge and
# nftables table, and 06-cgroups' empty parent group. Debian packages and
# Go modules that setup installed stay. A stage that keeps other data adds
# its lines here.
#
#   sudo make clean
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
data=${BERTH_DATA_ROOT:-/var/lib/berth}
rootfs=${BERTH_ROOTFS:-$data/busybox}
state=${BERTH_ROOT:-/run/berth}

remove() {
	if [ -e "$1" ]; then
		# --one-file-system: never follow into something still mounted there.
		rm -rf --one-file-system "$1"
		echo "clean: removed $1"
	fi
}

# 04-net's shared pieces (the bridge berth0, the nftables table ip berth,
# the leases; ip_forward back as it was): its cleanup verb knows them, and
# refuses while a container still uses them. Run it while bin/ is there.
if [ -x "$repo/bin/04-net" ]; then
	"$repo/bin/04-net" cleanup || echo "clean: 04-net cleanup failed: the bridge and rules stay until it succeeds"
fi

# 06-cgroups' shared parent group, /berth in every hierarchy: the stages
# leave it (removing it raced with containers starting). rmdir removes only
# an empty one: the kernel refuses while a container's group is in it.
for d in /sys/fs/cgroup/berth /sys/fs/cgroup/*/berth; do
	if [ -d "$d" ]; then
		rmdir "$d" 2>/dev/null && echo "clean: removed $d" || echo "clean: $d still holds a container's group: it stays"
	fi
done

remove "$repo/bin"
remove "$repo/bench/results"
remove "$rootfs"
# The data root too, if the rootfs was all it held.
rmdir "$data" 2>/dev/null && echo "clean: removed $data" || true

# Containers still running, or left by a killed runtime, keep their state
# here until their stage's next run collects them: say so rather than
# deleting what their cleanup needs.
if [ -d "$state" ] && [ -n "$(ls -A "$state" 2>/dev/null)" ]; then
	echo "clean: $state still holds container state: $(ls "$state" | tr '\n' ' ')"
	echo "clean: stop those containers, or let a stage collect dead ones (make build, then run any stage once), then run make clean again"
else
	rmdir "$state" 2>/dev/null && echo "clean: removed $state" || true
fi
