//go:build linux

package cli_test

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/internal/testenv"
)

// tarball is a tar of the given entries, each a regular file unless its
// type says otherwise.
func tarball(t *testing.T, hdrs ...tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		h.Mode = 0o644
		body := []byte(nil)
		if h.Typeflag == tar.TypeReg {
			body = []byte("planted\n")
			h.Size = int64(len(body))
		}
		require.NoError(t, tw.WriteHeader(&h))
		_, err := tw.Write(body)
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

// import stores a layer that run unpacks much later: what is not a
// tarball, or one that names paths outside the root, is refused at once,
// in one line, and leaves no image and no blob.
func TestImportRefusesWhatIsNotALayer(t *testing.T) {
	e := newRunEnv(t)
	outside := t.TempDir()
	random := make([]byte, 64<<10)
	_, err := rand.Read(random)
	require.NoError(t, err)
	busybox, err := exec.Command("tar", "-C", testenv.Rootfs(t), "-c", ".").Output()
	require.NoError(t, err)
	const notATar = "not a tar archive (a tarball of a root filesystem, plain or gzip'd, or a directory)"

	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"a text file", []byte("myhost\n"), notATar},
		{"random bytes", random, notATar},
		{"empty", nil, "empty input: not a tar archive"},
		{"gzip'd text", gzipOf(t, []byte("myhost\n")), notATar},
		{"dot-dot", tarball(t, tar.Header{Name: "../../../.." + outside + "/planted"}),
			`tarball entry "../../../..` + outside + `/planted" climbs out with '..': refused`},
		{"dot-dot inside", tarball(t, tar.Header{Name: "etc/", Typeflag: tar.TypeDir}, tar.Header{Name: "etc/../../planted"}),
			`tarball entry "etc/../../planted" climbs out with '..': refused`},
		{"absolute", tarball(t, tar.Header{Name: outside + "/planted"}), `tarball entry "` + outside + `/planted" is an absolute name: refused`},
		{"hard link out", tarball(t, tar.Header{Name: "passwd", Typeflag: tar.TypeLink, Linkname: "../etc/passwd"}),
			`tarball entry "passwd": hard link target "../etc/passwd" climbs out with '..': refused`},
		{"root not a directory", tarball(t, tar.Header{Name: "."}), `tarball entry ".": the root of a layer must be a directory`},
		{"truncated", busybox[:len(busybox)/2], "the tarball ends in the middle of entry"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "rootfs.tar")
			require.NoError(t, os.WriteFile(f, c.data, 0o644))
			for _, how := range []struct {
				src   string
				stdin string
			}{{f, ""}, {"-", string(c.data)}} {
				r := testenv.RunInput(t, e.Vars, how.stdin, e.Bin, "import", "--cmd", "sh", how.src, "junk")
				assert.Equal(t, 125, r.Code, r.String())
				assert.Empty(t, r.Stdout)
				assert.True(t, strings.HasPrefix(r.Stderr, "08-image: import "+how.src+": "+c.want), r.Stderr)
				assert.Equal(t, 1, strings.Count(r.Stderr, "\n"), "one line: %s", r.Stderr)
				assert.Empty(t, e.OK("images", "-q"), "no image")
				assertNoBlobs(t, e.Data)
				_, err := os.Stat(filepath.Join(outside, "planted"))
				assert.ErrorIs(t, err, os.ErrNotExist)
			}
		})
	}

	// The whole tarball imports and runs.
	f := filepath.Join(t.TempDir(), "busybox.tar")
	require.NoError(t, os.WriteFile(f, busybox, 0o644))
	e.OK("import", "--cmd", "sh", f, "busybox")
	assert.Equal(t, "hi\n", e.OK("run", "--net", "none", "--rm", "--image", "busybox", "echo", "hi"))
}

func gzipOf(t *testing.T, b []byte) []byte {
	t.Helper()
	cmd := exec.Command("gzip", "-c")
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.Output()
	require.NoError(t, err)
	return out
}

// Ctrl-C ends an import that waits for its input: nothing is stored,
// not even the half of the layer it had read.
func TestImportInterrupted(t *testing.T) {
	e := newRunEnv(t)
	busybox, err := exec.Command("tar", "-C", testenv.Rootfs(t), "-c", ".").Output()
	require.NoError(t, err)
	r := e.interrupt(busybox[:len(busybox)/2], func() bool { return e.count("ingest") == 1 }, "import", "-", "busybox")
	assert.Equal(t, 130, r.Code, r.String())
	assert.Equal(t, "08-image: import interrupted: nothing was stored\n", r.Stderr)
	assert.Empty(t, strings.TrimSpace(e.OK("images", "-q")))
	assertNoBlobs(t, e.Data)
}
