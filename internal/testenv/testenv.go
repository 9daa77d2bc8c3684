// Package testenv helps the integration tests of every stage: build a stage
// binary once, find the busybox root filesystem, run a command and collect
// what a learner would see.
package testenv

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"berth/01-uts/spine/sealexe"
)

// RequireRoot skips a test that needs root, saying why. CI runs as root,
// so there every such test runs.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root (namespaces, mounts); run the suite with sudo make test")
	}
}

// RepoRoot is the top of the berth source tree.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

var (
	buildMu sync.Mutex
	built   = map[string]string{}
	binDir  string
)

// Binary returns the path of a stage binary (for example "03-mount"),
// building it once per test process with the current sources. $BERTH_BIN,
// when set, names a directory of binaries already built (make test sets it).
func Binary(t testing.TB, stage string) string {
	t.Helper()
	if dir := os.Getenv("BERTH_BIN"); dir != "" {
		p := filepath.Join(dir, stage)
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("BERTH_BIN=%s has no %s: run make build", dir, stage)
		}
		return p
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[stage]; ok {
		return p
	}
	if binDir == "" {
		// One fixed directory per checkout, reused by every run: go build
		// is cached, and nothing piles up in /tmp. Two checkouts (git
		// worktrees) tested at once must not run each other's binaries.
		sum := sha256.Sum256([]byte(RepoRoot()))
		binDir = filepath.Join(os.TempDir(), fmt.Sprintf("berth-testbin-%d-%x", os.Geteuid(), sum[:4]))
		if err := os.MkdirAll(binDir, 0o755); err != nil {
			t.Fatalf("mkdir %s: %v", binDir, err)
		}
	}
	p := filepath.Join(binDir, stage)
	tmp := fmt.Sprintf("%s.%d", p, os.Getpid())
	cmd := exec.Command("go", "build", "-o", tmp, "./"+stage)
	cmd.Dir = RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./%s: %v\n%s", stage, err, out)
	}
	// Rename is atomic: a test process of another package never runs a
	// half-written binary.
	if err := os.Rename(tmp, p); err != nil {
		t.Fatalf("rename %s: %v", tmp, err)
	}
	built[stage] = p
	return p
}

// Rootfs returns the busybox root filesystem that make rootfs builds
// ($BERTH_ROOTFS, or /var/lib/berth/busybox). It fails, with the command
// that fixes it, when the tree is missing: the suite depends on it.
func Rootfs(t testing.TB) string {
	t.Helper()
	p := os.Getenv("BERTH_ROOTFS")
	if p == "" {
		p = "/var/lib/berth/busybox"
	}
	if _, err := os.Stat(filepath.Join(p, "bin", "busybox")); err != nil {
		t.Fatalf("no busybox rootfs at %s: run sudo make rootfs", p)
	}
	return p
}

// CopyRootfs makes a private copy of the busybox tree for a test that
// changes it (cp -a keeps owners, modes and the applet links).
func CopyRootfs(t testing.TB) string {
	t.Helper()
	src := Rootfs(t)
	dst := filepath.Join(t.TempDir(), "rootfs")
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp -a %s %s: %v\n%s", src, dst, err, out)
	}
	return dst
}

// Result is what a run printed and how it ended.
type Result struct {
	Stdout, Stderr string
	Code           int
}

func (r Result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
}

// Run runs a command with a 2-minute safety limit and returns its output
// and exit code; it fails the test only if the command could not start.
func Run(t testing.TB, env []string, name string, args ...string) Result {
	t.Helper()
	return RunInput(t, env, "", name, args...)
}

// RunInput is Run with text on stdin.
func RunInput(t testing.TB, env []string, stdin, name string, args ...string) Result {
	t.Helper()
	return run(t, 2*time.Minute, env, stdin, name, args...)
}

// RunWithin is Run with another safety limit, for a command started with
// many others at once (Test50Parallel): they share the CPUs fairly, so
// each ends about when the last does and takes as long as the whole batch
// (a VM under emulation, on a busy host, takes minutes for it).
func RunWithin(t testing.TB, limit time.Duration, env []string, name string, args ...string) Result {
	t.Helper()
	return run(t, limit, env, "", name, args...)
}

func run(t testing.TB, limit time.Duration, env []string, stdin, name string, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = bytes.NewBufferString(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := Result{Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.Code = 128 + int(ws.Signal()) // as a shell reports it
		}
	default:
		t.Fatalf("run %s %v: %v", name, args, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("run %s %v: still running after %v\n%s", name, args, limit, r)
	}
	return r
}

// StateEnv returns environment settings that give a test its own state
// and data roots, so tests never share /run/berth or /var/lib/berth, and
// that keep the shared busybox tree as the default rootfs.
func StateEnv(t testing.TB) []string {
	t.Helper()
	d := t.TempDir()
	rootfs := os.Getenv("BERTH_ROOTFS")
	if rootfs == "" {
		rootfs = "/var/lib/berth/busybox"
	}
	return []string{"BERTH_ROOT=" + filepath.Join(d, "run"), "BERTH_DATA_ROOT=" + filepath.Join(d, "lib"), "BERTH_ROOTFS=" + rootfs}
}

// Background is a command started with Start: wait for it with Wait.
type Background struct {
	Cmd         *exec.Cmd
	out, errOut bytes.Buffer
}

// Start starts a command in the background; the test's cleanup kills it
// (by its PID) if the test has not waited for it.
func Start(t testing.TB, env []string, name string, args ...string) *Background {
	t.Helper()
	b := &Background{Cmd: exec.Command(name, args...)}
	b.Cmd.Env = append(os.Environ(), env...)
	b.Cmd.Stdout, b.Cmd.Stderr = &b.out, &b.errOut
	if err := b.Cmd.Start(); err != nil {
		t.Fatalf("start %s %v: %v", name, args, err)
	}
	t.Cleanup(func() {
		if b.Cmd.ProcessState == nil {
			_ = b.Cmd.Process.Kill()
			_ = b.Cmd.Wait()
		}
	})
	return b
}

// Wait waits for the command (at most 2 minutes) and returns its result.
func (b *Background) Wait(t testing.TB) Result {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- b.Cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		_ = b.Cmd.Process.Kill()
		<-done
		t.Fatalf("%v: still running after 2 minutes", b.Cmd.Args)
	}
	r := Result{Stdout: b.out.String(), Stderr: b.errOut.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.Code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.Code = 128 + int(ws.Signal())
		}
	} else if err != nil {
		t.Fatalf("wait %v: %v", b.Cmd.Args, err)
	}
	return r
}

// ContainerPid waits until the runtime has recorded the host PID of the
// container's init in its state (<stateRoot>/<id>/state.json) and returns
// it. It also waits until that process has left the berth init (it runs
// the command, or with --init has started it).
func ContainerPid(t testing.TB, stateRoot, id string) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(filepath.Join(stateRoot, id, "state.json"))
		if err == nil {
			var st struct {
				Pid int `json:"pid"`
			}
			if json.Unmarshal(b, &st) == nil && st.Pid > 0 && started(st.Pid) {
				return st.Pid
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("container %s did not start within 30s (state root %s)", id, stateRoot)
	return 0
}

// started: the init has executed the command, or (--init) has a child.
// Until then it runs the sealed copy of berth (sealexe), and until it
// names itself berth-init its name is the last part of the path it was
// run from, /proc/self/fd/N: a number, which could as well be a command's.
func started(pid int) bool {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return false
	}
	if !strings.HasPrefix(exe, "/memfd:"+sealexe.Name+" ") {
		return true
	}
	children, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	return err == nil && len(bytes.TrimSpace(children)) > 0
}

// StateRoot returns the state root of an environment made by StateEnv.
func StateRoot(env []string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "BERTH_ROOT="); ok {
			return v
		}
	}
	return "/run/berth"
}

// WaitGone waits until process pid has exited: a container must die with
// its runtime (Pdeathsig). It fails the test after 30 seconds, killing the
// process first, since the test started it.
func WaitGone(t testing.TB, pid int) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); os.IsNotExist(err) {
			return
		}
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	t.Fatalf("process %d still there 30s after its runtime was killed", pid)
}

var (
	berthMu   sync.Mutex
	berthPath string
)

// Berth returns the path of stage 09's berth with berth-monitor beside it
// (berth looks for its monitor there). $BERTH_BIN (make test) has both,
// as bin/berth and bin/berth-monitor; in the VM it has bin/09-full, and
// $BERTH_BERTH_MONITOR the monitor, which are copied side by side once;
// otherwise both are built once per test process.
func Berth(t testing.TB) string {
	t.Helper()
	berthMu.Lock()
	defer berthMu.Unlock()
	if berthPath != "" {
		return berthPath
	}
	if dir := os.Getenv("BERTH_BIN"); dir != "" {
		if _, err := os.Stat(filepath.Join(dir, "berth-monitor")); err == nil {
			berthPath = filepath.Join(dir, "berth")
			return berthPath
		}
		mon := os.Getenv("BERTH_BERTH_MONITOR")
		if mon == "" {
			t.Fatalf("BERTH_BIN=%s has no berth-monitor: run make build", dir)
		}
		side := filepath.Join(os.TempDir(), fmt.Sprintf("berth-09-%d", os.Getpid()))
		if err := os.MkdirAll(side, 0o755); err != nil {
			t.Fatal(err)
		}
		copyFile(t, filepath.Join(dir, "09-full"), filepath.Join(side, "berth"))
		copyFile(t, mon, filepath.Join(side, "berth-monitor"))
		berthPath = filepath.Join(side, "berth")
		return berthPath
	}
	p := Binary(t, "09-full")
	dir := filepath.Dir(p)
	mon := filepath.Join(dir, "berth-monitor")
	tmp := fmt.Sprintf("%s.%d", mon, os.Getpid())
	// The monitor is C: the Makefile's rule builds it (BUILD_AS=root:
	// as whoever runs the tests).
	cmd := exec.Command("make", "--no-print-directory", "-s", "monitor", "MONITOR_OUT="+tmp, "BUILD_AS=root")
	cmd.Dir = RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make monitor: %v\n%s", err, out)
	}
	if err := os.Rename(tmp, mon); err != nil {
		t.Fatal(err)
	}
	berth := filepath.Join(dir, "berth")
	_ = os.Remove(berth)
	if err := os.Link(p, berth); err != nil {
		copyFile(t, p, berth)
	}
	berthPath = berth
	return berthPath
}

// Monitor returns the path of berth-monitor (the one beside Berth's).
func Monitor(t testing.TB) string {
	t.Helper()
	return filepath.Join(filepath.Dir(Berth(t)), "berth-monitor")
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	tmp := to + ".tmp"
	if err := os.WriteFile(tmp, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, to); err != nil {
		t.Fatal(err)
	}
}
