//go:build linux

package cli_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/08-image/store"
	"berth/internal/testenv"
)

// runEnv is the stage built, with private state and data roots; runs
// pass --net none: the network is stage 04's lesson, not this one's.
type runEnv struct{ *testenv.Stage }

func newRunEnv(t *testing.T) *runEnv { return &runEnv{testenv.NewStage(t, "08-image")} }

// importBusybox makes the image "busybox" of the busybox tree, CMD sh.
func (e *runEnv) importBusybox() string {
	e.T.Helper()
	return strings.TrimSpace(e.OK("import", "--cmd", "sh", testenv.Rootfs(e.T), "busybox"))
}

func TestImportAndRun(t *testing.T) {
	e := newRunEnv(t)
	id := e.importBusybox()
	assert.Regexp(t, `^sha256:[0-9a-f]{64}$`, id)

	out := e.OK("images")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2, out)
	assert.Regexp(t, `^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$`, lines[0])
	assert.Regexp(t, `^busybox\s+latest\s+`+id[7:19]+`\s+Less than a minute ago\s+[0-9.]+[kM]B$`, lines[1])

	// The image's CMD runs when no command is given; a command replaces it.
	assert.Equal(t, "from the image\n", e.OK("run", "--net", "none", "--rm", "--image", "busybox", "echo", "from the image"))
	r := testenv.RunInput(t, e.Vars, "echo $0 read stdin\n", e.Bin, "run", "--net", "none", "--rm", "--image", "busybox")
	require.Equal(t, 0, r.Code, r.String())
	assert.Equal(t, "sh read stdin\n", r.Stdout)
	// By id, as docker accepts it.
	assert.Equal(t, "ok\n", e.OK("run", "--net", "none", "--rm", "--image", id[7:19], "echo", "ok"))

	// The root is the image's: the busybox tree, from a layer unpacked once
	// into the layer store, under the diff id the config names.
	s := store.NewStore(e.Data)
	img, err := s.Get("busybox")
	require.NoError(t, err)
	require.Len(t, img.Config.RootFS.DiffIDs, 1)
	layerDir := s.LayerDir(img.Config.RootFS.DiffIDs[0])
	_, err = os.Stat(filepath.Join(layerDir, "bin/busybox"))
	require.NoError(t, err)
	assert.Equal(t, "/bin/busybox\n", e.OK("run", "--net", "none", "--rm", "--image", "busybox", "sh", "-c", "ls /bin/busybox"))

	// history shows the import; inspect the manifest and config.
	assert.Regexp(t, `(?m)^`+img.Config.RootFS.DiffIDs[0].Encoded()[:12]+`\s+Less than a minute ago\s+berth import `, e.OK("history", "busybox"))
	var v struct {
		Name     string
		Manifest ocispec.Manifest
		Config   ocispec.Image
	}
	require.NoError(t, json.Unmarshal([]byte(e.OK("inspect", "busybox")), &v))
	assert.Equal(t, "docker.io/library/busybox:latest", v.Name)
	assert.Equal(t, []string{"sh"}, v.Config.Config.Cmd)
	assert.Equal(t, img.Manifest.Layers[0].Digest, v.Manifest.Layers[0].Digest)
}

// An image made through the store's API with a full config: what docker run
// takes from it, and how the flags override it.
func TestRunTakesTheImageConfig(t *testing.T) {
	e := newRunEnv(t)
	e.importBusybox()
	s := store.NewStore(e.Data)
	base, err := s.Get("busybox")
	require.NoError(t, err)
	extra, err := s.PutTree(writeTree(t, map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"etc/group":  "root:x:0:\napp:x:1000:\nstaff:x:50:app\n",
		"srv/README": "the app's files\n",
	}))
	require.NoError(t, err)
	cfg := base.Config
	cfg.History = nil
	cfg.Config = ocispec.ImageConfig{
		Entrypoint: []string{"/bin/sh", "-c", `echo "$0 $* as $(id -u):$(id -g) groups $(id -G) in $(pwd) GREETING=$GREETING HOME=$HOME"`},
		Cmd:        []string{"default-arg"},
		Env:        []string{"PATH=/bin:/usr/bin", "GREETING=hello"},
		WorkingDir: "/srv",
		User:       "app",
	}
	baseLayer := store.Layer{Blob: base.Manifest.Layers[0], DiffID: base.Config.RootFS.DiffIDs[0]}
	_, err = s.Commit("app", cfg, []store.Layer{baseLayer, extra})
	require.NoError(t, err)

	assert.Equal(t, "default-arg  as 1000:1000 groups 1000 50 in /srv GREETING=hello HOME=/home/app\n",
		e.OK("run", "--net", "none", "--rm", "--image", "app"))
	assert.Equal(t, "x y as 1000:1000 groups 1000 50 in /srv GREETING=bonjour HOME=/home/app\n",
		e.OK("run", "--net", "none", "--rm", "-e", "GREETING=bonjour", "--image", "app", "x", "y"))
	assert.Equal(t, "65534 65534\n",
		e.OK("run", "--net", "none", "--rm", "--user", "nobody", "--entrypoint", "/bin/sh", "--image", "app", "--", "-c", "echo $(id -u) $(id -g)"))
	assert.Equal(t, "0\n",
		e.OK("run", "--net", "none", "--rm", "-u", "0", "--entrypoint", "id", "--image", "app", "--", "-u"))
	// The user is set last: a file the user may not write stays unwritten.
	r := e.Run("run", "--net", "none", "--rm", "--entrypoint", "/bin/sh", "--image", "app", "--", "-c", "echo x > /etc/passwd")
	assert.Equal(t, 1, r.Code, r.String())
	assert.Contains(t, r.Stderr, "Permission denied")

	// Bad input: one line, exit 125.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--image", "nosuch"}, `image "nosuch" is not in the store`},
		{[]string{"--image", "app", "--user", "ghost"}, `user "ghost": no such user`},
		{[]string{"--image", "app", "--entrypoint", ""}, "has no ENTRYPOINT or CMD"},
		{[]string{"--image", "app", "--layers", "/tmp"}, "give one"},
		{[]string{"--user", "app", "true"}, "--user needs an image"},
		{[]string{"--image", "Not A Name"}, "invalid image name"},
	} {
		r := e.Run(append([]string{"run", "--net", "none", "--rm"}, c.args...)...)
		assert.Equal(t, 125, r.Code, "%v: %s", c.args, r)
		assert.Contains(t, r.Stderr, c.want, c.args)
		assert.Equal(t, 1, strings.Count(r.Stderr, "\n"), "one line: %q", r.Stderr)
	}
}

// Two images on the same base layer unpack it once; rmi keeps it while
// an image or a container still stands on it.
func TestLayersAreShared(t *testing.T) {
	e := newRunEnv(t)
	e.importBusybox()
	s := store.NewStore(e.Data)
	e.OK("tag", "busybox", "copy:v1")
	assert.Equal(t, "hi\n", e.OK("run", "--net", "none", "--rm", "--image", "copy:v1", "echo", "hi"))
	assert.Equal(t, "hi\n", e.OK("run", "--net", "none", "--rm", "--image", "busybox", "echo", "hi"))
	unpacked, err := os.ReadDir(filepath.Join(e.Data, "layers", "sha256"))
	require.NoError(t, err)
	assert.Len(t, unpacked, 1)

	// A stopped container (no --rm) keeps its layer, and its image's base.
	e.OK("run", "--net", "none", "--id", "keeper", "--image", "busybox", "touch", "/made-here")
	assert.Equal(t, "Untagged: copy:v1\n", e.OK("rmi", "copy:v1"))
	out := e.OK("rmi", "busybox")
	assert.Regexp(t, `^Untagged: busybox:latest\nDeleted: sha256:[0-9a-f]{64}\n$`, out, "the layer is kept: a container stands on it")
	imgs := e.OK("images", "-q")
	assert.Empty(t, imgs)
	blobs, err := os.ReadDir(filepath.Join(s.Root, "blobs", "sha256"))
	require.NoError(t, err)
	assert.Empty(t, blobs, "no image: no blob")
	unpacked, err = os.ReadDir(filepath.Join(e.Data, "layers", "sha256"))
	require.NoError(t, err)
	assert.Len(t, unpacked, 1, "the container's lower layer stays")
	assert.Equal(t, "A /made-here\n", e.OK("diff", "keeper"))

	// Once the container is gone, the next rmi's sweep takes the layer.
	e.OK("rm", "keeper")
	e.importBusybox()
	id := strings.TrimSpace(e.OK("images", "-q"))
	out = e.OK("rmi", id)
	assert.Regexp(t, `^Untagged: busybox:latest\nDeleted: sha256:`+id+`[0-9a-f]+\nDeleted layer: sha256:[0-9a-f]{64}\n$`, out)
	unpacked, err = os.ReadDir(filepath.Join(e.Data, "layers", "sha256"))
	require.NoError(t, err)
	assert.Empty(t, unpacked)
}

// import takes a tarball too, gzip'd, from stdin.
func TestImportTarball(t *testing.T) {
	e := newRunEnv(t)
	dir := writeTree(t, map[string]string{"hello": "from a tarball\n"})
	tgz := filepath.Join(t.TempDir(), "rootfs.tar.gz")
	out, err := exec.Command("sh", "-c", "tar -C "+testenv.Rootfs(t)+" -c . | tar -C "+dir+" -x && tar -C "+dir+" -cz . > "+tgz).CombinedOutput()
	require.NoError(t, err, string(out))
	f, err := os.Open(tgz)
	require.NoError(t, err)
	defer f.Close()
	cmd := exec.Command(e.Bin, "import", "-", "fromtar:1")
	cmd.Env, cmd.Stdin = append(os.Environ(), e.Vars...), f
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, string(b))
	assert.Equal(t, "from a tarball\n", e.OK("run", "--net", "none", "--rm", "--image", "fromtar:1", "cat", "/hello"))

	r := e.Run("import", "/nonexistent.tar", "x")
	assert.Equal(t, 125, r.Code)
	assert.Contains(t, r.Stderr, "no such file")
	assert.Empty(t, e.OK("images", "-q", "--data-root", e.Data+"-other"))
}

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o755))
	for rel, content := range files {
		p := filepath.Join(dir, rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	return dir
}

// Twenty tags at once, from twenty processes: index.json is rewritten
// under a lock, so no name is lost.
func TestConcurrentTagsKeepEveryName(t *testing.T) {
	e := newRunEnv(t)
	e.importBusybox()
	var cmds []*exec.Cmd
	for i := 0; i < 20; i++ {
		c := exec.Command(e.Bin, "tag", "busybox", "many:"+strconv.Itoa(i))
		c.Env = append(os.Environ(), e.Vars...)
		require.NoError(t, c.Start())
		cmds = append(cmds, c)
	}
	for _, c := range cmds {
		require.NoError(t, c.Wait())
	}
	out := e.OK("images")
	for i := 0; i < 20; i++ {
		assert.Regexp(t, `(?m)^many\s+`+strconv.Itoa(i)+`\s`, out)
	}
	assert.Len(t, strings.Split(strings.TrimSpace(out), "\n"), 22, out)
}

// A layer blob changed in the store after it was checked in: the diff id
// check refuses it as it is unpacked, and nothing is left unpacked.
func TestChangedLayerIsRefused(t *testing.T) {
	e := newRunEnv(t)
	e.importBusybox()
	s := store.NewStore(e.Data)
	img, err := s.Get("busybox")
	require.NoError(t, err)
	evil := writeTree(t, map[string]string{"bin/sh": "#!/evil\n"})
	out, err := exec.Command("sh", "-c", "tar -C "+evil+" -cz bin > "+s.BlobPath(img.Manifest.Layers[0].Digest)).CombinedOutput()
	require.NoError(t, err, string(out))
	r := e.Run("run", "--net", "none", "--rm", "--image", "busybox", "true")
	assert.Equal(t, 125, r.Code, r.String())
	assert.Contains(t, r.Stderr, "as the image config says: refused")
	left, err := os.ReadDir(filepath.Join(e.Data, "layers", "sha256"))
	require.NoError(t, err)
	assert.Empty(t, left)
	containers, _ := os.ReadDir(filepath.Join(e.Data, "layers", "containers"))
	assert.Empty(t, containers, "no container layer for a run that never started")
}

// Without root (stage 05): the user's own store under ~/.local/share/berth,
// layers unpacked with the user's ids, run in the container's user
// namespace, where those ids are root's.
func TestRootlessImage(t *testing.T) {
	testenv.Rootfs(t)
	a := testenv.NewAccount(t, "berth08a", true)
	bin := a.Binary(t, "08-image")
	ok := func(args ...string) string {
		t.Helper()
		r := a.Run(t, nil, bin, args...)
		require.Equal(t, 0, r.Code, r.String())
		return r.Stdout
	}
	ok("import", "--cmd", "sh", a.Rootfs(t), "busybox")
	assert.Regexp(t, `(?m)^busybox\s+latest\s`, ok("images"))
	assert.Equal(t, "0 hello\n", ok("run", "--rm", "--image", "busybox", "sh", "-c", "echo $(id -u) hello"))
	// With the user's subordinate ids mapped, USER 1000 exists inside.
	assert.Equal(t, "1000:1000\n", ok("run", "--rm", "--map-subids", "-u", "1000:1000", "--image", "busybox", "sh", "-c", "echo $(id -u):$(id -g)"))
	r := a.Run(t, nil, bin, "run", "--rm", "-u", "1000", "--image", "busybox", "true")
	assert.Equal(t, 125, r.Code, r.String())
	assert.Contains(t, r.Stderr, "is the user mapped in the user namespace?")
	unpacked, err := os.ReadDir(filepath.Join(a.Home, ".local/share/berth/layers/sha256"))
	require.NoError(t, err)
	assert.Len(t, unpacked, 1)
	out := ok("rmi", "busybox")
	assert.Contains(t, out, "Deleted layer: sha256:")
}

// A WORKDIR the image lacks is made in the container, as docker does; a
// digest is not a name tag may give.
func TestWorkdirMadeAndDigestNamesRefused(t *testing.T) {
	e := newRunEnv(t)
	e.importBusybox()
	s := store.NewStore(e.Data)
	base, err := s.Get("busybox")
	require.NoError(t, err)
	cfg := base.Config
	cfg.History = nil
	cfg.Config.WorkingDir = "/made/by/run"
	_, err = s.Commit("wd", cfg, []store.Layer{{Blob: base.Manifest.Layers[0], DiffID: base.Config.RootFS.DiffIDs[0]}})
	require.NoError(t, err)
	assert.Equal(t, "/made/by/run\n", e.OK("run", "--net", "none", "--rm", "--image", "wd", "pwd"))

	r := e.Run("tag", "busybox", "busybox@sha256:"+strings.Repeat("0", 64))
	assert.Equal(t, 125, r.Code, r.String())
	assert.Contains(t, r.Stderr, "names content by its digest")
}

// --creds is USER:PASSWORD: without the colon it is refused before any
// request, rather than sent with an empty password.
func TestCredsNeedAPassword(t *testing.T) {
	e := newRunEnv(t)
	for _, verb := range []string{"pull", "push"} {
		r := e.Run(verb, "--creds", "justme", "127.0.0.1:1/busybox")
		assert.Equal(t, 125, r.Code, r.String())
		assert.Contains(t, r.Stderr, "is USER:PASSWORD")
	}
}

// The global flags are the root command's: every verb takes --root,
// --data-root and --debug, before the verb as after it, and a flag wins
// over the environment ('08-image --root R images' used to fail with
// "unknown flag").
func TestGlobalFlags(t *testing.T) {
	e := newRunEnv(t)
	e.importBusybox()
	other := t.TempDir()
	for _, args := range [][]string{
		{"--root", testenv.StateRoot(e.Vars), "--data-root", e.Data, "images", "-q"},
		{"images", "-q", "--data-root", e.Data, "--debug"},
		{"--debug", "history", "busybox"},
	} {
		assert.NotEmpty(t, e.OK(args...), "%v", args)
	}
	assert.Equal(t, "", e.OK("--data-root", other, "images", "-q"), "--data-root wins over $BERTH_DATA_ROOT")
	assert.Equal(t, "", e.OK("images", "-q", "--data-root", other))
	assert.Contains(t, e.OK("--data-root", e.Data, "run", "--net", "none", "--rm", "--image", "busybox", "echo", "hi"), "hi")
	assert.Contains(t, e.Run("--root", other, "stats", "--no-stream").Stdout, "CONTAINER")
}
