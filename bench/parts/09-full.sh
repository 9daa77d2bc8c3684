# shellcheck shell=bash
# Stage 09's rows for bench/run.sh (sourced; uses bench(), $bin, $rootfs,
# $work, $out). berth keeps its records and live state in scratch roots
# under $work, removed with it.
#
# Main table (hyperfine, start to exit of /bin/true, the busybox tree as
# --rootfs, so a bottom layer under a container layer of its own, as 07's
# rows; the container and its record removed at the end, --rm):
#   berth run --rm --network none   the CLI, a record, a monitor, internal
#                                   create, the init, the exit command
#   berth run --rm (bridge)         the same on the bridge, in a scratch
#                                   network namespace (as 04's rows)
#   berth run --rm, no filter       --security-opt seccomp=unconfined: what
#                                   Docker's seccomp profile costs a start
#   berth run --rm --privileged     no filter, every capability and device
# (crun run and runc run of an OCI bundle of the same tree are the
# references of the main table.)
#
# Own table, $out/09-full.txt:
#   berth run -d, to running        until the command returns (the container
#                                   runs); each run's container removed
#                                   before the next
#   idle memory of a monitor        RSS and PSS (/proc/PID/smaps_rollup) of
#                                   berth-monitor, and of conmon (podman's,
#                                   Debian's package) started as podman
#                                   starts it, over runc; B9_N (5) of each,
#                                   8 s after they started, the mean

b9=$work/b9
b9data=$b9/data
b9run=$b9/run
mkdir -p "$b9data" "$b9run"
b9berth="$bin/berth --data-root $b9data --root $b9run"

# A scratch network namespace for the bridge row, held by a sleeper that
# dies with this script (its bridge and nftables table go with it).
setpriv --pdeathsig TERM unshare --net -- sh -c 'ip link set lo up; exec sleep infinity' &
b9net=$!
for _ in $(seq 100); do
	[ "$(readlink /proc/$b9net/ns/net)" != "$(readlink /proc/self/ns/net)" ] && break
	sleep 0.05
done
b9netns="nsenter --net=/proc/$b9net/ns/net"

bench "berth run --rm --network none" "$b9berth run --rm --rootfs $rootfs --network none /bin/true"
bench "berth run --rm (bridge)" "$b9netns $b9berth run --rm --rootfs $rootfs /bin/true"
bench "berth run --rm, no filter" "$b9berth run --rm --rootfs $rootfs --network none --security-opt seccomp=unconfined /bin/true"
bench "berth run --rm --privileged" "$b9berth run --rm --rootfs $rootfs --network none --privileged /bin/true"

b9_rmall() {
	local ids
	ids=$($b9berth ps -aq)
	[ -z "$ids" ] || $b9berth rm -f $ids >/dev/null
}

# mem PID: "RSS PSS" in kB.
b9_mem() {
	awk '/^Rss:/ {r=$2} /^Pss:/ {p=$2} END {print r, p}' "/proc/$1/smaps_rollup"
}

b9_table() {
	local n=${B9_N:-5} i pids=() cpids=() mean
	# run -d, to running.
	cat >"$b9/rmall.sh" <<EOF
ids=\$($b9berth ps -aq); [ -z "\$ids" ] || $b9berth rm -f \$ids >/dev/null
EOF
	hyperfine -N --warmup 2 --runs "${RUNS:-20}" --style basic --export-json "$out/09-full-run-d.json" \
		--prepare "bash $b9/rmall.sh" -n "berth run -d (to running)" "$b9berth run -d --rootfs $rootfs --network none sleep 1000" \
		>"$out/09-full-run-d.log"
	b9_rmall

	# Idle memory: berth-monitor.
	for i in $(seq "$n"); do
		$b9berth run -d --name "idle$i" --rootfs "$rootfs" --network none sleep 1000 >/dev/null
	done
	# conmon over runc, as podman starts it, on an OCI bundle of the tree.
	local cm=$b9/conmon
	if command -v conmon >/dev/null && command -v runc >/dev/null; then
		mkdir -p "$cm/bundle" "$cm/exits" "$cm/sock" "$cm/runc"
		runc spec --bundle "$cm/bundle"
		jq --arg root "$rootfs" '.root.path = $root | .root.readonly = true
			| .process.terminal = false | .process.args = ["sleep", "1000"]' \
			"$cm/bundle/config.json" >"$cm/config.json" && mv "$cm/config.json" "$cm/bundle/config.json"
		# runc runs as in the main table: in a private mount namespace
		# without the hybrid layout's cgroup2 mount.
		unshare --mount --propagation private -- bash -c '
			cm=$1 n=$2
			if mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified; fi
			for i in $(seq "$n"); do
				conmon --api-version 1 -c "cm$i" -u "cm$i" -r "$(command -v runc)" -b "$cm/bundle" -p "$cm/pid$i" -n "cm$i" \
					--exit-dir "$cm/exits" -l "k8s-file:$cm/log$i" --log-level error --runtime-arg "--root=$cm/runc" \
					--socket-dir-path "$cm/sock" --conmon-pidfile "$cm/conmon$i.pid" >/dev/null 2>&1
				for _ in $(seq 100); do [ -s "$cm/pid$i" ] && break; sleep 0.05; done
				runc --root "$cm/runc" start "cm$i"
			done' bash "$cm" "$n"
	fi
	sleep 8
	mean() { awk '{r += $1; p += $2; n++} END {if (n) printf "%d %d %d", r / n, p / n, n}'; }
	local berth_mem conmon_mem=""
	berth_mem=$(for i in $(seq "$n"); do
		b9_mem "$(ps -o ppid= -p "$($b9berth inspect --format '{{.State.Pid}}' "idle$i")" | tr -d ' ')"
	done | mean)
	if [ -d "$cm" ]; then
		conmon_mem=$(for i in $(seq "$n"); do [ -s "$cm/conmon$i.pid" ] && b9_mem "$(cat "$cm/conmon$i.pid")"; done | mean)
		for i in $(seq "$n"); do
			runc --root "$cm/runc" kill "cm$i" KILL 2>/dev/null || true
		done
		sleep 0.5
		for i in $(seq "$n"); do runc --root "$cm/runc" delete -f "cm$i" 2>/dev/null || true; done
	fi
	b9_rmall
	{
		echo "berth (09-full), $(date -u +%Y-%m-%dT%H:%MZ), kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg):"
		jq -r '.results[] | [.command, .median * 1000, .min * 1000, .max * 1000] | @tsv' "$out/09-full-run-d.json" |
			while IFS=$'\t' read -r name median min max; do
				printf '  %-32s %8.1f ms  (min %.1f, max %.1f)\n' "$name" "$median" "$min" "$max"
			done
		echo "  idle memory of one container's monitor, 8 s after start, mean of $n:"
		read -r r p k <<<"$berth_mem"
		printf '  %-32s RSS %6d kB   PSS %6d kB   (%s monitors)\n' "berth-monitor" "$r" "$p" "$k"
		if [ -n "$conmon_mem" ]; then
			read -r r p k <<<"$conmon_mem"
			printf '  %-32s RSS %6d kB   PSS %6d kB   (%s monitors)\n' "conmon $(conmon --version | head -n 1 | awk '{print $3}') (runc)" "$r" "$p" "$k"
		else
			echo "  conmon: not installed (sudo make setup installs it): no row"
		fi
		echo "  (containerd-shim-runc-v2 is not installed here; the issue quotes 13.2 MB RSS)"
	} | tee "$out/09-full.txt"
}
b9_table
