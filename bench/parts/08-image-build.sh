# Stage 08's build, beside podman build when podman is installed (sourced
# by the stage's part, bench/parts/08-image.sh; uses $bin, $rootfs, $work,
# $out). Run alone: sudo bash bench/parts/08-image-build.sh
#
# Own table, $out/08-image-build.txt: medians of U8B_RUNS (10) builds of a
# 3-step Dockerfile: FROM busybox, RUN (a container, its layer committed),
# COPY (a 100 kB file):
#   berth build --no-cache   every step again: 2 layers, 2 images, 1 container
#   berth build, cached      the same context again: every step from the cache
#   podman build --no-cache  the same with podman 4 (buildah inside), if
#   podman build, cached     podman is installed (make setup installs it,
#                            for stage 09's rows); else berth alone, and
#                            the reason is printed
# Both stores on a fresh tmpfs (the root disk is ext4 without a journal:
# see shared/notes/bench-facts.md), in a private network namespace (both
# builds run their RUN without network) and a private mount namespace with
# a tmpfs over /run, where podman keeps its locks whatever --tmpdir says.
# podman gets what this machine needs (bench-facts): runc, cgroupfs, and
# the open-files and processes limits root may set here.

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
	bin=${BIN:-$repo/bin}
	rootfs=${BERTH_ROOTFS:-/var/lib/berth/busybox}
	out=${OUT:-$repo/bench/results}
	[ "$(id -u)" -eq 0 ] || { echo "bench: needs root: run it with sudo" >&2; exit 1; }
	[ -x "$bin/08-image" ] || { echo "bench: no $bin/08-image: run make build" >&2; exit 1; }
	mkdir -p "$out"
	work=$(mktemp -d /tmp/berth-bench.XXXXXX)
	trap 'rm -rf "$work"' EXIT
	die() { echo "bench: $*" >&2; exit 1; }
fi

# u8b_build runs inside the private namespaces: bin work out rootfs runs.
u8b_build() {
	set -euo pipefail
	local bin=$1 work=$2 out=$3 rootfs=$4 runs=$5
	local t=$work/u8b
	ip link set lo up
	mkdir -p "$t"
	mount -t tmpfs -o size=2g berth-bench "$t"
	mount -t tmpfs berth-bench /run
	export BERTH_ROOT=$t/run
	local ctx=$t/ctx
	mkdir -p "$ctx"
	head -c 100000 /dev/urandom >"$ctx/data"
	printf '%s\n' 'FROM localhost/busybox' 'RUN echo built > /built' 'COPY data /data' >"$ctx/Dockerfile"
	"$bin/08-image" import --data-root "$t/berth" --cmd sh "$rootfs" localhost/busybox >/dev/null
	local berth="$bin/08-image build --data-root $t/berth -t bench $ctx"
	local rows=(-n "berth build --no-cache" "$berth --no-cache" -n "berth build, cached" "$berth")
	if command -v podman >/dev/null; then
		local p="podman --root $t/podman --runroot $t/podman-run --tmpdir $t/podman-tmp --storage-driver overlay --cgroup-manager cgroupfs --events-backend none --runtime runc"
		tar -C "$rootfs" -c . | $p import - localhost/busybox >/dev/null 2>&1
		local pb="$p build --network none --ulimit nofile=20000:20000 --ulimit nproc=32768:32768 -t bench $ctx"
		rows+=(-n "podman build --no-cache" "$pb --no-cache" -n "podman build, cached" "$pb")
	fi
	hyperfine -N --warmup 2 --runs "$runs" --style basic --export-json "$out/08-image-build.json" "${rows[@]}" \
		>"$out/08-image-build.log" 2>&1
	umount "$t"
}

u8b_bench() {
	command -v podman >/dev/null || echo "bench: podman not installed (apt-get install podman): 08-image build measured alone"
	if ! unshare --net --mount --propagation private -- bash -c "$(declare -f u8b_build); u8b_build \"\$@\"" u8b_build \
		"$bin" "$work" "$out" "$rootfs" "${U8B_RUNS:-10}"; then
		cat "$out/08-image-build.log" >&2 2>/dev/null || true
		die "08-image: the build benchmark failed"
	fi
	{
		echo "08-image build of FROM busybox + RUN + COPY (100 kB), stores on tmpfs ($(date -u +%Y-%m-%dT%H:%MZ), kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)); medians of ${U8B_RUNS:-10} runs:"
		jq -r '.results[] | [.command, .median * 1000, .min * 1000, .max * 1000] | @tsv' "$out/08-image-build.json" |
			while IFS=$'\t' read -r name median min max; do
				printf '  %-26s %8.1f ms  (min %.1f, max %.1f)\n' "$name" "$median" "$min" "$max"
			done
	} | tee "$out/08-image-build.txt"
}
u8b_bench
