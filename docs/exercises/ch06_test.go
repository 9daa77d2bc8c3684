//go:build exercise && linux

package exercises

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerd/cgroups/v3/cgroup2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/internal/testenv"
)

// cgroupV2 reports whether the host runs pure cgroup v2 (not v1, nor the
// hybrid layout, whose limits are v1's).
func cgroupV2() bool {
	_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	return err == nil
}

// waitFile waits until file (a cgroup file) matches re, and returns the
// match.
func waitFile(t *testing.T, file string, re *regexp.Regexp) []string {
	t.Helper()
	var last string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		b, err := os.ReadFile(file)
		last = string(b)
		if m := re.FindStringSubmatch(last); err == nil && m != nil {
			return m
		}
	}
	t.Fatalf("%s does not match %s within 30s:\n%s", file, re, last)
	return nil
}

// 06-1: with --oom-kill-disable (cgroup v1 only) a task at the limit waits
// instead of being killed, until the limit is raised.
func TestExercise06_1(t *testing.T) {
	if cgroupV2() {
		t.Skip("cgroup v2 here: --oom-kill-disable is a cgroup v1 setting (do exercise 3, memory.high, instead)")
	}
	a := answer(t, "06-1", 2)
	b := bin(t, "06-cgroups")
	// awk, not dd: only a fault in user mode waits (the exercise says why);
	// dd's buffer is faulted in by the kernel inside read, and dd waited
	// only when it touched a new page after it (not always: CI saw it end).
	c := testenv.Start(t, testenv.StateEnv(t), b, "run", "--id", "ex061", "--memory", "32m", "--oom-kill-disable",
		"sh", "-c", `awk 'BEGIN { s = "a"; for (i = 0; i < 25; i++) s = s s; print length(s) }' >/dev/null; echo hog exited $?`)
	dir := "/sys/fs/cgroup/memory/berth/ex061"
	m := waitFile(t, filepath.Join(dir, "memory.oom_control"), regexp.MustCompile(`under_oom (1)`))
	// memory + swap first: the memory limit may not exceed it.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "memory.memsw.limit_in_bytes"), []byte("268435456"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "memory.limit_in_bytes"), []byte("134217728"), 0o644))
	r := c.Wait(t)
	require.Equal(t, 0, r.Code, r.String())
	hog := strings.TrimPrefix(strings.TrimSpace(r.Stdout), "hog exited ")
	assert.True(t, same(a[0], m[1]), "line 1: under_oom in memory.oom_control while awk waits: %s, not %q", m[1], a[0])
	assert.True(t, same(a[1], hog), "line 2: awk's exit status once the limit is raised: %s, not %q", hog, a[1])
}

// 06-2: runc's two formulas from cpu.shares to cpu.weight.
func TestExercise06_2(t *testing.T) {
	a := answer(t, "06-2", 5)
	num := regexp.MustCompile(`\d+`)
	for i, shares := range []uint64{2, 100, 1024, 4096, 262144} {
		now := cgroup2.ConvertCPUSharesToCgroupV2Value(shares)
		old := 1 + (shares-2)*9999/262142
		n := num.FindAllString(a[i], -1)
		if !assert.GreaterOrEqual(t, len(n), 2, "line %d: the new weight and the old one for --cpu-shares %d, not %q", i+1, shares, a[i]) {
			continue
		}
		got := n[len(n)-2:]
		assert.Equal(t, []string{strconv.FormatUint(now, 10), strconv.FormatUint(old, 10)}, got,
			"line %d: --cpu-shares %d: cpu.weight by today's formula, then by the old straight line", i+1, shares)
	}
}

// 06-3: memory.high (cgroup v2) throttles a group above it; only
// memory.max kills.
func TestExercise06_3(t *testing.T) {
	a := answer(t, "06-3", 2)
	assert.True(t, same(a[0], "0"), "line 1: oom_kill in memory.events after the hog: not %q", a[0])
	assert.True(t, same(a[1], "yes"), "line 2: does memory.events count high (yes or no)? not %q", a[1])
	if !cgroupV2() {
		t.Log("cgroup v1 here: memory.high is a cgroup v2 file; the answer is checked, not the machine (a v2 host, or make vm-shell, shows it)")
		return
	}
	b := bin(t, "06-cgroups")
	c := testenv.Start(t, testenv.StateEnv(t), b, "run", "--id", "ex063", "--cgroup-conf", "memory.high=16m", "--memory", "64m",
		"sh", "-c", "timeout 20 dd if=/dev/zero of=/dev/null bs=24M count=1; echo dd exited $?; sleep 600")
	events := "/sys/fs/cgroup/berth/ex063/memory.events"
	waitFile(t, events, regexp.MustCompile(`(?m)^high [1-9]`))
	b2, err := os.ReadFile(events)
	require.NoError(t, err)
	assert.Regexp(t, `(?m)^oom_kill 0$`, string(b2), "memory.high never kills")
	require.NoError(t, c.Cmd.Process.Kill())
}

// 06-4: a quota is enforced per period: nr_periods grows by one each
// period the group is runnable, ten a second at Docker's 100 ms.
func TestExercise06_4(t *testing.T) {
	a := answer(t, "06-4", 2)
	b := bin(t, "06-cgroups")
	period := func(flags ...string) int {
		r := testenv.Run(t, testenv.StateEnv(t), b, append(append([]string{"run", "--verbose"}, flags...), "true")...)
		require.Equal(t, 0, r.Code, r.String())
		if m := regexp.MustCompile(`cpu\.cfs_period_us = (\d+)`).FindStringSubmatch(r.Stderr); m != nil {
			p, _ := strconv.Atoi(m[1])
			return p
		}
		m := regexp.MustCompile(`cpu\.max = \S+ (\d+)`).FindStringSubmatch(r.Stderr)
		require.NotNil(t, m, r.Stderr)
		p, _ := strconv.Atoi(m[1])
		return p
	}
	for i, flags := range [][]string{{"--cpus", "0.5"}, {"--cpu-period", "10000", "--cpu-quota", "5000"}} {
		want := strconv.Itoa(1000000 / period(flags...))
		assert.True(t, same(a[i], want), "line %d: periods a second with %v (how fast nr_periods grows for a busy loop): %s, not %q", i+1, flags, want, a[i])
	}
}

// 06-5: pids.max counts threads: a Go init's threads leave the command
// less room.
func TestExercise06_5(t *testing.T) {
	a := answer(t, "06-5", 2)
	b := bin(t, "06-cgroups")
	env := testenv.StateEnv(t)
	r := testenv.Run(t, env, b, "run", "--init", "--pids-limit", "8", "true")
	refused := strconv.Itoa(r.Code)
	count := func(flags ...string) int {
		r := testenv.Run(t, env, b, append(append([]string{"run", "--pids-limit", "20"}, flags...),
			"sh", "-c", `i=0; while true; do sleep 1000 & i=$((i+1)); echo $i; done`)...)
		lines := strings.Fields(r.Stdout)
		require.NotEmpty(t, lines, r.String())
		n, err := strconv.Atoi(lines[len(lines)-1])
		require.NoError(t, err, r.String())
		return n
	}
	without, with := count(), count("--init")
	require.Less(t, with, without, "under --init the Go init's threads take room from the command: %d children with it, %d without", with, without)
	assert.True(t, same(a[0], refused), "line 1: the exit status of run --init --pids-limit 8 true: %s, not %q", refused, a[0])
	assert.True(t, same(a[1], "threads"), "line 2: what pids.max counts, processes or threads: not %q", a[1])
}

// 06-6: a read-only cgroup filesystem at /sys/fs/cgroup, rooted at the
// container's own group, as Docker shows it.
func TestExercise06_6(t *testing.T) {
	b := bin(t, "06-cgroups")
	file := "/sys/fs/cgroup/memory/memory.limit_in_bytes"
	if cgroupV2() {
		file = "/sys/fs/cgroup/memory.max"
	}
	r := testenv.Run(t, testenv.StateEnv(t), b, "run", "--memory", "32m", "sh", "-c",
		"cat "+file+"; echo max > "+file+"; cat /proc/self/cgroup | cut -d: -f3 | sort -u")
	require.Contains(t, r.Stdout, "33554432\n", "inside, %s is the container's limit: %s", file, r)
	assert.Contains(t, r.Stderr, "Read-only file system", "and it cannot be written")
	assert.Contains(t, r.Stdout, "\n/\n", "the container is at the root of its cgroup namespace")
	if !cgroupV2() {
		r = testenv.Run(t, testenv.StateEnv(t), b, "run", "--pids-limit", "30", "sh", "-c", "ls /sys/fs/cgroup; cat /sys/fs/cgroup/pids/pids.max")
		require.Equal(t, 0, r.Code, r.String())
		assert.Contains(t, r.Stdout, "memory\n")
		assert.Contains(t, r.Stdout, "30\n", "each hierarchy is the container's group")
	}
	a := answer(t, "06-6", 1)
	assert.True(t, same(a[0], "33554432"), "line 1: what the limit's file shows inside, with --memory 32m: not %q", a[0])
}
