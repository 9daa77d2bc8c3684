//go:build linux

package cli_test

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"berth/internal/testenv"
)

// hostTargets are a file and a directory of the host, outside any store,
// that a hostile layer aims its symlinks at.
type hostTargets struct{ file, file2, dir string }

func newHostTargets(t *testing.T) hostTargets {
	d := t.TempDir()
	h := hostTargets{file: filepath.Join(d, "host-file"), file2: filepath.Join(d, "host-file2"), dir: filepath.Join(d, "host-dir")}
	require.NoError(t, os.WriteFile(h.file, []byte("host\n"), 0o644))
	require.NoError(t, os.WriteFile(h.file2, []byte("host\n"), 0o644))
	require.NoError(t, os.Mkdir(h.dir, 0o755))
	for p, m := range map[string]os.FileMode{h.file: 0o644, h.file2: 0o644, h.dir: 0o755} {
		require.NoError(t, os.Chmod(p, m))
	}
	return h
}

// untouched: the host's file and directory keep their modes.
func (h hostTargets) untouched(t *testing.T) {
	t.Helper()
	for p, want := range map[string]uint32{h.file: 0o644, h.file2: 0o644, h.dir: 0o755} {
		var st unix.Stat_t
		require.NoError(t, unix.Lstat(p, &st))
		assert.Equal(t, want, st.Mode&07777, "mode of %s, a host path", p)
	}
}

// hostileLayer holds directories made setuid or setgid and world-writable
// and then replaced by symlinks to the host's paths: an absolute one, one
// that climbs out with "..", and a setgid directory under usr/bin. Stage
// 07's apply kept the directories' modes for the end and set them with
// fchmodat, which follows the symlinks.
func hostileLayer(t *testing.T, h hostTargets) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(name string, mode int64) tar.Header {
		return tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: mode, ModTime: time.Unix(0, 0)}
	}
	link := func(name, target string) tar.Header {
		return tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777, ModTime: time.Unix(0, 0)}
	}
	for _, hdr := range []tar.Header{
		dir("d/", 0o4777), link("d", h.file),
		dir("a/", 0o755), dir("a/d/", 0o4777), link("a/d", strings.Repeat("../", 64)+h.file2[1:]),
		dir("usr/", 0o755), dir("usr/bin/", 0o755), dir("usr/bin/x/", 0o2777), link("usr/bin/x", h.dir),
	} {
		require.NoError(t, tw.WriteHeader(&hdr))
	}
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

// dockerArchive is what docker save writes: a config, manifest.json and a
// layer.tar per layer, uncompressed.
func dockerArchive(t *testing.T, name string, layers ...[]byte) []byte {
	cfg := ocispec.Image{
		Platform: ocispec.Platform{Architecture: runtime.GOARCH, OS: "linux"},
		Config:   ocispec.ImageConfig{Cmd: []string{"sh"}},
		RootFS:   ocispec.RootFS{Type: "layers"},
	}
	var paths []string
	for i, l := range layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, digest.FromBytes(l))
		paths = append(paths, filepath.Join(string(rune('a'+i))+"layer", "layer.tar"))
	}
	config, err := json.Marshal(cfg)
	require.NoError(t, err)
	configName := digest.FromBytes(config).Encoded() + ".json"
	manifest, err := json.Marshal([]map[string]any{{"Config": configName, "RepoTags": []string{name}, "Layers": paths}})
	require.NoError(t, err)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, b []byte) {
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b)), ModTime: time.Unix(0, 0)}))
		_, err := tw.Write(b)
		require.NoError(t, err)
	}
	add(configName, config)
	for i, l := range layers {
		add(paths[i], l)
	}
	add("manifest.json", manifest)
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

// The whole path of a pulled or loaded image: load stores the layers,
// run unpacks them with stage 07's apply. The host's file and directory
// keep their modes, and the image runs (a symlink replacing a directory is
// a legal layer).
func TestLoadedHostileLayerCannotChmodTheHost(t *testing.T) {
	e := newRunEnv(t)
	h := newHostTargets(t)
	base, err := exec.Command("tar", "-C", testenv.Rootfs(t), "-cf", "-", ".").Output()
	require.NoError(t, err)
	archive := filepath.Join(t.TempDir(), "hostile.tar")
	require.NoError(t, os.WriteFile(archive, dockerArchive(t, "hostile:1", base, hostileLayer(t, h)), 0o644))

	r := e.Run("load", "-i", archive)
	h.untouched(t)
	require.Equal(t, 0, r.Code, r.String())
	assert.Equal(t, "Loaded image: hostile:1\n", r.Stdout)

	out := e.OK("run", "--net", "none", "--rm", "--image", "hostile:1", "sh", "-c", "for f in /d /a/d /usr/bin/x; do readlink $f; done")
	h.untouched(t)
	assert.Equal(t, h.file+"\n"+strings.Repeat("../", 64)+h.file2[1:]+"\n"+h.dir+"\n", out)
}

// The same layer as a local tarball that a Dockerfile ADDs: build
// extracts it with stage 07's apply.
func TestBuildAddHostileTarCannotChmodTheHost(t *testing.T) {
	e := newRunEnv(t)
	e.importBusybox()
	h := newHostTargets(t)
	ctx := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(ctx, "x.tar"), hostileLayer(t, h), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM busybox\nADD x.tar /\n"), 0o644))

	r := e.Run("build", "-t", "added:1", ctx)
	h.untouched(t)
	require.Equal(t, 0, r.Code, r.String())
	out := e.OK("run", "--net", "none", "--rm", "--image", "added:1", "readlink", "/d")
	h.untouched(t)
	assert.Equal(t, h.file+"\n", out)
}
