//go:build linux

package cli_test

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// export: the container's root as one tar, its changes over its image,
// running or stopped; what is mounted inside (a volume) is not in it, and
// a symlink the container made to a host file is a symlink in the tar,
// never the host file's content.
func TestExport(t *testing.T) {
	h := newHost(t)
	secret := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secret, []byte("host secret\n"), 0o600))
	vol := t.TempDir()
	h.runD("--name", "c", "-v", vol+":/vol", "sh", "-c",
		"echo new >/tmp/new; rm /bin/vi; echo v >/vol/inside; ln -s "+secret+" /tmp/link; echo ready; sleep 1000")
	h.waitLog("c", "ready")
	read := func() map[string]*tar.Header {
		out := filepath.Join(t.TempDir(), "c.tar")
		h.ok("export", "-o", out, "c")
		f, err := os.Open(out)
		require.NoError(t, err)
		defer f.Close()
		got := map[string]*tar.Header{}
		tr := tar.NewReader(f)
		for {
			hdr, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err)
			if hdr.Name == "tmp/new" {
				b, _ := io.ReadAll(tr)
				assert.Equal(t, "new\n", string(b))
			}
			got[hdr.Name] = hdr
		}
		return got
	}
	for _, when := range []string{"running", "stopped"} {
		got := read()
		assert.Contains(t, got, "tmp/new", when)
		assert.Contains(t, got, "bin/busybox", when)
		assert.NotContains(t, got, "bin/vi", "%s: deleted in the container", when)
		assert.Contains(t, got, "vol/", when)
		assert.NotContains(t, got, "vol/inside", "%s: a volume is not the container's root", when)
		if assert.Contains(t, got, "tmp/link", when) {
			assert.Equal(t, byte(tar.TypeSymlink), got["tmp/link"].Typeflag)
			assert.Equal(t, secret, got["tmp/link"].Linkname)
		}
		h.ok("stop", "-t", "0", "c")
	}
	r := h.run("export", "nosuch")
	assert.Equal(t, 1, r.Code)
}
