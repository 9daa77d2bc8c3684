//go:build linux

package layer

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"berth/07-unionfs/layertest"
	"berth/07-unionfs/tree"
	"berth/07-unionfs/untar"
	"berth/internal/testenv"
)

var drivers = []string{DriverOverlay, DriverCopy}

// twoLayers makes a bottom and a top layer:
//
//	bottom: a.txt=A2 dir/{x,y} keep/k del
//	top:    a.txt=A1 b.txt dir/z
func twoLayers(t *testing.T) (top, bottom string) {
	d := t.TempDir()
	top, bottom = filepath.Join(d, "top"), filepath.Join(d, "bottom")
	layertest.Write(t, bottom, map[string]string{"a.txt": "A2", "dir/x": "x", "dir/y": "y", "keep/k": "k", "del": "d"})
	layertest.Write(t, top, map[string]string{"a.txt": "A1", "b.txt": "B1", "dir/z": "z"})
	return top, bottom
}

// newContainer creates a container layer on lowers with a driver and
// removes it when the test ends.
func newContainer(t *testing.T, store Store, id, driver string, lowers ...string) string {
	t.Helper()
	rec := &Record{ID: id, Driver: driver, Lowers: lowers}
	root, err := store.Create(rec, func(dir string, below []string) error {
		return writeInit(dir, below, nil, false)
	})
	t.Cleanup(func() { assert.NoError(t, store.Remove(id)) })
	require.NoError(t, err)
	return root
}

// act does to a container's root what a process inside would do.
func act(t *testing.T, root string) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(root, "a.txt"), []byte("new"), 0o644))
	require.NoError(t, os.Remove(filepath.Join(root, "del")))
	require.NoError(t, os.RemoveAll(filepath.Join(root, "dir")))
	layertest.Write(t, root, map[string]string{"dir/new": "n", "newdir/f": "f", "ln": "->a.txt", "h1": "hard"})
	require.NoError(t, os.Link(filepath.Join(root, "h1"), filepath.Join(root, "h2")))
	require.NoError(t, os.Chmod(filepath.Join(root, "keep/k"), 0o600))
	require.NoError(t, unix.Lsetxattr(filepath.Join(root, "newdir/f"), "user.note", []byte("hello"), 0))
}

// The behaviour a learner checks by hand, for both drivers.
func TestDriverBehaviour(t *testing.T) {
	testenv.RequireRoot(t)
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			top, bottom := twoLayers(t)
			store := NewStore(t.TempDir())
			root := newContainer(t, store, "c1", driver, top, bottom)

			// A file from a lower layer is visible; the top layer wins.
			assert.Equal(t, "A1", layertest.Read(t, filepath.Join(root, "a.txt")))
			assert.Equal(t, "y", layertest.Read(t, filepath.Join(root, "dir/y")))
			assert.Equal(t, "z", layertest.Read(t, filepath.Join(root, "dir/z")))
			// The init layer is there: empty mount points for 04's files.
			for _, f := range []string{"etc/hostname", "etc/hosts", "etc/resolv.conf"} {
				assert.Equal(t, "", layertest.Read(t, filepath.Join(root, f)))
			}

			act(t, root)

			// Writes and deletes never reach a lower layer.
			assert.Equal(t, "new", layertest.Read(t, filepath.Join(root, "a.txt")))
			assert.Equal(t, "A1", layertest.Read(t, filepath.Join(top, "a.txt")), "lower file unchanged")
			assert.False(t, layertest.Exists(filepath.Join(root, "del")))
			assert.Equal(t, "d", layertest.Read(t, filepath.Join(bottom, "del")), "deleted lower file intact")
			// The re-created directory hides what the lowers had in it.
			names, err := tree.ReadNames(filepath.Join(root, "dir"))
			require.NoError(t, err)
			assert.Equal(t, []string{"new"}, names)
			assert.True(t, layertest.Exists(filepath.Join(bottom, "dir/x")))

			if driver == DriverOverlay {
				upper := store.diffDir("c1")
				var st unix.Stat_t
				require.NoError(t, unix.Lstat(filepath.Join(upper, "del"), &st))
				assert.True(t, tree.IsWhiteout(&st), "delete leaves a 0/0 character device in the upper dir")
				assert.True(t, layertest.IsOpaque(t, filepath.Join(upper, "dir")), "a re-created directory is opaque")
				assert.Equal(t, "new", layertest.Read(t, filepath.Join(upper, "a.txt")), "copy-up")
			}

			changes, err := store.Changes("c1")
			require.NoError(t, err)
			var got []string
			for _, c := range changes {
				got = append(got, c.String())
			}
			assert.Equal(t, []string{
				"C /a.txt", "D /del", "C /dir", "A /dir/new", "D /dir/x", "D /dir/y", "D /dir/z",
				"A /h1", "A /h2", "C /keep", "C /keep/k", "A /ln", "A /newdir", "A /newdir/f",
			}, got)

			var buf bytes.Buffer
			_, err = store.Commit("c1", &buf)
			require.NoError(t, err)
			want := []string{"a.txt", ".wh.del", "dir/"}
			if driver == DriverOverlay {
				want = append(want, "dir/.wh..wh..opq", "dir/new")
			} else {
				want = append(want, "dir/new", "dir/.wh.x", "dir/.wh.y", "dir/.wh.z")
			}
			want = append(want, "h1", "h2 => h1", "keep/", "keep/k", "ln -> a.txt", "newdir/", "newdir/f")
			assert.Equal(t, want, layertest.TarNames(t, buf.Bytes()))

			// apply(commit) on the same lowers shows what the container saw.
			applied := filepath.Join(t.TempDir(), "layer")
			_, err = untar.Apply(bytes.NewReader(buf.Bytes()), applied, untar.Options{})
			require.NoError(t, err)
			view := filepath.Join(t.TempDir(), "view")
			require.NoError(t, materialize([]string{applied, top, bottom}, view, false))
			assert.Equal(t, layertest.Snapshot(t, root, "etc"), layertest.Snapshot(t, view))
		})
	}
}

// Two containers on the same layers do not see each other's writes.
func TestContainersAreIsolated(t *testing.T) {
	testenv.RequireRoot(t)
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			top, bottom := twoLayers(t)
			store := NewStore(t.TempDir())
			r1 := newContainer(t, store, "one", driver, top, bottom)
			r2 := newContainer(t, store, "two", driver, top, bottom)
			require.NoError(t, os.WriteFile(filepath.Join(r1, "a.txt"), []byte("one"), 0o644))
			require.NoError(t, os.Remove(filepath.Join(r1, "b.txt")))
			assert.Equal(t, "A1", layertest.Read(t, filepath.Join(r2, "a.txt")))
			assert.True(t, layertest.Exists(filepath.Join(r2, "b.txt")))
			c2, err := store.Changes("two")
			require.NoError(t, err)
			assert.Empty(t, c2)
		})
	}
}

// apply(commit(x)) reproduces x: the overlay upper directory of a
// container, whiteouts, opaque mark, owners, modes, times, links, xattrs.
func TestCommitApplyRoundTrip(t *testing.T) {
	testenv.RequireRoot(t)
	top, bottom := twoLayers(t)
	store := NewStore(t.TempDir())
	root := newContainer(t, store, "rt", DriverOverlay, top, bottom)
	act(t, root)
	layertest.Write(t, root, map[string]string{"sub/deep/file": "deep", "fifo-dir/": ""})
	require.NoError(t, unix.Mkfifo(filepath.Join(root, "fifo-dir/p"), 0o640))
	require.NoError(t, os.Chown(filepath.Join(root, "sub/deep/file"), 1234, 5678))
	require.NoError(t, unix.Chmod(filepath.Join(root, "sub/deep/file"), 0o4755))
	require.NoError(t, unix.Mknod(filepath.Join(root, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	require.NoError(t, store.Unmount("rt"))

	var buf bytes.Buffer
	_, err := store.Commit("rt", &buf)
	require.NoError(t, err)
	applied := filepath.Join(t.TempDir(), "layer")
	_, err = untar.Apply(bytes.NewReader(buf.Bytes()), applied, untar.Options{Devices: untar.DevicesCreate})
	require.NoError(t, err)
	assert.Equal(t, layertest.Snapshot(t, store.diffDir("rt"), "etc"), layertest.Snapshot(t, applied))
	assert.Contains(t, layertest.Snapshot(t, applied)["sub/deep/file"], "mode=104755 uid=1234 gid=5678")
}

// 100 layers mount: the mount data stays under a page with short links.
func TestHundredLayers(t *testing.T) {
	testenv.RequireRoot(t)
	base := t.TempDir()
	var lowers []string
	for i := 0; i < 100; i++ {
		d := filepath.Join(base, fmt.Sprintf("layer-with-a-rather-long-name-%03d", i))
		layertest.Write(t, d, map[string]string{fmt.Sprintf("f%03d", i): fmt.Sprint(i), "who": fmt.Sprint(i)})
		lowers = append([]string{d}, lowers...) // layer 99 on top
	}
	store := NewStore(filepath.Join(t.TempDir(), "a-data-root-with-a-long-path", strings.Repeat("x", 60)))
	root := newContainer(t, store, "hundred", DriverOverlay, lowers...)
	assert.True(t, isMountpoint(root))
	for _, i := range []int{0, 42, 99} {
		assert.Equal(t, fmt.Sprint(i), layertest.Read(t, filepath.Join(root, fmt.Sprintf("f%03d", i))))
	}
	assert.Equal(t, "99", layertest.Read(t, filepath.Join(root, "who")), "the top layer wins")

	// With absolute paths the same stack would not fit in one page.
	long := "lowerdir=" + strings.Join(lowers, ":")
	assert.Greater(t, len(long), os.Getpagesize())
}

func TestOverlayDataLimit(t *testing.T) {
	var lowers []string
	for i := 0; i < 400; i++ {
		lowers = append(lowers, "l/ABCDEFGHIJKL")
	}
	_, err := overlayData(lowers, "u", "w", false)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "over the kernel's limit")
	_, err = overlayData(lowers[:100], "u", "w", false)
	assert.NoError(t, err)
}

// Cleanup is idempotent and removes the layer only on --rm or a failed
// start; a kept layer survives and still diffs.
func TestCleanupKeepsStartedLayer(t *testing.T) {
	testenv.RequireRoot(t)
	top, bottom := twoLayers(t)
	store := NewStore(t.TempDir())
	root := newContainer(t, store, "keep", DriverOverlay, top, bottom)
	require.NoError(t, os.WriteFile(filepath.Join(root, "b.txt"), []byte("b"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(store.Dir("keep"), "started"), nil, 0o600))
	c := spineContainer(store, "keep")
	s := &Step{}
	require.NoError(t, s.Cleanup(c))
	require.NoError(t, s.Cleanup(c), "twice")
	assert.False(t, isMountpoint(root))
	changes, err := store.Changes("keep")
	require.NoError(t, err)
	assert.Equal(t, "C /b.txt", changes[0].String())

	s.Remove = true
	require.NoError(t, s.Cleanup(c))
	assert.False(t, layertest.Exists(store.Dir("keep")))
	names, err := tree.ReadNames(filepath.Join(store.Root, "l"))
	require.NoError(t, err)
	assert.Empty(t, names, "the container's short links go with it")
}

// applied applies a tarball of entries into a new layer directory.
func applied(t *testing.T, entries ...layertest.TarEntry) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layer")
	_, err := untar.Apply(bytes.NewReader(layertest.Tar(t, entries...)), dir, untar.Options{})
	require.NoError(t, err)
	return dir
}

// A layer with .wh..wh..opq at its root hides every layer below it, with
// either driver. (Overlay ignores the opaque mark on a lower layer's root:
// the mount leaves those layers out.)
func TestOpaqueRootHidesTheLayersBelow(t *testing.T) {
	testenv.RequireRoot(t)
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			top, bottom := twoLayers(t)
			opaque := applied(t, layertest.Reg(".wh..wh..opq", ""), layertest.Reg("new", "n"), layertest.Dir("dir/"), layertest.Reg("dir/only", "o"))
			store := NewStore(t.TempDir())
			root := newContainer(t, store, "opq", driver, opaque, top, bottom)
			names, err := tree.ReadNames(root)
			require.NoError(t, err)
			assert.Equal(t, []string{"dir", "etc", "new"}, names, "only the opaque layer and the init layer's /etc")
			names, err = tree.ReadNames(filepath.Join(root, "dir"))
			require.NoError(t, err)
			assert.Equal(t, []string{"only"}, names)
			changes, err := store.Changes("opq")
			require.NoError(t, err)
			assert.Empty(t, changes)
		})
	}
}

// Whiteouts delete what the layers below have, never what their own
// layer has (OCI image spec, layer.md), in whichever order the tarball
// has them: a directory of the layer that is also whited out keeps the
// layer's files and hides the lower ones; a file stays.
func TestWhiteoutSparesItsOwnLayer(t *testing.T) {
	testenv.RequireRoot(t)
	cases := []struct {
		name    string
		entries []layertest.TarEntry
	}{
		{"file in the directory, then the whiteout", []layertest.TarEntry{layertest.Reg("d/new", "n"), layertest.Reg(".wh.d", "")}},
		{"directory and file, then the whiteout", []layertest.TarEntry{layertest.Dir("d/"), layertest.Reg("d/new", "n"), layertest.Reg(".wh.d", "")}},
		{"the whiteout, then a file in the directory", []layertest.TarEntry{layertest.Reg(".wh.d", ""), layertest.Reg("d/new", "n")}},
		{"the whiteout, then directory and file", []layertest.TarEntry{layertest.Reg(".wh.d", ""), layertest.Dir("d/"), layertest.Reg("d/new", "n")}},
		{"overlay's whiteout, then the directory", []layertest.TarEntry{{Hdr: tar.Header{Name: "d", Typeflag: tar.TypeChar}}, layertest.Dir("d/"), layertest.Reg("d/new", "n")}},
		{"the opaque marker, then a file", []layertest.TarEntry{layertest.Dir("d/"), layertest.Reg("d/.wh..wh..opq", ""), layertest.Reg("d/new", "n")}},
		{"a file, then the opaque marker", []layertest.TarEntry{layertest.Dir("d/"), layertest.Reg("d/new", "n"), layertest.Reg("d/.wh..wh..opq", "")}},
	}
	for _, driver := range drivers {
		for _, tc := range cases {
			t.Run(driver+"/"+tc.name, func(t *testing.T) {
				bottom := t.TempDir()
				layertest.Write(t, bottom, map[string]string{"d/old": "o", "d/sub/deep": "x", "f": "bottom", "g": "bottom"})
				entries := append(tc.entries, layertest.Reg("f", "top"), layertest.Reg(".wh.f", ""), layertest.Reg(".wh.g", ""), layertest.Reg("g", "top"))
				top := applied(t, entries...)
				store := NewStore(t.TempDir())
				root := newContainer(t, store, "wh", driver, top, bottom)
				names, err := tree.ReadNames(filepath.Join(root, "d"))
				require.NoError(t, err)
				assert.Equal(t, []string{"new"}, names, "the layer's file stays, the lower ones stay deleted")
				assert.Equal(t, "top", layertest.Read(t, filepath.Join(root, "f")))
				assert.Equal(t, "top", layertest.Read(t, filepath.Join(root, "g")))
			})
		}
	}
}
