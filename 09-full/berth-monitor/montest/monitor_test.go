//go:build linux

// Package montest tests berth-monitor, the C program in the directory
// above, as berth runs it: started with its flags and a pipe on fd 3 for
// its report, with this test binary standing in for berth (fake_test.go),
// so that each test gives the container's init a shell script.
package montest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/09-full/attach"
	"berth/09-full/logfile"
	"berth/09-full/store"
	"berth/internal/testenv"
)

func TestMain(m *testing.M) {
	if os.Getenv("MONTEST_DIR") != "" && len(os.Args) > 2 && os.Args[1] == "internal" {
		os.Exit(fakeBerth())
	}
	os.Exit(m.Run())
}

type mon struct {
	t     *testing.T
	dir   string // MONTEST_DIR: the fake's records
	live  string
	log   string
	cmd   *exec.Cmd
	ready string // the report line on fd 3
	st    *store.Store
	id    string
}

// start runs the monitor on a container whose init runs script; env adds
// MONTEST_ variables, flags the monitor's flags. It waits for the report.
func start(t *testing.T, script string, env []string, flags ...string) *mon {
	t.Helper()
	monitor := testenv.Monitor(t)
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "data"), filepath.Join(dir, "state"))
	require.NoError(t, err)
	id := store.NewID()
	live, err := st.ClearLive(id)
	require.NoError(t, err)
	require.NoError(t, os.Symlink(live, filepath.Join(dir, "live")))
	self, err := os.Executable()
	require.NoError(t, err)
	m := &mon{t: t, dir: dir, live: live, log: filepath.Join(dir, "ctr-json.log"), st: st, id: id}
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	args := append([]string{"--id", id, "--berth", self, "--live", live, "--log", m.log}, flags...)
	m.cmd = exec.Command(monitor, args...)
	m.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "MONTEST_DIR=" + dir, "MONTEST_SCRIPT=" + script}, env...)
	m.cmd.ExtraFiles = []*os.File{w}
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	m.cmd.Dir = "/"
	require.NoError(t, m.cmd.Start())
	w.Close()
	t.Cleanup(func() {
		_ = m.cmd.Process.Kill()
		_ = m.cmd.Wait()
	})
	line, _ := bufio.NewReader(r).ReadString('\n')
	m.ready = strings.TrimSuffix(line, "\n")
	return m
}

// wait waits for the monitor to end and returns its exit code.
func (m *mon) wait() int {
	m.t.Helper()
	done := make(chan error, 1)
	go func() { done <- m.cmd.Wait() }()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		require.NoError(m.t, err)
		return 0
	case <-time.After(60 * time.Second):
		m.t.Fatalf("the monitor did not end; its log:\n%s", m.file("live/monitor.log"))
		return -1
	}
}

func (m *mon) file(name string) string {
	b, _ := os.ReadFile(filepath.Join(m.dir, name))
	return string(b)
}

// The exit record, written the moment the init exits, is what the store
// reads; a status that came before the loop asked (an init that died at
// once) is kept; a signal is 128+N; the exit command runs after it.
func TestExitRecord(t *testing.T) {
	for _, c := range []struct {
		script string
		code   int
	}{{"exit 7", 7}, {"sleep 0.3; kill -9 $$", 137}} {
		m := start(t, c.script, nil)
		require.Regexp(t, `^ok [0-9]+ 1$`, m.ready)
		before := time.Now()
		assert.Equal(t, 0, m.wait(), m.file("live/monitor.log"))
		ex := m.st.ReadExit(m.id)
		require.NotNil(t, ex, "no exit record")
		assert.Equal(t, c.code, ex.ExitCode)
		assert.WithinDuration(t, before, ex.FinishedAt, time.Minute)
		calls := m.file("calls")
		assert.Contains(t, calls, "internal create "+m.id+"\n")
		assert.Contains(t, calls, "internal exit --pid ")
		assert.NotContains(t, calls, "no exit file")
		assert.NoFileExists(t, filepath.Join(m.live, "attach.sock"), "removed at the end")
	}
}

// A helper gets exactly the descriptors berth's contract names (0-2, the
// report socket 3, the init's stdio 5-7), none of the monitor's own.
func TestHelpersGetOnlyTheirFiles(t *testing.T) {
	m := start(t, "exit 0", nil)
	require.Equal(t, 0, m.wait())
	// The Go runtime of the fake has opened its cgroup's CPU limits by
	// then: those are its own.
	mine := func(s string) (fds, nums []string) {
		for _, f := range strings.Fields(s) {
			if !strings.Contains(f, "=/sys/fs/cgroup/") {
				fds = append(fds, f)
				nums = append(nums, strings.SplitN(f, "=", 2)[0])
			}
		}
		return fds, nums
	}
	fds, nums := mine(m.file("fds-create"))
	assert.Equal(t, []string{"0", "1", "2", "3", "5", "6", "7"}, nums, "create's fds: %v", fds)
	assert.Contains(t, fds[0], "/dev/null")
	assert.Contains(t, fds[1], "monitor.log")
	assert.Contains(t, fds[3], "socket:")
	exit, _ := mine(m.file("fds-exit"))
	require.Len(t, exit, 3, "exit's fds: %v", exit)
	assert.Contains(t, exit[1], "pipe:")
}

// Every file of the report is held while the container runs: 20
// published ports are 20 sockets (a short control buffer would let the
// kernel close the rest, freeing their ports for anyone).
func TestHeldFiles(t *testing.T) {
	m := start(t, "sleep 2", []string{"MONTEST_HELD=20"})
	require.Regexp(t, `^ok `, m.ready)
	count := func() int {
		ents, _ := os.ReadDir("/proc/" + strconv.Itoa(m.cmd.Process.Pid) + "/fd")
		n := 0
		for _, e := range ents {
			if l, _ := os.Readlink("/proc/" + strconv.Itoa(m.cmd.Process.Pid) + "/fd/" + e.Name()); l == os.DevNull {
				n++
			}
		}
		return n
	}
	assert.GreaterOrEqual(t, count(), 20+3, "the held files and stdio")
	require.Equal(t, 0, m.wait())
}

// A report that is no report is an error to berth, not passed on.
func TestBadReport(t *testing.T) {
	m := start(t, "exit 0", []string{"MONTEST_REPORT=ok not-a-pid"})
	assert.Regexp(t, `^error 125 monitor: bad report`, m.ready)
	assert.Equal(t, 1, m.wait())
	m = start(t, "exit 0", []string{"MONTEST_REPORT=error 127 no such command"})
	assert.Equal(t, "error 127 no such command", m.ready)
	assert.Equal(t, 0, m.wait())
}

// The log is Docker's json-file, byte for byte what Go's encoding/json
// writes (the reader and Docker's tools parse it): escapes, invalid UTF-8,
// U+2028, the field order, RFC 3339 nanosecond UTC times; a line past
// 16 KiB is cut, a last line without newline is kept, stderr apart.
func TestLogIsDockers(t *testing.T) {
	script := `printf 'a<b>&"\\\t\001\377\342\200\250 \303\251 \355\240\200\n'; printf 'err\n' >&2; ` +
		`head -c 20000 /dev/zero | tr '\0' x; printf '\n'; printf 'last'`
	m := start(t, script, nil)
	require.Equal(t, 0, m.wait(), m.file("live/monitor.log"))
	b, err := os.ReadFile(m.log)
	require.NoError(t, err)
	x := strings.Repeat("x", 20000)
	// What the container wrote, entry by entry (raw bytes, not UTF-8).
	want := map[string][]string{
		"stdout": {"a<b>&\"\\\t\x01\xff\xe2\x80\xa8 \xc3\xa9 \xed\xa0\x80\n", x[:logfile.MaxLine], x[logfile.MaxLine:] + "\n", "last"},
		"stderr": {"err\n"},
	}
	n := map[string]int{}
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if line == "" {
			continue
		}
		var e logfile.Entry
		require.NoError(t, json.Unmarshal([]byte(line), &e), line)
		require.Less(t, n[e.Stream], len(want[e.Stream]), "an entry too many on %s: %s", e.Stream, line)
		// What Go's encoding/json writes for this entry, to the byte.
		lg, _ := json.Marshal(want[e.Stream][n[e.Stream]])
		n[e.Stream]++
		exp := `{"log":` + string(lg) + `,"stream":"` + e.Stream + `","time":"` + e.Time.UTC().Format(time.RFC3339Nano) + "\"}\n"
		assert.Equal(t, exp, line)
		assert.Equal(t, time.UTC, e.Time.Location())
	}
	assert.Equal(t, map[string]int{"stdout": 4, "stderr": 1}, n)
}

// Past max-size the log is rotated to .1, and no more than max-file
// files are kept; the newest lines are in the current file.
func TestLogRotation(t *testing.T) {
	m := start(t, `i=0; while [ $i -lt 40 ]; do echo line$i; i=$((i+1)); done`, nil, "--log-max-size", "400", "--log-max-file", "2")
	require.Equal(t, 0, m.wait(), m.file("live/monitor.log"))
	cur, err := os.ReadFile(m.log)
	require.NoError(t, err)
	old, err := os.ReadFile(m.log + ".1")
	require.NoError(t, err)
	assert.NoFileExists(t, m.log+".2")
	assert.LessOrEqual(t, len(cur), 400)
	assert.LessOrEqual(t, len(old), 400)
	assert.Contains(t, string(cur), `"log":"line39\n"`)
	assert.NotContains(t, string(old)+string(cur), `"log":"line0\n"`, "the oldest file dropped")
}

// An attached client gets stdout and stderr apart, what it types reaches
// the container, its end closes the container's stdin (stdin-once), and
// the exit status ends the attachment.
func TestAttach(t *testing.T) {
	m := start(t, `read l; echo "got $l"; echo warn >&2; cat; exit 42`, nil, "--stdin", "--stdin-once")
	require.Regexp(t, `^ok `, m.ready)
	c, err := attach.Dial(filepath.Join(m.live, "attach.sock"), attach.Options{Stdin: true, Stdout: true, Stderr: true, StdinOnce: true})
	require.NoError(t, err)
	defer c.Close()
	var out, errb bytes.Buffer
	r, err := c.Stream(strings.NewReader("typed\nmore\n"), &out, &errb, attach.DefaultDetachKeys)
	require.NoError(t, err)
	assert.Equal(t, attach.Result{Exited: true, Code: 42}, r)
	assert.Equal(t, "got typed\nmore\n", out.String())
	assert.Equal(t, "warn\n", errb.String())
	assert.Equal(t, 0, m.wait())
}

// A client that does not read is dropped once 1 MiB waits for it; the
// container goes on writing and its log has everything.
func TestSlowClientIsDropped(t *testing.T) {
	m := start(t, `sleep 0.5; head -c 8000000 /dev/zero | tr '\0' z; echo; exit 3`, nil)
	c, err := attach.Dial(filepath.Join(m.live, "attach.sock"), attach.Options{Stdout: true})
	require.NoError(t, err)
	defer c.Close() // and does not read until the container is done
	var ex *store.Exit
	for deadline := time.Now().Add(60 * time.Second); ex == nil; time.Sleep(50 * time.Millisecond) {
		require.True(t, time.Now().Before(deadline), "no exit record: the monitor waited for the client?")
		ex = m.st.ReadExit(m.id)
	}
	assert.Equal(t, 3, ex.ExitCode)
	// Now it reads: what the socket held, then the end; kept, it would
	// get all 8 MB and the exit status.
	var out bytes.Buffer
	r, _ := c.Stream(nil, &out, io.Discard, nil)
	assert.False(t, r.Exited, "dropped: no exit status")
	assert.Less(t, out.Len(), 4000000)
	require.Equal(t, 0, m.wait())
	st, err := os.Stat(m.log)
	require.NoError(t, err)
	assert.Greater(t, st.Size(), int64(8000000), "the log has everything")
}

// A live directory whose socket path is longer than a unix address holds
// (a 64-digit id under $XDG_RUNTIME_DIR) still serves attach, through the
// directory's descriptor.
func TestLongSocketPath(t *testing.T) {
	m := start(t, `read l; echo "$l"`, nil, "--stdin")
	require.Regexp(t, `^ok `, m.ready)
	long := filepath.Join(t.TempDir(), strings.Repeat("d", 64), strings.Repeat("e", 40))
	require.NoError(t, os.MkdirAll(filepath.Dir(long), 0o700))
	require.NoError(t, os.Symlink(m.live, long))
	path := filepath.Join(long, "attach.sock")
	require.Greater(t, len(path), 108)
	c, err := attach.Dial(path, attach.Options{Stdin: true, Stdout: true})
	require.NoError(t, err)
	defer c.Close()
	var out bytes.Buffer
	r, err := c.Stream(strings.NewReader("hi\n"), &out, &out, nil)
	require.NoError(t, err)
	assert.Equal(t, attach.Result{Exited: true, Code: 0}, r)
	assert.Equal(t, "hi\n", out.String())
}

// The restart policy: when the exit command says "restart MS", the
// monitor creates the container again (internal create --restart) after
// the delay; "done" ends it.
func TestRestart(t *testing.T) {
	m := start(t, `echo run; exit 1`, nil)
	require.NoError(t, os.WriteFile(filepath.Join(m.dir, "answers"), []byte("restart 50\nrestart 50\ndone\n"), 0o600))
	require.Equal(t, 0, m.wait(), m.file("live/monitor.log"))
	calls := m.file("calls")
	assert.Equal(t, 1, strings.Count(calls, "internal create "+m.id))
	assert.Equal(t, 2, strings.Count(calls, "internal create --restart "+m.id))
	assert.Equal(t, 3, strings.Count(calls, "internal exit "))
	b, _ := os.ReadFile(m.log)
	assert.Equal(t, 3, strings.Count(string(b), `"log":"run\n"`))
}

// Health checks run at the interval while the container runs, one at a
// time, and none once it has exited.
func TestHealthChecks(t *testing.T) {
	m := start(t, `sleep 1`, nil, "--health-interval", "100ms")
	require.Equal(t, 0, m.wait())
	n := strings.Count(m.file("health"), "check")
	assert.GreaterOrEqual(t, n, 1, "no health check ran")
	time.Sleep(300 * time.Millisecond)
	assert.Equal(t, n, strings.Count(m.file("health"), "check"), "a check after the exit")
}

// Bad flags: exit 2, nothing started.
func TestBadFlags(t *testing.T) {
	monitor := testenv.Monitor(t)
	for _, args := range [][]string{{}, {"--id", "x/../y", "--berth", "/bin/true", "--live", "/tmp", "--log", "/tmp/l"},
		{"--id", "ab", "--berth", "/bin/true", "--live", "rel", "--log", "/tmp/l"}, {"--nope"}, {"--health-interval", "-1s"}} {
		err := exec.Command(monitor, args...).Run()
		ee, ok := err.(*exec.ExitError)
		require.True(t, ok, "%v: %v", args, err)
		assert.Equal(t, 2, ee.ExitCode(), "%v", args)
	}
}

// max-file is bounded (each rotation renames every kept file, and a number
// near 2^31 would have the monitor rename for ever): refused at start.
func TestMaxFileIsBounded(t *testing.T) {
	m := start(t, "exit 0", nil, "--log-max-size", "100", "--log-max-file", "1000")
	assert.Regexp(t, `^error 125 monitor: `, m.ready)
	assert.Equal(t, 1, m.wait())
	assert.Contains(t, m.file("live/monitor.log"), "max-file 1000: at most 100")
	assert.Empty(t, m.file("calls"), "nothing was created")
}
