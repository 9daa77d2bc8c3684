//go:build linux

package cli_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/internal/testenv"
)

// exec joins every namespace of the container: the same hostname, the
// same processes (the init is PID 1, the exec'd shell beside it), the
// container's environment and working directory, its user unless -u.
func TestExec(t *testing.T) {
	h := newHost(t)
	id := h.runD("--name", "c", "-e", "RUNVAR=r", "-w", "/etc", "-h", "box", "sleep", "1000")

	out := h.ok("exec", "c", "sh", "-c", "hostname; pwd; echo $RUNVAR; ps -o pid,args")
	lines := strings.Split(out, "\n")
	require.GreaterOrEqual(t, len(lines), 5, out)
	assert.Equal(t, []string{"box", "/etc", "r"}, lines[:3])
	assert.Regexp(t, `^\s*1 sleep 1000$`, lines[4], "the init is PID 1 of the exec's PID namespace")
	assert.Contains(t, out, "sh -c hostname", "the exec'd shell is in it too")

	for _, kind := range []string{"mnt", "pid", "net", "ipc", "uts", "cgroup"} {
		inside := h.ok("exec", "c", "readlink", "/proc/self/ns/"+kind)
		assert.Equal(t, h.initNs(id, kind), inside, "the %s namespace is the init's", kind)
	}

	out = h.ok("exec", "-e", "RUNVAR=x", "-e", "NEW=n", "-u", "1000:1000", "-w", "/tmp", "c", "sh", "-c", "echo $RUNVAR $NEW; id; pwd")
	assert.Equal(t, "x n\nuid=1000 gid=1000\n/tmp", out)
	assert.Equal(t, "uid=65534(nobody) gid=65534(nogroup)", h.ok("exec", "-u", "nobody", "c", "id"))
	assert.Equal(t, "hello", strings.TrimSpace(h.runIn("hello\n", "exec", "-i", "c", "cat").Stdout))
	assert.Empty(t, h.runIn("hello\n", "exec", "c", "cat").Stdout, "without -i stdin is empty")

	// Exit codes as docker exec's.
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"sh", "-c", "exit 42"}, 42, ""},
		{[]string{"nosuch"}, 127, `"nosuch": executable file not found`},
		{[]string{"/etc/passwd"}, 126, "permission denied"},
		{[]string{"sh", "-c", "kill -KILL $$"}, 137, ""},
		{[]string{"-w", "/nonexistent", "true"}, 126, "chdir /nonexistent"},
		{[]string{"-u", "nosuchuser", "true"}, 125, "unable to find user nosuchuser"},
	} {
		args := append([]string{"exec", "c"}, c.args...)
		if strings.HasPrefix(c.args[0], "-") {
			args = append([]string{"exec", c.args[0], c.args[1], "c"}, c.args[2:]...)
		}
		r := h.run(args...)
		assert.Equal(t, c.code, r.Code, "%v: %s", c.args, r)
		assert.Contains(t, r.Stderr, c.msg, "%v", c.args)
	}

	require.Equal(t, "c", h.ok("pause", "c"))
	r := h.run("exec", "c", "true")
	assert.Equal(t, 125, r.Code)
	assert.Contains(t, r.Stderr, "is paused, unpause the container before exec")
	h.ok("unpause", "c")
	h.ok("stop", "-t", "1", "c")
	r = h.run("exec", "c", "true")
	assert.Equal(t, 125, r.Code)
	assert.Contains(t, r.Stderr, "container "+id+" is not running")
	r = h.run("exec", "nosuch", "true")
	assert.Equal(t, 125, r.Code)
	assert.Contains(t, r.Stderr, "No such container: nosuch")
}

// initNs reads a namespace of the container's init from the host.
func (h *host) initNs(id, kind string) string {
	h.t.Helper()
	pid := h.stored(id).Pid
	s, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/" + kind)
	require.NoError(h.t, err)
	return s
}

// -t: a pty of the container's own devpts, the size of the caller's
// terminal, resized when it is; what is typed reaches the command.
func TestExecTTY(t *testing.T) {
	h := newHost(t)
	h.runD("--name", "c", "sleep", "1000")
	term := testenv.StartTerminal(t, h.env, 40, 100, h.bin, "exec", "-it", "c", "sh", "-c",
		"tty; echo TERM=$TERM; stty size; echo ready; read x; stty size; echo got $x; exit 3")
	term.WaitFor("ready")
	term.Resize(30, 90)
	time.Sleep(200 * time.Millisecond) // the SIGWINCH reaches berth, which passes it on
	term.Type("hello\n")
	out, code := term.Wait()
	assert.Equal(t, 3, code, out)
	assert.Contains(t, out, "/dev/pts/0\nTERM=xterm\n40 100\nready", "a pty of the container's own devpts")
	assert.Contains(t, out, "30 90\ngot hello")
}

// The exec'd process is in the container's cgroup before it runs: over
// the container's memory limit it is OOM-killed, where on the host it
// would have been fine.
func TestExecCgroup(t *testing.T) {
	h := newHost(t)
	id := h.runD("--name", "c", "-m", "32m", "sleep", "1000")
	cg := h.ok("exec", "c", "cat", "/proc/self/cgroup")
	assert.Contains(t, cg, "0::/", "the cgroup namespace's root, the container's group: %s", cg)
	r := h.run("exec", "c", "sh", "-c", `x=$(head -c 64m /dev/zero | tr "\0" a); echo survived ${#x}`)
	assert.Equal(t, 137, r.Code, "64 MiB in a 32 MiB container: OOM-killed (%s)", r)
	assert.Equal(t, "survived 8388608", h.ok("exec", "c", "sh", "-c", `x=$(head -c 8m /dev/zero | tr "\0" a); echo survived ${#x}`))
	assert.Equal(t, "running", h.inspect(id, "{{.State.Status}}"), "the exec's OOM kill is not the container's end")
}

// A descriptor berth exec inherited (its caller's, leaked without
// close-on-exec) never reaches the command, and cannot be its working
// directory (CVE-2024-21626): both would give the container the host.
// Two defences each: berth marks what it inherited close-on-exec when it
// starts (spine.StartRuntime), and the exec'd process marks every fd
// but stdio before execve (nsenter.CloseExtraFDs) and checks its working
// directory is under its root (nsenter.Chdir). Without the first and
// either of the others, this test fails.
func TestExecLeakedFD(t *testing.T) {
	h := newHost(t)
	h.runD("--name", "c", "sleep", "1000")
	secret := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secret, []byte("host secret\n"), 0o600))
	leak := func(args ...string) testenv.Result {
		f, err := os.Open(filepath.Dir(secret)) // a host directory
		require.NoError(t, err)
		defer f.Close()
		cmd := exec.Command(h.bin, args...)
		cmd.Env = append(os.Environ(), h.env...)
		// fds 3..6 /dev/null, 7 the host directory: as a leak looks.
		null, _ := os.Open(os.DevNull)
		defer null.Close()
		cmd.ExtraFiles = []*os.File{null, null, null, null, f}
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		err = cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return testenv.Result{Stdout: out.String(), Stderr: errb.String(), Code: code}
	}
	r := leak("exec", "c", "sh", "-c", "ls /proc/self/fd; cat /proc/self/fd/7/secret")
	assert.NotContains(t, r.Stdout, "host secret")
	assert.Equal(t, "0\n1\n2\n3\n", r.Stdout, "only stdio (and ls's own directory) reach the command")
	r = leak("exec", "-w", "/proc/self/fd/7", "c", "cat", "secret")
	assert.NotContains(t, r.Stdout, "host secret")
	assert.Equal(t, 126, r.Code, r.String())
	assert.Contains(t, r.Stderr, "/proc/self/fd/7", "refused, one line")
}

// Twenty execs into one container at once: each gets its own answer and
// its own exit code, and an exec record (exec inspect).
func TestExecConcurrent(t *testing.T) {
	h := newHost(t)
	id := h.runD("--name", "c", "sleep", "1000")
	var wg sync.WaitGroup
	results := make([]testenv.Result, 20)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = h.run("exec", "c", "sh", "-c", "echo $0; exit $0", strconv.Itoa(i))
		}()
	}
	wg.Wait()
	for i, r := range results {
		assert.Equal(t, strconv.Itoa(i)+"\n", r.Stdout, "exec %d: %s", i, r)
		assert.Equal(t, i, r.Code, "exec %d: %s", i, r)
	}
	entries, err := os.ReadDir(filepath.Join(h.state, ".containers", id, "execs"))
	require.NoError(t, err)
	assert.Len(t, entries, 20)
	var rec struct {
		ID            string
		ContainerID   string
		Running       bool
		ExitCode      *int
		ProcessConfig struct {
			Entrypoint string   `json:"entrypoint"`
			Arguments  []string `json:"arguments"`
		}
		Pid int
	}
	execID := strings.TrimSuffix(entries[0].Name(), ".json")
	require.NoError(t, json.Unmarshal([]byte(h.ok("internal", "exec-inspect", "c", execID)), &rec))
	assert.Equal(t, id, rec.ContainerID)
	assert.False(t, rec.Running)
	require.NotNil(t, rec.ExitCode)
	assert.Equal(t, "sh", rec.ProcessConfig.Entrypoint)
	assert.Equal(t, strconv.Itoa(*rec.ExitCode), rec.ProcessConfig.Arguments[2])
	assert.NotZero(t, rec.Pid)

	// -d: started, berth returns, the command runs on.
	assert.Empty(t, h.ok("exec", "-d", "c", "sh", "-c", "sleep 0.3; echo done >/tmp/d"))
	for deadline := time.Now().Add(10 * time.Second); h.run("exec", "c", "cat", "/tmp/d").Stdout != "done\n"; time.Sleep(100 * time.Millisecond) {
		require.True(t, time.Now().Before(deadline), "the detached exec never wrote /tmp/d")
	}
}

// Rootless: the user joins their own container's user namespace first
// (they own it), then the rest with the capabilities it gives; root in
// the container is the user outside, as for its init.
func TestExecRootless(t *testing.T) {
	a := testenv.NewAccount(t, "berth09x", false)
	bin := a.Berth(t)
	run := func(args ...string) testenv.Result {
		t.Helper()
		return a.Run(t, nil, bin, args...)
	}
	t.Cleanup(func() {
		if ids := strings.Fields(run("ps", "-aq").Stdout); len(ids) > 0 {
			run(append([]string{"rm", "-f"}, ids...)...)
		}
	})
	r := run("run", "-d", "--name", "r", "--rootfs", a.Rootfs(t), "--network", "none", "-h", "rl", "sleep", "1000")
	require.Equal(t, 0, r.Code, r.String())
	r = run("exec", "r", "sh", "-c", "id -u; hostname; cat /proc/self/uid_map; cat /proc/1/comm")
	require.Equal(t, 0, r.Code, r.String())
	assert.Regexp(t, `^0\nrl\n\s+0\s+`+strconv.Itoa(a.UID)+`\s+1\nsleep\n$`, r.Stdout)
	r = run("exec", "r", "sh", "-c", "exit 7")
	assert.Equal(t, 7, r.Code, r.String())
}

// exec -d, with or without -t: berth returns once the command runs, its
// keeper waits for it, and the record says when it ended and how (the
// exit code nobody but the process's parent can learn). A start that
// fails says so, with run's exit codes, even detached.
func TestExecDetachedExitCode(t *testing.T) {
	h := newHost(t)
	id := h.runD("--name", "c", "sleep", "1000")
	for _, tty := range []bool{false, true} {
		args := []string{"exec", "-d"}
		if tty {
			args = append(args, "-t")
		}
		code := map[bool]string{false: "3", true: "7"}[tty]
		dir := filepath.Join(h.state, ".containers", id, "execs")
		before, _ := os.ReadDir(dir)
		assert.Empty(t, h.ok(append(args, "c", "sh", "-c", "[ -t 0 ] && echo tty >/tmp/tty; sleep 0.5; exit "+code)...))
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		require.Len(t, entries, len(before)+1)
		var execID string
		for _, e := range entries {
			if !slices.ContainsFunc(before, func(b os.DirEntry) bool { return b.Name() == e.Name() }) {
				execID = strings.TrimSuffix(e.Name(), ".json")
			}
		}
		var rec struct {
			Running       bool
			ExitCode      *int
			ProcessConfig struct {
				Tty bool `json:"tty"`
			}
		}
		require.NoError(t, json.Unmarshal([]byte(h.ok("internal", "exec-inspect", "c", execID)), &rec))
		assert.True(t, rec.Running, "tty=%v: it sleeps", tty)
		assert.Equal(t, tty, rec.ProcessConfig.Tty)
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			require.NoError(t, json.Unmarshal([]byte(h.ok("internal", "exec-inspect", "c", execID)), &rec))
			if rec.ExitCode != nil {
				break
			}
			require.True(t, time.Now().Before(deadline), "tty=%v: the detached exec's exit code was never recorded", tty)
		}
		assert.False(t, rec.Running)
		assert.Equal(t, code, strconv.Itoa(*rec.ExitCode), "tty=%v", tty)
	}
	assert.Equal(t, "tty", h.ok("exec", "c", "cat", "/tmp/tty"), "-d -t: the command has a terminal")
	r := h.run("exec", "-d", "c", "nosuch")
	assert.Equal(t, 127, r.Code, r.String())
	assert.Contains(t, r.Stderr, `"nosuch": executable file not found`)
	events := h.ok("events", "--since", "1m", "--until", "0s", "--filter", "container="+id, "--filter", "event=exec_die",
		"--format", "{{.Actor.Attributes.exitCode}}")
	assert.Equal(t, "3\n7\n0", events, "-d, -d -t, then the cat")
}
