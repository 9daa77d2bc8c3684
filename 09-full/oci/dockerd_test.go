//go:build linux

package oci_test

// dockerd runs berth-oci as a runtime of its own: dockerd --add-runtime
// berth=bin/berth-oci, docker run --runtime berth. The daemon is Debian's
// docker.io, on a private socket, data root and exec root (no bridge, no
// iptables), driven by the docker CLI on PATH.

import (
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

func TestDockerd(t *testing.T) {
	testenv.RequireRoot(t)
	for _, p := range []string{"dockerd", "docker"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s is not installed (Debian's docker.io; scripts/setup.sh installs it)", p)
		}
	}
	bin := binary(t)
	dir, err := os.MkdirTemp("", "boci-dk")
	require.NoError(t, err)
	sock := filepath.Join(dir, "d.sock")
	log, err := os.Create(filepath.Join(dir, "dockerd.log"))
	require.NoError(t, err)
	d := exec.Command("dockerd", "-H", "unix://"+sock, "--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"), "--pidfile", filepath.Join(dir, "d.pid"),
		"--bridge", "none", "--iptables=false", "--ip6tables=false", "--containerd-namespace", "boci",
		"--add-runtime", "berth="+bin)
	d.Stdout, d.Stderr = log, log
	require.NoError(t, d.Start())
	dk := func(args ...string) testenv.Result {
		t.Helper()
		return runFiles(t, "docker", append([]string{"-H", "unix://" + sock}, args...)...)
	}
	t.Cleanup(func() {
		dk("rm", "-f", "k1")
		_ = d.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = d.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = d.Process.Kill()
			<-done
		}
		log.Close()
		if t.Failed() {
			b, _ := os.ReadFile(log.Name())
			t.Logf("dockerd's log:\n%s", b)
		}
		os.RemoveAll(dir)
	})
	require.Eventually(t, func() bool { return dk("version").Code == 0 }, 30*time.Second, 100*time.Millisecond, "dockerd did not come up")
	tarball := filepath.Join(dir, "busybox.tar")
	out, err := exec.Command("tar", "-C", testenv.Rootfs(t), "-cf", tarball, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	r := dk("import", tarball, "berth-oci-busybox:latest")
	require.Equal(t, 0, r.Code, "import: %s", r)
	run := []string{"--runtime", "berth", "--network", "none"}

	r = dk(append(append([]string{"run", "--rm"}, run...), "berth-oci-busybox", "sh", "-c", "echo hello; exit 42")...)
	assert.Equal(t, 42, r.Code, "run --rm: %s", r)
	assert.Equal(t, "hello\n", r.Stdout)
	r = dk(append(append([]string{"run", "--rm", "-e", "FOO=bar"}, run...), "berth-oci-busybox", "sh", "-c", "echo $FOO")...)
	assert.Equal(t, "bar\n", r.Stdout, "-e: %s", r)

	r = dk(append(append([]string{"run", "-d", "--name", "k1"}, run...), "berth-oci-busybox",
		"sh", "-c", `echo up; trap "echo bye; exit 3" TERM; while :; do sleep 0.05; done`)...)
	require.Equal(t, 0, r.Code, "run -d: %s", r)
	r = dk("exec", "k1", "sh", "-c", "echo in; exit 4")
	assert.Equal(t, 4, r.Code, "exec: %s", r)
	assert.Equal(t, "in\n", r.Stdout)
	r = dk("pause", "k1")
	assert.Equal(t, 0, r.Code, "pause: %s", r)
	r = dk("inspect", "-f", "{{.State.Status}}", "k1")
	assert.Equal(t, "paused", strings.TrimSpace(r.Stdout), "%s", r)
	r = dk("unpause", "k1")
	assert.Equal(t, 0, r.Code, "unpause: %s", r)
	r = dk("stop", "k1")
	assert.Equal(t, 0, r.Code, "stop: %s", r)
	r = dk("inspect", "-f", "{{.State.ExitCode}}", "k1")
	assert.Equal(t, "3", strings.TrimSpace(r.Stdout), "the trapped SIGTERM's exit code: %s", r)
	r = dk("logs", "k1")
	assert.Equal(t, "up\nbye\n", r.Stdout, "logs: %s", r)
	r = dk("rm", "k1")
	assert.Equal(t, 0, r.Code, "rm: %s", r)
	r = dk("ps", "-a", "-q")
	assert.Empty(t, strings.TrimSpace(r.Stdout), "left in docker ps -a")
	entries, _ := os.ReadDir(filepath.Join(dir, "exec", "runtime-runc", "boci"))
	assert.Empty(t, entries, "left in berth-oci's root (dockerd's exec root)")
}
