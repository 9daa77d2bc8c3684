//go:build exercise && linux

package exercises

import (
	"archive/tar"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/internal/testenv"
)

// docs/08-archive.md's exercise: 8.

// funcHolding names the function of a Go file whose body holds a string
// literal containing s.
func funcHolding(t *testing.T, file, s string) string {
	t.Helper()
	fs := token.NewFileSet()
	f, err := parser.ParseFile(fs, filepath.Join(repo(t), file), nil, 0)
	require.NoError(t, err)
	found := ""
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok {
			continue
		}
		ast.Inspect(fd, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING && strings.Contains(lit.Value, s) {
				found = fd.Name.Name
			}
			return true
		})
	}
	require.NotEmpty(t, found, "%s has a function that says %q", file, s)
	return found
}

// tarBlobs counts the regular files under blobs/sha256/ of an archive.
func tarBlobs(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	n := 0
	for tr := tar.NewReader(f); ; {
		hdr, err := tr.Next()
		if err != nil {
			return n
		}
		if hdr.Typeflag == tar.TypeReg && strings.HasPrefix(hdr.Name, "blobs/sha256/") {
			n++
		}
	}
}

// 08-8: a save shares what its images share; a blob's name is a promise
// a link must keep.
func TestExercise08_8(t *testing.T) {
	a := answer(t, "08-8", 3)
	b := bin(t, "08-image")
	env := testenv.StateEnv(t)
	importTree(t, env, b, "", "busybox")
	r := build(t, env, b, "hi", "FROM busybox", "RUN echo hi > /hi")
	require.Equal(t, 0, r.Code, r.String())
	dir := t.TempDir()
	two := filepath.Join(dir, "two.tar")
	r = testenv.Run(t, env, b, "save", "-o", two, "busybox", "hi")
	require.Equal(t, 0, r.Code, r.String())
	blobs := tarBlobs(t, two)

	// busybox's archive, its layer blob a link to its config's.
	one := filepath.Join(dir, "one.tar")
	r = testenv.Run(t, env, b, "save", "-o", one, "busybox")
	require.Equal(t, 0, r.Code, r.String())
	x := filepath.Join(dir, "x")
	require.NoError(t, os.Mkdir(x, 0o755))
	r = testenv.Run(t, nil, "tar", "-C", x, "-xf", one)
	require.Equal(t, 0, r.Code, r.String())
	i := inspect(t, env, b, "busybox")
	cfg := strings.TrimPrefix(i.Manifest.Config.Digest, "sha256:")
	layer := filepath.Join(x, "blobs", "sha256", strings.TrimPrefix(i.Manifest.Layers[0].Digest, "sha256:"))
	require.NoError(t, os.Remove(layer))
	require.NoError(t, os.Symlink(cfg, layer))
	hostile := filepath.Join(dir, "hostile.tar")
	r = testenv.Run(t, nil, "tar", "-C", x, "-cf", hostile, ".")
	require.Equal(t, 0, r.Code, r.String())
	other := testenv.StateEnv(t)
	r = testenv.Run(t, other, b, "load", "-i", hostile)
	code := r.Code
	assert.Equal(t, 125, code, "load refuses the link:\n%s", r)
	assert.Equal(t, 1, strings.Count(strings.TrimSpace(r.Stderr), "\n")+1, "in one line:\n%s", r.Stderr)
	left, _ := os.ReadDir(filepath.Join(dataRootOf(other), "images", "blobs", "sha256"))
	assert.Empty(t, left, "and keeps none of the blobs it read")
	fn := funcHolding(t, "08-image/archive/load.go", "not what its name says")

	assert.True(t, same(a[0], strconv.Itoa(blobs)), "line 1: the blobs in the archive of both images: %d, not %q", blobs, a[0])
	assert.True(t, same(a[1], strconv.Itoa(code)), "line 2: load's exit status: %d, not %q", code, a[1])
	assert.Equal(t, strings.ToLower(fn), callName(a[2]), "line 3: the function of 08-image/archive/load.go that refuses the link: not %q", a[2])
}
