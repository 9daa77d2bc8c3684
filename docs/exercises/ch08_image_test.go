//go:build exercise && linux

package exercises

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/internal/testenv"
)

// Stage 08's exercises are numbered on across its four chapters:
// docs/08-image.md has 1-5 (this file), 08-registry.md 6-7, 08-archive.md
// 8, 08-build.md 9-10. Every check works in a data root of its own.

// dataRootOf is the data root of an environment made by testenv.StateEnv.
func dataRootOf(env []string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "BERTH_DATA_ROOT="); ok {
			return v
		}
	}
	return "/var/lib/berth"
}

// importTree imports a tree (the busybox one, by default) as an image
// with sh for its command, and returns the image id import printed.
func importTree(t *testing.T, env []string, b, tree, name string) string {
	t.Helper()
	if tree == "" {
		tree = testenv.Rootfs(t)
	}
	r := testenv.Run(t, env, b, "import", "--cmd", "sh", tree, name)
	require.Equal(t, 0, r.Code, "import %s %s: %s", tree, name, r)
	return strings.TrimSpace(r.Stdout)
}

// inspected is what 08-image inspect prints, the parts the checks read.
type inspected struct {
	ID       string `json:"id"`
	Digest   string `json:"digest"`
	Manifest struct {
		Config struct {
			Digest string `json:"digest"`
		} `json:"config"`
		Layers []struct {
			Digest string `json:"digest"`
		} `json:"layers"`
	} `json:"manifest"`
	Config json.RawMessage `json:"config"`
}

func inspect(t *testing.T, env []string, b, name string) inspected {
	t.Helper()
	r := testenv.Run(t, env, b, "inspect", name)
	require.Equal(t, 0, r.Code, "inspect %s: %s", name, r)
	var i inspected
	require.NoError(t, json.Unmarshal([]byte(r.Stdout), &i), r.Stdout)
	return i
}

// blobPath is where a blob of the data root's store is.
func blobPath(env []string, d string) string {
	return filepath.Join(dataRootOf(env), "images", "blobs", "sha256", strings.TrimPrefix(d, "sha256:"))
}

// layerFiles is what the regular files of a layer blob add up to, read
// from the blob itself (gzip'd or not): what --max-image-size counts.
func layerFiles(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	br := bufio.NewReader(f)
	var r io.Reader = br
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		z, err := gzip.NewReader(br)
		require.NoError(t, err)
		defer z.Close()
		r = z
	}
	var n int64
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return n
		}
		require.NoError(t, err, path)
		if hdr.Typeflag == tar.TypeReg {
			n += hdr.Size
		}
	}
}

// dockerSize prints bytes as images prints them (docker's powers of 1000).
func dockerSize(n int64) string {
	f := float64(n)
	for _, u := range []string{"B", "kB", "MB", "GB"} {
		if f < 1000 {
			if u == "B" {
				return fmt.Sprintf("%dB", n)
			}
			return fmt.Sprintf("%.3g%s", f, u)
		}
		f /= 1000
	}
	return fmt.Sprintf("%.3gTB", f)
}

// zerosTar writes a tarball of one file of n zero bytes, z.
func zerosTar(t *testing.T, path string, n int64) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	w := tar.NewWriter(f)
	require.NoError(t, w.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "z", Mode: 0o644, Size: n}))
	_, err = io.CopyN(w, zeroReader{}, n)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	require.NoError(t, f.Close())
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// 08-1: images --unpacked adds what the layers' files add up to.
func TestExercise08_1(t *testing.T) {
	b := bin(t, "08-image")
	needVerbFlag(t, "08-image", b, "images", "--unpacked")
	env := testenv.StateEnv(t)
	importTree(t, env, b, "", "busybox")
	z := filepath.Join(t.TempDir(), "z.tar")
	zerosTar(t, z, 3000000)
	r := testenv.Run(t, env, b, "import", z, "zeros")
	require.Equal(t, 0, r.Code, r.String())
	r = testenv.Run(t, env, b, "images", "--unpacked")
	require.Equal(t, 0, r.Code, r.String())
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	require.Len(t, lines, 3, "a header and two images:\n%s", r.Stdout)
	head := strings.Fields(lines[0])
	require.Equal(t, "UNPACKED", head[len(head)-1], "the last column is UNPACKED:\n%s", r.Stdout)
	for _, name := range []string{"busybox", "zeros"} {
		var files int64
		for _, l := range inspect(t, env, b, name).Manifest.Layers {
			files += layerFiles(t, blobPath(env, l.Digest))
		}
		found := false
		for _, line := range lines[1:] {
			f := strings.Fields(line)
			if f[0] != name {
				continue
			}
			found = true
			assert.Equal(t, dockerSize(files), f[len(f)-1], "%s: its layers' files add up to %d bytes:\n%s", name, files, r.Stdout)
		}
		assert.True(t, found, "images --unpacked lists %s:\n%s", name, r.Stdout)
	}
	// The column is added: SIZE is still the blobs'.
	r = testenv.Run(t, env, b, "images")
	assert.Equal(t, "SIZE", lastField(strings.SplitN(r.Stdout, "\n", 2)[0]), "without --unpacked, images is as before:\n%s", r.Stdout)
}

func lastField(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return f[len(f)-1]
}

// leafDiff lists the names of the fields whose values differ between two
// JSON documents, at any depth (an array's elements by their index).
func leafDiff(a, b any, name string, out map[string]bool) {
	switch av := a.(type) {
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok {
			out[name] = true
			return
		}
		for k := range av {
			leafDiff(av[k], bv[k], k, out)
		}
		for k := range bv {
			if _, ok := av[k]; !ok {
				out[k] = true
			}
		}
	case []any:
		bv, ok := b.([]any)
		if !ok || len(bv) != len(av) {
			out[name] = true
			return
		}
		for i := range av {
			leafDiff(av[i], bv[i], name, out)
		}
	default:
		if fmt.Sprint(a) != fmt.Sprint(b) {
			out[name] = true
		}
	}
}

// 08-2: import honours SOURCE_DATE_EPOCH: the same tree, the same id.
func TestExercise08_2(t *testing.T) {
	a := answer(t, "08-2", 1)
	b := bin(t, "08-image")
	env := testenv.StateEnv(t)
	unset := append(env[:len(env):len(env)], "SOURCE_DATE_EPOCH=")
	one, two := importTree(t, unset, b, "", "one"), importTree(t, unset, b, "", "two")
	require.NotEqual(t, one, two, "without SOURCE_DATE_EPOCH, each import has its own time, so its own id")
	i1, i2 := inspect(t, env, b, "one"), inspect(t, env, b, "two")
	require.Equal(t, i1.Manifest.Layers, i2.Manifest.Layers, "the same tree gives the same layer")
	var c1, c2 any
	require.NoError(t, json.Unmarshal(i1.Config, &c1))
	require.NoError(t, json.Unmarshal(i2.Config, &c2))
	differ := map[string]bool{}
	leafDiff(c1, c2, "", differ)
	var names []string
	for n := range differ {
		names = append(names, n)
	}
	sort.Strings(names)

	epoch := append(env[:len(env):len(env)], "SOURCE_DATE_EPOCH=1700000000")
	three, four := importTree(t, epoch, b, "", "three"), importTree(t, epoch, b, "", "four")
	assert.Equal(t, three, four, "with SOURCE_DATE_EPOCH=1700000000, the same tree imported twice gives the same image id")
	var cfg struct {
		Created string `json:"created"`
		History []struct {
			Created string `json:"created"`
		} `json:"history"`
	}
	require.NoError(t, json.Unmarshal(inspect(t, env, b, "three").Config, &cfg))
	assert.Equal(t, "2023-11-14T22:13:20Z", cfg.Created, "the config's created is SOURCE_DATE_EPOCH's time")
	for _, h := range cfg.History {
		assert.Equal(t, "2023-11-14T22:13:20Z", h.Created, "and so is its history entry's")
	}
	bad := append(env[:len(env):len(env)], "SOURCE_DATE_EPOCH=yesterday")
	r := testenv.Run(t, bad, b, "import", "--cmd", "sh", testenv.Rootfs(t), "five")
	assert.Equal(t, 125, r.Code, "SOURCE_DATE_EPOCH=yesterday is not a number of seconds: import refuses it\n%s", r)
	assert.Equal(t, 1, strings.Count(strings.TrimSpace(r.Stderr), "\n")+1, "in one line:\n%s", r.Stderr)
	assert.NotEqual(t, 0, testenv.Run(t, env, b, "inspect", "five").Code, "and makes no image")
	assert.True(t, same(a[0], strings.Join(names, " ")), "line 1: the field that differs between the two imports' configs: %s, not %q", strings.Join(names, " "), a[0])
}

// noneIDs are the ids images -a shows without a name.
func noneIDs(t *testing.T, env []string, b string) map[string]bool {
	t.Helper()
	r := testenv.Run(t, env, b, "images", "-a")
	require.Equal(t, 0, r.Code, r.String())
	out := map[string]bool{}
	for _, line := range strings.Split(r.Stdout, "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[0] == "<none>" {
			out[f[2]] = true
		}
	}
	return out
}

// build builds a Dockerfile given as lines in a context of its own; no
// name if tag is "".
func build(t *testing.T, env []string, b, tag string, lines ...string) testenv.Result {
	t.Helper()
	c := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(c, "Dockerfile"), []byte(strings.Join(lines, "\n")+"\n"), 0o644))
	args := []string{"build"}
	if tag != "" {
		args = append(args, "-t", tag)
	}
	return testenv.Run(t, env, b, append(args, c)...)
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// 08-3: prune removes the dangling images, and what they leave dangling.
func TestExercise08_3(t *testing.T) {
	b := bin(t, "08-image")
	if r := testenv.Run(t, nil, b, "prune", "--help"); !strings.Contains(r.Stdout, "prune") || r.Code != 0 {
		t.Fatalf("bin/08-image has no prune verb yet (bin/08-image prune --help: %s): make the change the exercise asks for, then check again", strings.TrimSpace(r.Stderr))
	}
	env := testenv.StateEnv(t)
	old := importTree(t, env, b, "", "busybox")
	importTree(t, env, b, "", "busybox") // the old one is dangling now
	r := build(t, env, b, "ok", "FROM busybox", "ENV A=1", "RUN echo ok > /ok")
	require.Equal(t, 0, r.Code, r.String())
	kept := noneIDs(t, env, b) // the dangling import, and ok's intermediate image
	require.Len(t, kept, 2, "images -a: the old busybox and ok's ENV step")
	delete(kept, old[7:19])
	r = build(t, env, b, "", "FROM busybox", "ENV B=2", "RUN echo x > /x", "RUN exit 3")
	require.Equal(t, 3, r.Code, "the failed build: %s", r)
	gone := map[string]bool{old[7:19]: true}
	for id := range noneIDs(t, env, b) {
		if !kept[id] {
			gone[id] = true // its ENV step, and its dangling RUN step
		}
	}
	require.Len(t, gone, 3)
	named := map[string]string{}
	for _, n := range []string{"busybox", "ok"} {
		named[n] = inspect(t, env, b, n).ID
	}
	oldConfig := blobPath(env, old)

	r = testenv.Run(t, env, b, "prune")
	require.Equal(t, 0, r.Code, r.String())
	deleted := map[string]bool{}
	for _, line := range strings.Split(r.Stdout, "\n") {
		if id, ok := strings.CutPrefix(line, "Deleted: sha256:"); ok && len(id) >= 12 {
			deleted[id[:12]] = true
		}
	}
	assert.Equal(t, keys(gone), keys(deleted), "prune prints Deleted: <id> for each image it removes:\n%s", r.Stdout)
	assert.Equal(t, keys(kept), keys(noneIDs(t, env, b)), "only ok's intermediate image is left without a name (images -a)")
	for n, id := range named {
		assert.Equal(t, id, inspect(t, env, b, n).ID, "%s stays", n)
	}
	_, err := os.Stat(oldConfig)
	assert.True(t, os.IsNotExist(err), "prune sweeps: the old busybox's config blob is gone (%v)", err)
	r = testenv.Run(t, env, b, "run", "--net", "none", "--rm", "--image", "ok", "cat", "/ok")
	assert.Equal(t, "ok\n", r.Stdout, "ok still runs: %s", r)
}

// funcCalls lists the functions and methods a function of a Go file calls,
// by their last name (t.Resolve: Resolve).
func funcCalls(t *testing.T, file, fn string) map[string]bool {
	t.Helper()
	fs := token.NewFileSet()
	f, err := parser.ParseFile(fs, filepath.Join(repo(t), file), nil, 0)
	require.NoError(t, err)
	calls := map[string]bool{}
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Name.Name != fn {
			continue
		}
		ast.Inspect(fd, func(n ast.Node) bool {
			if c, ok := n.(*ast.CallExpr); ok {
				switch f := c.Fun.(type) {
				case *ast.Ident:
					calls[f.Name] = true
				case *ast.SelectorExpr:
					calls[f.Sel.Name] = true
				}
			}
			return true
		})
	}
	require.NotEmpty(t, calls, "%s has a function %s", file, fn)
	return calls
}

// callName reads an answer that names a call: View.Resolve, t.Resolve(),
// os.OpenRoot are Resolve and OpenRoot.
func callName(s string) string {
	s = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "()"))
	if i := strings.LastIndex(s, "."); i >= 0 {
		s = s[i+1:]
	}
	return strings.ToLower(s)
}

// 08-4: an image's /etc/passwd that links out is read inside the image.
func TestExercise08_4(t *testing.T) {
	a := answer(t, "08-4", 3)
	b := bin(t, "08-image")
	env := testenv.StateEnv(t)
	tree := testenv.CopyRootfs(t)
	require.NoError(t, os.MkdirAll(filepath.Join(tree, "usr/share/base-passwd"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(tree, "usr/share/base-passwd/passwd.master"), []byte("daemon:x:4242:4242:daemon:/:/bin/sh\n"), 0o644))
	require.NoError(t, os.Remove(filepath.Join(tree, "etc/passwd")))
	require.NoError(t, os.Symlink(strings.Repeat("../", 10)+"usr/share/base-passwd/passwd.master", filepath.Join(tree, "etc/passwd")))
	importTree(t, env, b, tree, "links-out")
	r := testenv.Run(t, env, b, "run", "--net", "none", "--rm", "--image", "links-out", "--user", "daemon", "id", "-u")
	require.Equal(t, 0, r.Code, r.String())
	uid := strings.TrimSpace(r.Stdout)
	require.Equal(t, "4242", uid, "the image's daemon, read inside the image")
	calls := funcCalls(t, "08-image/image/users.go", "readFile")
	require.True(t, calls["Resolve"], "View.readFile resolves the path in the image (Resolve)")
	require.True(t, calls["OpenRoot"] && calls["OpenRegular"], "and opens the file through an os.Root on its layer (os.OpenRoot, tree.OpenRegular)")
	assert.True(t, same(a[0], uid), "line 1: the uid id printed: %s, not %q", uid, a[0])
	assert.Contains(t, []string{"resolve", "securejoinvfs"}, callName(a[1]), "line 2: the call of View.readFile that keeps the link's target in the image: not %q", a[1])
	assert.Contains(t, []string{"openroot", "openregular", "root"}, callName(a[2]), "line 3: the call that would refuse a file outside the layer: not %q", a[2])
}

// 08-5: a killed writer's blobs are swept; Hold lives with its process.
func TestExercise08_5(t *testing.T) {
	a := answer(t, "08-5", 3)
	b := bin(t, "08-image")
	env := testenv.StateEnv(t)
	importTree(t, env, b, "", "busybox")
	saved := filepath.Join(t.TempDir(), "busybox.tar")
	r := testenv.Run(t, env, b, "save", "-o", saved, "busybox")
	require.Equal(t, 0, r.Code, r.String())

	// The blobs of the archive, and no end: load waits for more.
	other := testenv.StateEnv(t)
	pr, pw, err := os.Pipe()
	require.NoError(t, err)
	defer pw.Close()
	load := exec.Command(b, "load")
	load.Env = append(os.Environ(), other...)
	load.Stdin = pr
	require.NoError(t, load.Start())
	pr.Close()
	defer func() {
		if load.ProcessState == nil {
			_ = load.Process.Kill()
			_ = load.Wait()
		}
	}()
	f, err := os.Open(saved)
	require.NoError(t, err)
	defer f.Close()
	tr, tw := tar.NewReader(f), tar.NewWriter(pw)
	sent := 0
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		if hdr.Typeflag != tar.TypeReg || !strings.HasPrefix(hdr.Name, "blobs/") {
			continue
		}
		require.NoError(t, tw.WriteHeader(hdr))
		_, err = io.Copy(tw, tr)
		require.NoError(t, err)
		sent++
	}
	require.NoError(t, tw.Flush()) // no Close: the end of the archive never comes
	blobs := filepath.Join(dataRootOf(other), "images", "blobs", "sha256")
	count := func() int {
		names, _ := os.ReadDir(blobs)
		return len(names)
	}
	for deadline := time.Now().Add(time.Minute); count() < sent && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
	}
	require.Equal(t, sent, count(), "load stored every blob it was sent")
	require.NoError(t, load.Process.Kill())
	_ = load.Wait()
	afterKill := count()
	testenv.Run(t, other, b, "rmi", "none") // no such image: rmi sweeps all the same
	afterSweep := count()
	require.Equal(t, 0, afterSweep, "the sweep took the blobs no name reaches")
	assert.True(t, same(a[0], strconv.Itoa(afterKill)), "line 1: blobs after the kill -9: %d, not %q", afterKill, a[0])
	assert.True(t, same(a[1], strconv.Itoa(afterSweep)), "line 2: blobs after the sweep: %d, not %q", afterSweep, a[1])
	assert.True(t, same(a[2], "yes"), "line 3: would a containerd lease have kept them through the sweep (yes or no)? not %q", a[2])
}
