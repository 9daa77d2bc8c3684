//go:build linux

package layer

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"berth/internal/testenv"
)

// hostFiles makes a file and a directory "of the host" (outside the layer)
// whose mode and owner a hostile layer must not change.
func hostFiles(t *testing.T) (file, dir string) {
	d := t.TempDir()
	file, dir = filepath.Join(d, "host-file"), filepath.Join(d, "host-dir")
	require.NoError(t, os.WriteFile(file, []byte("host\n"), 0o644))
	require.NoError(t, os.Mkdir(dir, 0o755))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "b"), 0o755))
	for _, p := range []string{file, dir, filepath.Join(dir, "b")} {
		require.NoError(t, os.Chmod(p, map[bool]os.FileMode{true: 0o644, false: 0o755}[p == file]))
	}
	return file, dir
}

func modeOf(t *testing.T, p string) uint32 {
	t.Helper()
	var st unix.Stat_t
	require.NoError(t, unix.Lstat(p, &st))
	return st.Mode & 07777
}

func dirMode(name string, mode int64) tarEntry {
	e := dir(name)
	e.hdr.Mode = mode
	return e
}

// A directory kept for the end of extraction (its mode, owner and times
// are set last) and then replaced by a symlink of the same name: the
// metadata must never reach what the symlink points to. Before the fix
// the mode was set with fchmodat(parent, name, mode, 0), which follows the
// symlink, and the host file became setuid and world-writable.
func TestApplyNeverChmodsThroughASymlink(t *testing.T) {
	testenv.RequireRoot(t)
	climb := strings.Repeat("../", 64) // from anywhere, far enough to reach /
	cases := []struct {
		name    string
		entries func(file, dir string) []tarEntry
	}{
		{"directory replaced by an absolute symlink", func(file, _ string) []tarEntry {
			return []tarEntry{dirMode("d/", 0o4777), symlink("d", file)}
		}},
		{"directory replaced by a relative symlink that climbs out", func(file, _ string) []tarEntry {
			return []tarEntry{dir("a/"), dirMode("a/d/", 0o4777), symlink("a/d", climb+file[1:])}
		}},
		{"setgid directory under usr/bin replaced by a symlink to a host directory", func(_, hostDir string) []tarEntry {
			return []tarEntry{dir("usr/"), dir("usr/bin/"), dirMode("usr/bin/x/", 0o2777), symlink("usr/bin/x", hostDir)}
		}},
		{"a directory's parent replaced by a symlink", func(_, hostDir string) []tarEntry {
			return []tarEntry{dir("a/"), dirMode("a/b/", 0o4777), symlink("a", hostDir)}
		}},
		{"directory replaced by a symlink, then by a directory again", func(file, _ string) []tarEntry {
			return []tarEntry{dirMode("d/", 0o4777), symlink("d", file), dirMode("d/", 0o755)}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file, hdir := hostFiles(t)
			target, _ := jail(t)
			_, err := Apply(bytes.NewReader(mkTar(t, tc.entries(file, hdir)...)), target, ApplyOptions{})
			require.NoError(t, err, "a symlink replacing a directory is a legal layer")
			assert.Equal(t, uint32(0o644), modeOf(t, file), "the host file keeps its mode")
			assert.Equal(t, uint32(0o755), modeOf(t, hdir), "the host directory keeps its mode")
			assert.Equal(t, uint32(0o755), modeOf(t, filepath.Join(hdir, "b")))
		})
	}
}

// A directory replaced by a hard link to a file of the layer: the
// directory's pending mode must not land on the file.
func TestApplyForgetsAReplacedDirectory(t *testing.T) {
	testenv.RequireRoot(t)
	target, _ := jail(t)
	_, err := Apply(bytes.NewReader(mkTar(t, reg("f", "x"), dirMode("d/", 0o4777), dirMode("d/sub/", 0o2777), hardlink("d", "f"))), target, ApplyOptions{})
	require.NoError(t, err)
	assert.Equal(t, uint32(0o644), modeOf(t, filepath.Join(target, "f")))
	st, err := os.Lstat(filepath.Join(target, "d"))
	require.NoError(t, err)
	assert.True(t, st.Mode().IsRegular())
	assert.Equal(t, uint32(0o644), modeOf(t, filepath.Join(target, "d")))
}

// uid and gid are 32 bits, and 2^32-1 means "leave it" to chown(2): an
// owner outside 0..2^32-2 used to become root without a word.
func TestApplyRefusesOwnersOutOfRange(t *testing.T) {
	testenv.RequireRoot(t)
	for _, id := range []int{1<<32 - 1, 1 << 32, 1 << 40} {
		for _, who := range []string{"uid", "gid"} {
			t.Run(fmt.Sprintf("%s %d", who, id), func(t *testing.T) {
				e := reg("f", "x")
				if who == "uid" {
					e.hdr.Uid = id
				} else {
					e.hdr.Gid = id
				}
				target, outside := jail(t)
				_, err := Apply(bytes.NewReader(mkTar(t, e)), target, ApplyOptions{})
				require.Error(t, err)
				assert.Contains(t, err.Error(), `entry "f": owner `)
				assert.Contains(t, err.Error(), " is outside 0 to 4294967294: refusing")
				assertNothingWritten(t, target, outside)
			})
		}
	}
	target, _ := jail(t)
	e := reg("f", "x")
	e.hdr.Uid, e.hdr.Gid = 1<<32-2, 1<<31
	_, err := Apply(bytes.NewReader(mkTar(t, e)), target, ApplyOptions{})
	require.NoError(t, err)
	assert.Contains(t, snapshot(t, target)["f"], "uid=4294967294 gid=2147483648")
}

func gz(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write(b)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

// A layer is read to its very end: a gzip member's CRC and length are in
// its trailer, after the tar archive's end, and were never checked; what
// follows the tar end must be its zero padding; what follows the gzip
// stream must be nothing.
func TestApplyReadsTheStreamToItsEnd(t *testing.T) {
	testenv.RequireRoot(t)
	layer := mkTar(t, reg("f", "x"))
	badCRC := gz(t, layer)
	badCRC[len(badCRC)-8] ^= 0xff // the CRC-32 is the trailer's first 4 bytes
	badLen := gz(t, layer)
	badLen[len(badLen)-1] ^= 0xff // ISIZE, the last 4 bytes
	cut := gz(t, layer)
	cut = cut[:len(cut)-4]
	padded := append(append([]byte(nil), layer...), make([]byte, 9216)...) // GNU tar pads to 10 KiB
	for _, tc := range []struct {
		name, want string
		data       []byte
	}{
		{"gzip with a bad CRC", "gzip: invalid checksum", badCRC},
		{"gzip with a bad length", "gzip: invalid checksum", badLen},
		{"gzip cut short", "unexpected EOF", cut},
		{"garbage after the gzip stream", "gzip: invalid header", append(gz(t, layer), "some garbage appended"...)},
		{"zeros after the gzip stream", "gzip: invalid header", append(gz(t, layer), make([]byte, 512)...)},
		{"data after the tar end, in the gzip stream", "apply: data after the end of the tar archive (0 bytes past it): refusing", gz(t, append(append([]byte(nil), layer...), "hidden"...))},
		{"data after the tar end, plain", "apply: data after the end of the tar archive (0 bytes past it): refusing", append(append([]byte(nil), layer...), "hidden"...)},
		{"a second tar after the zero padding", "apply: data after the end of the tar archive (9216 bytes past it)", append(padded, mkTar(t, reg("g", "y"))...)},
		{"a second gzip member with data", "apply: data after the end of the tar archive", append(gz(t, layer), gz(t, mkTar(t, reg("g", "y")))...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target, outside := jail(t)
			_, err := Apply(bytes.NewReader(tc.data), target, ApplyOptions{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assertNothingWritten(t, target, outside)
		})
	}
	// What is allowed: tar's zero padding, plain or compressed, a
	// tarball cut into two gzip members, and padding within the size bound.
	for name, data := range map[string][]byte{
		"padded":            padded,
		"padded, gzip":      gz(t, padded),
		"two gzip members":  append(gz(t, layer[:700]), gz(t, layer[700:])...),
		"zeros in a member": append(gz(t, layer), gz(t, make([]byte, 4096))...),
		"no end-of-archive": layer[:1024],
	} {
		t.Run(name, func(t *testing.T) {
			target, _ := jail(t)
			_, err := Apply(bytes.NewReader(data), target, ApplyOptions{})
			require.NoError(t, err)
			assert.Equal(t, "x", read(t, filepath.Join(target, "f")))
		})
	}
	target, _ := jail(t)
	_, err := Apply(bytes.NewReader(gz(t, append(layer, make([]byte, 2<<20)...))), target, ApplyOptions{MaxBytes: 1 << 20})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "bytes of padding after the tar archive: refusing (a tar bomb?)")
}

// A path the kernel cannot resolve in one call is refused in one short
// line (the name shortened in the middle); the deepest one it can is made.
func TestApplyPathLimit(t *testing.T) {
	testenv.RequireRoot(t)
	deep := strings.Repeat("d/", 2047) // 4094 bytes
	target, outside := jail(t)
	_, err := Apply(bytes.NewReader(mkTar(t, reg(deep+"xx", "x"))), target, ApplyOptions{})
	require.Error(t, err)
	assert.Equal(t, `apply: entry "d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/…d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/xx": a path of 4096 bytes, longer than the kernel's limit of 4095: refusing`, err.Error())
	assertNothingWritten(t, target, outside)
	_, err = Apply(bytes.NewReader(mkTar(t, reg(deep+"x", "deepest"))), target, ApplyOptions{})
	require.NoError(t, err)
	// Longer than PATH_MAX with target's own path in front: read it
	// through the tree, as the copy driver does.
	tr, err := openTree(target)
	require.NoError(t, err)
	defer tr.close()
	h, err := tr.handle(deep + "x")
	require.NoError(t, err)
	defer h.close()
	f, err := h.open()
	require.NoError(t, err)
	defer f.Close()
	b, err := io.ReadAll(f)
	require.NoError(t, err)
	assert.Equal(t, "deepest", string(b))
}

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
			write(t, root, map[string]string{"d/f": "container's own\n", "d/g": "another\n"})
			changes, err := store.Changes("swap")
			require.NoError(t, err)
			tc.swap(store.diffDir("swap"))
			// All of them, and /d/f alone: its parent is then not
			// checked first, the walk beneath the root must refuse it.
			var f []Change
			for _, c := range changes {
				if c.Path == "/d/f" {
					f = append(f, c)
				}
			}
			require.Len(t, f, 1)
			for _, list := range [][]Change{changes, f} {
				var buf bytes.Buffer
				_, err = writeLayer(&buf, list, owners{})
				assert.False(t, bytes.Contains(buf.Bytes(), []byte("HOST SECRET")), "the host's file is in the layer")
				require.Error(t, err)
				assert.Regexp(t, `^(/d(/f)? changed while it was being committed: refusing|open /d/f: a symlink or not a directory)`, err.Error())
			}
		})
	}
}

// Without openat2 (before Linux 5.6, or refused by a seccomp filter) a
// tree is walked one name at a time with O_NOFOLLOW: the same refusals.
func TestTreeWithoutOpenat2(t *testing.T) {
	testenv.RequireRoot(t)
	saved := haveOpenat2
	haveOpenat2 = func() bool { return false }
	t.Cleanup(func() { haveOpenat2 = saved })

	host := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(host, "f"), []byte("HOST SECRET\n"), 0o600))
	root := t.TempDir()
	write(t, root, map[string]string{"d/f": "mine", "up": "->" + host, "d/lnk": "->" + host + "/f"})
	tr, err := openTree(root)
	require.NoError(t, err)
	defer tr.close()
	h, err := tr.handle("d/f")
	require.NoError(t, err)
	f, err := h.open()
	require.NoError(t, err)
	b, err := io.ReadAll(f)
	require.NoError(t, err)
	assert.Equal(t, "mine", string(b))
	f.Close()
	h.close()
	_, err = tr.handle("up/f")
	assert.ErrorIs(t, err, unix.ENOTDIR, "a symlink on the way is not a directory")
	h, err = tr.handle("d/lnk")
	require.NoError(t, err)
	assert.True(t, h.isSymlink(), "the last name is opened itself")
	_, err = h.open()
	assert.Error(t, err, "a symlink is never opened for reading")
	h.close()
	_, err = tr.handle(strings.Repeat("d/", 2048))
	assert.ErrorIs(t, err, errTooDeep)

	// A commit that meets a swapped directory refuses, as with openat2.
	top, bottom := twoLayers(t)
	store := NewStore(t.TempDir())
	croot := newContainer(t, store, "noat2", DriverOverlay, top, bottom)
	write(t, croot, map[string]string{"d/f": "container's own\n"})
	changes, err := store.Changes("noat2")
	require.NoError(t, err)
	upper := store.diffDir("noat2")
	require.NoError(t, os.Rename(filepath.Join(upper, "d"), filepath.Join(upper, "d.old")))
	require.NoError(t, os.Symlink(host, filepath.Join(upper, "d")))
	var buf bytes.Buffer
	_, err = writeLayer(&buf, changes, owners{})
	require.Error(t, err)
	assert.False(t, bytes.Contains(buf.Bytes(), []byte("HOST SECRET")))
}

// What apply keeps while it extracts grows with the number of
// directories, not with the square of the depth: it kept every pending
// directory's full path (a 10,000-deep layer took 1.7 GB). The live heap
// is read after every garbage collection during the apply of 2,000 nested
// directories, about the deepest the path limit allows: it grows by about
// 1 MiB (it grew by over 30, and by 5 while the walker still kept a slice
// of every entry's name).
func TestApplyMemoryIsLinearInDepth(t *testing.T) {
	testenv.RequireRoot(t)
	var es []tarEntry
	p := ""
	for i := 0; i < 2000; i++ {
		p += "d/"
		es = append(es, dir(p))
	}
	b := mkTar(t, es...)
	target, _ := jail(t)

	live := func() uint64 {
		s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	runtime.GC()
	base := live()
	var peak atomic.Uint64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			if v := live(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-time.After(200 * time.Microsecond):
			}
		}
	}()
	_, err := Apply(bytes.NewReader(b), target, ApplyOptions{})
	runtime.GC() // what is still live at the end counts too
	close(done)
	<-stopped
	require.NoError(t, err)
	grew := int64(peak.Load()) - int64(base)
	t.Logf("live heap grew by %d KiB at most while 2,000 nested directories applied", grew>>10)
	assert.Less(t, grew, int64(4<<20), "bytes of live heap kept by apply")
}
