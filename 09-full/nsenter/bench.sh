#!/usr/bin/env bash
# The numbers of README.md "What it costs", measured on this machine:
#
#   1. the constructor when idle: a binary that imports the package, beside
#      the same empty program without it (cgo alone, and no cgo at all),
#      all three linked statically as berth is;
#   2. one join: `nsjoin -t PID -- true` beside `nsenter -t PID -a true`
#      (util-linux) against the same target;
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

# Inside the module (tmp/ is ignored by git), so the programs can import
# the package.
work=$(mktemp -d "$repo/tmp/nsenter-bench.XXXXXX")
target=
cleanup() {
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

echo
echo "== 2. one join of a target in new namespaces (unshare), running true"
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

echo
echo "== 3. the sealed memfd copy (go test -bench BenchmarkSeal)"
go test -run '^$' -bench BenchmarkSeal -benchtime 50x ./09-full/nsenter/ | grep -E 'Benchmark|sealing'
