#!/usr/bin/env bash
# The cost of the security defaults: a container that runs /bin/true and
# exits, with and without them, beside runc and crun with and without
# Docker's seccomp profile. Run as root from the repository's top:
#
#   sudo 09-full/security/bench.sh        (RUNS=30 WARMUP=3 by default)
#   sudo BASE=a928a2c 09-full/security/bench.sh   (adds berth as of that commit:
#                                                  before issue 14 wired the defaults in)
#
# Rows:
#   berth                 bin/berth run --rm (make build first): Docker's defaults
#   berth unconfined      the same without the seccomp filter
#   berth cap-drop ALL    the defaults, no capabilities
#   berth privileged      --privileged: every capability, every device, no filter
#   berth BASE            berth built from commit $BASE (no security step)
#   06-cgroups            stage 06's binary: the same steps, no security step
#   secrun                the same steps and Docker's defaults (this package)
#   secrun unconfined     the defaults without the seccomp filter
#   secrun cap-drop ALL   the defaults, no capabilities (nothing else changes)
#   runc/crun             runc spec's bundle (its caps, masked and read-only
#                         paths; no seccomp)
#   runc/crun +seccomp    the same with Docker's default profile added
# The OCI runtimes run in a private mount namespace without the hybrid
# layout's cgroup2 mount, as bench/run.sh does (Debian's crun refuses it).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
runs=${RUNS:-30}
warmup=${WARMUP:-3}
rootfs=${BERTH_ROOTFS:-/var/lib/berth/busybox}
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root" >&2; exit 1; }
work=$(mktemp -d /tmp/berth-security-bench.XXXXXX)
trap 'runc --root "$work/runc" delete -f b-runc >/dev/null 2>&1 || true; crun --root "$work/crun" delete -f b-crun >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

cd "$repo"
go build -o "$work/secrun" ./09-full/security/internal/secrun
go build -o "$work/06-cgroups" ./06-cgroups
[ -x bin/berth ] && [ -x bin/berth-monitor ] || { echo "bench: run make build first (bin/berth)" >&2; exit 1; }
berth_rows=(
	-n "berth" "bin/berth run --rm --network none --rootfs $rootfs /bin/true"
	-n "berth unconfined" "bin/berth run --rm --network none --rootfs $rootfs --security-opt seccomp=unconfined /bin/true"
	-n "berth cap-drop ALL" "bin/berth run --rm --network none --rootfs $rootfs --cap-drop ALL /bin/true"
	-n "berth privileged" "bin/berth run --rm --network none --rootfs $rootfs --privileged /bin/true"
)
if [ -n "${BASE:-}" ]; then
	mkdir -p "$work/base/bin"
	git archive "$BASE" | tar -x -C "$work/base"
	(cd "$work/base" && go build -o bin/berth ./09-full && CGO_ENABLED=0 go build -o bin/berth-monitor ./09-full/berth-monitor)
	berth_rows+=(-n "berth $BASE" "$work/base/bin/berth run --rm --network none --rootfs $rootfs /bin/true")
fi
export BERTH_ROOT=$work/run BERTH_DATA_ROOT=$work/lib

for b in plain seccomp; do
	mkdir -p "$work/$b"
	runc spec --bundle "$work/$b"
	jq --arg root "$rootfs" '.root.path = $root | .root.readonly = true
		| .process.terminal = false | .process.args = ["/bin/true"]' "$work/$b/config.json" >"$work/c.json"
	mv "$work/c.json" "$work/$b/config.json"
done
"$work/secrun" profile >"$work/profile.json"
jq --slurpfile p "$work/profile.json" '.linux.seccomp = $p[0]' "$work/seccomp/config.json" >"$work/c.json"
mv "$work/c.json" "$work/seccomp/config.json"

hf=(hyperfine -N --warmup "$warmup" --runs "$runs" --style basic --export-json "$work/host.json")
"${hf[@]}" \
	-n "06-cgroups" "$work/06-cgroups run --net none --rootfs $rootfs /bin/true" \
	-n "secrun" "$work/secrun run --net none --rootfs $rootfs /bin/true" \
	-n "secrun unconfined" "$work/secrun run --net none --rootfs $rootfs --security-opt seccomp=unconfined /bin/true" \
	-n "secrun cap-drop ALL" "$work/secrun run --net none --rootfs $rootfs --cap-drop ALL /bin/true" \
	"${berth_rows[@]}" >/dev/null
hf[-1]=$work/oci.json
unshare --mount --propagation private -- bash -c '
	if mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified; fi
	exec "$@"' bash "${hf[@]}" \
	-n "runc" "runc --root $work/runc run --bundle $work/plain b-runc" \
	-n "runc +seccomp" "runc --root $work/runc run --bundle $work/seccomp b-runc" \
	-n "crun" "crun --root $work/crun run --bundle $work/plain b-crun" \
	-n "crun +seccomp" "crun --root $work/crun run --bundle $work/seccomp b-crun" >/dev/null

echo "median start-to-exit time of /bin/true, $runs runs each ($(nproc) CPUs, kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg))"
echo "(wall: the median; cpu: mean user+system time of the whole command tree, less sensitive to a busy machine)"
printf '%-20s %10s %10s %10s %10s\n' what "wall ms" "min ms" "max ms" "cpu ms"
jq -rs '[.[].results[]] | .[] | [.command, .median * 1000, .min * 1000, .max * 1000, (.user + .system) * 1000] | @tsv' "$work/host.json" "$work/oci.json" |
	while IFS=$'\t' read -r name median min max cpu; do
		printf '%-20s %10.2f %10.2f %10.2f %10.2f\n' "$name" "$median" "$min" "$max" "$cpu"
	done
