//go:build linux

package untar

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
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
	"berth/internal/testenv"
)

// jail is a directory holding a sentinel "outside" dir beside the target,
// so a test can check that nothing was written anywhere but the target.
func jail(t *testing.T) (target, outside string) {
	d := t.TempDir()
	outside = filepath.Join(d, "outside")
	layertest.Write(t, outside, map[string]string{"secret": "untouched"})
	return filepath.Join(d, "target"), outside
}

// assertNothingWritten: the target is absent (no half-extracted layer),
// nothing new beside it, the sentinel unchanged.
func assertNothingWritten(t *testing.T, target, outside string) {
	t.Helper()
	names, err := tree.ReadNames(filepath.Dir(target))
	require.NoError(t, err)
	assert.Equal(t, []string{"outside"}, names, "only the sentinel may remain")
	names, err = tree.ReadNames(outside)
	require.NoError(t, err)
	assert.Equal(t, []string{"secret"}, names)
	assert.Equal(t, "untouched", layertest.Read(t, filepath.Join(outside, "secret")))
	for _, p := range []string{"/evil", "/tmp/evil", "/etc/evil"} {
		assert.False(t, layertest.Exists(p), "%s must not exist", p)
	}
}

func TestApplyRefusesHostileTarballs(t *testing.T) {
	testenv.RequireRoot(t)
	cases := []struct {
		name    string
		entries func(outside string) []layertest.TarEntry
		wantErr string // the offending entry and the reason
	}{
		{"dotdot", func(string) []layertest.TarEntry {
			return []layertest.TarEntry{layertest.Reg("ok", "1"), layertest.Reg("../evil", "x")}
		},
			`entry "../evil": unsafe entry: path contains ".."`},
		{"dotdot inside", func(string) []layertest.TarEntry { return []layertest.TarEntry{layertest.Reg("a/../../evil", "x")} },
			`entry "a/../../evil": unsafe entry: path contains ".."`},
		{"absolute", func(string) []layertest.TarEntry { return []layertest.TarEntry{layertest.Reg("/tmp/evil", "x")} },
			`entry "/tmp/evil": unsafe entry: absolute path`},
		{"symlink then write through it", func(out string) []layertest.TarEntry {
			return []layertest.TarEntry{layertest.Symlink("lnk", out), layertest.Reg("lnk/pwned", "x")}
		}, `entry "lnk/pwned": unsafe entry: parent lnk is a symlink`},
		{"relative symlink then write", func(string) []layertest.TarEntry {
			return []layertest.TarEntry{layertest.Dir("d/"), layertest.Symlink("d/up", "../.."), layertest.Reg("d/up/evil", "x")}
		}, `entry "d/up/evil": unsafe entry: parent d/up is a symlink`},
		{"symlink dir then mkdir below", func(out string) []layertest.TarEntry {
			return []layertest.TarEntry{layertest.Symlink("lnk", out), layertest.Dir("lnk/sub/")}
		}, `entry "lnk/sub/": unsafe entry: parent lnk is a symlink`},
		{"hardlink with dotdot", func(string) []layertest.TarEntry {
			return []layertest.TarEntry{layertest.Hardlink("h", "../outside/secret")}
		}, `entry "h": hardlink target "../outside/secret": unsafe entry: path contains ".."`},
		{"hardlink absolute", func(out string) []layertest.TarEntry {
			return []layertest.TarEntry{layertest.Hardlink("h", filepath.Join(out, "secret"))}
		}, `unsafe entry: absolute path`},
		{"hardlink through symlink", func(out string) []layertest.TarEntry {
			return []layertest.TarEntry{layertest.Symlink("lnk", out), layertest.Hardlink("h", "lnk/secret")}
		}, `entry "h": hardlink target "lnk/secret": unsafe entry: parent lnk is a symlink`},
		{"whiteout of dotdot", func(string) []layertest.TarEntry {
			return []layertest.TarEntry{layertest.Dir("d/"), layertest.Reg("d/.wh...", "")}
		},
			`entry "d/.wh...": unsafe entry: whiteout of ".."`},
		{"whiteout of dot", func(string) []layertest.TarEntry { return []layertest.TarEntry{layertest.Reg(".wh..", "")} },
			`entry ".wh..": unsafe entry: whiteout of "."`},
		{"whiteout path with dotdot", func(string) []layertest.TarEntry { return []layertest.TarEntry{layertest.Reg("../.wh.secret", "")} },
			`unsafe entry: path contains ".."`},
		{"device node", func(string) []layertest.TarEntry {
			return []layertest.TarEntry{{Hdr: tar.Header{Name: "mem", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 1, Mode: 0o666}}}
		}, `entry "mem": device node 1:1 refused`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			target, outside := jail(t)
			b := layertest.Tar(t, tc.entries(outside)...)
			_, err := Apply(bytes.NewReader(b), target, Options{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.wantErr)
			assertNothingWritten(t, target, outside)
		})
	}
}

// Entries that look dangerous but can be applied safely: a symlink
// pointing outside is stored as a symlink (it is resolved inside the
// container, never by us), and a later file of the same name replaces it
// instead of writing through it.
func TestApplyKeepsDangerousLookingButSafeEntries(t *testing.T) {
	testenv.RequireRoot(t)
	target, outside := jail(t)
	secret := filepath.Join(outside, "secret")
	b := layertest.Tar(t,
		layertest.Symlink("abs", secret),
		layertest.Symlink("rel", "../outside/secret"),
		layertest.Symlink("replaced", secret),
		layertest.Reg("replaced", "mine"),
		layertest.Hardlink("linked-symlink", "abs"),
	)
	_, err := Apply(bytes.NewReader(b), target, Options{})
	require.NoError(t, err)
	assert.Equal(t, "untouched", layertest.Read(t, secret))
	l, _ := os.Readlink(filepath.Join(target, "abs"))
	assert.Equal(t, secret, l)
	st, err := os.Lstat(filepath.Join(target, "replaced"))
	require.NoError(t, err)
	assert.True(t, st.Mode().IsRegular())
	assert.Equal(t, "mine", layertest.Read(t, filepath.Join(target, "replaced")))
	st, err = os.Lstat(filepath.Join(target, "linked-symlink"))
	require.NoError(t, err)
	assert.Equal(t, os.ModeSymlink, st.Mode()&os.ModeType, "a hardlink to a symlink links the symlink itself")
}

func TestApplyWhiteoutsAndXattrs(t *testing.T) {
	testenv.RequireRoot(t)
	target, _ := jail(t)
	opaqueDir := layertest.Dir("forged/")
	opaqueDir.Hdr.PAXRecords = map[string]string{
		"SCHILY.xattr.trusted.overlay.opaque":   "y",
		"SCHILY.xattr.trusted.overlay.redirect": "/etc",
		"SCHILY.xattr.user.kept":                "yes",
	}
	b := layertest.Tar(t,
		layertest.Dir("d/"), layertest.Reg("d/.wh.gone", ""), layertest.Reg("d/.wh..wh..opq", ""), layertest.Reg("d/kept", "k"),
		opaqueDir, layertest.Reg(".wh..wh.plnk", ""),
	)
	st, err := Apply(bytes.NewReader(b), target, Options{})
	require.NoError(t, err)
	snap := layertest.Snapshot(t, target)
	assert.Equal(t, "whiteout", snap["d/gone"])
	assert.Contains(t, snap["d"], "opaque")
	assert.NotContains(t, snap["forged"], "opaque", "trusted.overlay.* from a tarball is never applied")
	assert.Contains(t, snap["forged"], "xattrs=user.kept=yes")
	assert.NotContains(t, snap, ".wh..wh.plnk")
	assert.Equal(t, 1, st.Whiteouts)
	assert.Equal(t, 1, st.Opaque)
	assert.Equal(t, 2, st.SkippedXattrs)
}

// A size bound ends a bomb with a clear error: a plain oversized file and a
// gzip stream that inflates 1,000-fold.
func TestApplySizeBound(t *testing.T) {
	testenv.RequireRoot(t)
	big := strings.Repeat("\x00", 4<<20)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, err := zw.Write(layertest.Tar(t, layertest.Reg("small", "s"), layertest.Reg("bomb", big)))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	require.Less(t, gz.Len(), 64<<10, "the gzip is tiny")

	target, outside := jail(t)
	_, err = Apply(bytes.NewReader(gz.Bytes()), target, Options{MaxBytes: 1 << 20})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `entry "bomb": layer would exceed the size bound of 1048576 bytes`)
	assertNothingWritten(t, target, outside)

	// Under the bound it applies.
	st, err := Apply(bytes.NewReader(gz.Bytes()), target, Options{MaxBytes: 8 << 20})
	require.NoError(t, err)
	assert.Equal(t, int64(len(big)+1), st.Bytes)
}

func TestApplyEntryBound(t *testing.T) {
	testenv.RequireRoot(t)
	target, outside := jail(t)
	var es []layertest.TarEntry
	for i := 0; i < 20; i++ {
		es = append(es, layertest.Reg(fmt.Sprintf("f%d", i), ""))
	}
	_, err := Apply(bytes.NewReader(layertest.Tar(t, es...)), target, Options{MaxEntries: 10})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "more than 10 entries")
	assertNothingWritten(t, target, outside)
}

// 1,000 nested directories: the walker keeps the open path, so each entry
// costs one openat (speed is measured in bench/parts/07-unionfs.sh).
func TestApplyDeepNesting(t *testing.T) {
	testenv.RequireRoot(t)
	var es []layertest.TarEntry
	p := ""
	for i := 0; i < 1000; i++ {
		p += "d/"
		es = append(es, layertest.Dir(p))
	}
	es = append(es, layertest.Reg(p+"leaf", "deep"))
	target, _ := jail(t)
	_, err := Apply(bytes.NewReader(layertest.Tar(t, es...)), target, Options{})
	require.NoError(t, err)
	fd, err := unix.Open(target, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	require.NoError(t, err)
	for i := 0; i < 1000; i++ {
		next, err := unix.Openat(fd, "d", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
		require.NoError(t, err)
		unix.Close(fd)
		fd = next
	}
	buf := make([]byte, 8)
	leaf, err := unix.Openat(fd, "leaf", unix.O_RDONLY, 0)
	require.NoError(t, err)
	n, _ := unix.Read(leaf, buf)
	assert.Equal(t, "deep", string(buf[:n]))
	unix.Close(leaf)
	unix.Close(fd)
}

func TestApplyIntoNonEmptyDirRefused(t *testing.T) {
	target, _ := jail(t)
	layertest.Write(t, target, map[string]string{"x": "x"})
	_, err := Apply(bytes.NewReader(layertest.Tar(t, layertest.Reg("a", "a"))), target, Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is not empty")
}

func TestCleanName(t *testing.T) {
	for in, want := range map[string]string{"./a/b": "a/b", "a//b/": "a/b", "./": "", "a/./b": "a/b"} {
		parts, err := cleanName(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, strings.Join(parts, "/"), in)
	}
	for _, bad := range []string{"/a", "..", "a/..", "a/../b"} {
		_, err := cleanName(bad)
		assert.ErrorIs(t, err, ErrUnsafe, bad)
	}
}
