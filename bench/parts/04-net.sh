# shellcheck shell=bash
# bench/parts/04-net.sh: stage 04's rows for make bench (sourced by
# bench/run.sh, which provides bench(), $bin and $work), or on its own:
#
#   sudo bash bench/parts/04-net.sh        (BIN, RUNS, WARMUP as run.sh takes them)
#
# Every row runs inside a scratch network namespace, never on the host's
# network: a sleeper process holds it (nsenter joins it) and dies with the
# script that started it (setpriv --pdeathsig), taking the namespace, its
# bridges, berth's nftables table and its state root /run/berth-bench
# with it.
#
#   04-net                bin/04-net run /bin/true, bridge mode: veth, lease, etc files
#   04-net --net none     the same without the veth and lease (only lo)
#   04-net -p 8080:80     bridge mode plus a published port (nftables rules, a bound socket)
#   03-mount (netns)      the previous stage, joined to the same namespace, for the ratio
#   ip veth script        the network part done with 7 `ip` runs: a veth pair into a
#                         new namespace (unshare), on a bridge, address, lo and eth0 up,
#                         default route, then the veth deleted
#
# The cost of berth's network setup and teardown is the difference between
# the first two rows; the script row is the same work done the usual way.

standalone=
if ! declare -F bench >/dev/null; then
	set -euo pipefail
	standalone=1
	repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
	bin=${BIN:-$repo/bin}
	work=$(mktemp -d /tmp/berth-bench-net.XXXXXX)
	trap 'rm -rf "$work"' EXIT
	names=() cmds=()
	bench() { names+=("$1"); cmds+=("$2"); }
fi

net_root=/run/berth-bench
# The sleeper: a new network namespace with lo up and the bridge the ip
# script uses; on SIGTERM (its parent died) it removes berth's bench state.
setpriv --pdeathsig TERM unshare --net -- sh -c '
	ip link set lo up
	ip link add benchbr0 type bridge
	ip addr add 10.77.0.1/16 dev benchbr0
	ip link set benchbr0 up
	sleep infinity & sleeper=$!
	trap "kill \$sleeper; rm -rf '"$net_root"'; exit 0" TERM
	wait' &
net_pid=$!
# Wait until the namespace is set up (the bridge exists in it).
for _ in $(seq 100); do
	nsenter --net=/proc/$net_pid/ns/net ip link show benchbr0 >/dev/null 2>&1 && break
	sleep 0.05
done
in_netns="nsenter --net=/proc/$net_pid/ns/net"

cat >"$work/ip-net.sh" <<'SCRIPT'
# What berth does for a container's network, with ip: a process in a new
# network namespace, a veth pair into it on the bridge, address, lo and
# eth0 up, default route; then the veth deleted and the process gone.
set -e
unshare --net sleep 60 &
pid=$!
trap 'kill $pid' EXIT
until [ "$(readlink /proc/$pid/ns/net)" != "$(readlink /proc/self/ns/net)" ]; do :; done
veth=bb$$
ip link add $veth type veth peer name eth0 netns $pid
ip link set $veth master benchbr0 up
nsenter -t $pid -n ip addr add 10.77.0.2/16 dev eth0
nsenter -t $pid -n ip link set eth0 up
nsenter -t $pid -n ip link set lo up
nsenter -t $pid -n ip route add default via 10.77.0.1
ip link del $veth
SCRIPT

bench "04-net" "$in_netns $bin/04-net run --root $net_root /bin/true"
bench "04-net --net none" "$in_netns $bin/04-net run --root $net_root --net none /bin/true"
bench "04-net -p 8080:80" "$in_netns $bin/04-net run --root $net_root -p 8080:80 /bin/true"
[ -x "$bin/03-mount" ] && bench "03-mount (netns)" "$in_netns $bin/03-mount run /bin/true"
bench "ip veth script" "$in_netns bash $work/ip-net.sh"

if [ -n "$standalone" ]; then
	args=()
	for i in "${!names[@]}"; do args+=(-n "${names[$i]}" "${cmds[$i]}"); done
	hyperfine -N --warmup "${WARMUP:-3}" --runs "${RUNS:-20}" --style basic --export-json "$work/net.json" "${args[@]}" >/dev/null
	printf '%-22s %10s %8s %8s\n' what "median ms" "min ms" "max ms"
	jq -r '.results[] | [.command, .median * 1000, .min * 1000, .max * 1000] | @tsv' "$work/net.json" |
		while IFS=$'\t' read -r name median min max; do
			printf '%-22s %10.2f %8.2f %8.2f\n' "$name" "$median" "$min" "$max"
		done
	kill "$net_pid"
	wait "$net_pid" || true
fi
