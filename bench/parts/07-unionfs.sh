# Stage 07's rows for bench/run.sh (sourced; uses $bin, $rootfs, $work, $out).
#
# Main table (hyperfine, start to exit of /bin/true, layer removed on exit;
# --net none keeps the rows off the host's network, as 06's):
#   07-unionfs --net none             busybox as one layer + init layer + container layer
#   07-unionfs 100 layers --net none  99 small layers on top of busybox
#   07-unionfs rootless               as nobody (stage 05 without root: lo only),
#                                     the overlay mounted in the container's user namespace
#   setpriv as nobody                 what becoming nobody costs in that row (setpriv, env)
#
# Own table, $out/07-unionfs.txt, all on a fresh tmpfs (the root disk is
# ext4 without a journal, which slows file creation for minutes after a
# large rm -rf; see shared/notes/bench-facts.md):
#   - mount+umount of a container layer on 1 and 100 layers (Go benchmark
#     of layer.Store.Mount/Unmount, the code path of run);
#   - commit vs `tar -cf` and apply vs `tar -xf` of one ~100 MB layer, MB/s;
#   - apply vs `tar -xf` of a layer of 1,000 nested directories.

bench "07-unionfs --net none" "$bin/07-unionfs run --rm --net none /bin/true"
u7_layers=$rootfs
for i in $(seq 1 99); do
	mkdir -p "$work/u7-layers/$i"
	echo "$i" >"$work/u7-layers/$i/layer-$i"
	u7_layers=$work/u7-layers/$i:$u7_layers
done
bench "07-unionfs 100 layers --net none" "$bin/07-unionfs run --rm --net none --layers $u7_layers /bin/true"

# nobody's home and runtime directory in $work, and a copy of the binary
# it may run (the repository may be out of its reach); its data root is
# then $work/u7-user/home/.local/share/berth, its lower layer the shared
# busybox tree.
u7_user=$work/u7-user
mkdir -p "$u7_user/home" "$u7_user/run"
cp "$bin/07-unionfs" "$u7_user/"
chown 65534:65534 "$u7_user/home" "$u7_user/run"
chmod 700 "$u7_user/home" "$u7_user/run"
chmod 755 "$u7_user"
chmod 711 "$work"
u7_as="setpriv --reuid 65534 --regid 65534 --clear-groups env HOME=$u7_user/home XDG_RUNTIME_DIR=$u7_user/run"
bench "07-unionfs rootless" "$u7_as $u7_user/07-unionfs run --rm /bin/true"
bench "setpriv as nobody" "$u7_as /bin/true"

u7_bench() {
	local t=$work/u7-tmpfs
	mkdir -p "$t"
	mount -t tmpfs -o size=2g berth-bench "$t"
	trap "umount -l '$t' 2>/dev/null || true; cleanup" EXIT

	# mount+umount, on tmpfs, 200 rounds each
	(cd "$repo" && go test -c -o "$work/layer.test" ./07-unionfs/layer)
	BERTH_BENCH_DIR=$t "$work/layer.test" -test.run '^$' -test.bench MountUnmount -test.benchtime 200x >"$out/07-unionfs-mount.log"

	# A ~100 MB container layer: 80 files of 1 MiB, 4,000 files of 4 KiB
	# in 40 directories, 200 symlinks. It is put in the upper directory of
	# a stopped container, so commit reads what a container would leave.
	local data=$t/data
	BERTH_DATA_ROOT=$data BERTH_ROOT=$t/run "$bin/07-unionfs" run --net none --id big /bin/true
	local upper=$data/layers/containers/big/diff
	for d in $(seq 1 40); do
		mkdir -p "$upper/small/$d"
		for f in $(seq 1 100); do head -c 4096 /dev/urandom >"$upper/small/$d/$f"; done
	done
	mkdir -p "$upper/big" "$upper/links"
	for f in $(seq 1 80); do head -c 1048576 /dev/urandom >"$upper/big/$f"; done
	for f in $(seq 1 200); do ln -s "../big/$((f % 80 + 1))" "$upper/links/$f"; done
	local bytes
	bytes=$(du -sb --apparent-size "$upper" | cut -f1)
	tar -C "$upper" -cf "$t/gnu.tar" .

	# 1,000 nested directories.
	local nest=$t/nest p=.
	mkdir -p "$nest"
	for _ in $(seq 1 1000); do p=$p/d; done
	(cd "$nest" && mkdir -p "$p" && echo deep >"$p/leaf")
	tar -C "$nest" -cf "$t/nest.tar" .

	local hf=(hyperfine -N --warmup 2 --runs "${U7_RUNS:-10}" --style basic)
	BERTH_DATA_ROOT=$data BERTH_ROOT=$t/run "${hf[@]}" --export-json "$out/07-unionfs-commit.json" \
		-n "commit 100MB" "$bin/07-unionfs commit big $t/commit.tar" \
		-n "tar -cf 100MB" "tar -C $upper -cf $t/gnu-again.tar ." >"$out/07-unionfs-commit.log"
	"${hf[@]}" --export-json "$out/07-unionfs-apply.json" \
		--prepare "rm -rf $t/a" -n "apply 100MB" "$bin/07-unionfs apply $t/gnu.tar $t/a" \
		--prepare "sh -c 'rm -rf $t/g && mkdir $t/g'" -n "tar -xf 100MB" "tar -C $t/g -xf $t/gnu.tar" \
		--prepare "rm -rf $t/na" -n "apply nested" "$bin/07-unionfs apply $t/nest.tar $t/na" \
		--prepare "sh -c 'rm -rf $t/ng && mkdir $t/ng'" -n "tar -xf nested" "tar -C $t/ng -xf $t/nest.tar" \
		>"$out/07-unionfs-apply.log"

	{
		echo "07-unionfs on tmpfs ($(date -u +%Y-%m-%dT%H:%MZ), kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg))"
		echo "mount+umount of a container layer (Store.Mount+Unmount, 200 rounds):"
		awk '/^BenchmarkMountUnmount/ {n = $1; sub(/.*\//, "", n); sub(/-[0-9]+$/, "", n); printf "  mount+umount %-15s %8.2f ms\n", n, $3/1e6}' "$out/07-unionfs-mount.log"
		echo "one layer of $((bytes / 1000000)) MB (80 x 1 MiB, 4000 x 4 KiB, 200 symlinks), and 1,000 nested dirs; medians:"
		jq -s -r --argjson bytes "$bytes" '[.[].results[]] | .[] |
			[.command, .median * 1000, (if (.command | test("nested")) then "" else ($bytes / .median / 1e6 | floor | tostring) + " MB/s" end)] | @tsv' \
			"$out/07-unionfs-commit.json" "$out/07-unionfs-apply.json" |
			while IFS=$'\t' read -r name ms rate; do printf '  %-28s %8.1f ms  %s\n' "$name" "$ms" "$rate"; done
	} | tee "$out/07-unionfs.txt"

	BERTH_DATA_ROOT=$data BERTH_ROOT=$t/run "$bin/07-unionfs" rm big
	umount "$t"
	trap cleanup EXIT
}
u7_bench
