#!/usr/bin/env bash
# The tour of `make demo`: every stage that is built in bin/ runs once on
# the busybox root filesystem and prints one line that proves what it
# adds. It builds nothing: make demo has done that.
#
# A stage joins the tour with one line at the end of the list below:
#
#   tour STAGE "TEXT" ARGS...
#
# runs bin/STAGE ARGS... (as root, stdin empty; under $TOUR_WRAP if set;
# with TOUR_RAW set, ARGS is the whole command) and
# prints TEXT with {}
# replaced by what the command printed, its lines joined by spaces. A stage
# that is not built yet gets a note instead; a stage that fails is shown
# with its output, and the tour then ends with status 1.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${BIN:-$repo/bin}
if [ "$(id -u)" -ne 0 ]; then
	echo "tour: the stages need root: run sudo make demo" >&2
	exit 1
fi

failed=0
tour() {
	local stage=$1 text=$2 out rc
	shift 2
	if [ ! -x "$bin/$stage" ]; then
		printf '%-11s (not built yet: no stage %s in this tree)\n' "$stage" "$stage"
		return
	fi
	if [ -n "${TOUR_RAW:-}" ]; then # ARGS is the whole command
		out=$(${TOUR_WRAP:-} "$@" 2>&1 </dev/null)
	else
		out=$(${TOUR_WRAP:-} "$bin/$stage" "$@" 2>&1 </dev/null)
	fi
	rc=$?
	if [ $rc -ne 0 ]; then
		printf '%-11s FAILED with status %d: bin/%s %s\n' "$stage" "$rc" "$stage" "$*"
		sed 's/^/            /' <<<"$out"
		failed=1
		return
	fi
	out=$(tr '\n' ' ' <<<"$out")
	out=${out% }
	printf '%-11s %s\n' "$stage" "${text//\{\}/"$out"}"
}

host_procs=$(ps -e --no-headers | wc -l)
echo "berth tour: each stage once, as root (rootfs: ${BERTH_ROOTFS:-/var/lib/berth/busybox})"
tour 01-uts "its own hostname: {}; the host is still $(hostname)" \
	run --hostname berth-tour hostname
tour 02-pid "{} (the host has $host_procs)" \
	run sh -c 'echo "echo \$\$ prints $$; ps sees $(ps -e --no-headers | wc -l) processes"'
tour 03-mount "its root is the busybox tree: / holds {}" \
	run ls /
# 04-net runs in a network namespace standing in for the host, so that its
# bridge and nftables rules vanish with it and the real host is untouched.
TOUR_WRAP="$repo/scripts/standin-host.sh" tour 04-net "its own network: {}" \
	run sh -c 'ip -4 -o addr show eth0 | awk "{print \$2, \$4}"; ip route | head -n 1'
tour 05-user "{}: root inside, not on the host" \
	run --net none --uidmap 0:100000:65536 sh -c 'echo "uid $(id -u) inside, uid_map" $(cat /proc/self/uid_map)'
tour 06-cgroups "under --memory 32m a 64 MiB dd {}" \
	run --net none --memory 32m sh -c 'dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null; echo "ends with status $?;"'
tour 07-unionfs "its / is an {} mount: what it writes lands in a layer of its own, over the busybox tree" \
	run --rm --net none sh -c 'echo x >/written-inside && awk "\$2 == \"/\" {print \$3}" /proc/mounts'
# 08-image: the busybox tree imported as an image, a three-line Dockerfile
# built on it, and the result run, all in a data root of its own that is
# removed at the end.
tour08=$(mktemp -d /tmp/berth-tour.XXXXXX)
if [ -x "$bin/08-image" ]; then
	printf '%s\n' 'FROM busybox' 'ENV GREETING="hello from a Dockerfile"' \
		'CMD ["sh", "-c", "echo \"$GREETING, as $(id -un) in $(pwd)\""]' >"$tour08/Dockerfile"
	"$bin/08-image" import --data-root "$tour08/data" --cmd sh "${BERTH_ROOTFS:-/var/lib/berth/busybox}" busybox >/dev/null &&
		"$bin/08-image" build --data-root "$tour08/data" -t hello "$tour08" >/dev/null ||
		echo "08-image    (import or build failed: see above)"
fi
tour 08-image "the image hello, built from a Dockerfile: {}" \
	run --rm --net none --data-root "$tour08/data" --image hello
rm -rf "$tour08"
# berth (09-full): the seeds' walk-through, as with Docker: an image built
# from a Dockerfile whose busybox httpd serves test.html, run detached with
# its port published, the page fetched from the host, ps, logs, stop, rm.
# (FROM busybox is the busybox tree, imported.) In a network namespace
# standing in for the host, with roots of its own, removed at the end.
tour09=$(mktemp -d /tmp/berth-tour.XXXXXX)
mkdir -p "$tour09/site" && echo "<h1>hello from berth</h1>" >"$tour09/site/test.html"
printf '%s\n' 'FROM busybox' 'COPY test.html /www/' 'CMD ["httpd", "-f", "-v", "-p", "80", "-h", "/www"]' >"$tour09/site/Dockerfile"
cat >"$tour09/walk.sh" <<'WALK'
set -e
ip link set lo up
b() { "$BIN/berth" "$@"; }
b import "${BERTH_ROOTFS:-/var/lib/berth/busybox}" busybox >/dev/null
b build -t testnginx:1 "$TOUR/site" >/dev/null
b run -d -p 8081:80 --name web testnginx:1 >/dev/null
for i in $(seq 50); do curl -fs http://127.0.0.1:8081/test.html && break; sleep 0.1; done
echo "ps: $(b ps --format '{{.Names}} {{.Image}} {{.Status}} {{.Ports}}');"
echo "logs: $(b logs web 2>&1 | head -n 1 | cut -c1-30)…;"
b stop -t 1 web >/dev/null
b rm web >/dev/null
echo "after rm: $(b ps -aq | wc -l) containers"
WALK
if [ -x "$bin/berth" ]; then
	TOUR_RAW=1 TOUR_WRAP="$repo/scripts/standin-host.sh env BIN=$bin TOUR=$tour09 BERTH_DATA_ROOT=$tour09/data BERTH_ROOT=$tour09/run" \
		tour berth "the seeds' walk-through: {}" bash "$tour09/walk.sh"
fi
rm -rf "$tour09"
exit $failed
