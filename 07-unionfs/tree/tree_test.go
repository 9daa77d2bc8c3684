//go:build linux

package tree_test

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"berth/07-unionfs/layertest"
	"berth/07-unionfs/tree"
	"berth/internal/testenv"
)

// Without openat2 (before Linux 5.6, or refused by a seccomp filter) a
// tree is walked one name at a time with O_NOFOLLOW: the same refusals.
func TestTreeWithoutOpenat2(t *testing.T) {
	testenv.RequireRoot(t)
	layertest.WithoutOpenat2(t)

	host := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(host, "f"), []byte("HOST SECRET\n"), 0o600))
	root := t.TempDir()
	layertest.Write(t, root, map[string]string{"d/f": "mine", "up": "->" + host, "d/lnk": "->" + host + "/f"})
	tr, err := tree.Open(root)
	require.NoError(t, err)
	defer tr.Close()
	h, err := tr.Handle("d/f")
	require.NoError(t, err)
	f, err := h.Open()
	require.NoError(t, err)
	b, err := io.ReadAll(f)
	require.NoError(t, err)
	assert.Equal(t, "mine", string(b))
	f.Close()
	h.Close()
	_, err = tr.Handle("up/f")
	assert.ErrorIs(t, err, unix.ENOTDIR, "a symlink on the way is not a directory")
	h, err = tr.Handle("d/lnk")
	require.NoError(t, err)
	assert.True(t, h.IsSymlink(), "the last name is opened itself")
	_, err = h.Open()
	assert.Error(t, err, "a symlink is never opened for reading")
	h.Close()
	_, err = tr.Handle(strings.Repeat("d/", 2048))
	assert.ErrorIs(t, err, tree.ErrTooDeep)
}
