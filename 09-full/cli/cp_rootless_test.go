//go:build linux

package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/internal/testenv"
)

// Rootless, cp of a stopped container: its overlay mounts only in a user
// namespace of its own, so cp runs again in one with the container's maps
// (inside/cpuserns.go) — both ways, with its own ids (--map-subids) kept,
// and what is copied in there at the next start. The second run is the
// container's root over the user's files: a symlink the container
// planted in its upper directory to a directory of the user's must
// resolve in the container's root, never reach the user's files.
func TestRootlessCpStopped(t *testing.T) {
	a := testenv.NewAccount(t, "img12bcp", true)
	bin := a.Berth(t)
	rootfs := a.Rootfs(t)
	run := func(args ...string) testenv.Result {
		t.Helper()
		return a.Run(t, nil, bin, args...)
	}
	ok := func(args ...string) string {
		t.Helper()
		r := run(args...)
		require.Equal(t, 0, r.Code, "berth %s: %s", strings.Join(args, " "), r)
		return strings.TrimSpace(r.Stdout)
	}
	t.Cleanup(func() {
		if ids := strings.Fields(run("ps", "-aq").Stdout); len(ids) > 0 {
			run(append([]string{"rm", "-f"}, ids...)...)
		}
	})
	// The user's own directories: what a symlink followed in the user's
	// namespace (not the container's root) would read and write.
	mine := func(p string, dir bool, content string) string {
		if dir {
			require.NoError(t, os.MkdirAll(p, 0o700))
		} else {
			require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		}
		require.NoError(t, os.Chown(p, a.UID, a.GID))
		return p
	}
	hostDir := mine(filepath.Join(a.Home, "private"), true, "")
	mine(filepath.Join(hostDir, "secret"), false, "host secret\n")
	out := mine(filepath.Join(a.Home, "out"), true, "")
	in := mine(filepath.Join(a.Home, "in"), false, "copied in while stopped\n")

	for _, mode := range [][]string{nil, {"--map-subids"}} {
		name := "c" + strings.Join(mode, "")
		args := append([]string{"run", "--name", name, "--rootfs", rootfs, "--network", "none"}, mode...)
		ok(append(args, "sh", "-c", "if test -f /data/in; then stat -c '%u %s' /data/in; exit 0; fi; "+
			"mkdir /data; echo inside >/data/f; chown 1000:1000 /data/f; "+
			"ln -s "+hostDir+" /static; ln -s "+hostDir+"/secret /leak")...)
		require.Equal(t, "exited", ok("inspect", "--format", "{{.State.Status}}", name))

		f := filepath.Join(out, name)
		ok("cp", name+":/data/f", f)
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		assert.Equal(t, "inside\n", string(b), name)
		st, err := os.Stat(f)
		require.NoError(t, err)
		assert.EqualValues(t, a.UID, st.Sys().(*syscall.Stat_t).Uid, "%s: copied out, the user's", name)
		r := run("cp", name+":/data/f", "-")
		require.Equal(t, 0, r.Code, r.String())
		assert.Contains(t, r.Stdout, "inside\n", "as a tar stream")

		ok("cp", in, name+":/data/")
		assert.Equal(t, "0 24", ok("start", "-a", name), "%s: copied in, the container's root's", name)

		for _, src := range []string{name + ":/static/secret", name + ":/leak"} {
			stolen := filepath.Join(out, "stolen")
			os.Remove(stolen)
			r := run("cp", src, stolen)
			if st, err := os.Lstat(stolen); err == nil && st.Mode().IsRegular() {
				b, _ := os.ReadFile(stolen) // a symlink is copied as one: not a read
				assert.NotContains(t, string(b), "host secret", "%s: %s", src, r)
			}
			r = run("cp", src, "-")
			assert.NotContains(t, r.Stdout, "host secret", "%s as a tar stream", src)
		}
		r = run("cp", in, name+":/static/pwned")
		assert.NotEqual(t, 0, r.Code, r.String())
		assert.NoFileExists(t, filepath.Join(hostDir, "pwned"))
		run("cp", in, name+":/leak")
		b, _ = os.ReadFile(filepath.Join(hostDir, "secret"))
		assert.Equal(t, "host secret\n", string(b), "%s: cp wrote through the symlink", name)
		assert.Equal(t, "exited", ok("inspect", "--format", "{{.State.Status}}", name))
	}
}
