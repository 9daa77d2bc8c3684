# shellcheck shell=bash
# Stage 09's rows for bench/run.sh (sourced; uses bench(), $bin, $rootfs,
# $work, $out). berth keeps its records and live state in scratch roots
# under $work, removed with it.
#
# Main table (hyperfine, start to exit of /bin/true from an image: the
# busybox tree imported as one, so its layer under a container layer of
# the container's own; the container and its record removed at the end,
# --rm):
#   berth run --rm --network none   the CLI, a record, a monitor, internal
#                                   create, the init, the exit command
#   berth run --rm (bridge)         the same on the bridge, in a scratch
#                                   network namespace (as 04's rows)
#   berth run --rm, no filter       --security-opt seccomp=unconfined: what
#                                   Docker's seccomp profile costs a start
#   berth run --rm --privileged     no filter, every capability and device
#   podman run --rm --network none  podman (Debian's, over runc, conmon as
#                                   its monitor) on the same tree imported
#                                   into a store of its own under $work
#   crun run +seccomp, runc run +seccomp
#                                   the OCI references' bundle with Docker's
#                                   seccomp profile (what berth compiles)
# (crun run and runc run of an OCI bundle of the same tree are the
# references of the main table.)
#
# Own table, $out/09-full.txt:
#   berth run -d, to running        until the command returns (the container
#                                   runs); each run's container removed
#                                   before the next
#   idle memory of a monitor        RSS and PSS (/proc/PID/smaps_rollup) of
#                                   berth-monitor; of conmon (podman's,
#                                   Debian's package) started as podman
#                                   starts it, over runc; of
#                                   containerd-shim-runc-v2 (Debian's
#                                   containerd, where installed: a daemon of
#                                   its own under $work, `ctr run -d`);
#                                   B9_N (5) of each,
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

$b9berth import "$rootfs" busybox >/dev/null
bench "berth run --rm --network none" "$b9berth run --rm --network none busybox /bin/true"
bench "berth run --rm (bridge)" "$b9netns $b9berth run --rm busybox /bin/true"
bench "berth run --rm, no filter" "$b9berth run --rm --network none --security-opt seccomp=unconfined busybox /bin/true"
bench "berth run --rm --privileged" "$b9berth run --rm --network none --privileged busybox /bin/true"

# podman and containerd keep state in /run (/run/libpod, /run/runc,
# /run/containerd, /run/netns) and /dev/shm whatever their roots say: they
# run in a scratch mount namespace, held by a sleeper that dies with this
# script, with tmpfs over those two, and without the hybrid layout's
# cgroup2 mount (as runc in the main table). nsenter costs each podman run
# about a millisecond.
setpriv --pdeathsig TERM unshare --mount --propagation private -- sh -c '
	if mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified; fi
	mount -t tmpfs tmpfs /run && mount -t tmpfs tmpfs /dev/shm && exec sleep infinity' &
b9mnt=$!
for _ in $(seq 100); do
	[ "$(readlink /proc/$b9mnt/ns/mnt)" != "$(readlink /proc/self/ns/mnt)" ] && mountpoint -q "/proc/$b9mnt/root/run" 2>/dev/null && break
	sleep 0.05
done
b9mntns="nsenter --mount=/proc/$b9mnt/ns/mnt"

# podman, rootful, in a store of its own; over runc (Debian's crun 1.8.1
# refuses the hybrid cgroup layout), cgroupfs, no events journal; the
# rlimits within this machine's hard limits (podman's defaults are above
# them, which a container runtime may not raise here). No bridge row:
# podman's CNI would change the host's firewall and /var/lib/cni.
if command -v podman >/dev/null; then
	b9pod="$b9mntns podman --root $b9/podman/root --runroot $b9/podman/run --cgroup-manager cgroupfs --events-backend none --runtime runc"
	tar -C "$rootfs" -c . | $b9pod import - localhost/b9-busybox >/dev/null 2>&1
	bench "podman run --rm --network none" "$b9pod run --rm --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 localhost/b9-busybox /bin/true"
else
	echo "bench: podman not installed: no podman row (sudo make setup installs it)"
fi

# The references with Docker's seccomp profile (issue 14: what the
# defaults cost, beside runc and crun doing the same): runc spec's bundle
# over the same tree with the profile berth compiles (the security
# package's harness prints it), run by crun and runc.
if command -v runc >/dev/null && command -v jq >/dev/null; then
	(cd "$repo" && "${GO:-go}" build -o "$work/secrun" ./09-full/security/internal/secrun)
	mkdir -p "$work/bundle-seccomp"
	runc spec --bundle "$work/bundle-seccomp"
	"$work/secrun" profile >"$work/profile.json"
	jq --arg root "$rootfs" --slurpfile p "$work/profile.json" '.root.path = $root | .root.readonly = true
		| .process.terminal = false | .process.args = ["/bin/true"] | .linux.seccomp = $p[0]' \
		"$work/bundle-seccomp/config.json" >"$work/config-seccomp.json"
	mv "$work/config-seccomp.json" "$work/bundle-seccomp/config.json"
	for rt in crun runc; do
		command -v "$rt" >/dev/null || continue
		id=berth-bench-seccomp-$rt-$$
		oci_ids+=("$id")
		bench "$rt run +seccomp" "$rt --root $work/$rt run --bundle $work/bundle-seccomp $id" oci
	done
fi

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
	# containerd-shim-runc-v2: a containerd of its own (no CRI plugin),
	# runc as in the main table, `ctr run -d` on the tree read-only.
	local cd=$b9/containerd cdpid=""
	if command -v containerd >/dev/null && command -v ctr >/dev/null && command -v runc >/dev/null; then
		mkdir -p "$cd"
		printf '%s\n' 'version = 2' "root = \"$cd/root\"" "state = \"$cd/state\"" \
			'disabled_plugins = ["io.containerd.grpc.v1.cri"]' '[grpc]' "  address = \"$cd/sock\"" \
			'[ttrpc]' "  address = \"$cd/sock.ttrpc\"" >"$cd/config.toml"
		$b9mntns containerd --config "$cd/config.toml" >"$cd/log" 2>&1 &
		cdpid=$!
		for _ in $(seq 100); do [ -S "$cd/sock" ] && break; sleep 0.05; done
		for i in $(seq "$n"); do
			ctr -a "$cd/sock" -n b9 run -d --null-io --read-only --rootfs "$rootfs" "cd$i" /bin/sleep 1000 >/dev/null
		done
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
	local shim_mem=""
	if [ -n "$cdpid" ]; then
		shim_mem=$(for p in $(pgrep -f "containerd-shim-runc-v2 -namespace b9 "); do b9_mem "$p"; done | mean)
		for i in $(seq "$n"); do ctr -a "$cd/sock" -n b9 tasks kill -s KILL "cd$i" >/dev/null 2>&1 || true; done
		sleep 0.5
		for i in $(seq "$n"); do
			ctr -a "$cd/sock" -n b9 tasks rm "cd$i" >/dev/null 2>&1 || true
			ctr -a "$cd/sock" -n b9 containers rm "cd$i" >/dev/null 2>&1 || true
		done
		kill "$cdpid" 2>/dev/null || true
		wait "$cdpid" 2>/dev/null || true
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
		if [ -n "$shim_mem" ]; then
			read -r r p k <<<"$shim_mem"
			printf '  %-32s RSS %6d kB   PSS %6d kB   (%s shims)\n' "containerd-shim-runc-v2 $(containerd --version | awk '{print $3}')" "$r" "$p" "$k"
		else
			echo "  containerd-shim-runc-v2: no row: containerd is not installed (make setup leaves it out: on a systemd machine its package starts a daemon; apt-get install containerd for this row; the issue quotes 13.2 MB RSS)"
		fi
	} | tee "$out/09-full.txt"
}
b9_table
