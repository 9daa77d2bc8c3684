//go:build linux

package layer

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"berth/07-unionfs/layertest"
	"berth/07-unionfs/tree"
	"berth/internal/testenv"
)

// The rootless half of the store alone, without run: an ordinary user
// (nobody) in a user and mount namespace of its own (unshare -Urm) mounts a
// container layer with userxattr, deletes and re-creates through it, and
// the upper directory holds a whiteout and user.overlay.opaque. (run does
// the same from Step.PreChild: rootless_run_test.go.)
func TestRootlessOverlayUserxattr(t *testing.T) {
	if dir := os.Getenv("BERTH_TEST_USERNS_DIR"); dir != "" {
		rootlessHelper(t, dir)
		return
	}
	testenv.RequireRoot(t)
	for _, tool := range []string{"setpriv", "unshare"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipped: %s not installed", tool)
		}
	}
	// nobody must reach the directory and run the test binary: both go
	// in a directory of our own, mode 0755 (t.TempDir's parents are 0700).
	base, err := os.MkdirTemp("", "berth-rootless-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(base) })
	require.NoError(t, os.Chmod(base, 0o755))
	self := filepath.Join(base, "layer.test")
	require.NoError(t, exec.Command("cp", os.Args[0], self).Run())
	dir := filepath.Join(base, "rootless")
	layertest.Write(t, dir, map[string]string{"lower/gone": "g", "lower/d/x": "x"})
	require.NoError(t, filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, 65534, 65534)
	}))
	cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
		"unshare", "--user", "--map-root-user", "--mount", self, "-test.run", "^TestRootlessOverlayUserxattr$", "-test.v")
	cmd.Env = append(os.Environ(), "BERTH_TEST_USERNS_DIR="+dir)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	upper := filepath.Join(dir, "data/layers/containers/rl/diff")
	var st unix.Stat_t
	require.NoError(t, unix.Lstat(filepath.Join(upper, "gone"), &st))
	assert.True(t, tree.IsWhiteout(&st), "an unprivileged whiteout (kernel >= 5.8)")
	v := make([]byte, 4)
	n, err := unix.Lgetxattr(filepath.Join(upper, "d"), tree.XattrOpaqueUser, v)
	require.NoError(t, err, "user.overlay.opaque on the re-created directory")
	assert.Equal(t, "y", string(v[:n]))
	_, err = unix.Lgetxattr(filepath.Join(upper, "d"), tree.XattrOpaqueTrusted, v)
	assert.Error(t, err, "no trusted.* xattr: the user could not have set one")
	store := NewStore(filepath.Join(dir, "data"))
	changes, err := store.Changes("rl")
	require.NoError(t, err)
	var got []string
	for _, c := range changes {
		got = append(got, c.String())
	}
	assert.Equal(t, []string{"C /d", "A /d/new", "D /d/x", "D /gone"}, got)
}

// rootlessHelper runs as uid 0 of a user namespace owned by nobody.
func rootlessHelper(t *testing.T, dir string) {
	store := NewStore(filepath.Join(dir, "data"))
	rec := &Record{ID: "rl", Driver: DriverOverlay, Lowers: []string{filepath.Join(dir, "lower")}, Userxattr: true}
	root, err := store.Create(rec, nil)
	require.NoError(t, err)
	require.NoError(t, os.Remove(filepath.Join(root, "gone")))
	require.NoError(t, os.RemoveAll(filepath.Join(root, "d")))
	require.NoError(t, os.Mkdir(filepath.Join(root, "d"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "d/new"), nil, 0o644))
	require.NoError(t, store.Unmount("rl"))
}
