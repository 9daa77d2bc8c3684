# shellcheck shell=bash
# bench/parts/06-cgroups.sh: stage 06's rows for make bench (sourced by
# bench/run.sh, which provides bench(), $repo, $bin, $work and $out), or on
# its own:
#
#   sudo bash bench/parts/06-cgroups.sh      (BIN, RUNS, WARMUP, OUT as run.sh takes them)
#
# Main table (hyperfine, start to exit of /bin/true). --net none keeps the
# rows off the host's network and leaves the cgroup as the only difference
# from the previous stage:
#   05-user --net none               the previous stage, for the ratio
#   06-cgroups --net none            plus a group with the device allow-list
#   06-cgroups --net none, limits    plus --memory 64m --cpus 1 --pids-limit 100
#
# Own table, $out/06-cgroups.txt: the cost of one group for the runtime,
# create with limits + join + leave + delete (Go benchmark of
# cgroup.Create/SetPids/Add/Delete, 200 rounds: the code path of run).

standalone=
if ! declare -F bench >/dev/null; then
	set -euo pipefail
	standalone=1
	repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
	bin=${BIN:-$repo/bin}
	out=${OUT:-$repo/bench/results}
	work=$(mktemp -d /tmp/berth-bench-cg.XXXXXX)
	trap 'rm -rf "$work"' EXIT
	mkdir -p "$out"
	names=() cmds=()
	bench() { names+=("$1"); cmds+=("$2"); }
fi

# (bench/run.sh measures 05-user --net none itself; standalone, the part does)
[ -n "$standalone" ] && [ -x "$bin/05-user" ] && bench "05-user --net none" "$bin/05-user run --net none /bin/true"
bench "06-cgroups --net none" "$bin/06-cgroups run --net none /bin/true"
bench "06-cgroups --net none, limits" "$bin/06-cgroups run --net none --memory 64m --cpus 1 --pids-limit 100 /bin/true"

(cd "$repo" && go test -c -o "$work/cgroup.test" ./06-cgroups/cgroup)
"$work/cgroup.test" -test.run '^$' -test.bench GroupLifecycle -test.benchtime "${CG6_ROUNDS:-200}x" >"$out/06-cgroups-lifecycle.log"
{
	echo "06-cgroups ($(date -u +%Y-%m-%dT%H:%MZ), kernel $(uname -r), cgroup $(stat -fc %T /sys/fs/cgroup | sed 's/cgroup2fs/v2/; s/tmpfs/v1/'), load $(cut -d' ' -f1-3 /proc/loadavg))"
	awk '/^BenchmarkGroupLifecycle/ {printf "  cgroup create (memory, cpu, pids, devices) + join + leave + delete: %.2f ms (%d rounds)\n", $3/1e6, $2}' "$out/06-cgroups-lifecycle.log"
} | tee "$out/06-cgroups.txt"

if [ -n "$standalone" ]; then
	args=()
	for i in "${!names[@]}"; do args+=(-n "${names[$i]}" "${cmds[$i]}"); done
	hyperfine -N --warmup "${WARMUP:-3}" --runs "${RUNS:-20}" --style basic --export-json "$out/06-cgroups.json" "${args[@]}" >"$out/06-cgroups-host.log"
	jq -r '.results | (.[0].median) as $base | .[] | [.command, .median * 1000, .median / $base] | @tsv' "$out/06-cgroups.json" |
		while IFS=$'\t' read -r name ms ratio; do printf '  %-32s %7.1f ms  %5.2fx\n' "$name" "$ms" "$ratio"; done | tee -a "$out/06-cgroups.txt"
fi
