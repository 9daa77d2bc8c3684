# Stage 08's rows for bench/run.sh (sourced; uses $bin, $rootfs, $work, $out).
#
# Main table (hyperfine, start to exit of /bin/true, layer removed on exit,
# --net none as 07's rows):
#   08-image --net none                  the busybox tree as 07 stacks it
#   08-image --image busybox --net none  the same tree imported as an image
#
# Own table, $out/08-image.txt: pull busybox (one layer, about 1 MB
# gzip'd) from a local docker-registry into an empty store, medians of
# U8_RUNS (10) runs:
#   berth pull                  manifest, config, layer, each checked by
#                               digest and size; the layer unpacked and
#                               checked against its diff id
#   berth pull, up to date      the same name again: one manifest GET
#   skopeo copy to an OCI dir   the same blobs into an OCI layout, packed
#   skopeo copy + umoci unpack  ... and unpacked into a bundle: the work
#                               berth's pull does
# It all runs in a private network namespace (the registry listens on
# 127.0.0.1:5000 there, nothing else can reach it) and a private mount
# namespace with a tmpfs over /var/lib (skopeo as root keeps a blob cache
# in /var/lib/containers, which the host should not get) and another for
# the registry's storage and the stores (see bench-facts: ext4 after rm -rf).

bench "08-image --net none" "$bin/08-image run --rm --net none /bin/true"
u8_data=$work/u8-data
"$bin/08-image" import --data-root "$u8_data" --cmd sh "$rootfs" busybox >/dev/null
bench "08-image --image busybox --net none" "$bin/08-image run --rm --net none --data-root $u8_data --image busybox /bin/true"

# u8_pull runs inside the private namespaces: bin work out data runs.
u8_pull() {
	set -euo pipefail
	local bin=$1 work=$2 out=$3 data=$4 runs=$5
	local t=$work/u8-tmpfs reg=127.0.0.1:5000
	ip link set lo up
	mount -t tmpfs berth-bench /var/lib
	mkdir -p "$t"
	mount -t tmpfs -o size=1g berth-bench "$t"
	printf 'version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s/registry\nhttp:\n  addr: %s\n' "$t" "$reg" >"$t/registry.yml"
	docker-registry serve "$t/registry.yml" >"$t/registry.log" 2>&1 &
	local pid=$! i
	for i in $(seq 100); do
		curl -s "http://$reg/v2/" >/dev/null && break
		sleep 0.1
	done
	curl -s "http://$reg/v2/" >/dev/null || { cat "$t/registry.log" >&2; return 1; }
	"$bin/08-image" tag --data-root "$data" busybox "$reg/busybox"
	"$bin/08-image" push --data-root "$data" "$reg/busybox" >/dev/null
	"$bin/08-image" pull --data-root "$t/current" "$reg/busybox" >/dev/null
	local copy="skopeo copy -q --src-tls-verify=false docker://$reg/busybox oci:$t/oci:busybox"
	hyperfine -N --warmup 2 --runs "$runs" --style basic --export-json "$out/08-image-pull.json" \
		--prepare "rm -rf $t/store" -n "berth pull" "$bin/08-image pull --data-root $t/store $reg/busybox" \
		--prepare "true" -n "berth pull, up to date" "$bin/08-image pull --data-root $t/current $reg/busybox" \
		--prepare "rm -rf $t/oci" -n "skopeo copy to an OCI dir" "$copy" \
		--prepare "rm -rf $t/oci $t/bundle" -n "skopeo copy + umoci unpack" "sh -c '$copy && umoci unpack --image $t/oci:busybox $t/bundle >/dev/null'" \
		>"$out/08-image-pull.log"
	kill "$pid"
	wait "$pid" || true
	umount "$t"
}

u8_bench() {
	command -v docker-registry >/dev/null || { echo "bench: docker-registry not installed: no 08-image pull table (sudo make setup installs it)"; return; }
	command -v skopeo >/dev/null || { echo "bench: skopeo not installed: no 08-image pull table (sudo make setup installs it)"; return; }
	command -v umoci >/dev/null || { echo "bench: umoci not installed: no 08-image pull table (sudo make setup installs it)"; return; }
	if ! unshare --net --mount --propagation private -- bash -c "$(declare -f u8_pull); u8_pull \"\$@\"" u8_pull \
		"$bin" "$work" "$out" "$u8_data" "${U8_RUNS:-10}"; then
		cat "$out/08-image-pull.log" >&2 2>/dev/null || true
		die "08-image: the pull benchmark failed"
	fi
	local size
	size=$(du -b "$u8_data"/images/blobs/sha256/* | sort -n | tail -1 | cut -f1)
	{
		echo "08-image pull of busybox (1 layer, $((size / 1000)) kB gzip'd) from docker-registry on 127.0.0.1, on tmpfs ($(date -u +%Y-%m-%dT%H:%MZ), kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)); medians of ${U8_RUNS:-10} runs:"
		jq -r '.results[] | [.command, .median * 1000, .min * 1000, .max * 1000] | @tsv' "$out/08-image-pull.json" |
			while IFS=$'\t' read -r name median min max; do
				printf '  %-28s %8.1f ms  (min %.1f, max %.1f)\n' "$name" "$median" "$min" "$max"
			done
	} | tee "$out/08-image.txt"
}
u8_bench

# The stage's other parts: save and load, build.
for u8_part in "$repo"/bench/parts/08-image-*.sh; do
	[ -f "$u8_part" ] || continue
	# shellcheck source=/dev/null
	. "$u8_part"
done
