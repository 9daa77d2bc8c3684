#!/usr/bin/env bash
# The numbers of README.md "What it costs", measured on this machine:
#
#   1. the constructor when idle: a binary that imports the package, beside
#      the same empty program without it (cgo alone, and no cgo at all),
#      all three linked statically as berth is: wall time (hyperfine) and
#      CPU time (perf stat, when perf is installed);
#   2. one join: `nsjoin -t PID -- true` beside `nsenter -t PID -a true`
#      (util-linux) and `runc exec ID true`, all against one runc
#      container (an unshare target, without the runc row, if runc is
#      missing);
#   3. the sealed copy: go test -bench BenchmarkSeal (a memfd copy of the
#      largest stage binary, standing in for berth's size).
#
#   sudo 09-full/nsenter/bench.sh        (RUNS=200 WARMUP=20 by default)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
runs=${RUNS:-200}
warmup=${WARMUP:-20}
[ "$(id -u)" -eq 0 ] || { echo "bench.sh: needs root (namespaces)" >&2; exit 1; }
command -v hyperfine >/dev/null || { echo "bench.sh: hyperfine is missing: run sudo make setup" >&2; exit 1; }
command -v jq >/dev/null || { echo "bench.sh: jq is missing: run sudo make setup" >&2; exit 1; }

# Inside the module, so the programs can import the package: tmp/ is
# ignored by git, and a directory starting with "_" by go list ./..., so
# that no other tool (tools/vmtest) takes these programs for helpers.
mkdir -p "$repo/tmp"
work=$(mktemp -d "$repo/tmp/_nsenter-bench.XXXXXX")
rootfs=${BERTH_ROOTFS:-${BERTH_DATA_ROOT:-/var/lib/berth}/busybox}
target= runc_id=
cleanup() {
	[ -n "$runc_id" ] && runc --root "$work/runc" delete -f "$runc_id" >/dev/null 2>&1
	[ -n "$target" ] && kill -KILL "$target" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

# hf NAME COMMAND ... : hyperfine, then one line per command with the
# median and the minimum (on a busy machine the mean says little).
hf() {
	local json=$work/hf.json
	hyperfine -N --style none --warmup "$warmup" --runs "$runs" --export-json "$json" "$@" >/dev/null 2>&1
	jq -r '.results[] | "\(.command)\tmedian \(.median*1000*100|round/100) ms\tmin \(.min*1000*100|round/100) ms\tuser+sys \((.user+.system)*1000*100|round/100) ms"' "$json" |
		column -t -s $'\t'
}

static=(-tags netgo,osusergo -ldflags '-linkmode external -extldflags -static')
mkdir -p "$work/plain" "$work/cgo" "$work/nsenter"
printf 'package main\n\nfunc main() {}\n' >"$work/plain/main.go"
printf 'package main\n\n// int unused;\nimport "C"\n\nfunc main() {}\n' >"$work/cgo/main.go"
printf 'package main\n\nimport _ "berth/09-full/nsenter"\n\nfunc main() {}\n' >"$work/nsenter/main.go"
cd "$repo"
CGO_ENABLED=0 go build -ldflags '-extldflags -static' -o "$work/bin-plain" "./${work#"$repo"/}/plain"
CGO_ENABLED=1 go build "${static[@]}" -o "$work/bin-cgo" "./${work#"$repo"/}/cgo"
CGO_ENABLED=1 go build "${static[@]}" -o "$work/bin-nsenter" "./${work#"$repo"/}/nsenter"
CGO_ENABLED=1 go build "${static[@]}" -o "$work/nsjoin" ./09-full/nsenter/nsjoin
ls -l "$work"/bin-* "$work/nsjoin" | awk '{print $5, $9}' | sed "s|$work/||"

echo
echo "== 1. an empty main(): no cgo, cgo, cgo + the nsenter constructor (idle)"
hf -n "no cgo" "$work/bin-plain" -n "cgo" "$work/bin-cgo" -n "cgo + nsenter" "$work/bin-nsenter"
# CPU time, steadier than wall time on a shared machine.
if command -v perf >/dev/null; then
	for b in plain cgo nsenter; do
		printf '%-8s ' "$b"
		perf stat -r "$runs" -e task-clock "$work/bin-$b" 2>&1 | awk '/task-clock/ {print "task-clock", $1, "ms +-", $(NF-1)}'
	done
fi

echo
echo "== 2. one join of a container's init, running true"
if command -v runc >/dev/null && command -v jq >/dev/null && [ -x "$rootfs/bin/busybox" ]; then
	# A runc container (busybox root, sleep 1000): nsenter(1), nsjoin
	# and runc exec all join it.
	mkdir "$work/bundle"
	runc spec --bundle "$work/bundle"
	jq --arg root "$rootfs" '.root.path = $root | .root.readonly = true
		| .process.terminal = false | .process.args = ["sleep", "1000"]' \
		"$work/bundle/config.json" >"$work/config.json"
	mv "$work/config.json" "$work/bundle/config.json"
	runc_id=berth-nsenter-bench-$$
	runc --root "$work/runc" run -d --bundle "$work/bundle" "$runc_id" </dev/null >/dev/null
	target=$(runc --root "$work/runc" state "$runc_id" | jq .pid)
	hf -n "nsenter -t PID -a true" "nsenter -t $target -a true" -n "nsjoin -t PID -- true" "$work/nsjoin -t $target -- true" \
		-n "runc exec ID true" "runc --root $work/runc exec $runc_id true"
else
	echo "(no runc, jq or busybox rootfs: an unshare target, no runc row)"
	mnt=$work/mnt
	mkdir "$mnt"
	unshare --fork --pid --mount --uts --ipc --net --cgroup --mount-proc \
		sh -c "hostname berth-target; mount -t tmpfs tmpfs $mnt; exec sleep 1000" 2>/dev/null &
	outer=$!
	for _ in $(seq 100); do
		target=$(cat "/proc/$outer/task/$outer/children" 2>/dev/null | awk '{print $1}')
		[ -n "$target" ] && [ "$(cat "/proc/$target/comm" 2>/dev/null)" = sleep ] && break
		sleep 0.05
	done
	hf -n "nsenter -t PID -a true" "nsenter -t $target -a true" -n "nsjoin -t PID -- true" "$work/nsjoin -t $target -- true"
fi

echo
echo "== 3. the sealed memfd copy (go test -bench BenchmarkSeal)"
go test -run '^$' -bench BenchmarkSeal -benchtime 50x ./09-full/nsenter/ | grep -E 'Benchmark|sealing'
