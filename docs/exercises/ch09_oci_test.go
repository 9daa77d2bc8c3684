//go:build exercise && linux

package exercises

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/internal/testenv"
)

// ociBin is bin/berth-oci of this checkout: $BERTH_BIN's, else built.
func ociBin(t *testing.T) string {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.Rootfs(t)
	if dir := os.Getenv("BERTH_BIN"); dir != "" {
		if p := filepath.Join(dir, "berth-oci"); fileExists(p) {
			return p
		}
	}
	out := filepath.Join(t.TempDir(), "berth-oci")
	goCmd := "go"
	if _, err := exec.LookPath(goCmd); err != nil {
		goCmd = "/usr/local/go/bin/go"
	}
	cmd := exec.Command(goCmd, "build", "-o", out, "./09-full/berth-oci")
	cmd.Dir = repo(t)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./09-full/berth-oci: %v\n%s", err, b)
	}
	return out
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// ociRun runs berth-oci with --root root, its output in files (a created
// init keeps a pipe open for as long as it lives).
func ociRun(t *testing.T, bin, root string, args ...string) (string, int) {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "out")
	require.NoError(t, err)
	defer f.Close()
	cmd := exec.Command(bin, append([]string{"--root", root}, args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	code := 0
	if err := cmd.Run(); err != nil {
		ee, ok := err.(*exec.ExitError)
		require.True(t, ok, "%v", err)
		code = ee.ExitCode()
	}
	b, _ := os.ReadFile(f.Name())
	return string(b), code
}

// ociBundle is berth-oci spec's bundle over the busybox tree, running args.
func ociBundle(t *testing.T, bin string, args ...string) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(bin, "spec", "--bundle", dir)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	require.NoError(t, err)
	var s map[string]any
	require.NoError(t, json.Unmarshal(b, &s))
	s["root"] = map[string]any{"path": testenv.Rootfs(t), "readonly": true}
	p := s["process"].(map[string]any)
	p["terminal"], p["args"] = false, args
	b, err = json.Marshal(s)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644))
	return dir
}

func cmdline(pid string) string {
	b, _ := os.ReadFile("/proc/" + pid + "/cmdline")
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

// 09-27: the init's command line before and after start.
func TestExercise09_27(t *testing.T) {
	a := answer(t, "09-27", 2)
	bin := ociBin(t)
	root := filepath.Join(t.TempDir(), "root")
	b := ociBundle(t, bin, "sleep", "1000")
	pidFile := filepath.Join(t.TempDir(), "pid")
	out, code := ociRun(t, bin, root, "create", "--bundle", b, "--pid-file", pidFile, "ex27")
	require.Equal(t, 0, code, out)
	defer ociRun(t, bin, root, "delete", "--force", "ex27")
	raw, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	pid := string(raw)
	before := cmdline(pid)
	out, code = ociRun(t, bin, root, "start", "ex27")
	require.Equal(t, 0, code, out)
	// start returns once the init is told to go: its execve may still be
	// under way (an empty command line), as a second ps would show.
	after := cmdline(pid)
	for deadline := time.Now().Add(10 * time.Second); (after == "" || after == before) && time.Now().Before(deadline); after = cmdline(pid) {
		time.Sleep(20 * time.Millisecond)
	}
	assert.True(t, same(a[0], before), "line 1: the init's command line before start: %s, not %q", before, a[0])
	assert.True(t, same(a[1], after), "line 2: the init's command line after start: %s, not %q", after, a[1])
}

// 09-28: a container whose init was killed: its status, and the pid
// state reports for it.
func TestExercise09_28(t *testing.T) {
	a := answer(t, "09-28", 2)
	bin := ociBin(t)
	root := filepath.Join(t.TempDir(), "root")
	b := ociBundle(t, bin, "sleep", "1000")
	out, code := ociRun(t, bin, root, "create", "--bundle", b, "ex28")
	require.Equal(t, 0, code, out)
	defer ociRun(t, bin, root, "delete", "--force", "ex28")
	out, code = ociRun(t, bin, root, "start", "ex28")
	require.Equal(t, 0, code, out)
	out, code = ociRun(t, bin, root, "kill", "ex28", "KILL")
	require.Equal(t, 0, code, out)
	var st struct {
		Status string `json:"status"`
		Pid    *int   `json:"pid"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		out, code = ociRun(t, bin, root, "state", "ex28")
		require.Equal(t, 0, code, out)
		require.NoError(t, json.Unmarshal([]byte(out), &st), out)
		if st.Status == "stopped" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.NotNil(t, st.Pid, out)
	assert.True(t, same(a[0], st.Status), "line 1: the status after kill KILL: %s, not %q", st.Status, a[0])
	assert.True(t, same(a[1], jsonInt(*st.Pid)), "line 2: the pid state shows then: %d, not %q", *st.Pid, a[1])
}

func jsonInt(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
