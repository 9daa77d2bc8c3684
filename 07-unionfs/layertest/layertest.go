//go:build linux

// Package layertest helps the tests of stage 07 and later: write a tree of
// files, build a tarball entry by entry, and describe a layer directory
// the way a layer must reproduce it (overlay's whiteouts and opaque marks
// included).
package layertest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"berth/07-unionfs/tree"
)

// Write creates files under dir: "path" -> content; a path ending in "/"
// is a directory, "->target" a symlink.
func Write(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	keys := make([]string, 0, len(files))
	for k := range files {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := filepath.Join(dir, k)
		v := files[k]
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		switch {
		case strings.HasSuffix(k, "/"):
			require.NoError(t, os.MkdirAll(p, 0o755))
		case strings.HasPrefix(v, "->"):
			require.NoError(t, os.Symlink(v[2:], p))
		default:
			require.NoError(t, os.WriteFile(p, []byte(v), 0o644))
		}
	}
}

// Tree is a new directory holding files (see Write).
func Tree(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	Write(t, dir, files)
	return dir
}

func Read(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return string(b)
}

func Exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// Snapshot describes a tree the way a layer must reproduce it: per path
// its type, mode, owner, size, mtime (not for whiteouts), link target,
// xattrs (overlay's own reduced to "opaque"), content hash and hardlink
// group. The root itself and paths under skip are left out.
func Snapshot(t testing.TB, root string, skip ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	groups := map[[2]uint64]string{}
	err := filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		for _, s := range skip {
			if rel == s || strings.HasPrefix(rel, s+"/") {
				return nil
			}
		}
		var st unix.Stat_t
		require.NoError(t, unix.Lstat(p, &st))
		if tree.IsWhiteout(&st) {
			out[rel] = "whiteout"
			return nil
		}
		d := fmt.Sprintf("mode=%o uid=%d gid=%d mtime=%d.%09d", st.Mode, st.Uid, st.Gid, st.Mtim.Sec, st.Mtim.Nsec)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			sum := sha256.Sum256(b)
			d += fmt.Sprintf(" size=%d sha=%s", st.Size, hex.EncodeToString(sum[:4]))
			if st.Nlink > 1 {
				key := [2]uint64{st.Dev, st.Ino}
				if _, ok := groups[key]; !ok {
					groups[key] = rel
				}
				d += " link=" + groups[key]
			}
		case unix.S_IFLNK:
			target, _ := os.Readlink(p)
			d += " -> " + target
		case unix.S_IFDIR:
			if IsOpaque(t, p) {
				d += " opaque"
			}
		}
		xs := Xattrs(t, p)
		var names []string
		for k, v := range xs {
			names = append(names, k+"="+string(v))
		}
		sort.Strings(names)
		if len(names) > 0 {
			d += " xattrs=" + strings.Join(names, ",")
		}
		out[rel] = d
		return nil
	})
	require.NoError(t, err)
	return out
}

// TarEntry is one entry of a test tarball.
type TarEntry struct {
	Hdr  tar.Header
	Body string
}

func Tar(t testing.TB, entries ...TarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.Hdr
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.Body))
		}
		require.NoError(t, tw.WriteHeader(&h))
		if e.Body != "" {
			_, err := io.WriteString(tw, e.Body)
			require.NoError(t, err)
		}
	}
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

func Reg(name, body string) TarEntry { return TarEntry{Hdr: tar.Header{Name: name}, Body: body} }
func Dir(name string) TarEntry {
	return TarEntry{Hdr: tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755}}
}
func Symlink(name, target string) TarEntry {
	return TarEntry{Hdr: tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777}}
}
func Hardlink(name, target string) TarEntry {
	return TarEntry{Hdr: tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: target}}
}

// TarNames lists a tarball's entries as "name" or "name -> link" (links),
// "name => target" (hardlinks).
func TarNames(t testing.TB, b []byte) []string {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	var out []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		require.NoError(t, err)
		switch h.Typeflag {
		case tar.TypeSymlink:
			out = append(out, h.Name+" -> "+h.Linkname)
		case tar.TypeLink:
			out = append(out, h.Name+" => "+h.Linkname)
		default:
			out = append(out, h.Name)
		}
	}
}

// pathHandle opens p (not following it) for the test helpers below.
func pathHandle(t testing.TB, p string) tree.Handle {
	t.Helper()
	fd, err := unix.Open(p, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	require.NoError(t, err)
	h, err := tree.NewHandle(fd)
	require.NoError(t, err)
	return h
}

// IsOpaque reports whether the directory at p hides the lower layers.
func IsOpaque(t testing.TB, p string) bool {
	h := pathHandle(t, p)
	defer h.Close()
	return h.IsDir() && h.Opaque()
}

// Xattrs reads p's extended attributes, except overlay's.
func Xattrs(t testing.TB, p string) map[string][]byte {
	h := pathHandle(t, p)
	defer h.Close()
	xs, err := h.Xattrs()
	require.NoError(t, err)
	return xs
}

// Gzip compresses b.
func Gzip(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write(b)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

// Zstd compresses b as zstd, with the frame's checksum.
func Zstd(t testing.TB, b []byte) []byte {
	t.Helper()
	zw, err := zstd.NewWriter(nil, zstd.WithEncoderCRC(true))
	require.NoError(t, err)
	defer zw.Close()
	return zw.EncodeAll(b, nil)
}

// WithoutOpenat2 makes the trees of this test walk one name at a time, as
// before Linux 5.6 (tree.HaveOpenat2), until it ends.
func WithoutOpenat2(t testing.TB) {
	saved := tree.HaveOpenat2
	tree.HaveOpenat2 = func() bool { return false }
	t.Cleanup(func() { tree.HaveOpenat2 = saved })
}
