//go:build linux

package nsenter_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"berth/internal/testenv"

	"github.com/stretchr/testify/require"
)

// The tests drive nsjoin (./nsjoin), a small nsenter(1) built on the
// package, against targets that `unshare` starts: containers whose init
// is not berth's, as the package must serve them.

var helperBuild struct {
	once sync.Once
	path string
	err  error
	dir  string
}

func TestMain(m *testing.M) {
	finalInTest()
	code := m.Run()
	if helperBuild.dir != "" {
		os.RemoveAll(helperBuild.dir)
	}
	os.Exit(code)
}

// helper returns the nsjoin binary: $BERTH_NSJOIN in the VM (prebuilt
// there by tools/vmtest), otherwise built once per test run, linked as
// tools/vmtest links it and as berth is linked: statically.
func helper(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("BERTH_NSJOIN"); p != "" {
		return p
	}
	helperBuild.once.Do(func() {
		dir, err := os.MkdirTemp("", "berth-nsjoin-")
		if err != nil {
			helperBuild.err = err
			return
		}
		helperBuild.dir = dir
		if err := os.Chmod(dir, 0o755); err != nil { // rootless tests run it too
			helperBuild.err = err
			return
		}
		out := filepath.Join(dir, "nsjoin")
		cmd := exec.Command("go", "build", "-tags", "netgo,osusergo",
			"-ldflags", "-linkmode external -extldflags -static", "-o", out, "./09-full/nsenter/nsjoin")
		cmd.Dir = testenv.RepoRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		if b, err := cmd.CombinedOutput(); err != nil {
			helperBuild.err = fmt.Errorf("go build ./09-full/nsenter/nsjoin: %v\n%s", err, b)
			return
		}
		helperBuild.path = out
	})
	require.NoError(t, helperBuild.err)
	return helperBuild.path
}

// copyFile copies a binary to dst, mode 0755.
func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(dst, b, 0o755))
}

// A target is a process started by unshare in new namespaces of every
// kind but time (and user, unless asked), with its own hostname and a
// tmpfs at Mnt holding a file "marker" that only its mount namespace sees.
type target struct {
	Pid      int    // the namespaces' init (host PID): sleep 1000
	Mnt      string // mount point of its private tmpfs
	Hostname string
	cmd      *exec.Cmd
}

type targetOpts struct {
	user    bool             // a user namespace too (--map-root-user)
	account *testenv.Account // run unshare as this user (rootless)
	cgroup  func(pid int)    // called with the process before it unshares
}

func startTarget(t testing.TB, o targetOpts) *target {
	t.Helper()
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("skipped: unshare not found (Debian package util-linux)")
	}
	dir, err := os.MkdirTemp("", "berth-nsenter-target-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o777))
	tg := &target{Mnt: dir, Hostname: "berth-target"}

	args := []string{"unshare", "--fork", "--pid", "--mount", "--uts", "--ipc", "--net", "--cgroup", "--mount-proc"}
	if o.user {
		args = append(args, "--user", "--map-root-user")
	}
	script := fmt.Sprintf("hostname %s && mount -t tmpfs tmpfs %s && echo marker >%s/marker && exec sleep 1000",
		tg.Hostname, dir, dir)
	args = append(args, "sh", "-c", script)
	// read: wait until the test has placed us (cgroup) before unsharing.
	args = append([]string{"sh", "-c", `read go && exec "$@"`, "sh"}, args...)
	if o.account != nil {
		args = o.account.Argv(nil, args...)
	}
	tg.cmd = exec.Command(args[0], args[1:]...)
	stdin, err := tg.cmd.StdinPipe()
	require.NoError(t, err)
	var stderr bytes.Buffer
	tg.cmd.Stderr = &stderr
	require.NoError(t, tg.cmd.Start())
	t.Cleanup(func() { tg.stop() })
	if o.cgroup != nil {
		o.cgroup(tg.cmd.Process.Pid)
	}
	_, err = stdin.Write([]byte("go\n"))
	require.NoError(t, err)
	stdin.Close()

	// unshare (the same PID: setpriv, env and sh exec it) forks the init,
	// which becomes sleep once its set-up is done.
	outer := tg.cmd.Process.Pid
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", outer, outer))
		if f := strings.Fields(string(b)); len(f) > 0 {
			pid, _ := strconv.Atoi(f[0])
			comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
			if strings.TrimSpace(string(comm)) == "sleep" {
				tg.Pid = pid
				return tg
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the target did not start: %s", stderr.String())
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", outer)); err != nil || exited(outer) {
			t.Fatalf("unshare exited: %s", stderr.String())
		}
	}
}

func exited(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return len(f) > 0 && f[0] == "Z"
}

// stop kills the namespaces' init (the rest of its PID namespace dies
// with it) and reaps unshare.
func (tg *target) stop() {
	if tg.cmd.ProcessState != nil {
		return
	}
	if tg.Pid > 0 {
		_ = syscall.Kill(tg.Pid, syscall.SIGKILL)
	}
	done := make(chan struct{})
	go func() { _ = tg.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = tg.cmd.Process.Kill()
		<-done
	}
}

// ns reads the target's namespace links as the host sees them.
func (tg *target) ns(t testing.TB, kind string) string {
	t.Helper()
	l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", tg.Pid, kind))
	require.NoError(t, err)
	return l
}

// join runs nsjoin with args, as root.
func join(t testing.TB, args ...string) testenv.Result {
	t.Helper()
	return testenv.Run(t, nil, helper(t), args...)
}

// runFiles runs nsjoin with extra descriptors (3, 4, ...; nil leaves one
// closed), within a time limit, and returns what it printed.
func runFiles(t testing.TB, files []*os.File, args ...string) testenv.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, helper(t), args...)
	cmd.ExtraFiles = files
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := testenv.Result{Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.Code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("nsjoin %v: %v", args, err)
	}
	require.NoError(t, ctx.Err(), "nsjoin %v still running after a minute", args)
	return r
}

// fields collects "key value..." lines of output into a map.
func fields(out string) map[string]string {
	m := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		if _, seen := m[k]; !seen {
			m[k] = v
		}
	}
	return m
}

// probes collects the "probe KEY VALUE" lines nsjoin -probe prints.
func probes(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(line, "probe "); ok {
			k, v, _ := strings.Cut(rest, " ")
			m[k] = v
		}
	}
	return m
}

// oneLine asserts that stderr is exactly one line holding want.
func oneLine(t testing.TB, r testenv.Result, want string) {
	t.Helper()
	require.Equal(t, 125, r.Code, r.String())
	require.Equal(t, 1, strings.Count(r.Stderr, "\n"), "one line, got:\n%s", r.Stderr)
	require.Contains(t, r.Stderr, want)
}
