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

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"berth/09-full/engine"
	"berth/internal/testenv"
)

// berth is stage 09's berth with roots of the check's own; the check's
// cleanup removes every container it left.
type berth struct {
	t     *testing.T
	bin   string
	env   []string
	state string
}

func newBerth(t *testing.T) *berth {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.Rootfs(t)
	b := &berth{t: t, bin: testenv.Berth(t), env: testenv.StateEnv(t)}
	b.state = testenv.StateRoot(b.env)
	t.Cleanup(func() {
		if ids := strings.Fields(b.run("ps", "-aq").Stdout); len(ids) > 0 {
			b.run(append([]string{"rm", "-f", "-v"}, ids...)...)
		}
	})
	return b
}

func (b *berth) run(args ...string) testenv.Result {
	b.t.Helper()
	return testenv.Run(b.t, b.env, b.bin, args...)
}

func (b *berth) ok(args ...string) string {
	b.t.Helper()
	r := b.run(args...)
	require.Equal(b.t, 0, r.Code, "berth %s: %s", strings.Join(args, " "), r)
	return strings.TrimSpace(r.Stdout)
}

// on runs a container on the busybox tree, without network.
func (b *berth) on(flags ...string) []string {
	return append([]string{"run", "--rootfs", testenv.Rootfs(b.t), "--network", "none"}, flags...)
}

func (b *berth) inspect(ref, format string) string {
	b.t.Helper()
	return b.ok("inspect", "--format", format, ref)
}

// waitFor waits until cond is true (at most 30 s).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("waited 30 s for %s", what)
}

// statePid reads the init's pid from the container's state.json (inspect
// shows 0 until it is started, as docker's).
func (b *berth) statePid(id string) int {
	b.t.Helper()
	var data string
	for _, kv := range b.env {
		if v, ok := strings.CutPrefix(kv, "BERTH_DATA_ROOT="); ok {
			data = v
		}
	}
	raw, err := os.ReadFile(filepath.Join(data, "containers", id, "state.json"))
	require.NoError(b.t, err)
	m := regexp.MustCompile(`"pid": (\d+)`).FindSubmatch(raw)
	require.NotNil(b.t, m, "%s", raw)
	pid, _ := strconv.Atoi(string(m[1]))
	return pid
}

func parentComm(t *testing.T, pid int) (int, string) {
	t.Helper()
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	require.NoError(t, err)
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	ppid, _ := strconv.Atoi(f[1])
	comm, err := os.ReadFile("/proc/" + f[1] + "/comm")
	require.NoError(t, err)
	return ppid, strings.TrimSpace(string(comm))
}

// 09-1: a restart policy's back-off doubles; stop, between two runs,
// ends it.
func TestExercise09_1(t *testing.T) {
	a := answer(t, "09-1", 3)
	var d time.Duration
	for range 4 {
		d = engine.NextDelay(d, time.Second)
	}
	assert.True(t, same(strings.TrimSuffix(a[2], "ms"), strconv.Itoa(int(d.Milliseconds()))),
		"line 3: the wait before the fourth restart, in ms (09-full/engine/restart.go:NextDelay): %d, not %q", d.Milliseconds(), a[2])
	b := newBerth(t)
	b.ok(b.on("-d", "--name", "flaky", "--restart", "always", "sh", "-c", "exit 1")...)
	waitFor(t, "two restarts", func() bool {
		n, _ := strconv.Atoi(b.inspect("flaky", "{{.RestartCount}}"))
		return n >= 2
	})
	b.ok("stop", "flaky")
	status := b.inspect("flaky", "{{.State.Status}}")
	before := b.inspect("flaky", "{{.RestartCount}}")
	time.Sleep(2 * time.Second)
	grew := "no"
	if b.inspect("flaky", "{{.RestartCount}}") != before {
		grew = "yes"
	}
	assert.True(t, same(a[0], status), "line 1: the status after stop: %s, not %q", status, a[0])
	assert.True(t, same(a[1], grew), "line 2: does RestartCount grow after the stop: %s, not %q", grew, a[1])
}

// 09-2: a created container's init waits in open(2) of exec.fifo; a start
// that is not berth's is not in the store.
func TestExercise09_2(t *testing.T) {
	a := answer(t, "09-2", 3)
	b := newBerth(t)
	id := b.ok(append([]string{"create"}, b.on("sh", "-c", "echo running now; sleep 3")[1:]...)...)
	pid := b.statePid(id)
	wchan, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/wchan")
	require.NoError(t, err)
	var waitsOn string
	fds, _ := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	for _, fd := range fds {
		if l, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/fd/" + fd.Name()); err == nil && strings.HasSuffix(l, ".fifo") {
			waitsOn = filepath.Base(l)
		}
	}
	// As cat does: open for reading, read to the end.
	_, err = os.ReadFile(filepath.Join(b.state, id, "exec.fifo"))
	require.NoError(t, err)
	waitFor(t, "the command's output", func() bool { return strings.Contains(b.run("logs", id).Stdout, "running now") })
	status := strings.Fields(b.ok("ps", "-a", "--format", "{{.Status}}"))[0]
	assert.True(t, same(a[0], string(wchan)), "line 1: the init's wchan while created: %s, not %q", wchan, a[0])
	assert.True(t, same(a[1], waitsOn), "line 2: the file it waits on: %s, not %q", waitsOn, a[1])
	assert.True(t, same(a[2], status), "line 3: the first word of ps -a's STATUS once cat started it: %s, not %q", status, a[2])
}

// 09-3: the monitors share their binary's pages: each one's Pss falls as
// more run.
func TestExercise09_3(t *testing.T) {
	a := answer(t, "09-3", 2)
	b := newBerth(t)
	pss := func(pid int) int {
		raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
		require.NoError(t, err)
		m := regexp.MustCompile(`(?m)^Pss:\s+(\d+) kB`).FindSubmatch(raw)
		require.NotNil(t, m)
		n, _ := strconv.Atoi(string(m[1]))
		return n
	}
	monitor := func(name string) int {
		pid, _ := strconv.Atoi(b.inspect(name, "{{.State.Pid}}"))
		ppid, comm := parentComm(t, pid)
		require.Equal(t, "berth-monitor", comm)
		return ppid
	}
	b.ok(b.on("-d", "--name", "m0", "sleep", "1000")...)
	first := monitor("m0")
	time.Sleep(time.Second)
	alone := pss(first)
	for i := 1; i < 5; i++ {
		b.ok(b.on("-d", "--name", "m"+strconv.Itoa(i), "sleep", "1000")...)
	}
	time.Sleep(time.Second)
	fell := "no"
	if pss(first) < alone {
		fell = "yes"
	}
	// The mapping with the most shared pages.
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(first) + "/smaps")
	require.NoError(t, err)
	best, most := "", 0
	var cur string
	for _, l := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(l); len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":") {
			cur = ""
			if len(f) >= 6 {
				cur = filepath.Base(f[5])
			}
			continue
		}
		if m := regexp.MustCompile(`^Shared_Clean:\s+(\d+) kB`).FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[1])
			if n > most && cur != "" {
				best, most = cur, n
			}
		}
	}
	assert.True(t, same(a[0], fell), "line 1: does the first monitor's Pss fall once five run: %s, not %q", fell, a[0])
	assert.True(t, same(a[1], best), "line 2: the file whose mapping the monitors share most: %s, not %q", best, a[1])
}

// 09-4: a monitor killed while its container writes: PID 1 ignores the
// SIGPIPE and runs on; with --init the shell dies of it; berth records
// what it can.
func TestExercise09_4(t *testing.T) {
	a := answer(t, "09-4", 3)
	b := newBerth(t)
	killMonitor := func(name string, init bool) int {
		flags := []string{"-d", "--name", name}
		if init {
			flags = append(flags, "--init")
		}
		b.ok(b.on(append(flags, "sh", "-c", "while true; do echo x; sleep 0.1; done")...)...)
		pid, _ := strconv.Atoi(b.inspect(name, "{{.State.Pid}}"))
		mon, _ := parentComm(t, pid)
		require.NoError(t, unix.Kill(mon, unix.SIGKILL))
		return pid
	}
	pid1 := killMonitor("plain", false)
	pid2 := killMonitor("withinit", true)
	time.Sleep(2 * time.Second)
	runs := func(pid int) string {
		st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil || strings.Contains(string(st), ") Z ") {
			return "no"
		}
		return "yes"
	}
	plain, withInit := runs(pid1), runs(pid2)
	code := b.inspect("withinit", "{{.State.ExitCode}}")
	assert.True(t, same(a[0], plain), "line 1: does the container without --init still run: %s, not %q", plain, a[0])
	assert.True(t, same(a[1], withInit), "line 2: does the one with --init still run: %s, not %q", withInit, a[1])
	assert.True(t, same(a[2], code), "line 3: the exit code inspect shows for the one that ended: %s, not %q", code, a[2])
}

// 09-5: without PR_SET_CHILD_SUBREAPER the init is not the monitor's
// child; with it back, it is.
func TestExercise09_5(t *testing.T) {
	a := answer(t, "09-5", 2)
	src, err := os.ReadFile(filepath.Join(repo(t), "09-full", "berth-monitor", "main.c"))
	require.NoError(t, err)
	require.Regexp(t, `(?m)^\s*if \(prctl\(PR_SET_CHILD_SUBREAPER`, string(src),
		"09-full/berth-monitor/main.c: put the prctl(PR_SET_CHILD_SUBREAPER) back, rebuild, then check")
	b := newBerth(t)
	b.ok(b.on("-d", "--name", "s", "sleep", "1000")...)
	pid, _ := strconv.Atoi(b.inspect("s", "{{.State.Pid}}"))
	_, comm := parentComm(t, pid)
	assert.True(t, same(a[0], "no"), "line 1: without the line, is the init's parent the monitor (yes or no)? not %q", a[0])
	assert.True(t, same(a[1], comm), "line 2: with the line back, the command name (comm) of the init's parent: %s, not %q", comm, a[1])
}
