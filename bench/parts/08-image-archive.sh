# Stage 08's save and load, beside skopeo doing the same conversions
# (sourced by the stage's part, bench/parts/08-image.sh; uses $bin,
# $rootfs, $work, $out). Run alone: sudo bash bench/parts/08-image-archive.sh
#
# Own table, $out/08-image-archive.txt, from one hyperfine run on a fresh
# tmpfs (the root disk is ext4 without a journal, which slows file
# creation for minutes after a large rm -rf; see shared/notes/bench-facts.md),
# of the busybox tree imported as a one-layer image (about 1 MB gzip'd,
# 2.4 MB as a tar):
#   save: berth                  08-image save -o FILE busybox (the OCI layout
#                                and docker's manifest.json, layer as stored)
#   save: skopeo oci->docker     skopeo copy oci:STORE:busybox docker-archive:FILE
#                                (the layer gunzipped, as docker-archive wants it)
#   load: berth                  08-image load -i FILE into an empty store (every
#                                blob verified, the layer's diff id through gunzip)
#   load: skopeo docker->oci     skopeo copy docker-archive:FILE oci:DIR
#
# Each command starts from the same state: --prepare removes what the
# previous run wrote.

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
	cleanup() { rm -rf "$work"; }
	trap cleanup EXIT
fi

u8a_bench() {
	command -v skopeo >/dev/null || { echo "bench: skopeo not installed: no 08-image save/load table (sudo make setup installs it)"; return 0; }
	local t=$work/u8a-tmpfs
	mkdir -p "$t"
	mount -t tmpfs -o size=512m berth-bench "$t"
	trap "umount -l '$t' 2>/dev/null || true; cleanup" EXIT
	mkdir -p "$t/tmp"

	local b="$bin/08-image"
	"$b" import --data-root "$t/a" --cmd sh "$rootfs" busybox >/dev/null
	local src="oci:$t/a/images:docker.io/library/busybox:latest"
	local sk="skopeo --insecure-policy"
	# The archives each load reads: written once by each tool.
	"$b" save --data-root "$t/a" -o "$t/berth.tar" busybox
	TMPDIR=$t/tmp $sk copy -q "$src" "docker-archive:$t/skopeo.tar:busybox:latest"

	TMPDIR=$t/tmp hyperfine -N --warmup 2 --runs "${U8A_RUNS:-20}" --style basic \
		--export-json "$out/08-image-archive.json" \
		--prepare "rm -f $t/berth-out.tar" -n "save: berth" \
		"$b save --data-root $t/a -o $t/berth-out.tar busybox" \
		--prepare "rm -f $t/skopeo-out.tar" -n "save: skopeo oci->docker" \
		"$sk copy -q $src docker-archive:$t/skopeo-out.tar:busybox:latest" \
		--prepare "rm -rf $t/b" -n "load: berth" \
		"$b load --data-root $t/b -i $t/berth.tar" \
		--prepare "rm -rf $t/o" -n "load: skopeo docker->oci" \
		"$sk copy -q docker-archive:$t/skopeo.tar oci:$t/o:busybox:latest" \
		>"$out/08-image-archive.log"

	{
		echo "08-image save/load of busybox on tmpfs ($(date -u +%Y-%m-%dT%H:%MZ), kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)); archives: berth $(stat -c %s "$t/berth.tar") B, skopeo $(stat -c %s "$t/skopeo.tar") B"
		printf '  %-26s %9s %8s %8s\n' what "median ms" "min ms" "max ms"
		jq -r '.results[] | [.command, .median * 1000, .min * 1000, .max * 1000] | @tsv' "$out/08-image-archive.json" |
			while IFS=$'\t' read -r name median min max; do
				printf '  %-26s %9.1f %8.1f %8.1f\n' "$name" "$median" "$min" "$max"
			done
	} | tee "$out/08-image-archive.txt"

	umount "$t"
	trap cleanup EXIT
}
u8a_bench
