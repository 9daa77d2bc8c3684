#!/usr/bin/env bash
# make bench: how long each stage takes to start a container that runs
# /bin/true and exit, next to references, from one run on this machine.
#
#   floor       unshare --fork --pid --mount --uts --ipc --mount-proc chroot ROOTFS /bin/true
#   NN-name     bin/NN-name run /bin/true (from 03-mount on: busybox's true in ROOTFS)
#   crun, runc  `crun run` / `runc run` of an OCI bundle of the same ROOTFS
#               (config.json from `runc spec`: pid, net, ipc, uts, mount
#               namespaces, read-only root); berth-oci run of the same
#               bundle beside them (bench/parts/09-oci.sh)
#
# hyperfine times each command (--warmup, --runs); the table shows the
# median and its ratio to the floor. Absolute times vary with the machine
# and its load: compare within one run. Debian's crun 1.8.1 refuses this
# kind of machine's hybrid cgroups, so crun and runc both run inside a
# private mount namespace in which /sys/fs/cgroup/unified is unmounted
# (runc runs at the same speed either way); the berth stages run on the
# host's layout as it is.
#
# A stage adds rows with bench/parts/NN-name.sh, sourced here: it calls
#   bench NAME COMMAND [oci]
# (COMMAND is split on spaces, no shell; "oci" runs it with crun and runc).
# It can use $repo, $bin, $rootfs, $work (a scratch directory removed at
# the end) and $out (where results go; a part may write its own tables
# there). A built stage without a part gets the default row above.
#
# Environment: BIN (default bin/), BERTH_ROOTFS, RUNS (20), WARMUP (3),
# OUT (bench/results).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${BIN:-$repo/bin}
rootfs=${BERTH_ROOTFS:-${BERTH_DATA_ROOT:-/var/lib/berth}/busybox}
runs=${RUNS:-20}
warmup=${WARMUP:-3}
out=${OUT:-$repo/bench/results}
export BERTH_ROOTFS=$rootfs

die() { echo "bench: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root: run sudo make bench"
command -v hyperfine >/dev/null || die "hyperfine is missing: run sudo make setup"
command -v jq >/dev/null || die "jq is missing: run sudo make setup"
[ -x "$rootfs/bin/busybox" ] || die "no busybox rootfs at $rootfs: run sudo make rootfs"

work=$(mktemp -d /tmp/berth-bench.XXXXXX)
mkdir -p "$out"
oci_ids=()
cleanup() {
	for id in "${oci_ids[@]}"; do
		runc --root "$work/runc" delete -f "$id" >/dev/null 2>&1 || true
		crun --root "$work/crun" delete -f "$id" >/dev/null 2>&1 || true
		[ ! -x "$bin/berth-oci" ] || "$bin/berth-oci" --root "$work/berth-oci" delete -f "$id" >/dev/null 2>&1 || true
	done
	rm -rf "$work"
}
trap cleanup EXIT

names=() cmds=() where=()
bench() {
	names+=("$1")
	cmds+=("$2")
	where+=("${3:-host}")
}

bench floor "unshare --fork --pid --mount --uts --ipc --mount-proc chroot $rootfs /bin/true"

for exe in "$bin"/[0-9][0-9]-*; do
	[ -x "$exe" ] || continue
	stage=$(basename "$exe")
	part=$repo/bench/parts/$stage.sh
	if [ -f "$part" ]; then
		# shellcheck source=/dev/null
		. "$part"
	else
		# From 04-net on, a run as root gets the bridge by default, which
		# would change the host's network: measure with --net none (04's
		# own part measures the bridge, in a scratch network namespace).
		net=""
		"$exe" run --help 2>/dev/null | grep -q -- '--net ' && net="--net none"
		bench "$stage${net:+ $net}" "$exe run $net /bin/true"
	fi
done

# The OCI references: one bundle over the same rootfs, a fresh container
# id per runtime (each run deletes its container on exit).
if command -v runc >/dev/null; then
	mkdir -p "$work/bundle"
	runc spec --bundle "$work/bundle"
	jq --arg root "$rootfs" '.root.path = $root | .root.readonly = true
		| .process.terminal = false | .process.args = ["/bin/true"]' \
		"$work/bundle/config.json" >"$work/config.json"
	mv "$work/config.json" "$work/bundle/config.json"
	for rt in crun runc; do
		command -v "$rt" >/dev/null || { echo "bench: $rt not installed: no $rt row"; continue; }
		id=berth-bench-$rt-$$
		oci_ids+=("$id")
		bench "$rt run" "$rt --root $work/$rt run --bundle $work/bundle $id" oci
	done
	# berth-oci on the same bundle (not a stage binary: its part is
	# sourced here, where the bundle is).
	# shellcheck source=/dev/null
	. "$repo/bench/parts/09-oci.sh"
else
	echo "bench: runc not installed: no OCI rows (sudo make setup installs it)"
fi

hf=(hyperfine -N --warmup "$warmup" --runs "$runs" --style basic)
host_args=() oci_args=()
for i in "${!names[@]}"; do
	if [ "${where[$i]}" = oci ]; then
		oci_args+=(-n "${names[$i]}" "${cmds[$i]}")
	else
		host_args+=(-n "${names[$i]}" "${cmds[$i]}")
	fi
done

# One plain run each first, so that a command that fails says why (hyperfine
# only reports a non-zero status).
for i in "${!names[@]}"; do
	[ "${where[$i]}" = host ] || continue
	# shellcheck disable=SC2086 # split on spaces, as hyperfine -N does
	if ! msg=$(${cmds[$i]} 2>&1 </dev/null); then
		die "${names[$i]}: '${cmds[$i]}' fails: $msg"
	fi
done

echo "bench: ${#names[@]} commands, $warmup warm-up + $runs runs each; details in $out/"
# hyperfine's own report (and its warnings about outliers) go to a log,
# shown when it fails.
hyperfine_to() {
	local log=$1
	shift
	if ! "$@" >"$log" 2>&1; then
		cat "$log" >&2
		die "hyperfine failed (log: $log)"
	fi
}
hyperfine_to "$out/host.log" "${hf[@]}" --export-json "$out/host.json" "${host_args[@]}"
rm -f "$out/oci.json"
if [ ${#oci_args[@]} -gt 0 ]; then
	# A private mount namespace without the cgroup2 mount of the hybrid
	# layout, which crun 1.8.1 refuses.
	hyperfine_to "$out/oci.log" unshare --mount --propagation private -- bash -c '
		if mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified; fi
		exec "$@"' bash "${hf[@]}" --export-json "$out/oci.json" "${oci_args[@]}"
fi

jq -s '[.[].results[]]' "$out/host.json" $([ -f "$out/oci.json" ] && echo "$out/oci.json") >"$out/results.json"
{
	echo "median start-to-exit time of /bin/true, $runs runs each ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg))"
	w=$(jq -r 'map(.command | length) | max' "$out/results.json")
	printf '%-*s %10s %8s %8s %8s\n' "$w" what "median ms" "min ms" "max ms" "x floor"
	jq -r '(map(select(.command == "floor")) | .[0].median) as $floor
		| .[] | [.command, .median * 1000, .min * 1000, .max * 1000, .median / $floor] | @tsv' "$out/results.json" |
		while IFS=$'\t' read -r name median min max ratio; do
			printf '%-*s %10.2f %8.2f %8.2f %8.2f\n' "$w" "$name" "$median" "$min" "$max" "$ratio"
		done
} | tee "$out/summary.txt"
