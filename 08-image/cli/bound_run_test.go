//go:build linux

package cli_test

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/internal/testenv"
)

// refusedOneLine: exit code, nothing on stdout, one line on stderr that
// says want.
func refusedOneLine(t *testing.T, r testenv.Result, code int, want string) {
	t.Helper()
	assert.Equal(t, code, r.Code, r.String())
	assert.Contains(t, r.Stderr, want)
	assert.Equal(t, 1, strings.Count(r.Stderr, "\n"), "one line: %s", r.Stderr)
}

// --max-image-size is one flag, one bound, on every verb that unpacks or
// stores an image: the busybox image's files (1.9 MiB, 1.1 MB gzip'd)
// pass 2MiB and not 1.5MiB, whether the image is imported, loaded, run or
// built on; a refused import or load stores nothing.
func TestMaxImageSizeOnEveryVerb(t *testing.T) {
	e := newRunEnv(t)
	over := "takes the image's files over --max-image-size 1.5MiB"

	r := e.Run("import", "--max-image-size", "1.5MiB", "--cmd", "sh", testenv.Rootfs(t), "busybox")
	refusedOneLine(t, r, 125, over)
	assert.Empty(t, e.OK("images", "-q"))
	assertNoBlobs(t, e.Data)

	e.OK("import", "--max-image-size", "2MiB", "--cmd", "sh", testenv.Rootfs(t), "busybox")
	r = e.Run("run", "--max-image-size", "1.5MiB", "--net", "none", "--rm", "--image", "busybox", "true")
	refusedOneLine(t, r, 125, over)
	e.OK("run", "--max-image-size", "2MiB", "--net", "none", "--rm", "--image", "busybox", "true")
	// Unpacked now: its size is recorded, and counts as much.
	r = e.Run("run", "--max-image-size", "1.5MiB", "--net", "none", "--rm", "--image", "busybox", "true")
	refusedOneLine(t, r, 125, over)

	saved := filepath.Join(t.TempDir(), "busybox.tar")
	e.OK("save", "-o", saved, "busybox")
	other := t.TempDir()
	r = e.Run("load", "--data-root", other, "--max-image-size", "1.5MiB", "-i", saved)
	refusedOneLine(t, r, 125, over)
	assertNoBlobs(t, other)
	e.OK("load", "--data-root", other, "--max-image-size", "2MiB", "-i", saved)

	r = e.Run("build", "--max-image-size", "1.5MiB", buildContext(t, "FROM busybox\nRUN true\n", nil))
	refusedOneLine(t, r, 1, "08-image: Dockerfile line 1: FROM busybox: image ")
	assert.Contains(t, r.Stderr, over)
	assert.NotContains(t, r.Stdout, "Step 2/2", "refused at FROM")

	// ADD unpacks an archive into the next layer: it gets what the image
	// left of the bound (2MiB less busybox's 1.9MiB: about 112KiB).
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	require.NoError(t, tw.WriteHeader(&tar.Header{Name: "blob", Mode: 0o644, Size: 200 << 10, Typeflag: tar.TypeReg}))
	_, err := tw.Write(make([]byte, 200<<10))
	require.NoError(t, err)
	require.NoError(t, tw.Close())
	ctx := buildContext(t, "FROM busybox\nADD big.tar /\n", map[string]string{"big.tar": tb.String()})
	r = e.Run("build", "--max-image-size", "2MiB", ctx)
	refusedOneLine(t, r, 1, `Dockerfile line 2: ADD unpack big.tar: entry "blob" (200KiB) takes the image's files over --max-image-size 2MiB (1.891MiB before it): refused`)
	e.OK("build", "--max-image-size", "3MiB", ctx)
	assert.Empty(t, e.leftovers())

	r = e.Run("pull", "--max-image-size", "0", "127.0.0.1:1/x")
	assert.Equal(t, 125, r.Code, r.String())
	assert.Contains(t, r.Stderr, `invalid argument "0" for "--max-image-size" flag: want a positive size such as 512MiB or 8GiB`)
}

// A Dockerfile of 200,000 RUN lines (1.8 MB) ran until stopped; now it
// is refused in one line before the first step, as one over 2 MiB is.
func TestBuildBoundsTheDockerfile(t *testing.T) {
	e := newRunEnv(t)
	e.importBusybox()
	r := e.Run("build", buildContext(t, "FROM busybox\n"+strings.Repeat("RUN true\n", 200000), nil))
	refusedOneLine(t, r, 1, "08-image: the Dockerfile has 200001 instructions, more than 10000: refused")
	assert.Empty(t, r.Stdout, "no step ran")
	ctx := buildContext(t, "FROM busybox\n"+strings.Repeat("# padding\n", 250000), nil)
	r = e.Run("build", ctx)
	refusedOneLine(t, r, 1, "08-image: the Dockerfile "+filepath.Join(ctx, "Dockerfile")+" is over 2MiB: refused")
	assert.Empty(t, r.Stdout, "no step ran")
	require.NoError(t, os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM busybox\nENV A=0123456789abcdef\n"+strings.Repeat("ENV A=$A$A\n", 17)), 0o644))
	r = e.Run("build", ctx)
	assert.Equal(t, 1, r.Code, r.String())
	assert.Contains(t, r.Stderr, `Dockerfile line 19: ENV "$A$A": its variables expand to more than 1MiB: refused`)
	assert.Empty(t, e.leftovers())
}

// pull --help says plainly what a container of these stages is not.
func TestPullHelpSaysTheContainerIsHostRoot(t *testing.T) {
	e := newRunEnv(t)
	help := strings.Join(strings.Fields(e.OK("pull", "--help")), " ")
	for _, want := range []string{
		"keeps every capability of the user who starts it, has no seccomp filter and a writable /proc/sys",
		"Started with sudo, it is root on the host",
	} {
		assert.Contains(t, help, want)
	}
}
