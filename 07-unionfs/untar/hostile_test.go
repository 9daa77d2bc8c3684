//go:build linux

package untar

import (
	"bytes"
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

	"berth/07-unionfs/layertest"
	"berth/07-unionfs/tree"
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

func dirMode(name string, mode int64) layertest.TarEntry {
	e := layertest.Dir(name)
	e.Hdr.Mode = mode
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
		entries func(file, dir string) []layertest.TarEntry
	}{
		{"directory replaced by an absolute symlink", func(file, _ string) []layertest.TarEntry {
			return []layertest.TarEntry{dirMode("d/", 0o4777), layertest.Symlink("d", file)}
		}},
		{"directory replaced by a relative symlink that climbs out", func(file, _ string) []layertest.TarEntry {
			return []layertest.TarEntry{layertest.Dir("a/"), dirMode("a/d/", 0o4777), layertest.Symlink("a/d", climb+file[1:])}
		}},
		{"setgid directory under usr/bin replaced by a symlink to a host directory", func(_, hostDir string) []layertest.TarEntry {
			return []layertest.TarEntry{layertest.Dir("usr/"), layertest.Dir("usr/bin/"), dirMode("usr/bin/x/", 0o2777), layertest.Symlink("usr/bin/x", hostDir)}
		}},
		{"a directory's parent replaced by a symlink", func(_, hostDir string) []layertest.TarEntry {
			return []layertest.TarEntry{layertest.Dir("a/"), dirMode("a/b/", 0o4777), layertest.Symlink("a", hostDir)}
		}},
		{"directory replaced by a symlink, then by a directory again", func(file, _ string) []layertest.TarEntry {
			return []layertest.TarEntry{dirMode("d/", 0o4777), layertest.Symlink("d", file), dirMode("d/", 0o755)}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file, hdir := hostFiles(t)
			target, _ := jail(t)
			_, err := Apply(bytes.NewReader(layertest.Tar(t, tc.entries(file, hdir)...)), target, Options{})
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
	_, err := Apply(bytes.NewReader(layertest.Tar(t, layertest.Reg("f", "x"), dirMode("d/", 0o4777), dirMode("d/sub/", 0o2777), layertest.Hardlink("d", "f"))), target, Options{})
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
				e := layertest.Reg("f", "x")
				if who == "uid" {
					e.Hdr.Uid = id
				} else {
					e.Hdr.Gid = id
				}
				target, outside := jail(t)
				_, err := Apply(bytes.NewReader(layertest.Tar(t, e)), target, Options{})
				require.Error(t, err)
				assert.Contains(t, err.Error(), `entry "f": owner `)
				assert.Contains(t, err.Error(), " is outside 0 to 4294967294: refusing")
				assertNothingWritten(t, target, outside)
			})
		}
	}
	target, _ := jail(t)
	e := layertest.Reg("f", "x")
	e.Hdr.Uid, e.Hdr.Gid = 1<<32-2, 1<<31
	_, err := Apply(bytes.NewReader(layertest.Tar(t, e)), target, Options{})
	require.NoError(t, err)
	assert.Contains(t, layertest.Snapshot(t, target)["f"], "uid=4294967294 gid=2147483648")
}

// A layer is read to its very end: a gzip member's CRC and length are in
// its trailer, after the tar archive's end, and were never checked; what
// follows the tar end must be its zero padding; what follows the gzip
// stream must be nothing.
func TestApplyReadsTheStreamToItsEnd(t *testing.T) {
	testenv.RequireRoot(t)
	layer := layertest.Tar(t, layertest.Reg("f", "x"))
	badCRC := layertest.Gzip(t, layer)
	badCRC[len(badCRC)-8] ^= 0xff // the CRC-32 is the trailer's first 4 bytes
	badLen := layertest.Gzip(t, layer)
	badLen[len(badLen)-1] ^= 0xff // ISIZE, the last 4 bytes
	cut := layertest.Gzip(t, layer)
	cut = cut[:len(cut)-4]
	padded := append(append([]byte(nil), layer...), make([]byte, 9216)...) // GNU tar pads to 10 KiB
	for _, tc := range []struct {
		name, want string
		data       []byte
	}{
		{"gzip with a bad CRC", "gzip: invalid checksum", badCRC},
		{"gzip with a bad length", "gzip: invalid checksum", badLen},
		{"gzip cut short", "unexpected EOF", cut},
		{"garbage after the gzip stream", "gzip: invalid header", append(layertest.Gzip(t, layer), "some garbage appended"...)},
		{"zeros after the gzip stream", "gzip: invalid header", append(layertest.Gzip(t, layer), make([]byte, 512)...)},
		{"data after the tar end, in the gzip stream", "apply: data after the end of the tar archive (0 bytes past it): refusing", layertest.Gzip(t, append(append([]byte(nil), layer...), "hidden"...))},
		{"data after the tar end, plain", "apply: data after the end of the tar archive (0 bytes past it): refusing", append(append([]byte(nil), layer...), "hidden"...)},
		{"a second tar after the zero padding", "apply: data after the end of the tar archive (9216 bytes past it)", append(padded, layertest.Tar(t, layertest.Reg("g", "y"))...)},
		{"a second gzip member with data", "apply: data after the end of the tar archive", append(layertest.Gzip(t, layer), layertest.Gzip(t, layertest.Tar(t, layertest.Reg("g", "y")))...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target, outside := jail(t)
			_, err := Apply(bytes.NewReader(tc.data), target, Options{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assertNothingWritten(t, target, outside)
		})
	}
	// What is allowed: tar's zero padding, plain or compressed, a
	// tarball cut into two gzip members, and padding within the size bound.
	for name, data := range map[string][]byte{
		"padded":            padded,
		"padded, gzip":      layertest.Gzip(t, padded),
		"two gzip members":  append(layertest.Gzip(t, layer[:700]), layertest.Gzip(t, layer[700:])...),
		"zeros in a member": append(layertest.Gzip(t, layer), layertest.Gzip(t, make([]byte, 4096))...),
		"no end-of-archive": layer[:1024],
	} {
		t.Run(name, func(t *testing.T) {
			target, _ := jail(t)
			_, err := Apply(bytes.NewReader(data), target, Options{})
			require.NoError(t, err)
			assert.Equal(t, "x", layertest.Read(t, filepath.Join(target, "f")))
		})
	}
	target, _ := jail(t)
	_, err := Apply(bytes.NewReader(layertest.Gzip(t, append(layer, make([]byte, 2<<20)...))), target, Options{MaxBytes: 1 << 20})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "bytes of padding after the tar archive: refusing (a tar bomb?)")
}

// A path the kernel cannot resolve in one call is refused in one short
// line (the name shortened in the middle); the deepest one it can is made.
func TestApplyPathLimit(t *testing.T) {
	testenv.RequireRoot(t)
	deep := strings.Repeat("d/", 2047) // 4094 bytes
	target, outside := jail(t)
	_, err := Apply(bytes.NewReader(layertest.Tar(t, layertest.Reg(deep+"xx", "x"))), target, Options{})
	require.Error(t, err)
	assert.Equal(t, `apply: entry "d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/…d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/xx": a path of 4096 bytes, longer than the kernel's limit of 4095: refusing`, err.Error())
	assertNothingWritten(t, target, outside)
	_, err = Apply(bytes.NewReader(layertest.Tar(t, layertest.Reg(deep+"x", "deepest"))), target, Options{})
	require.NoError(t, err)
	// Longer than PATH_MAX with target's own path in front: read it
	// through the tree, as the copy driver does.
	tr, err := tree.Open(target)
	require.NoError(t, err)
	defer tr.Close()
	h, err := tr.Handle(deep + "x")
	require.NoError(t, err)
	defer h.Close()
	f, err := h.Open()
	require.NoError(t, err)
	defer f.Close()
	b, err := io.ReadAll(f)
	require.NoError(t, err)
	assert.Equal(t, "deepest", string(b))
}

// What apply keeps while it extracts grows with the number of
// directories, not with the square of the depth: it kept every pending
// directory's full path (a 10,000-deep layer took 1.7 GB). The live heap
// is read after every garbage collection during the apply of 2,000 nested
// directories, about the deepest the path limit allows: it grows by about
// 1 MiB, up to 4.4 on a loaded machine (it grew by over 30 when each
// entry kept its directory's full path; a bound of 16 MiB catches that
// without failing on noise).
func TestApplyMemoryIsLinearInDepth(t *testing.T) {
	testenv.RequireRoot(t)
	var es []layertest.TarEntry
	p := ""
	for i := 0; i < 2000; i++ {
		p += "d/"
		es = append(es, layertest.Dir(p))
	}
	b := layertest.Tar(t, es...)
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
	_, err := Apply(bytes.NewReader(b), target, Options{})
	runtime.GC() // what is still live at the end counts too
	close(done)
	<-stopped
	require.NoError(t, err)
	grew := int64(peak.Load()) - int64(base)
	t.Logf("live heap grew by %d KiB at most while 2,000 nested directories applied", grew>>10)
	assert.Less(t, grew, int64(16<<20), "bytes of live heap kept by apply")
}
