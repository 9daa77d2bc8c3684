//go:build linux

package cgroup

// Integration tests: build bin/06-cgroups and check, as root, what a
// learner would check by hand. The same assertions run on this cgroup v1
// (hybrid) machine and on pure cgroup v2 (the throwaway VM): only the
// file names differ, and groupFile picks them.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"berth/01-uts/spine"
	"berth/internal/testenv"
)

const busybox = "/bin/busybox" // on the host, in the VM and in the busybox rootfs

type tenv struct {
	t    *testing.T
	bin  string
	env  []string
	mode Mode
}

func newTenv(t *testing.T) *tenv {
	t.Helper()
	testenv.RequireRoot(t)
	mode, err := DetectMode()
	if err != nil {
		t.Skipf("skipped: this machine has no cgroup filesystem: %v", err)
	}
	if _, err := os.Stat(busybox); err != nil {
		t.Fatalf("%s is missing: apt-get install busybox-static", busybox)
	}
	return &tenv{t: t, bin: testenv.Binary(t, "06-cgroups"), env: testenv.StateEnv(t), mode: mode}
}

// run runs bin/06-cgroups VERB ARGS... to the end.
func (e *tenv) run(args ...string) testenv.Result {
	e.t.Helper()
	return testenv.Run(e.t, e.env, e.bin, noNet(args)...)
}

// noNet adds --net none to a run: these tests are about cgroups, and
// stage 04's default bridge would change the host's network.
func noNet(args []string) []string {
	if len(args) == 0 || args[0] != "run" {
		return args
	}
	return append([]string{"run", "--net", "none"}, args[1:]...)
}

// id returns a fresh container id; the test fails if its group outlives it.
func (e *tenv) id() string {
	id := "t" + spine.RandomID()
	e.t.Cleanup(func() {
		if Exists(e.mode, GroupPath(id)) {
			e.t.Errorf("cgroup %s left behind: %v", GroupPath(id), Dirs(e.mode, GroupPath(id)))
		}
	})
	return id
}

// groupFile is the path of one of the group's files on the host.
func (e *tenv) groupFile(id, v1ctrl, v1file, v2file string) string {
	if e.mode.Unified() {
		return filepath.Join(Root, GroupPath(id), v2file)
	}
	return filepath.Join(Root, v1ctrl, GroupPath(id), v1file)
}

func (e *tenv) read(path string) string {
	e.t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		e.t.Fatalf("read %s: %v", path, err)
	}
	return strings.TrimSpace(string(b))
}

// cpuUsage is the group's own CPU time, and how often its quota ran out.
func (e *tenv) cpuUsage(id string) (used time.Duration, throttled int) {
	e.t.Helper()
	if e.mode.Unified() {
		kv := keyValues(e.read(e.groupFile(id, "", "", "cpu.stat")))
		return time.Duration(kv["usage_usec"]) * time.Microsecond, int(kv["nr_throttled"])
	}
	ns, err := strconv.ParseInt(e.read(e.groupFile(id, "cpuacct", "cpuacct.usage", "")), 10, 64)
	if err != nil {
		e.t.Fatal(err)
	}
	kv := keyValues(e.read(e.groupFile(id, "cpu", "cpu.stat", "")))
	return time.Duration(ns), int(kv["nr_throttled"])
}

func keyValues(s string) map[string]int64 {
	m := map[string]int64{}
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) == 2 {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			m[f[0]] = n
		}
	}
	return m
}

// A bg is a container running in the background, talking over pipes:
// the tests synchronise on its output, never on sleeps.
type bg struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  *bufio.Scanner
	errOut string // a file: a pipe would stay open as long as any orphan lives
}

func (b *bg) stderr() string {
	out, _ := os.ReadFile(b.errOut)
	return string(out)
}

func (e *tenv) start(args ...string) *bg {
	e.t.Helper()
	b := &bg{cmd: exec.Command(e.bin, noNet(args)...)}
	b.cmd.Env = append(os.Environ(), e.env...)
	b.errOut = filepath.Join(e.t.TempDir(), "stderr")
	errf, err := os.Create(b.errOut)
	if err != nil {
		e.t.Fatal(err)
	}
	defer errf.Close()
	b.cmd.Stderr = errf
	if b.stdin, err = b.cmd.StdinPipe(); err != nil {
		e.t.Fatal(err)
	}
	out, err := b.cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	b.lines = bufio.NewScanner(out)
	if err := b.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		if b.cmd.ProcessState == nil {
			b.cmd.Process.Kill()
			b.cmd.Wait()
		}
	})
	return b
}

// expect reads the next line of the container's output.
func (b *bg) expect(t *testing.T, want string) {
	t.Helper()
	if !b.lines.Scan() {
		b.cmd.Wait()
		t.Fatalf("container ended before printing %q; stderr:\n%s", want, b.stderr())
	}
	if got := b.lines.Text(); got != want {
		t.Fatalf("container printed %q, want %q", got, want)
	}
}

// wait lets the container end (closing its stdin) and returns its exit
// code; after a minute it kills the runtime and fails the test.
func (b *bg) wait(t *testing.T) int {
	t.Helper()
	b.stdin.Close()
	timer := time.AfterFunc(time.Minute, func() { b.cmd.Process.Kill() })
	defer timer.Stop()
	for b.lines.Scan() {
	}
	err := b.cmd.Wait()
	if !timer.Stop() {
		t.Fatalf("%v: still running after a minute; killed", b.cmd.Args)
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0
}

func TestCgroupNamespaceShowsRoot(t *testing.T) {
	e := newTenv(t)
	id := e.id()
	r := e.run("run", "--id", id, "--memory", "64m", "cat", "/proc/self/cgroup")
	if r.Code != 0 {
		t.Fatalf("run: %s", r)
	}
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	for _, l := range lines {
		if !strings.HasSuffix(l, ":/") {
			t.Errorf("inside a cgroup namespace every line of /proc/self/cgroup must end in ':/', got %q", l)
		}
	}
	if e.mode.Unified() && len(lines) != 1 {
		t.Errorf("v2 has one hierarchy, /proc/self/cgroup shows %d lines", len(lines))
	}
}

func TestMemoryLimitOOMKills(t *testing.T) {
	e := newTenv(t)
	// dd bs=64M needs a 64 MiB buffer: past a 32 MiB limit it is killed.
	hog := []string{busybox, "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"}
	r := e.run(append([]string{"run", "--id", e.id(), "--memory", "32m"}, hog...)...)
	if r.Code != 137 {
		t.Fatalf("memory hog under --memory 32m: exit %d, want 137 (SIGKILL)\n%s", r.Code, r)
	}
	if !strings.Contains(r.Stderr, "OOMKilled") {
		t.Errorf("the runtime must say OOMKilled, stderr:\n%s", r.Stderr)
	}
	// The same command fits under a higher limit: the limit killed it.
	r = e.run(append([]string{"run", "--id", e.id(), "--memory", "256m"}, hog...)...)
	if r.Code != 0 || strings.Contains(r.Stderr, "OOMKilled") {
		t.Fatalf("memory hog under --memory 256m must succeed: %s", r)
	}
}

func TestPidsLimitCapsForkLoop(t *testing.T) {
	e := newTenv(t)
	// The shell counts each child it managed to start; it is one task
	// itself, so 20 tasks means 19 children. (pids.max counts threads:
	// the runtime writes it once the Go init is in, and execve leaves
	// the shell single-threaded.)
	loop := `i=0; while [ $i -lt 100 ]; do ` + busybox + ` sleep 1000 & i=$((i+1)); echo $i; done`
	r := e.run("run", "--id", e.id(), "--pids-limit", "20", busybox, "sh", "-c", loop)
	lines := strings.Fields(r.Stdout)
	if len(lines) == 0 || lines[len(lines)-1] != "19" {
		t.Fatalf("--pids-limit 20: the shell started %v children, want 19 (shell + 19 = 20)\n%s", len(lines), r)
	}
	if !strings.Contains(r.Stderr, "can't fork") {
		t.Errorf("the 20th fork must fail, stderr:\n%s", r.Stderr)
	}
}

func TestCPUQuotaHoldsHalfACPU(t *testing.T) {
	e := newTenv(t)
	id := e.id()
	busy := fmt.Sprintf(`%s timeout 2 %s sh -c 'while :; do :; done'; echo done; read x || true`, busybox, busybox)
	start := time.Now()
	c := e.start("run", "--id", id, "--cpus", "0.5", busybox, "sh", "-c", busy)
	c.expect(t, "done")
	wall := time.Since(start)
	used, throttled := e.cpuUsage(id)
	t.Logf("--cpus 0.5: %v of CPU in %v of wall time, throttled %d times", used, wall, throttled)
	if used > wall*6/10 {
		t.Errorf("--cpus 0.5: the group used %v of CPU in %v, more than 0.6 of the wall time", used, wall)
	}
	if throttled == 0 {
		t.Errorf("--cpus 0.5: a busy loop must have been throttled (nr_throttled is 0)")
	}
	if code := c.wait(t); code != 0 {
		t.Fatalf("exit %d: %s", code, c.stderr())
	}
}

func TestCpusetShowsInStatus(t *testing.T) {
	e := newTenv(t)
	r := e.run("run", "--id", e.id(), "--cpuset-cpus", "0", "grep", "Cpus_allowed_list", "/proc/self/status")
	if r.Code != 0 || strings.Fields(r.Stdout)[len(strings.Fields(r.Stdout))-1] != "0" {
		t.Fatalf("--cpuset-cpus 0: want Cpus_allowed_list 0, got %s", r)
	}
}

func TestPauseAndResume(t *testing.T) {
	e := newTenv(t)
	id := e.id()
	// The shell is PID 1 of its PID namespace: without a handler, SIGTERM
	// would not reach it (02-pid), so it traps it.
	c := e.start("run", "--id", id, "--cpus", "0.2", busybox, "sh", "-c", "trap 'exit 143' TERM; echo ready; while :; do :; done")
	c.expect(t, "ready")
	if r := e.run("resume", id); r.Code != 1 || !strings.Contains(r.Stderr, "is not paused") {
		t.Errorf("resume of a running container: %s", r)
	}
	if r := e.run("pause", id); r.Code != 0 || strings.TrimSpace(r.Stdout) != id {
		t.Fatalf("pause: %s", r)
	}
	state := e.read(e.groupFile(id, "freezer", "freezer.state", "cgroup.freeze"))
	if state != "FROZEN" && state != "1" {
		t.Errorf("after pause the freezer says %q", state)
	}
	before, _ := e.cpuUsage(id)
	time.Sleep(300 * time.Millisecond)
	after, _ := e.cpuUsage(id)
	if after != before {
		t.Errorf("a paused busy loop used CPU: %v then %v", before, after)
	}
	if r := e.run("pause", id); r.Code != 1 || !strings.Contains(r.Stderr, "already paused") {
		t.Errorf("pause of a paused container: %s", r)
	}
	if r := e.run("resume", id); r.Code != 0 {
		t.Fatalf("resume: %s", r)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		now, _ := e.cpuUsage(id)
		if now > after {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after resume the loop made no progress in 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.cmd.Process.Signal(syscall.SIGTERM) // the runtime forwards it to the shell
	if code := c.wait(t); code != 143 {
		t.Errorf("SIGTERM: exit %d, want 143", code)
	}
}

func TestStats(t *testing.T) {
	e := newTenv(t)
	id := e.id()
	c := e.start("run", "--id", id, "--memory", "64m", "--pids-limit", "50", busybox, "sh", "-c", "echo ready; read x || true")
	c.expect(t, "ready")

	r := e.run("stats", "--no-stream", "--format", "json", id)
	if r.Code != 0 {
		t.Fatalf("stats: %s", r)
	}
	var s Sample
	if err := json.Unmarshal([]byte(r.Stdout), &s); err != nil {
		t.Fatalf("stats json %q: %v", r.Stdout, err)
	}
	if s.ID != id || s.MemLimit != 64<<20 || s.PidsLimit != 50 {
		t.Errorf("stats: id %q memory limit %d pids limit %d, want %s 64MiB 50", s.ID, s.MemLimit, s.PidsLimit, id)
	}
	if s.MemUsage == 0 || s.MemUsage >= s.MemLimit {
		t.Errorf("stats: memory usage %d, want between 0 and the limit", s.MemUsage)
	}
	if s.Pids < 1 || s.Pids > 50 {
		t.Errorf("stats: %d pids, want 1 to 50", s.Pids)
	}
	if s.CPUPercent < 0 || s.CPUPercent > float64(100*runtime.NumCPU()) {
		t.Errorf("stats: CPU %.2f%%", s.CPUPercent)
	}

	r = e.run("stats", "--no-stream")
	if r.Code != 0 || !strings.Contains(r.Stdout, "MEM USAGE / LIMIT") || !strings.Contains(r.Stdout, id[:12]) || !strings.Contains(r.Stdout, "/ 64MiB") {
		t.Errorf("stats table: %s", r)
	}
	if code := c.wait(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if r := e.run("stats", "--no-stream", id); r.Code != 1 || !strings.Contains(r.Stderr, "no running container") {
		t.Errorf("stats of an ended container: %s", r)
	}

	// --stats prints rows while it runs and a last one at the end.
	id = e.id()
	r = e.run("run", "--id", id, "--stats", "--memory", "64m", busybox, "true")
	if r.Code != 0 || !strings.Contains(r.Stderr, "CPU %") || !strings.Contains(r.Stderr, id[:12]) {
		t.Errorf("run --stats: %s", r)
	}
}

func TestDefaultDeviceAllowList(t *testing.T) {
	e := newTenv(t)
	// The container's /dev is its own tmpfs (03-mount): make a /dev/mem
	// node there; creating it is allowed, opening it is not.
	script := `mknod /dev/mem c 1 1 && echo mknod ok; head -c 1 /dev/mem; echo x > /dev/null && echo null ok`
	r := e.run("run", "--id", e.id(), busybox, "sh", "-c", script)
	if !strings.Contains(r.Stdout, "mknod ok") || !strings.Contains(r.Stdout, "null ok") {
		t.Errorf("mknod and /dev/null must be allowed: %s", r)
	}
	if !strings.Contains(r.Stderr, "Operation not permitted") {
		t.Errorf("opening /dev/mem must be denied by the device cgroup: %s", r)
	}
}

func TestLimitsReachTheFiles(t *testing.T) {
	e := newTenv(t)
	id := e.id()
	c := e.start("run", "--id", id, "--memory", "32m", "--memory-reservation", "16m", "--cpus", "0.5",
		"--cpu-shares", "512", "--pids-limit", "20", busybox, "sh", "-c", "echo ready; read x || true")
	c.expect(t, "ready")
	want := []struct{ v1ctrl, v1file, v1, v2file, v2 string }{
		{"memory", "memory.limit_in_bytes", "33554432", "memory.max", "33554432"},
		{"memory", "memory.soft_limit_in_bytes", "16777216", "memory.low", "16777216"},
		{"cpu", "cpu.cfs_quota_us", "50000", "cpu.max", "50000 100000"},
		{"cpu", "cpu.shares", "512", "cpu.weight", "59"}, // runc's formula
		{"pids", "pids.max", "20", "pids.max", "20"},
	}
	for _, w := range want {
		got := e.read(e.groupFile(id, w.v1ctrl, w.v1file, w.v2file))
		exp, name := w.v1, w.v1file
		if e.mode.Unified() {
			exp, name = w.v2, w.v2file
		}
		if got != exp {
			t.Errorf("%s = %q, want %q", name, got, exp)
		}
	}
	if code := c.wait(t); code != 0 {
		t.Fatalf("exit %d: %s", code, c.stderr())
	}
}

func TestKilledRuntimeIsCollected(t *testing.T) {
	e := newTenv(t)
	id := e.id()
	c := e.start("run", "--id", id, busybox, "sh", "-c", busybox+" sleep 1000 & echo ready; "+busybox+" sleep 1000")
	c.expect(t, "ready")
	procs := e.read(e.groupFile(id, "pids", "cgroup.procs", "cgroup.procs"))
	c.cmd.Process.Kill() // SIGKILL: no cleanup of its own
	c.cmd.Wait()
	if !Exists(e.mode, GroupPath(id)) {
		t.Fatalf("the group vanished with the runtime; this test needs it left behind")
	}
	if r := e.run("run", "--id", e.id(), "true"); r.Code != 0 {
		t.Fatalf("next run: %s", r)
	}
	if Exists(e.mode, GroupPath(id)) {
		t.Errorf("the next run did not remove the group of the killed runtime")
	}
	for _, p := range strings.Fields(procs) {
		pid, _ := strconv.Atoi(p)
		if syscall.Kill(pid, 0) == nil {
			if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); !strings.Contains(string(b), ") Z ") {
				t.Errorf("process %d of the killed container still runs", pid)
			}
		}
	}
}

func TestBadInput(t *testing.T) {
	e := newTenv(t)
	foreign, foreignWant := []string{"--cgroup-conf", "memory.high=64m"}, "writes cgroup v2 files"
	if e.mode.Unified() {
		foreign, foreignWant = []string{"--memory-swappiness", "10"}, "cgroup v1 setting"
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--memory", "1x"}, `invalid argument "1x"`},
		{[]string{"--cpus", "-1"}, "the range of CPUs is from 0.01"},
		{[]string{"--cpuset-cpus", "4095"}, "requested CPUs are not available"},
		{[]string{"--kernel-memory", "64m"}, "--kernel-memory is not supported"},
		{[]string{"--memory-swap", "64m"}, "--memory-swap needs --memory"},
		{[]string{"--pids-limit", "many"}, `invalid argument "many"`},
		{[]string{"--blkio-weight", "5"}, "range is 10-1000"},
		{[]string{"--init", "--pids-limit", "5"}, "--pids-limit 5 is too small with --init"},
		{foreign, foreignWant},
	}
	for _, tt := range tests {
		id := e.id()
		r := e.run(append(append([]string{"run", "--id", id}, tt.args...), "true")...)
		lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
		if r.Code != 125 || len(lines) != 1 || !strings.Contains(r.Stderr, tt.want) {
			t.Errorf("%v: want exit 125 and one line with %q, got %s", tt.args, tt.want, r)
		}
	}
}

// pids.max counts threads, and berth's own init is a multithreaded Go
// program: a tiny limit must bind the command, never crash the runtime.
func TestTinyPidsLimit(t *testing.T) {
	e := newTenv(t)
	for i := 0; i < 5; i++ {
		r := e.run("run", "--id", e.id(), "--pids-limit", "1", "sh", "-c", "echo one; true & wait")
		if r.Code != 2 || r.Stdout != "one\n" || !strings.Contains(r.Stderr, "can't fork") || strings.Contains(r.Stderr, "goroutine") {
			t.Fatalf("--pids-limit 1: want the shell alone, its fork refused (exit 2), got %s", r)
		}
	}
	r := e.run("run", "--id", e.id(), "--init", "--pids-limit", "12", "sh", "-c", "echo fine")
	if r.Code != 0 || r.Stdout != "fine\n" {
		t.Fatalf("--init --pids-limit 12: want it to run, got %s", r)
	}
}

func TestUserNamespace(t *testing.T) {
	e := newTenv(t)
	// Root inside is uid 100000 outside (stage 05): the group is still
	// the runtime's to make, and the namespace is made inside it. Stage
	// 04 binds files of the state directory into the container, so that
	// uid must be able to reach it (t.TempDir is private to root).
	state, err := os.MkdirTemp("", "berth-06-userns-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(state) })
	if err := os.Chmod(state, 0o755); err != nil {
		t.Fatal(err)
	}
	e.env = append(e.env, "BERTH_ROOT="+state)
	r := e.run("run", "--id", e.id(), "--uidmap", "0:100000:65536", "--memory", "32m", "--pids-limit", "20",
		busybox, "sh", "-c", "cut -d: -f3 /proc/self/cgroup | sort -u; "+busybox+" dd if=/dev/zero of=/dev/null bs=64M count=1")
	if r.Code != 137 || strings.TrimSpace(r.Stdout) != "/" || !strings.Contains(r.Stderr, "OOMKilled") {
		t.Fatalf("in a user namespace: want / and an OOM kill with exit 137, got %s", r)
	}
}

func TestWithoutRootLimitsAreRefused(t *testing.T) {
	e := newTenv(t)
	cmd := exec.Command(e.bin, "run", "--memory", "32m", "true")
	cmd.Env = append(os.Environ(), e.env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 125 || !strings.Contains(string(out), "resource limits need root") {
		t.Fatalf("--memory as nobody: want exit 125 and \"resource limits need root\", got %v: %s", err, out)
	}
}

// Containers started and ending at the same time, each creating its group
// under the shared parent and removing it: none may fail (one in a
// hundred did, when a Delete also removed the parent; see Group.Delete).
func TestConcurrentRuns(t *testing.T) {
	e := newTenv(t)
	const workers, runs = 4, 8
	failures := make(chan string, workers*runs)
	done := make(chan struct{})
	for w := 0; w < workers; w++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := 0; i < runs; i++ {
				cmd := exec.Command(e.bin, noNet([]string{"run", "--id", e.id(), "--cpuset-cpus", "0", "--memory", "64m", "true"})...)
				cmd.Env = append(os.Environ(), e.env...)
				if out, err := cmd.CombinedOutput(); err != nil {
					failures <- fmt.Sprintf("%v: %s", err, out)
				}
			}
		}()
	}
	for w := 0; w < workers; w++ {
		<-done
	}
	close(failures)
	for f := range failures {
		t.Error(f)
	}
}
