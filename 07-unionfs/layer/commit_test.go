//go:build linux

package layer

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/07-unionfs/diff"
	"berth/07-unionfs/layertest"
	"berth/internal/testenv"
)

// A running container can swap what commit has listed: a directory for a
// symlink to a host directory between the listing and the reading. Commit
// reads through the upper directory's tree and refuses what changed; the
// old code followed the symlink (Lstat of upper/d/f resolved d) and
// archived the host's file.
func TestCommitNeverFollowsASwappedPath(t *testing.T) {
	testenv.RequireRoot(t)
	host := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(host, "f"), []byte("HOST SECRET\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(host, "g"), []byte("HOST SECRET\n"), 0o600))
	for _, tc := range []struct {
		name string
		swap func(upper string)
	}{
		{"a directory swapped for a symlink", func(upper string) {
			require.NoError(t, os.Rename(filepath.Join(upper, "d"), filepath.Join(upper, "d.old")))
			require.NoError(t, os.Symlink(host, filepath.Join(upper, "d")))
		}},
		{"a file swapped for a symlink", func(upper string) {
			require.NoError(t, os.Remove(filepath.Join(upper, "d/f")))
			require.NoError(t, os.Symlink(filepath.Join(host, "f"), filepath.Join(upper, "d/f")))
		}},
		{"a file swapped for a hard link to another", func(upper string) {
			require.NoError(t, os.Remove(filepath.Join(upper, "d/f")))
			require.NoError(t, os.Link(filepath.Join(upper, "d/g"), filepath.Join(upper, "d/f")))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			top, bottom := twoLayers(t)
			store := NewStore(t.TempDir())
			root := newContainer(t, store, "swap", DriverOverlay, top, bottom)
			layertest.Write(t, root, map[string]string{"d/f": "container's own\n", "d/g": "another\n"})
			changes, err := store.Changes("swap")
			require.NoError(t, err)
			tc.swap(store.diffDir("swap"))
			// All of them, and /d/f alone: its parent is then not
			// checked first, the walk beneath the root must refuse it.
			var f []diff.Change
			for _, c := range changes {
				if c.Path == "/d/f" {
					f = append(f, c)
				}
			}
			require.Len(t, f, 1)
			for _, list := range [][]diff.Change{changes, f} {
				var buf bytes.Buffer
				_, err = diff.WriteLayer(&buf, list, diff.Owners{})
				assert.False(t, bytes.Contains(buf.Bytes(), []byte("HOST SECRET")), "the host's file is in the layer")
				require.Error(t, err)
				assert.Regexp(t, `^(/d(/f)? changed while it was being committed: refusing|open /d/f: a symlink or not a directory)`, err.Error())
			}
		})
	}
}

// Without openat2 (before Linux 5.6, or refused by a seccomp filter) a
// commit that meets a swapped directory refuses, as with openat2 (the
// tree's own refusals: tree/tree_test.go).
func TestCommitWithoutOpenat2(t *testing.T) {
	testenv.RequireRoot(t)
	layertest.WithoutOpenat2(t)

	host := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(host, "f"), []byte("HOST SECRET\n"), 0o600))
	top, bottom := twoLayers(t)
	store := NewStore(t.TempDir())
	croot := newContainer(t, store, "noat2", DriverOverlay, top, bottom)
	layertest.Write(t, croot, map[string]string{"d/f": "container's own\n"})
	changes, err := store.Changes("noat2")
	require.NoError(t, err)
	upper := store.diffDir("noat2")
	require.NoError(t, os.Rename(filepath.Join(upper, "d"), filepath.Join(upper, "d.old")))
	require.NoError(t, os.Symlink(host, filepath.Join(upper, "d")))
	var buf bytes.Buffer
	_, err = diff.WriteLayer(&buf, changes, diff.Owners{})
	require.Error(t, err)
	assert.False(t, bytes.Contains(buf.Bytes(), []byte("HOST SECRET")))
}
