//go:build linux

package cli_test

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"berth/08-image/store"
	"berth/internal/testenv"
)

// tool finds a reference tool that make setup installs.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is missing: run sudo make setup (Debian's %s)", name, name)
	}
	return p
}

// skopeo runs Debian's skopeo, the reference tool, with no trust policy
// needed (every source here is local or the test's own registry), its
// temporary files in the test's directory, and in a private mount
// namespace with a tmpfs on /var/lib: as root it would keep a blob cache
// in /var/lib/containers/cache, and a test leaves the host as it found it.
// It returns skopeo's standard output.
func skopeo(t *testing.T, args ...string) string {
	t.Helper()
	tool(t, "skopeo")
	tmp := t.TempDir() // skopeo's big temporary files go to /var/tmp without --tmpdir
	cmd := exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "--", "sh", "-c",
		`mount -t tmpfs berth-test /var/lib && exec skopeo --insecure-policy --tmpdir "$TMPDIR" "$@"`, "skopeo"}, args...)...)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	out, err := cmd.Output()
	var stderr string
	if ee, ok := err.(*exec.ExitError); ok {
		stderr = string(ee.Stderr)
	}
	require.NoError(t, err, "skopeo %v: %s", args, stderr)
	return string(out)
}

func (e *runEnv) image(name string) *store.Image {
	e.T.Helper()
	img, err := store.NewStore(e.Data).Get(name)
	require.NoError(e.T, err)
	return img
}

// save, rmi, load: the same image comes back, manifest and all, and runs.
func TestSaveLoadRoundTrip(t *testing.T) {
	e := newRunEnv(t)
	e.importBusybox()
	before := e.image("busybox")
	file := filepath.Join(t.TempDir(), "busybox.tar")
	assert.Empty(t, e.OK("save", "-o", file, "busybox"))
	e.OK("rmi", "busybox")
	assert.Empty(t, e.OK("images", "-q"))

	assert.Equal(t, "Loaded image: busybox:latest\n", e.OK("load", "-i", file))
	after := e.image("busybox")
	assert.Equal(t, before.ID(), after.ID())
	assert.Equal(t, before.Descriptor.Digest, after.Descriptor.Digest)
	assert.Equal(t, "hi\n", e.OK("run", "--net", "none", "--rm", "--image", "busybox", "echo", "hi"))

	// To stdout and back through stdin: the same bytes as the file.
	out := e.OK("save", "busybox")
	saved, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Equal(t, saved, []byte(out), "save is reproducible")
	r := testenv.RunInput(t, e.Vars, out, e.Bin, "load")
	require.Equal(t, 0, r.Code, r.String())
	assert.Equal(t, "Loaded image: busybox:latest\n", r.Stdout)

	// A name that points at another image moves, as docker load says.
	other := strings.TrimSpace(e.OK("import", "--cmd", "sh", writeTree(t, map[string]string{"x": "y"}), "busybox"))
	assert.Equal(t, "The image busybox:latest already exists, renaming the old one with ID "+other+" to empty string\nLoaded image: busybox:latest\n", e.OK("load", "-i", file))
	assert.Regexp(t, `(?m)^<none>\s+<none>\s+`+other[7:19]+`\s`, e.OK("images"))

	// Saved by id: no name, and load says so.
	require.NoError(t, os.Remove(file))
	e.OK("save", "-o", file, after.ShortID())
	e.OK("rmi", "busybox")
	assert.Equal(t, "Loaded image ID: "+after.ID().String()+"\n", e.OK("load", "-i", file))
}

// A tar archive is not for a terminal, in either direction.
func TestSaveLoadRefuseATerminal(t *testing.T) {
	e := newRunEnv(t)
	e.importBusybox()
	tm := testenv.StartTerminal(t, e.Vars, 24, 80, e.Bin, "save", "busybox")
	out, code := tm.Wait()
	assert.Equal(t, 125, code)
	assert.Equal(t, "08-image: refusing to write a tar archive to a terminal: give -o FILE, or redirect stdout\n", out)
	tm = testenv.StartTerminal(t, e.Vars, 24, 80, e.Bin, "load")
	out, code = tm.Wait()
	assert.Equal(t, 125, code)
	assert.Contains(t, out, "stdin, which is a terminal")
}

// The reference tools read what save writes, as docker's archive
// (manifest.json) and as an OCI archive (index.json), and agree with the
// store on the config, the manifest and the layers.
func TestReferenceToolsReadOurArchive(t *testing.T) {
	e := newRunEnv(t)
	e.importBusybox()
	img := e.image("busybox")
	file := filepath.Join(t.TempDir(), "busybox.tar")
	e.OK("save", "-o", file, "busybox")

	var raw ocispec.Manifest
	require.NoError(t, json.Unmarshal([]byte(skopeo(t, "inspect", "--raw", "docker-archive:"+file)), &raw))
	assert.Equal(t, img.ID(), raw.Config.Digest, "docker-archive: the same config")
	var insp struct {
		Digest digest.Digest
		Layers []digest.Digest
	}
	require.NoError(t, json.Unmarshal([]byte(skopeo(t, "inspect", "docker-archive:"+file)), &insp))
	// skopeo's docker-archive reader gunzips the layers: it lists diff ids.
	assert.Equal(t, img.Config.RootFS.DiffIDs, insp.Layers)

	require.NoError(t, json.Unmarshal([]byte(skopeo(t, "inspect", "oci-archive:"+file)), &insp))
	assert.Equal(t, img.Descriptor.Digest, insp.Digest, "oci-archive: the same manifest")
	assert.Equal(t, []digest.Digest{img.Manifest.Layers[0].Digest}, insp.Layers)
	var cfg ocispec.Image
	require.NoError(t, json.Unmarshal([]byte(skopeo(t, "inspect", "--config", "oci-archive:"+file+":latest")), &cfg))
	assert.Equal(t, []string{"sh"}, cfg.Config.Cmd)
}

// What skopeo writes loads: docker-archive (the legacy layout: an
// uncompressed layer named by its diff id, a <v1 id>/layer.tar symlink to
// it, v1 json files), oci-archive, and an OCI layout directory. Each
// gives the same image id, and the image runs.
func TestLoadWhatSkopeoWrites(t *testing.T) {
	e := newRunEnv(t)
	e.importBusybox()
	img := e.image("busybox")
	src := "oci:" + filepath.Join(e.Data, "images") + ":docker.io/library/busybox:latest"
	dir := t.TempDir()
	x, y, layout := filepath.Join(dir, "X.tar"), filepath.Join(dir, "Y.tar"), filepath.Join(dir, "layout")
	skopeo(t, "copy", "-q", src, "docker-archive:"+x+":busybox:latest")
	skopeo(t, "copy", "-q", src, "oci-archive:"+y+":busybox:latest")
	skopeo(t, "copy", "-q", src, "oci:"+layout+":busybox:latest")
	names := tarNames(t, x)
	assert.Contains(t, names, img.Config.RootFS.DiffIDs[0].Encoded()+".tar", "skopeo's legacy layout")
	assert.Contains(t, names, img.ID().Encoded()+".json")

	for _, c := range []struct{ src, manifest string }{{x, "rewritten"}, {y, "kept"}, {layout, "kept"}} {
		e.OK("rmi", "busybox")
		assert.Equal(t, "Loaded image: busybox:latest\n", e.OK("load", "-i", c.src), c.src)
		got := e.image("busybox")
		assert.Equal(t, img.ID(), got.ID(), c.src)
		if c.manifest == "kept" {
			assert.Equal(t, img.Descriptor.Digest, got.Descriptor.Digest, c.src)
		} else {
			// Uncompressed in the archive, uncompressed in the store: the
			// layer blob is the diff id, under a manifest load wrote.
			assert.Equal(t, ocispec.MediaTypeImageLayer, got.Manifest.Layers[0].MediaType)
			assert.Equal(t, img.Config.RootFS.DiffIDs[0], got.Manifest.Layers[0].Digest)
		}
		assert.Equal(t, "hi\n", e.OK("run", "--net", "none", "--rm", "--image", "busybox", "echo", "hi"), c.src)
	}
}

func tarNames(t *testing.T, file string) []string {
	t.Helper()
	f, err := os.Open(file)
	require.NoError(t, err)
	defer f.Close()
	var names []string
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return names
		}
		require.NoError(t, err)
		names = append(names, hdr.Name)
	}
}

// member is one entry of an archive, to take apart and put together again.
type member struct {
	hdr  tar.Header
	body []byte
}

func readMembers(t *testing.T, b []byte) []member {
	t.Helper()
	var ms []member
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return ms
		}
		require.NoError(t, err)
		body, err := io.ReadAll(tr)
		require.NoError(t, err)
		ms = append(ms, member{*hdr, body})
	}
}

func writeMembers(t *testing.T, ms []member) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range ms {
		h := m.hdr
		h.Size = int64(len(m.body))
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		require.NoError(t, tw.WriteHeader(&h))
		_, err := tw.Write(m.body)
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

// Bad archives, made from a good one: each ends load with exit 125 and
// one line, names nothing, and writes nothing outside the store.
func TestLoadRefusesBadArchives(t *testing.T) {
	e := newRunEnv(t)
	e.importBusybox()
	img := e.image("busybox")
	good := []byte(e.OK("save", "busybox"))
	e.OK("rmi", "busybox")
	cwd, err := os.Getwd()
	require.NoError(t, err)
	canary := filepath.Join(t.TempDir(), "canary")

	layerBlob := "blobs/sha256/" + img.Manifest.Layers[0].Digest.Encoded()
	// edit rewrites the good archive member by member; drop the OCI half
	// to make load use manifest.json.
	edit := func(dropOCI bool, fn func(m *member) []member) []byte {
		var out []member
		for _, m := range readMembers(t, good) {
			if dropOCI && (m.hdr.Name == "index.json" || m.hdr.Name == "oci-layout") {
				continue
			}
			if fn == nil {
				out = append(out, m)
			} else {
				out = append(out, fn(&m)...)
			}
		}
		return writeMembers(t, out)
	}
	plus := func(extra member) []byte {
		return edit(false, func(m *member) []member {
			if m.hdr.Name == "repositories" {
				return []member{*m, extra}
			}
			return []member{*m}
		})
	}
	layersAt := func(p string) func(m *member) []member {
		return func(m *member) []member {
			if m.hdr.Name == "manifest.json" {
				m.body = bytes.ReplaceAll(m.body, []byte(layerBlob), []byte(p))
			}
			return []member{*m}
		}
	}
	file := func(name string) member {
		return member{tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644}, []byte("written through a name from the archive")}
	}
	symlinkOut := edit(true, func(m *member) []member {
		ms := layersAt("evil/layer.tar")(m)
		if m.hdr.Name == "manifest.json" {
			ms = append(ms, member{tar.Header{Typeflag: tar.TypeSymlink, Name: "evil/layer.tar", Linkname: "../../../../../../.." + canary}, nil})
		}
		return ms
	})
	tampered := edit(false, func(m *member) []member {
		if m.hdr.Name == layerBlob {
			m.body = append([]byte{}, m.body...)
			m.body[len(m.body)/2] ^= 0xff
		}
		return []member{*m}
	})
	random := make([]byte, 64<<10)
	_, err = rand.Read(random)
	require.NoError(t, err)

	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"dot-dot", plus(file("../" + filepath.Base(cwd) + "/canary")), `archive entry "../` + filepath.Base(cwd) + `/canary" climbs out with '..': refused`},
		{"absolute", plus(file(canary)), `archive entry "` + canary + `" is an absolute name: refused`},
		{"symlink outside", symlinkOut, "symlink evil/layer.tar points to \"../../../../../../.." + canary + "\", outside the archive: refused"},
		{"tampered blob", tampered, "archive entry " + layerBlob + ": blob content hashes to sha256:"},
		{"missing file", edit(true, layersAt("gone/layer.tar")), "manifest.json, image 1 of 1: layer 1: gone/layer.tar is not in the archive"},
		{"truncated", good[:len(good)/2], "the archive ends in the middle of an entry: is it truncated?"},
		{"random bytes", random, "not a tar archive (a docker-archive or an OCI layout, plain or gzip'd)"},
		{"a text file", []byte("myhost\n"), "not a tar archive (a docker-archive or an OCI layout, plain or gzip'd)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "bad.tar")
			require.NoError(t, os.WriteFile(f, c.data, 0o644))
			r := e.Run("load", "-i", f)
			assert.Equal(t, 125, r.Code, r.String())
			assert.Empty(t, r.Stdout)
			assert.Equal(t, 1, strings.Count(r.Stderr, "\n"), r.Stderr)
			assert.True(t, strings.HasPrefix(r.Stderr, "08-image: load "+f+": "), r.Stderr)
			assert.Contains(t, r.Stderr, c.want)
			assert.Empty(t, e.OK("images", "-q"), "nothing is named")
			_, err := os.Stat(canary)
			assert.ErrorIs(t, err, os.ErrNotExist)
			_, err = os.Stat(filepath.Join(cwd, "canary"))
			assert.ErrorIs(t, err, os.ErrNotExist)
			assertNoBlobs(t, e.Data)
			// Nothing outside the store either: the data root holds only it.
			top, err := os.ReadDir(e.Data)
			require.NoError(t, err)
			for _, d := range top {
				assert.Contains(t, []string{"images", "layers"}, d.Name())
			}
		})
	}
	// The archive they were made from is fine.
	f := filepath.Join(t.TempDir(), "good.tar")
	require.NoError(t, os.WriteFile(f, good, 0o644))
	assert.Equal(t, "Loaded image: busybox:latest\n", e.OK("load", "-i", f))
}

// assertNoBlobs: the store under a data root holds no blob, complete or
// half-written.
func assertNoBlobs(t *testing.T, data string) {
	t.Helper()
	for _, dir := range []string{"blobs/sha256", "ingest"} {
		left, err := os.ReadDir(filepath.Join(data, "images", dir))
		if !os.IsNotExist(err) {
			require.NoError(t, err)
		}
		var names []string
		for _, l := range left {
			names = append(names, l.Name())
		}
		assert.Empty(t, names, "images/%s", dir)
	}
}

// load -i DIR opens only regular files: a FIFO where index.json or a
// blob should be would block it forever (nothing writes to it).
func TestLoadDirRefusesFIFOs(t *testing.T) {
	e := newRunEnv(t)
	e.importBusybox()
	img := e.image("busybox")
	good := filepath.Join(t.TempDir(), "busybox.tar")
	e.OK("save", "-o", good, "busybox")
	e.OK("rmi", "busybox")
	layout := func(t *testing.T, fifo string) string {
		dir := t.TempDir()
		out, err := exec.Command("tar", "-C", dir, "-xf", good).CombinedOutput()
		require.NoError(t, err, string(out))
		require.NoError(t, os.Remove(filepath.Join(dir, fifo)))
		require.NoError(t, unix.Mkfifo(filepath.Join(dir, fifo), 0o644))
		return dir
	}
	layer := "blobs/sha256/" + img.Manifest.Layers[0].Digest.Encoded()
	for _, name := range []string{"index.json", layer} {
		t.Run(name, func(t *testing.T) {
			dir := layout(t, name)
			r := e.Run("load", "-i", dir)
			assert.Equal(t, 125, r.Code, r.String())
			assert.Empty(t, r.Stdout)
			assert.Regexp(t, `^08-image: load `+regexp.QuoteMeta(dir)+`: (.*: )?`+regexp.QuoteMeta(name)+` is a FIFO, not a regular file: refused\n$`, r.Stderr)
			assert.Empty(t, e.OK("images", "-q"))
			assertNoBlobs(t, e.Data)
		})
	}
}

// interrupt runs the stage with stdin a pipe that gives data and then
// stalls (a slow network, an ssh that hangs), waits until ready says
// the command is in the middle of its work, and sends it SIGINT, as
// Ctrl-C does.
func (e *runEnv) interrupt(data []byte, ready func() bool, args ...string) testenv.Result {
	t := e.T
	t.Helper()
	cmd := exec.Command(e.Bin, args...)
	cmd.Env = append(os.Environ(), e.Vars...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	pr, pw, err := os.Pipe()
	require.NoError(t, err)
	defer pw.Close()
	cmd.Stdin = pr
	require.NoError(t, cmd.Start())
	pr.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-done
		}
	})
	go func() { _, _ = pw.Write(data) }() // and nothing more: the pipe stays open
	for deadline := time.Now().Add(time.Minute); !ready(); time.Sleep(10 * time.Millisecond) {
		require.True(t, time.Now().Before(deadline), "%v did not get going in a minute", args)
	}
	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		t.Fatalf("%v: still running a minute after SIGINT", args)
	}
	r := testenv.Result{Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.Code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.Code = 128 + int(ws.Signal())
		}
	}
	return r
}

// count is how many files a directory of the store holds now.
func (e *runEnv) count(dir string) int {
	names, _ := os.ReadDir(filepath.Join(e.Data, "images", dir))
	return len(names)
}

// Ctrl-C ends a load that waits for its input: the blob it was writing
// and the blobs it wrote are removed, and it says so.
func TestLoadInterrupted(t *testing.T) {
	e := newRunEnv(t)
	e.importBusybox()
	img := e.image("busybox")
	good := []byte(e.OK("save", "busybox"))
	e.OK("rmi", "busybox")
	// The layer last, so that the config and the manifest are stored
	// before the load stalls in the middle of it.
	layerBlob := "blobs/sha256/" + img.Manifest.Layers[0].Digest.Encoded()
	var ms []member
	var layer member
	for _, m := range readMembers(t, good) {
		if m.hdr.Name == layerBlob {
			layer = m
		} else {
			ms = append(ms, m)
		}
	}
	require.NotEmpty(t, layer.body)
	data := writeMembers(t, append(ms, layer))
	data = data[:len(data)-1024-len(layer.body)/2]

	r := e.interrupt(data, func() bool { return e.count("blobs/sha256") == 2 && e.count("ingest") == 1 }, "load")
	assert.Equal(t, 130, r.Code, r.String())
	assert.Equal(t, "08-image: load interrupted: nothing was loaded\n", r.Stderr)
	assertNoBlobs(t, e.Data)
	assert.Empty(t, e.OK("images", "-q"))
}

// save -o names the file it was given when it cannot write it, not the
// temporary file it writes first.
func TestSaveNamesItsOutput(t *testing.T) {
	e := newRunEnv(t)
	e.importBusybox()
	out := filepath.Join(t.TempDir(), "missing", "busybox.tar")
	r := e.Run("save", "-o", out, "busybox")
	assert.Equal(t, 125, r.Code, r.String())
	assert.Equal(t, "08-image: save: create "+out+": no such file or directory\n", r.Stderr)
}
