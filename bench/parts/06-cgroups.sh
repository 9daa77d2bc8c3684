# Stage 06's rows for bench/run.sh (sourced; uses $bin, $repo, $work, $out).
#
# Main table (hyperfine, start to exit of /bin/true, next to 03-mount):
#   06-cgroups          a group with the default device allow-list only
#   06-cgroups limits   --memory 64m --cpus 1 --pids-limit 100
#
# Own table, $out/06-cgroups.txt: the cost of one group for the runtime,
# create with limits + join + leave + delete (Go benchmark of
# cgroup.Create/Add/Delete, 200 rounds, the code path of run).

bench 06-cgroups "$bin/06-cgroups run /bin/true"
bench "06-cgroups limits" "$bin/06-cgroups run --memory 64m --cpus 1 --pids-limit 100 /bin/true"

(cd "$repo" && go test -c -o "$work/cgroup.test" ./06-cgroups/cgroup)
"$work/cgroup.test" -test.run '^$' -test.bench GroupLifecycle -test.benchtime "${CG6_ROUNDS:-200}x" >"$out/06-cgroups-lifecycle.log"
{
	echo "06-cgroups ($(date -u +%Y-%m-%dT%H:%MZ), kernel $(uname -r), cgroup $(stat -fc %T /sys/fs/cgroup | sed 's/cgroup2fs/v2/; s/tmpfs/v1/'), load $(cut -d' ' -f1-3 /proc/loadavg))"
	awk '/^BenchmarkGroupLifecycle/ {printf "  cgroup create (memory, cpu, pids, devices) + join + leave + delete: %.2f ms (%d rounds)\n", $3/1e6, $2}' "$out/06-cgroups-lifecycle.log"
} | tee "$out/06-cgroups.txt"
