//go:build linux

package layer_test

import (
	"archive/tar"
	"compress/gzip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"berth/internal/testenv"
)

// deepLayer writes a gzip'd layer of depth nested directories "d" (and a
// file "x" in the last one when withFile) and returns its path.
func deepLayer(t *testing.T, depth int, withFile string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "deep.tar.gz")
	f, err := os.Create(p)
	require.NoError(t, err)
	defer f.Close()
	zw, err := gzip.NewWriterLevel(f, gzip.BestSpeed)
	require.NoError(t, err)
	tw := tar.NewWriter(zw)
	name := ""
	for i := 0; i < depth; i++ {
		name += "d/"
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755}))
	}
	if withFile != "" {
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: name + "x", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(withFile))}))
		_, err = tw.Write([]byte(withFile))
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	require.NoError(t, zw.Close())
	return p
}

// A 10,000-deep layer (300 KB of gzip) took 1.7 GB and 43 s to apply;
// it now stops at the path limit, in one short line. (How much memory
// apply keeps is TestApplyMemoryIsLinearInDepth's: a child's peak RSS
// would also count the test's own, which a vfork'd exec inherits.)
func TestApplyDeepLayerRefused(t *testing.T) {
	e := testenv.NewStage(t, "07-unionfs")
	r := e.Run("apply", deepLayer(t, 3000, ""), filepath.Join(t.TempDir(), "l"))
	assert.Equal(t, 125, r.Code)
	assert.Regexp(t, `^07-unionfs: apply: entry "d/d/d/.*…(d/)+": a path of 4097 bytes, longer than the kernel's limit of 4095: refusing\n$`, r.Stderr)
	assert.Less(t, len(r.Stderr), 200, "one short line")
}

// A tree as deep as the kernel's path limit allows works with the copy
// driver: copied, diffed and committed through directory fds (the old
// path-based copy failed with ENAMETOOLONG and a 4 KB error line).
func TestCopyDriverDeepTree(t *testing.T) {
	e := testenv.NewStage(t, "07-unionfs")
	img := t.TempDir()
	depth := 1990 // "/" + 1990 × "d/" + "x": 3,982 bytes, under PATH_MAX
	require.NoError(t, exec.Command("cp", deepLayer(t, depth, "deepest\n"), filepath.Join(img, "deep.tar.gz")).Run())
	base := filepath.Join(img, "base.tar")
	require.NoError(t, exec.Command("tar", "-C", testenv.Rootfs(t), "-cf", base, ".").Run())
	require.NoError(t, os.WriteFile(filepath.Join(img, "order"), []byte("base.tar\ndeep.tar.gz\n"), 0o644))
	deep := "/" + strings.Repeat("d/", depth)
	out := e.OK("run", "--net", "none", "--id", "deep", "--storage-driver", "copy", "--image", img, "sh", "-c", "cat "+deep+"x; echo new > "+deep+"y")
	assert.Equal(t, "deepest\n", out)
	diff := strings.Split(strings.TrimSpace(e.OK("diff", "deep")), "\n")
	require.Len(t, diff, depth+1)
	assert.Equal(t, "A "+deep+"y", diff[depth])
	tarball := filepath.Join(t.TempDir(), "c.tar")
	e.OK("commit", "deep", tarball)
	names := tarList(t, tarball)
	assert.Equal(t, strings.TrimPrefix(deep, "/")+"y", names[len(names)-1])
	e.OK("rm", "deep")
}

// mkDeep makes n nested directories "d" in dir, one name at a time.
func mkDeep(t *testing.T, dir string, n int) {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	require.NoError(t, err)
	for i := 0; i < n; i++ {
		require.NoError(t, unix.Mkdirat(fd, "d", 0o755))
		next, err := unix.Openat(fd, "d", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
		require.NoError(t, err)
		unix.Close(fd)
		fd = next
	}
	unix.Close(fd)
}

// Deeper than the path limit: refused in one short line, whether a
// container made the tree (diff, commit) or a --layers directory has it
// (the copy driver's copy). The tree is made here from the host, one name
// at a time, as a container could make it in its own layer.
func TestDeeperThanThePathLimit(t *testing.T) {
	e := testenv.NewStage(t, "07-unionfs")
	const tooDeep = `/d/d/d/.*…(/d)+: path longer than the kernel's limit of 4095 bytes: refusing\n$`
	for _, driver := range []string{"overlay", "copy"} {
		t.Run(driver, func(t *testing.T) {
			id := "deep-" + driver
			e.OK("run", "--net", "none", "--id", id, "--storage-driver", driver, "true")
			mkDeep(t, filepath.Join(e.Data, "layers/containers", id, "diff"), 2100)
			for _, verb := range [][]string{{"diff", id}, {"commit", id, filepath.Join(t.TempDir(), "c.tar")}} {
				r := e.Run(verb...)
				assert.Equal(t, 125, r.Code)
				assert.Regexp(t, `^07-unionfs: (commit `+id+`: )?`+tooDeep, r.Stderr)
				assert.Less(t, len(r.Stderr), 200, "one short line")
			}
			e.OK("rm", id)
		})
	}

	// A host directory deeper than the limit, as a read-only layer.
	layer := t.TempDir()
	mkDeep(t, layer, 2100)
	r := e.Run("run", "--net", "none", "--rm", "--storage-driver", "copy", "--layers", layer+":"+testenv.Rootfs(t), "true")
	assert.Equal(t, 125, r.Code)
	assert.Regexp(t, `^07-unionfs: layer: copy layers into .*/diff: `+tooDeep, r.Stderr)
	assert.Less(t, len(r.Stderr), 300, "one short line")
}
