//go:build linux

package oci_test

// podman drives berth-oci through conmon as it drives crun or runc:
// podman --runtime bin/berth-oci. Its storage is private (--root,
// --runroot, under the test's directory), and so is berth-oci's state
// (--runtime-flag root=...).

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/internal/testenv"
)

func TestPodman(t *testing.T) {
	testenv.RequireRoot(t)
	for _, p := range []string{"podman", "conmon"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s is not installed (Debian's; scripts/setup.sh installs it)", p)
		}
	}
	bin := binary(t)
	dir, err := os.MkdirTemp("", "boci-pm")
	require.NoError(t, err)
	ociRoot := filepath.Join(dir, "oci")
	base := []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"),
		"--runtime", bin, "--runtime-flag", "root=" + ociRoot,
		"--cgroup-manager", "cgroupfs", "--events-backend", "file"}
	pm := func(args ...string) testenv.Result {
		t.Helper()
		return runFiles(t, "podman", append(append([]string{}, base...), args...)...)
	}
	t.Cleanup(func() {
		pm("rm", "-a", "-f")
		// podman's overlay storage leaves its mounts to `podman system
		// reset`; the directory goes after it.
		pm("system", "reset", "-f")
		os.RemoveAll(dir)
	})
	tarball := filepath.Join(dir, "busybox.tar")
	out, err := exec.Command("tar", "-C", testenv.Rootfs(t), "-cf", tarball, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	r := pm("import", tarball, "localhost/berth-oci-busybox")
	require.Equal(t, 0, r.Code, "import: %s", r)
	// podman 4.3's default limits fail here (bench-facts.md): root lacks
	// CAP_SYS_RESOURCE and the open-files hard limit is 20000.
	run := []string{"--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768", "--network", "none"}

	cidFile := filepath.Join(dir, "rm.cid")
	r = pm(append(append([]string{"run", "--rm", "--cidfile", cidFile}, run...), "localhost/berth-oci-busybox", "sh", "-c", "echo hello; exit 42")...)
	assert.Equal(t, 42, r.Code, "run --rm: %s", r)
	assert.Equal(t, "hello\n", r.Stdout)
	// podman 4.3's --rm clean-up (conmon's exit command) calls `delete
	// --force ID` without --runtime-flag, so with the default --root, not
	// ours (a wrapper that logs the calls shows it; runc gets the same):
	// the container is stopped and left in our root. Delete it as that
	// call meant to.
	cid, err := os.ReadFile(cidFile)
	require.NoError(t, err)
	st := runFiles(t, bin, "--root", ociRoot, "state", strings.TrimSpace(string(cid)))
	assert.Contains(t, st.Stdout, `"status": "stopped"`, "%s", st)
	st = runFiles(t, bin, "--root", ociRoot, "delete", strings.TrimSpace(string(cid)))
	assert.Equal(t, 0, st.Code, "%s", st)

	r = pm(append(append([]string{"run", "-d", "--name", "p1"}, run...), "localhost/berth-oci-busybox",
		"sh", "-c", `echo up; trap "echo bye; exit 3" TERM; while :; do sleep 0.05; done`)...)
	require.Equal(t, 0, r.Code, "run -d: %s", r)
	r = pm("exec", "p1", "sh", "-c", "echo in; exit 4")
	assert.Equal(t, 4, r.Code, "exec: %s", r)
	assert.Equal(t, "in\n", r.Stdout)
	r = pm("stop", "-t", "10", "p1")
	assert.Equal(t, 0, r.Code, "stop: %s", r)
	r = pm("inspect", "--format", "{{.State.ExitCode}}", "p1")
	assert.Equal(t, "3", strings.TrimSpace(r.Stdout), "the trapped SIGTERM's exit code: %s", r)
	r = pm("logs", "p1")
	assert.Equal(t, "up\nbye\n", r.Stdout, "logs: %s", r)
	r = pm("rm", "p1")
	assert.Equal(t, 0, r.Code, "rm: %s", r)
	r = pm("ps", "-a", "-q")
	assert.Empty(t, strings.TrimSpace(r.Stdout), "left in podman ps -a")
	// The same bug again, by timing: when conmon's exit command (podman
	// container cleanup, which calls delete without --runtime-flag) runs
	// before `podman rm`, podman takes p1 as deleted and rm does not call
	// berth-oci. What may be left is a stopped container; delete it as
	// that call meant to, and nothing else may be left.
	entries, _ := os.ReadDir(ociRoot)
	for _, e := range entries {
		st := runFiles(t, bin, "--root", ociRoot, "state", e.Name())
		assert.Contains(t, st.Stdout, `"status": "stopped"`, "left in berth-oci's root and not stopped: %s", st)
		st = runFiles(t, bin, "--root", ociRoot, "delete", e.Name())
		assert.Equal(t, 0, st.Code, "%s", st)
	}
	entries, _ = os.ReadDir(ociRoot)
	assert.Empty(t, entries, "left in berth-oci's root")
}
