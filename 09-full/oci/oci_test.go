//go:build linux

package oci_test

// Integration tests: bin/berth-oci driven as containerd's shim and a
// learner drive it, as root, with a private --root per test and bundles
// the test makes over the busybox tree (read-only: the bundles' root is
// the shared tree, mounted read-only by root.readonly).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/01-uts/spine/consolesock"
	"berth/06-cgroups/cgroup"
	"berth/internal/testenv"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// binary is bin/berth-oci: the VM's prebuilt helper ($BERTH_BERTH_OCI),
// $BERTH_BIN's, else built once for this test process.
func binary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("BERTH_BERTH_OCI"); p != "" {
		return p
	}
	if dir := os.Getenv("BERTH_BIN"); dir != "" {
		p := filepath.Join(dir, "berth-oci")
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("BERTH_BIN=%s has no berth-oci: run make build", dir)
		}
		return p
	}
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "berth-oci-test")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "berth-oci")
		cmd := exec.Command("go", "build", "-o", binPath, "./09-full/berth-oci")
		cmd.Dir = testenv.RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// rt is berth-oci with a private --root.
type rt struct {
	t    *testing.T
	bin  string
	root string
}

func newRT(t *testing.T) *rt {
	t.Helper()
	testenv.RequireRoot(t)
	r := &rt{t: t, bin: binary(t), root: filepath.Join(t.TempDir(), "root")}
	t.Cleanup(func() {
		// Whatever a failed test left: killed and deleted, and nothing
		// may stay in the root.
		entries, _ := os.ReadDir(r.root)
		for _, e := range entries {
			r.run("delete", "--force", e.Name())
		}
		entries, _ = os.ReadDir(r.root)
		assert.Empty(t, entries, "left in --root")
	})
	return r
}

// run runs berth-oci with its output in files, not pipes: a created
// container's init inherits berth-oci's stdio (as containerd's fifos), and
// a pipe would stay open for as long as the container lives.
func (r *rt) run(args ...string) testenv.Result {
	r.t.Helper()
	return runFiles(r.t, r.bin, append([]string{"--root", r.root}, args...)...)
}

func runFiles(t *testing.T, bin string, args ...string) testenv.Result {
	t.Helper()
	dir := t.TempDir()
	out, err := os.Create(filepath.Join(dir, "stdout"))
	require.NoError(t, err)
	defer out.Close()
	errf, err := os.Create(filepath.Join(dir, "stderr"))
	require.NoError(t, err)
	defer errf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, errf
	res := testenv.Result{}
	if err := cmd.Run(); err != nil {
		ee, ok := err.(*exec.ExitError)
		require.True(t, ok, "%s %v: %v", bin, args, err)
		res.Code = ee.ExitCode()
	}
	b, _ := os.ReadFile(out.Name())
	res.Stdout = string(b)
	b, _ = os.ReadFile(errf.Name())
	res.Stderr = string(b)
	return res
}

func (r *rt) ok(args ...string) string {
	r.t.Helper()
	res := r.run(args...)
	require.Equal(r.t, 0, res.Code, "berth-oci %v: %s", args, res)
	return res.Stdout
}

func (r *rt) state(id string) map[string]any {
	r.t.Helper()
	var st map[string]any
	require.NoError(r.t, json.Unmarshal([]byte(r.ok("state", id)), &st))
	return st
}

// bundle writes a bundle whose config.json is berth-oci spec's with the
// busybox tree as its root, no terminal, and args; edit changes the rest.
func (r *rt) bundle(args []string, edit func(*specs.Spec)) string {
	r.t.Helper()
	dir := r.t.TempDir()
	res := runFiles(r.t, r.bin, "spec", "--bundle", dir)
	require.Equal(r.t, 0, res.Code, "spec: %s", res)
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	require.NoError(r.t, err)
	var s specs.Spec
	require.NoError(r.t, json.Unmarshal(b, &s))
	s.Root.Path = testenv.Rootfs(r.t)
	s.Process.Terminal = false
	s.Process.Args = args
	if edit != nil {
		edit(&s)
	}
	b, err = json.Marshal(&s)
	require.NoError(r.t, err)
	require.NoError(r.t, os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644))
	return dir
}

func TestRunExitCodeAndOutput(t *testing.T) {
	r := newRT(t)
	b := r.bundle([]string{"sh", "-c", "echo hello from $(hostname); exit 42"}, nil)
	res := r.run("run", "--bundle", b, "t1")
	assert.Equal(t, 42, res.Code, "%s", res)
	assert.Equal(t, "hello from berth-oci\n", res.Stdout)
	entries, _ := os.ReadDir(r.root)
	assert.Empty(t, entries, "run leaves nothing in --root")
	mode, err := cgroup.DetectMode()
	require.NoError(t, err)
	assert.False(t, cgroup.Exists(mode, "/berth-oci/t1"), "run removes the container's cgroup")
}

// TestLifecycle is containerd's sequence: create with a pid file, state,
// start, pause, resume, kill with SIGTERM (the init traps it), state
// stopped, delete.
func TestLifecycle(t *testing.T) {
	r := newRT(t)
	b := r.bundle([]string{"sh", "-c", `trap "exit 7" TERM; while :; do sleep 0.05; done`}, func(s *specs.Spec) {
		s.Annotations = map[string]string{"org.example": "yes"}
	})
	pidFile := filepath.Join(t.TempDir(), "init.pid")
	r.ok("create", "--bundle", b, "--pid-file", pidFile, "c1")
	raw, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	pid, err := strconv.Atoi(string(raw))
	require.NoError(t, err)

	st := r.state("c1")
	assert.Equal(t, "created", st["status"])
	assert.Equal(t, float64(pid), st["pid"])
	assert.Equal(t, b, st["bundle"])
	assert.Equal(t, map[string]any{"org.example": "yes"}, st["annotations"])
	assert.Contains(t, r.ok("list"), "c1")
	assert.Equal(t, 125, r.run("create", "--bundle", b, "c1").Code, "a second create of one id")

	r.ok("start", "c1")
	assert.Equal(t, "running", r.state("c1")["status"])
	assert.NotEqual(t, 0, r.run("start", "c1").Code, "start twice")
	var pids []int
	require.NoError(t, json.Unmarshal([]byte(r.ok("ps", "--format", "json", "c1")), &pids))
	assert.Contains(t, pids, pid)

	r.ok("pause", "c1")
	assert.Equal(t, "paused", r.state("c1")["status"])
	r.ok("resume", "c1")
	assert.Equal(t, "running", r.state("c1")["status"])
	assert.NotEqual(t, 0, r.run("delete", "c1").Code, "delete of a running container without --force")

	r.ok("kill", "c1", "TERM")
	require.Eventually(t, func() bool { return r.state("c1")["status"] == "stopped" }, 10*time.Second, 20*time.Millisecond)
	r.ok("delete", "c1")
	res := r.run("state", "c1")
	assert.Equal(t, 125, res.Code)
	assert.Contains(t, res.Stderr, "does not exist")
}

// TestDeleteCreatedAndForce: a created container is deleted without
// --force (containerd does it after a failed start); a running one with
// it, and its cgroup goes too.
func TestDeleteCreatedAndForce(t *testing.T) {
	r := newRT(t)
	b := r.bundle([]string{"sleep", "1000"}, nil)
	r.ok("create", "--bundle", b, "d1")
	r.ok("delete", "d1")
	r.ok("create", "--bundle", b, "d2")
	r.ok("start", "d2")
	r.ok("delete", "--force", "d2")
	mode, err := cgroup.DetectMode()
	require.NoError(t, err)
	assert.False(t, cgroup.Exists(mode, "/berth-oci/d2"))
	r.ok("delete", "--force", "d2") // gone already: no error with --force
}

// TestRefusals: what the bundle says that berth-oci does not do is one
// line and exit 125, and nothing is left in --root.
func TestRefusals(t *testing.T) {
	r := newRT(t)
	for _, c := range []struct {
		name string
		edit func(*specs.Spec)
		want string
	}{
		{"version", func(s *specs.Spec) { s.Version = "2.0.0" }, `unsupported ociVersion "2.0.0"`},
		{"systemd", func(s *specs.Spec) { s.Linux.CgroupsPath = "system.slice:berth:x" }, "slice:prefix:name is not supported"},
		{"intelrdt", func(s *specs.Spec) { s.Linux.IntelRdt = &specs.LinuxIntelRdt{} }, "linux.intelRdt is not supported"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := r.bundle([]string{"true"}, c.edit)
			res := r.run("create", "--bundle", b, "x")
			assert.Equal(t, 125, res.Code, "%s", res)
			assert.Contains(t, res.Stderr, c.want)
			assert.Equal(t, 1, strings.Count(strings.TrimSpace(res.Stderr), "\n")+1, "one line: %q", res.Stderr)
			entries, _ := os.ReadDir(r.root)
			assert.Empty(t, entries)
		})
	}
	res := r.run("--systemd-cgroup", "list")
	assert.Equal(t, 125, res.Code)
	assert.Contains(t, res.Stderr, "--systemd-cgroup is not supported")
	// Flags of runc's create whose behaviour berth does not have.
	for flag, want := range map[string]string{
		"--no-pivot":       "--no-pivot is not supported",
		"--no-new-keyring": "--no-new-keyring is not supported",
	} {
		res := r.run("create", flag, "--bundle", r.bundle([]string{"true"}, nil), "x")
		assert.Equal(t, 125, res.Code, "%s: %s", flag, res)
		assert.Contains(t, res.Stderr, want)
		entries, _ := os.ReadDir(r.root)
		assert.Empty(t, entries, "%s left something in --root", flag)
	}
}

// TestProcSymlinkRefused: a root whose /proc is a symlink would have the
// proc mount land on the symlink's target, outside the root (runc's
// "must be mounted on ordinary directory", CVE-2019-19921's kind). The
// hostile root is written here: /proc -> the host's /tmp/<dir>.
func TestProcSymlinkRefused(t *testing.T) {
	r := newRT(t)
	for _, name := range []string{"proc", "sys"} {
		t.Run(name, func(t *testing.T) {
			target := t.TempDir()
			root := filepath.Join(t.TempDir(), "rootfs")
			require.NoError(t, os.MkdirAll(filepath.Join(root, "bin"), 0o755))
			require.NoError(t, os.Symlink(target, filepath.Join(root, name)))
			b := r.bundle([]string{"true"}, func(s *specs.Spec) { s.Root.Path = root })
			res := r.run("run", "--bundle", b, "sym")
			assert.Equal(t, 125, res.Code, "%s", res)
			assert.Contains(t, res.Stderr, "must be mounted on ordinary directory")
			entries, _ := os.ReadDir(target)
			assert.Empty(t, entries, "nothing mounted on the symlink's target")
		})
	}
}

// TestLogJSON: with --log-format json an error is a JSON line in --log,
// as containerd's shim reads it back.
func TestLogJSON(t *testing.T) {
	r := newRT(t)
	log := filepath.Join(t.TempDir(), "log.json")
	res := r.run("--log", log, "--log-format", "json", "start", "nosuch")
	assert.Equal(t, 125, res.Code)
	b, err := os.ReadFile(log)
	require.NoError(t, err)
	var line struct{ Level, Msg, Time string }
	require.NoError(t, json.Unmarshal(b, &line), "%s", b)
	assert.Equal(t, "error", line.Level)
	assert.Contains(t, line.Msg, "container nosuch does not exist")
	_, err = time.Parse(time.RFC3339Nano, line.Time)
	assert.NoError(t, err)
}

// TestExec: a command line with its exit code, a process.json (what
// containerd's shim writes) with its environment and cwd, and --detach
// with a pid file: the process is in the container's cgroup.
func TestExec(t *testing.T) {
	r := newRT(t)
	b := r.bundle([]string{"sleep", "1000"}, nil)
	r.ok("create", "--bundle", b, "e1")
	r.ok("start", "e1")
	res := r.run("exec", "e1", "sh", "-c", "echo in $(hostname); exit 3")
	assert.Equal(t, 3, res.Code, "%s", res)
	assert.Equal(t, "in berth-oci\n", res.Stdout)

	p := filepath.Join(t.TempDir(), "process.json")
	require.NoError(t, os.WriteFile(p, []byte(`{"args":["sh","-c","echo $FOO $(pwd)"],"env":["FOO=bar"],"cwd":"/tmp","user":{"uid":0,"gid":0}}`), 0o600))
	assert.Equal(t, "bar /tmp\n", r.ok("exec", "--process", p, "e1"))

	pidFile := filepath.Join(t.TempDir(), "exec.pid")
	r.ok("exec", "--detach", "--pid-file", pidFile, "e1", "sleep", "100")
	raw, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	pid, err := strconv.Atoi(string(raw))
	require.NoError(t, err)
	var pids []int
	require.NoError(t, json.Unmarshal([]byte(r.ok("ps", "--format", "json", "e1")), &pids))
	assert.Contains(t, pids, pid)
	r.ok("delete", "--force", "e1")
}

// TestExecCapabilities: a process.json without capabilities (the
// review's hostile input) gets the container's init's sets, runc's three
// in a berth-oci spec bundle, never every capability of the
// host's root; a set beyond the init's bounding set, a relative cwd and
// an AppArmor profile are refused in one line.
func TestExecCapabilities(t *testing.T) {
	r := newRT(t)
	b := r.bundle([]string{"sleep", "1000"}, nil)
	r.ok("create", "--bundle", b, "x1")
	r.ok("start", "x1")
	t.Cleanup(func() { r.run("delete", "--force", "x1") })
	pid := int(r.state("x1")["pid"].(float64))
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	init := capLines(string(raw))
	// AUDIT_WRITE (29), NET_BIND_SERVICE (10) and KILL (5), as /proc
	// shows them (capsh --decode=20000420).
	assert.Equal(t, "0000000020000420", init["CapEff"], "the init's effective set")
	assert.Equal(t, "0000000020000420", init["CapBnd"], "the init's bounding set")

	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		return p
	}
	p := write("nocaps.json", `{"args":["cat","/proc/self/status"],"user":{"uid":0,"gid":0},"cwd":"/"}`)
	got := capLines(r.ok("exec", "--process", p, "x1"))
	for _, k := range []string{"CapEff", "CapPrm", "CapBnd"} {
		assert.Equal(t, init[k], got[k], "%s of a process.json without capabilities", k)
	}

	for name, c := range map[string]struct{ body, want string }{
		"beyond.json": {`{"args":["true"],"cwd":"/","capabilities":{"bounding":["CAP_SYS_ADMIN"],"effective":["CAP_SYS_ADMIN"],"permitted":["CAP_SYS_ADMIN"]}}`,
			"capabilities.bounding has CAP_SYS_ADMIN, beyond the container's bounding set"},
		"relcwd.json":   {`{"args":["true"],"cwd":"tmp"}`, `cwd "tmp" is not an absolute path`},
		"apparmor.json": {`{"args":["true"],"cwd":"/","apparmorProfile":"unconfined"}`, "apparmorProfile is not supported"},
		"selinux.json":  {`{"args":["true"],"cwd":"/","selinuxLabel":"system_u:system_r:spc_t:s0"}`, "selinuxLabel is not supported"},
	} {
		res := r.run("exec", "--process", write(name, c.body), "x1")
		assert.Equal(t, 125, res.Code, "%s: %s", name, res)
		assert.Contains(t, res.Stderr, c.want, name)
		assert.Equal(t, 1, strings.Count(strings.TrimSpace(res.Stderr), "\n")+1, "%s: one line: %s", name, res.Stderr)
	}
}

// TestCgroupInUse: a bundle whose linux.cgroupsPath names a group that
// holds a process (a host service's, here one the test makes) is refused
// before anything is made; the process lives on, the group stays.
// Adopted, delete --force would have killed the process and removed the
// group.
func TestCgroupInUse(t *testing.T) {
	r := newRT(t)
	mode, err := cgroup.DetectMode()
	require.NoError(t, err)
	path := fmt.Sprintf("/sec16-oci-inuse-%d", os.Getpid())
	g, err := cgroup.Create(mode, path, nil)
	require.NoError(t, err)
	sleep := exec.Command("sleep", "1000")
	require.NoError(t, sleep.Start())
	t.Cleanup(func() {
		_ = sleep.Process.Kill()
		_ = sleep.Wait()
		_ = g.Delete()
	})
	require.NoError(t, g.Add(sleep.Process.Pid))

	b := r.bundle([]string{"sleep", "1000"}, func(s *specs.Spec) { s.Linux.CgroupsPath = path })
	res := r.run("create", "--bundle", b, "cg1")
	if res.Code == 0 {
		r.run("delete", "--force", "cg1") // what the hostile bundle's caller would do next
	}
	assert.Equal(t, 125, res.Code, "%s", res)
	assert.Contains(t, res.Stderr, fmt.Sprintf("cgroupsPath %s: the cgroup exists and holds processes (pid %d, in ", path, sleep.Process.Pid))
	entries, _ := os.ReadDir(r.root)
	assert.Empty(t, entries, "a refused create leaves nothing in --root")
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", sleep.Process.Pid))
	require.NoError(t, err, "the group's process is gone")
	assert.NotContains(t, string(st), ") Z ", "the group's process was killed")
	assert.True(t, cgroup.Exists(mode, path), "the group was removed")
}

// capLines returns the Cap* lines of a /proc/PID/status, by name.
func capLines(status string) map[string]string {
	out := map[string]string{}
	for _, l := range strings.Split(status, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.HasPrefix(k, "Cap") {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}

// TestHooks: createRuntime, poststart and poststop run on the host with
// the container's state on stdin; createContainer (inside the container)
// is refused in one line.
func TestHooks(t *testing.T) {
	r := newRT(t)
	out := t.TempDir()
	hook := func(name string) specs.Hook {
		return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > " + filepath.Join(out, name)}}
	}
	b := r.bundle([]string{"sleep", "1000"}, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{
			CreateRuntime: []specs.Hook{hook("createRuntime")},
			Poststart:     []specs.Hook{hook("poststart")},
			Poststop:      []specs.Hook{hook("poststop")},
		}
	})
	r.ok("create", "--bundle", b, "h1")
	r.ok("start", "h1")
	r.ok("delete", "--force", "h1")
	for name, status := range map[string]string{"createRuntime": "created", "poststart": "running", "poststop": "stopped"} {
		raw, err := os.ReadFile(filepath.Join(out, name))
		require.NoError(t, err, name)
		var st map[string]any
		require.NoError(t, json.Unmarshal(raw, &st), "%s: %s", name, raw)
		assert.Equal(t, "h1", st["id"], name)
		assert.Equal(t, status, st["status"], name)
		assert.Equal(t, b, st["bundle"], name)
	}

	b = r.bundle([]string{"true"}, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{CreateContainer: []specs.Hook{hook("cc")}}
	})
	res := r.run("run", "--bundle", b, "h2")
	assert.Equal(t, 125, res.Code)
	assert.Contains(t, res.Stderr, "hooks.createContainer is not supported")
}

// TestUpdate: update --resources - (containerd's shim pipes the JSON)
// changes the running container's PID limit, as its cgroup shows.
func TestUpdate(t *testing.T) {
	r := newRT(t)
	b := r.bundle([]string{"sleep", "1000"}, nil)
	r.ok("create", "--bundle", b, "u1")
	r.ok("start", "u1")
	cmd := exec.Command(r.bin, "--root", r.root, "update", "--resources", "-", "u1")
	cmd.Stdin = strings.NewReader(`{"pids":{"limit":42}}`)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	mode, err := cgroup.DetectMode()
	require.NoError(t, err)
	g, err := cgroup.Load(mode, "/berth-oci/u1")
	require.NoError(t, err)
	limit, err := os.ReadFile(g.PidsMax())
	require.NoError(t, err)
	assert.Equal(t, "42", strings.TrimSpace(string(limit)))
	r.ok("delete", "--force", "u1")
}

// TestPreserveFds: --preserve-fds 1 hands fd 3 to the command at the same
// number (systemd's socket activation, conmon's sync pipes).
func TestPreserveFds(t *testing.T) {
	r := newRT(t)
	b := r.bundle([]string{"sh", "-c", "echo through fd 3 >&3"}, nil)
	pr, pw, err := os.Pipe()
	require.NoError(t, err)
	defer pr.Close()
	cmd := exec.Command(r.bin, "--root", r.root, "run", "--preserve-fds", "1", "--bundle", b, "f1")
	cmd.ExtraFiles = []*os.File{pw}
	out, err := cmd.CombinedOutput()
	pw.Close()
	require.NoError(t, err, "%s", out)
	got := make([]byte, 64)
	n, _ := pr.Read(got)
	assert.Equal(t, "through fd 3\n", string(got[:n]))
}

// TestConsoleSocket: with process.terminal, create sends the pty's master
// over --console-socket (ctr run -t, conmon -t); the command's output
// comes through it, and it runs on a terminal.
func TestConsoleSocket(t *testing.T) {
	r := newRT(t)
	b := r.bundle([]string{"sh", "-c", "[ -t 1 ] && echo on a tty; sleep 1000"}, func(s *specs.Spec) { s.Process.Terminal = true })
	path := filepath.Join(t.TempDir(), "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	require.NoError(t, err)
	defer l.Close()
	got := make(chan *os.File, 1)
	go func() {
		conn, err := l.AcceptUnix()
		if err != nil {
			got <- nil
			return
		}
		defer conn.Close()
		f, _ := conn.File()
		defer f.Close()
		m, err := consolesock.Recv(f)
		if err != nil {
			m = nil
		}
		got <- m
	}()
	r.ok("create", "--bundle", b, "--console-socket", path, "tty1")
	master := <-got
	require.NotNil(t, master, "no master on the console socket")
	defer master.Close()
	r.ok("start", "tty1")
	read := make(chan string, 1)
	go func() {
		// Up to the line's end: the terminal may hand it over in pieces
		// (the VM's emulated CPUs gave "on a tty", then "\r\n").
		var line []byte
		buf := make([]byte, 64)
		for !bytes.Contains(line, []byte("\n")) && len(line) < 256 {
			n, err := master.Read(buf)
			line = append(line, buf[:n]...)
			if err != nil {
				break
			}
		}
		read <- string(line)
	}()
	select {
	case s := <-read:
		assert.Equal(t, "on a tty\r\n", s)
	case <-time.After(10 * time.Second):
		t.Error("nothing on the terminal within 10s")
	}
	r.ok("delete", "--force", "tty1")
}

// TestQueries: features, spec --rootless, list --format json, and kill
// --all reaching every process of the cgroup.
func TestQueries(t *testing.T) {
	r := newRT(t)
	var f struct {
		OCIVersionMax string `json:"ociVersionMax"`
		Hooks         []string
		Linux         struct{ Namespaces []string }
	}
	require.NoError(t, json.Unmarshal([]byte(r.ok("features")), &f))
	assert.Equal(t, specs.Version, f.OCIVersionMax)
	assert.Equal(t, []string{"prestart", "createRuntime", "poststart", "poststop"}, f.Hooks, "the hooks berth-oci runs")
	assert.Contains(t, f.Linux.Namespaces, "user")

	dir := t.TempDir()
	res := runFiles(t, r.bin, "spec", "--rootless", "--bundle", dir)
	require.Equal(t, 0, res.Code, "%s", res)
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	require.NoError(t, err)
	var s specs.Spec
	require.NoError(t, json.Unmarshal(b, &s))
	assert.Len(t, s.Linux.UIDMappings, 1)
	assert.Contains(t, s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	assert.NotEqual(t, 0, runFiles(t, r.bin, "spec", "--bundle", dir).Code, "spec over an existing config.json")

	bundle := r.bundle([]string{"sh", "-c", "trap '' TERM; sleep 1000 & wait"}, nil)
	r.ok("create", "--bundle", bundle, "q1")
	r.ok("start", "q1")
	var list []map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.ok("list", "--format", "json")), &list))
	require.Len(t, list, 1)
	assert.Equal(t, "q1", list[0]["id"])
	assert.Equal(t, "running", list[0]["status"])
	r.ok("kill", "--all", "q1", "KILL")
	require.Eventually(t, func() bool { return r.state("q1")["status"] == "stopped" }, 10*time.Second, 20*time.Millisecond)
	r.ok("delete", "q1")
}
