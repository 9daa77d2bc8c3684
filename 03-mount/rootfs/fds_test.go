//go:build linux

package rootfs_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/internal/testenv"
)

// withFds runs argv from a shell that has opened the file secret on fd 7
// and the host's / on fd 8, as `exec 7<secret 8</` does: the runtime
// inherits both, without close-on-exec.
func withFds(t *testing.T, env []string, secret string, argv ...string) testenv.Result {
	t.Helper()
	return testenv.Run(t, env, "sh", append([]string{"-c", `exec 7<"$1" 8</; shift; exec "$@"`, "sh", secret}, argv...)...)
}

// A container with a root of its own still reached the host through a
// descriptor its runtime inherited: /proc/self/fd/7 read a host file that
// no path inside leads to, /proc/self/fd/8/ listed the host's /, and a
// `cd` there put the shell on the host (CVE-2024-21626's class). Neither
// fd may reach the command, nor the init that --init keeps as PID 1.
func TestInheritedFdsDoNotLeadOutside(t *testing.T) {
	testenv.RequireRoot(t)
	secret := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secret, []byte("host secret\n"), 0o600))
	bin := testenv.Binary(t, "03-mount")
	script := `cat /proc/self/fd/7; ls /proc/self/fd/8/; cat /proc/1/fd/7; cd /proc/self/fd/8 && ls; echo fds: $(ls /proc/self/fd)`
	for _, init := range []bool{false, true} {
		t.Run(fmt.Sprintf("init=%v", init), func(t *testing.T) {
			args := []string{bin, "run"}
			if init {
				args = append(args, "--init")
			}
			r := withFds(t, testenv.StateEnv(t), secret, append(args, "sh", "-c", script)...)
			assert.Equal(t, 0, r.Code, r.String())
			assert.NotContains(t, r.Stdout, "host secret", r.String())
			// Nothing listed, nothing read: only the command's own fds.
			assert.Equal(t, "fds: 0 1 2 3\n", r.Stdout, r.String())
			assert.Equal(t, "cat: can't open '/proc/self/fd/7': No such file or directory\n"+
				"ls: /proc/self/fd/8/: No such file or directory\n"+
				"cat: can't open '/proc/1/fd/7': No such file or directory\n"+
				"sh: cd: line 0: can't cd to /proc/self/fd/8: No such file or directory\n", r.Stderr)
		})
	}
}

// An image whose WORKDIR is /proc/self/fd/8 started the container with its
// working directory on the host's /, given a runtime that inherited fd 8.
// Stage 03 has no -w flag: the working directory comes from an image's
// WORKDIR (stage 08), so this test makes such an image. The run must be
// refused, before the command runs.
func TestWorkdirThroughAnInheritedFdIsRefused(t *testing.T) {
	testenv.RequireRoot(t)
	env := testenv.StateEnv(t)
	image := testenv.Binary(t, "08-image")
	r := testenv.Run(t, env, image, "import", "-c", "WORKDIR /proc/self/fd/8", testenv.Rootfs(t), "escape")
	require.Equal(t, 0, r.Code, r.String())
	secret := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secret, []byte("host secret\n"), 0o600))

	r = withFds(t, env, secret, image, "run", "--net", "none", "--rm", "--image", "escape", "sh", "-c", "echo ran in $(pwd); ls")
	assert.Equal(t, 125, r.Code, r.String())
	assert.Empty(t, r.Stdout, "the command must not run")
	// Stage 08 makes a WORKDIR the image lacks; here there is nothing to
	// make it in, and it says so.
	assert.Regexp(t, `^08-image: .*/proc/self/fd/8.*: no such file or directory\n$`, r.Stderr)
}
