//go:build linux

package store_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/07-unionfs/untar"
	"berth/08-image/store"
	"berth/08-image/store/storetest"
)

func TestPutBlobVerifiesWhatItWasTold(t *testing.T) {
	s := storetest.New(t)
	content := []byte("hello, layer")
	right := digest.FromBytes(content)

	desc, err := s.PutBlob(bytes.NewReader(content), right, "text/plain")
	require.NoError(t, err)
	assert.Equal(t, right, desc.Digest)
	assert.EqualValues(t, len(content), desc.Size)
	got, err := os.ReadFile(s.BlobPath(right))
	require.NoError(t, err)
	assert.Equal(t, content, got)

	// A blob whose bytes are not what its name says is refused, and
	// nothing of it stays: not under either digest, not in ingest/.
	wrong := digest.FromString("something else")
	_, err = s.PutBlob(bytes.NewReader([]byte("tampered")), wrong, "text/plain")
	require.ErrorContains(t, err, "refused")
	assert.False(t, s.HasBlob(wrong))
	assert.False(t, s.HasBlob(digest.FromString("tampered")))
	left, err := os.ReadDir(filepath.Join(s.Root, "ingest"))
	require.NoError(t, err)
	assert.Empty(t, left, "ingest/ must be empty after a refused blob")

	_, err = s.PutBlob(bytes.NewReader(content), "sha512:abc", "")
	assert.Error(t, err)
}

func TestPutLayerDigests(t *testing.T) {
	s := storetest.New(t)
	raw := storetest.Tar(t, map[string]string{"etc/": "", "etc/motd": "hi\n"})
	l, err := s.PutLayer(bytes.NewReader(raw))
	require.NoError(t, err)
	// The diff id is the digest of the tar stream; the blob is its gzip.
	assert.Equal(t, digest.FromBytes(raw), l.DiffID)
	assert.Equal(t, ocispec.MediaTypeImageLayerGzip, l.Blob.MediaType)
	assert.NotEqual(t, l.DiffID, l.Blob.Digest)
	f, err := s.OpenBlob(l.Blob.Digest)
	require.NoError(t, err)
	defer f.Close()
	plain, _, err := untar.Decompress(f)
	require.NoError(t, err)
	var buf bytes.Buffer
	_, err = buf.ReadFrom(plain)
	require.NoError(t, err)
	assert.Equal(t, raw, buf.Bytes())
}

func TestNames(t *testing.T) {
	for in, want := range map[string]string{
		"busybox":                     "docker.io/library/busybox:latest",
		"busybox:1.36":                "docker.io/library/busybox:1.36",
		"me/app":                      "docker.io/me/app:latest",
		"127.0.0.1:5000/busybox":      "127.0.0.1:5000/busybox:latest",
		"localhost:5000/a/b:v1":       "localhost:5000/a/b:v1",
		"quay.io/podman/hello:latest": "quay.io/podman/hello:latest",
	} {
		got, err := store.NormalizeName(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	assert.Equal(t, "busybox:latest", store.FamiliarName("docker.io/library/busybox:latest"))
	assert.Equal(t, "127.0.0.1:5000/busybox:latest", store.FamiliarName("127.0.0.1:5000/busybox:latest"))
	assert.Equal(t, "<none>", store.FamiliarName(""))
	for _, bad := range []string{"", "UPPER", "a b", "busybox:", "../x"} {
		_, err := store.NormalizeName(bad)
		assert.Error(t, err, bad)
	}
	host, repo, ref, err := store.SplitName("busybox")
	require.NoError(t, err)
	assert.Equal(t, []string{"docker.io", "library/busybox", "latest"}, []string{host, repo, ref})
}

func TestTagGetRemove(t *testing.T) {
	s := storetest.New(t)
	l1 := storetest.PutLayer(t, s, map[string]string{"one": "1"})
	l2 := storetest.PutLayer(t, s, map[string]string{"two": "2"})
	a, err := s.Commit("app:v1", ocispec.Image{Config: ocispec.ImageConfig{Cmd: []string{"a"}}}, []store.Layer{l1})
	require.NoError(t, err)
	assert.Equal(t, "docker.io/library/app:v1", a.Name)

	for _, name := range []string{"app:v1", "docker.io/library/app:v1", a.ShortID(), a.ID().String(), a.ID().Encoded()[:4], "app@" + a.Descriptor.Digest.String()} {
		got, err := s.Get(name)
		require.NoError(t, err, name)
		assert.Equal(t, a.ID(), got.ID(), name)
	}
	_, err = s.Get("app:v2")
	require.ErrorIs(t, err, store.ErrNotFound)

	// A second name for the same image; then v1 moves to another image:
	// the first image keeps its other name, and nothing is dangling.
	require.NoError(t, s.Tag("app:stable", a.Descriptor))
	b, err := s.Commit("app:v1", ocispec.Image{Config: ocispec.ImageConfig{Cmd: []string{"b"}}}, []store.Layer{l1, l2})
	require.NoError(t, err)
	imgs, err := s.List()
	require.NoError(t, err)
	names := map[string]digest.Digest{}
	for _, img := range imgs {
		names[img.FamiliarName()] = img.ID()
	}
	assert.Equal(t, map[string]digest.Digest{"app:stable": a.ID(), "app:v1": b.ID()}, names)

	// Moving the last name off an image leaves it as <none>, as docker does.
	require.NoError(t, s.Tag("app:stable", b.Descriptor))
	imgs, err = s.List()
	require.NoError(t, err)
	names = map[string]digest.Digest{}
	for _, img := range imgs {
		names[img.FamiliarName()] = img.ID()
	}
	assert.Equal(t, map[string]digest.Digest{"<none>": a.ID(), "app:stable": b.ID(), "app:v1": b.ID()}, names)

	// Removing one name keeps the image under the other.
	img, err := s.Get("app:v1")
	require.NoError(t, err)
	require.NoError(t, s.Remove(img, false))
	_, err = s.Get("app:stable")
	require.NoError(t, err)
	_, err = s.Get("app:v1")
	require.ErrorIs(t, err, store.ErrNotFound)
}

func TestGCSweepsWhatNoImageReaches(t *testing.T) {
	s := storetest.New(t)
	base := storetest.PutLayer(t, s, map[string]string{"base": "b"})
	top := storetest.PutLayer(t, s, map[string]string{"top": "t"})
	keep, err := s.Commit("keep", ocispec.Image{}, []store.Layer{base})
	require.NoError(t, err)
	gone, err := s.Commit("gone", ocispec.Image{}, []store.Layer{base, top})
	require.NoError(t, err)
	_, err = s.Unpack(context.Background(), gone)
	require.NoError(t, err)
	stray, err := s.PutBlob(strings.NewReader("stray"), "", "")
	require.NoError(t, err)

	require.NoError(t, s.Remove(gone, true))
	res, err := s.GC(context.Background())
	require.NoError(t, err)
	// gone's manifest, config and top layer, and the stray blob; the base
	// layer is keep's too.
	assert.ElementsMatch(t, []digest.Digest{gone.Descriptor.Digest, gone.ID(), top.Blob.Digest, stray.Digest}, res.Blobs)
	assert.Equal(t, []digest.Digest{top.DiffID}, res.Layers)
	for _, d := range []digest.Digest{keep.Descriptor.Digest, keep.ID(), base.Blob.Digest} {
		assert.True(t, s.HasBlob(d), d)
	}
	_, err = os.Stat(s.LayerDir(base.DiffID))
	assert.NoError(t, err, "the shared base layer stays unpacked")
	_, err = os.Stat(s.LayerDir(top.DiffID))
	assert.ErrorIs(t, err, os.ErrNotExist)

	// A layer a container stands on survives the image's removal.
	require.NoError(t, s.Layers.Init())
	rec := filepath.Join(s.Layers.Root, "containers", "c1")
	require.NoError(t, os.MkdirAll(rec, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(rec, "layer.json"), []byte(`{"id":"c1","driver":"overlay","lowers":["`+s.LayerDir(base.DiffID)+`"]}`), 0o600))
	require.NoError(t, s.Remove(keep, true))
	res, err = s.GC(context.Background())
	require.NoError(t, err)
	assert.Empty(t, res.Layers)
	_, err = os.Stat(s.LayerDir(base.DiffID))
	assert.NoError(t, err, "a container's lower layer must not be swept")
}

func TestUnpackChecksTheDiffID(t *testing.T) {
	s := storetest.New(t)
	l := storetest.PutLayer(t, s, map[string]string{"etc/": "", "etc/motd": "hi\n"})
	img, err := s.Commit("ok", ocispec.Image{}, []store.Layer{l})
	require.NoError(t, err)
	dirs, err := s.Unpack(context.Background(), img)
	require.NoError(t, err)
	require.Len(t, dirs, 1)
	b, err := os.ReadFile(filepath.Join(dirs[0], "etc/motd"))
	require.NoError(t, err)
	assert.Equal(t, "hi\n", string(b))

	// A config that names another diff id for the same blob: refused,
	// and nothing is left under either name.
	lie := store.Layer{Blob: l.Blob, DiffID: digest.FromString("not this layer")}
	bad, err := s.Commit("bad", ocispec.Image{}, []store.Layer{lie})
	require.NoError(t, err)
	_, err = s.Unpack(context.Background(), bad)
	require.ErrorContains(t, err, "refused")
	_, err = os.Stat(s.LayerDir(lie.DiffID))
	assert.ErrorIs(t, err, os.ErrNotExist)
	names, err := os.ReadDir(filepath.Dir(s.LayerDir(lie.DiffID)))
	require.NoError(t, err)
	assert.Len(t, names, 1, "only the good layer: no half-unpacked directory")
}

func TestTagRefusesADigestName(t *testing.T) {
	s := storetest.New(t)
	a, err := s.Commit("a", ocispec.Image{}, []store.Layer{storetest.PutLayer(t, s, map[string]string{"a": "a"})})
	require.NoError(t, err)
	err = s.Tag("busybox@sha256:"+strings.Repeat("0", 64), a.Descriptor)
	require.ErrorContains(t, err, "names content by its digest")
	_, err = s.Get("busybox@sha256:" + strings.Repeat("0", 64))
	require.ErrorIs(t, err, store.ErrNotFound)
}

// A name wins over an id prefix, as with docker: an image may be named
// like the start of another's id.
func TestNameBeforeIDPrefix(t *testing.T) {
	s := storetest.New(t)
	a, err := s.Commit("a", ocispec.Image{Config: ocispec.ImageConfig{Cmd: []string{"a"}}}, []store.Layer{storetest.PutLayer(t, s, map[string]string{"a": "a"})})
	require.NoError(t, err)
	b, err := s.Commit("b", ocispec.Image{Config: ocispec.ImageConfig{Cmd: []string{"b"}}}, []store.Layer{storetest.PutLayer(t, s, map[string]string{"b": "b"})})
	require.NoError(t, err)
	prefix := b.ID().Encoded()[:6]
	require.NoError(t, s.Tag(prefix, a.Descriptor))
	got, byName, err := s.Lookup(prefix)
	require.NoError(t, err)
	assert.Equal(t, a.ID(), got.ID(), "the name %s is a's", prefix)
	assert.True(t, byName)
	got, byName, err = s.Lookup(b.ID().Encoded()[:8])
	require.NoError(t, err)
	assert.Equal(t, b.ID(), got.ID())
	assert.False(t, byName)
}

// One damaged image (its config blob gone) hides nothing else: List
// leaves it out, GC sweeps around it, and it can be removed by name.
func TestDamagedImageHidesNothingElse(t *testing.T) {
	s := storetest.New(t)
	good, err := s.Commit("good", ocispec.Image{}, []store.Layer{storetest.PutLayer(t, s, map[string]string{"g": "g"})})
	require.NoError(t, err)
	bad, err := s.Commit("bad", ocispec.Image{}, []store.Layer{storetest.PutLayer(t, s, map[string]string{"b": "b"})})
	require.NoError(t, err)
	require.NoError(t, os.Remove(s.BlobPath(bad.ID())))

	imgs, err := s.List()
	require.NoError(t, err)
	require.Len(t, imgs, 1)
	assert.Equal(t, good.ID(), imgs[0].ID())
	_, err = s.GC(context.Background())
	require.NoError(t, err)
	assert.True(t, s.HasBlob(bad.Manifest.Layers[0].Digest), "what the damaged image still reaches is kept")

	img, byName, err := s.Lookup("bad")
	require.NoError(t, err)
	assert.True(t, byName)
	require.NoError(t, s.Remove(img, false))
	res, err := s.GC(context.Background())
	require.NoError(t, err)
	assert.Contains(t, res.Blobs, bad.Manifest.Layers[0].Digest)
	_, err = s.Get("good")
	require.NoError(t, err)
}

// What a killed pull, load, unpack or build left is swept by the next GC;
// a layer a container stands on is kept even when its record names it
// through another path.
func TestGCSweepsLeftovers(t *testing.T) {
	s := storetest.New(t)
	require.NoError(t, s.Layers.Init())
	l := storetest.PutLayer(t, s, map[string]string{"x": "x"})
	img, err := s.Commit("x", ocispec.Image{}, []store.Layer{l})
	require.NoError(t, err)
	_, err = s.Unpack(context.Background(), img)
	require.NoError(t, err)
	cache := filepath.Join(s.Root, "buildcache")
	require.NoError(t, os.MkdirAll(cache, 0o700))
	other, err := s.Commit("other", ocispec.Image{}, []store.Layer{storetest.PutLayer(t, s, map[string]string{"o": "o"})})
	require.NoError(t, err)
	keep := filepath.Join(cache, strings.Repeat("a", 64))
	require.NoError(t, os.WriteFile(keep, []byte(other.ID().String()+"\n{}\n"), 0o600))
	for name, content := range map[string]string{
		strings.Repeat("b", 64):                "sha256:" + strings.Repeat("0", 64) + "\n{}\n", // its image is gone
		strings.Repeat("c", 64):                img.ID().String() + "\n",                       // the older one-line form
		"." + strings.Repeat("d", 64) + ".123": "",                                             // half-written
	} {
		require.NoError(t, os.WriteFile(filepath.Join(cache, name), []byte(content), 0o600))
	}
	leftovers := []string{
		filepath.Join(cache, strings.Repeat("b", 64)),
		filepath.Join(cache, strings.Repeat("c", 64)),
		filepath.Join(cache, "."+strings.Repeat("d", 64)+".123"),
		filepath.Join(s.Root, "ingest", "blob-123"),
		filepath.Join(s.Layers.Root, "sha256", ".unpack-abc-42"),
		filepath.Join(s.Layers.Root, "sha256", "..unpack-abc-42.apply-7"),
		filepath.Join(s.Layers.Root, ".build-99"),
	}
	for _, p := range leftovers {
		if filepath.Dir(p) != cache {
			require.NoError(t, os.MkdirAll(p, 0o700))
		}
	}
	// A container layer whose record reaches the layer through a symlinked
	// data root.
	link := filepath.Join(t.TempDir(), "data")
	require.NoError(t, os.Symlink(filepath.Dir(s.Root), link))
	rec := filepath.Join(s.Layers.Root, "containers", "c1")
	require.NoError(t, os.MkdirAll(rec, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(rec, "layer.json"),
		[]byte(`{"id":"c1","driver":"overlay","lowers":["`+filepath.Join(link, "layers", "sha256", l.DiffID.Encoded())+`"]}`), 0o600))
	require.NoError(t, s.Remove(img, true))

	res, err := s.GC(context.Background())
	require.NoError(t, err)
	assert.Empty(t, res.Layers, "the container's layer stays")
	for _, p := range leftovers {
		assert.NoFileExists(t, p)
		assert.NoDirExists(t, p)
	}
	assert.FileExists(t, keep, "an entry whose image is there stays")
}

// An image in the store whose config says another rootfs type (made by
// hand, or by a berth before the check) is not read as an image: run,
// build and save refuse it in one line; rmi by its name still removes it.
func TestConfigRootFSMustBeLayers(t *testing.T) {
	s := storetest.New(t)
	l := storetest.PutLayer(t, s, map[string]string{"a": "a"})
	cdesc, _, err := s.PutJSON(ocispec.Image{RootFS: ocispec.RootFS{Type: "squashfs", DiffIDs: []digest.Digest{l.DiffID}}}, ocispec.MediaTypeImageConfig)
	require.NoError(t, err)
	mdesc, _, err := s.PutJSON(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: cdesc, Layers: []ocispec.Descriptor{l.Blob}}, ocispec.MediaTypeImageManifest)
	require.NoError(t, err)
	require.NoError(t, s.Tag("odd", mdesc))
	_, err = store.Load(s, "docker.io/library/odd:latest", mdesc)
	assert.ErrorContains(t, err, `rootfs.type is "squashfs", not "layers": refused`)
	img, byName, err := s.Lookup("odd")
	require.NoError(t, err)
	assert.True(t, byName)
	assert.Empty(t, img.Manifest.Layers, "found as a damaged entry only")
}

// GC waits for every writer that holds the store (a pull may take
// minutes): a caller that can cancel (a daemon's request, Ctrl-C) ends
// the wait, and nothing is swept.
func TestGCWaitEndsWithItsContext(t *testing.T) {
	s := storetest.New(t)
	stray, err := s.PutBlob(strings.NewReader("a blob no image names"), "", "")
	require.NoError(t, err)
	release, err := s.Hold(context.Background())
	require.NoError(t, err)
	defer release()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = s.GC(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.True(t, s.HasBlob(stray.Digest))
}
