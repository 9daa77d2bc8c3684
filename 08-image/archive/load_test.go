//go:build linux

package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/07-unionfs/layertest"
	"berth/08-image/store"
	"berth/08-image/store/storetest"
)

// entry is one member of a hand-made
type entry struct {
	name string
	body []byte
	typ  byte   // tar.TypeReg when 0
	link string // a symlink's or hard link's target
}

func file(name string, body []byte) entry { return entry{name: name, body: body} }
func jsonFile(t *testing.T, name string, v any) entry {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return file(name, b)
}
func symlink(name, target string) entry { return entry{name: name, typ: tar.TypeSymlink, link: target} }

func archiveOf(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: 0o644, ModTime: time.Unix(0, 0)}
		if hdr.Typeflag == 0 {
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(e.body))
		}
		require.NoError(t, tw.WriteHeader(hdr))
		if hdr.Typeflag == tar.TypeReg {
			_, err := tw.Write(e.body)
			require.NoError(t, err)
		}
	}
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

// legacyImage is an image as docker before 25 and skopeo's
// docker-archive: write it: an uncompressed layer.tar per layer under a
// v1 id, the config as <id>.json, manifest.json pointing at them.
type legacyImage struct {
	config  []byte
	id      digest.Digest
	layers  [][]byte // uncompressed tars
	diffIDs []digest.Digest
}

func newLegacyImage(t *testing.T, layers ...[]byte) legacyImage {
	t.Helper()
	li := legacyImage{layers: layers}
	for _, l := range layers {
		li.diffIDs = append(li.diffIDs, digest.FromBytes(l))
	}
	cfg := ocispec.Image{
		Platform: ocispec.Platform{Architecture: runtime.GOARCH, OS: "linux"},
		Config:   ocispec.ImageConfig{Cmd: []string{"sh"}},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: li.diffIDs},
	}
	var err error
	li.config, err = json.Marshal(cfg)
	require.NoError(t, err)
	li.id = digest.FromBytes(li.config)
	return li
}

func TestEntryNames(t *testing.T) {
	for in, want := range map[string]string{
		"index.json": "index.json", "./index.json": "index.json", "blobs/sha256/": "blobs/sha256",
		"a//b": "a/b", "./": ".",
	} {
		got, err := store.EntryName(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "/etc/passwd", "../x", "a/../../x", "a/../b", "..", "./..", strings.Repeat("a/", 3000)} {
		_, err := store.EntryName(bad)
		assert.Error(t, err, bad)
	}
	for _, c := range []struct{ name, target, want string }{
		{"abc/layer.tar", "../def/layer.tar", "def/layer.tar"},
		{"abc/layer.tar", "layer2.tar", "abc/layer2.tar"},
		{"top.tar", "./x/../y.tar", "y.tar"},
	} {
		got, err := linkTarget(c.name, c.target)
		require.NoError(t, err, c)
		assert.Equal(t, c.want, got, c)
	}
	for _, target := range []string{"/etc/passwd", "../../etc/passwd", "../../../x", ""} {
		_, err := linkTarget("abc/layer.tar", target)
		assert.ErrorContains(t, err, "outside the archive", target)
	}
	for name, ok := range map[string]bool{"blobs/sha256/" + strings.Repeat("a", 64): true, "blobs/sha256": false, "blob/x": false, "blobs/sha256/a/b": false} {
		_, isBlob, err := blobDigest(name)
		require.NoError(t, err, name)
		assert.Equal(t, ok, isBlob, name)
	}
	for _, bad := range []string{"blobs/sha256/xyz", "blobs/sha512/" + strings.Repeat("a", 128), "blobs/sha256/" + strings.Repeat("A", 64)} {
		_, _, err := blobDigest(bad)
		assert.Error(t, err, bad)
	}
}

// A save loads back into another store as the same image: same manifest
// digest, same id; the same images save to the same bytes.
func TestSaveLoadStoreToStore(t *testing.T) {
	src := storetest.New(t)
	l1 := storetest.PutLayer(t, src, map[string]string{"etc/": "", "etc/motd": "one\n"})
	l2 := storetest.PutLayer(t, src, map[string]string{"etc/": "", "etc/motd": "two\n"})
	img, err := src.Commit("app:v1", ocispec.Image{Config: ocispec.ImageConfig{Cmd: []string{"sh"}}}, []store.Layer{l1, l2})
	require.NoError(t, err)
	require.NoError(t, src.Tag("app:stable", img.Descriptor))
	other, err := src.Commit("", ocispec.Image{Config: ocispec.ImageConfig{Cmd: []string{"other"}}}, []store.Layer{l1})
	require.NoError(t, err)

	items, err := SaveItems(src, []string{"app:v1", "app:stable", "app:v1", other.ID().String()})
	require.NoError(t, err)
	require.Len(t, items, 2)
	assert.Equal(t, []string{"docker.io/library/app:v1", "docker.io/library/app:stable"}, items[0].Names)
	assert.Empty(t, items[1].Names, "saved by id: no name")

	var a, b bytes.Buffer
	require.NoError(t, Save(context.Background(), src, &a, items, SaveDocker))
	require.NoError(t, Save(context.Background(), src, &b, items, SaveDocker))
	assert.Equal(t, a.Bytes(), b.Bytes(), "save is reproducible")

	// What docker writes: one index entry per name, with both annotations;
	// manifest.json with the familiar names, and paths into blobs/.
	names := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(a.Bytes()))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		body, err := io.ReadAll(tr)
		require.NoError(t, err)
		names[hdr.Name] = body
	}
	for _, n := range []string{"oci-layout", "index.json", "manifest.json", "repositories", "blobs/", "blobs/sha256/", blobName(img.Descriptor.Digest), blobName(img.ID()), blobName(l1.Blob.Digest), blobName(l2.Blob.Digest), blobName(other.ID())} {
		assert.Contains(t, names, n)
	}
	var idx ocispec.Index
	require.NoError(t, json.Unmarshal(names["index.json"], &idx))
	require.Len(t, idx.Manifests, 3)
	assert.Equal(t, map[string]string{AnnotationImageName: "docker.io/library/app:v1", ocispec.AnnotationRefName: "v1"}, idx.Manifests[0].Annotations)
	assert.Equal(t, img.Descriptor.Digest, idx.Manifests[0].Digest)
	assert.Nil(t, idx.Manifests[2].Annotations)
	var mj []dockerManifestEntry
	require.NoError(t, json.Unmarshal(names["manifest.json"], &mj))
	assert.Equal(t, []dockerManifestEntry{
		{Config: blobName(img.ID()), RepoTags: []string{"app:v1", "app:stable"}, Layers: []string{blobName(l1.Blob.Digest), blobName(l2.Blob.Digest)}},
		{Config: blobName(other.ID()), Layers: []string{blobName(l1.Blob.Digest)}},
	}, mj)
	assert.JSONEq(t, `{"app":{"v1":"`+l2.Blob.Digest.Encoded()+`","stable":"`+l2.Blob.Digest.Encoded()+`"}}`, string(names["repositories"]))

	dst := storetest.New(t)
	loaded, err := Load(t.Context(), dst, bytes.NewReader(a.Bytes()))
	require.NoError(t, err)
	assert.Equal(t, []LoadedImage{
		{Name: "docker.io/library/app:v1", ID: img.ID()},
		{Name: "docker.io/library/app:stable", ID: img.ID()},
		{ID: other.ID()},
	}, loaded)
	got, err := dst.Get("app:stable")
	require.NoError(t, err)
	assert.Equal(t, img.Descriptor.Digest, got.Descriptor.Digest, "the manifest comes back byte for byte")
	assert.Equal(t, []string{"sh"}, got.Config.Config.Cmd)
	_, err = dst.Get(other.ID().String())
	require.NoError(t, err)

	// docker's half alone, as docker before 25 would read it: the same id,
	// the gzip'd layers as they were (each checked against its diff id),
	// under a manifest load writes.
	var dockerHalf []entry
	for _, n := range []string{"manifest.json", blobName(img.ID()), blobName(other.ID()), blobName(l1.Blob.Digest), blobName(l2.Blob.Digest)} {
		dockerHalf = append(dockerHalf, file(n, names[n]))
	}
	dst3 := storetest.New(t)
	loaded, err = Load(t.Context(), dst3, bytes.NewReader(archiveOf(t, dockerHalf...)))
	require.NoError(t, err)
	assert.Equal(t, []LoadedImage{{Name: "docker.io/library/app:v1", ID: img.ID()}, {Name: "docker.io/library/app:stable", ID: img.ID()}, {ID: other.ID()}}, loaded)
	got, err = dst3.Get("app:v1")
	require.NoError(t, err)
	assert.Equal(t, img.Manifest.Layers, got.Manifest.Layers)

	// --format oci: the layout alone, which loads the same.
	var o bytes.Buffer
	require.NoError(t, Save(context.Background(), src, &o, items[:1], SaveOCI))
	tr = tar.NewReader(bytes.NewReader(o.Bytes()))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		assert.NotContains(t, []string{"manifest.json", "repositories"}, hdr.Name)
	}
	dst2 := storetest.New(t)
	loaded, err = Load(t.Context(), dst2, bytes.NewReader(layertest.Gzip(t, o.Bytes())))
	require.NoError(t, err)
	assert.Len(t, loaded, 2)
	got, err = dst2.Get("app:v1")
	require.NoError(t, err)
	assert.Equal(t, img.Descriptor.Digest, got.Descriptor.Digest)
}

// The archives older docker and skopeo write: no index.json; configs as
// <id>.json; uncompressed layers under <v1 id>/layer.tar, a layer shared
// by two images written once and linked from the other's directory, v1
// json and VERSION files beside them.
func TestLoadLegacyDockerArchive(t *testing.T) {
	base := storetest.Tar(t, map[string]string{"etc/": "", "etc/motd": "base\n"})
	top := storetest.Tar(t, map[string]string{"etc/": "", "etc/motd": "top\n"})
	one := newLegacyImage(t, base)
	two := newLegacyImage(t, base, top)
	archive := archiveOf(t,
		file(one.id.Encoded()+".json", one.config),
		file(two.id.Encoded()+".json", two.config),
		file("aaaa/layer.tar", base),
		file("aaaa/json", []byte(`{"id":"aaaa"}`)),
		file("aaaa/VERSION", []byte("1.0")),
		symlink("bbbb/layer.tar", "../aaaa/layer.tar"),
		entry{name: "cccc/layer.tar", typ: tar.TypeLink, link: "dddd.tar"}, // a hard link, to a later name
		file("dddd.tar", top),
		jsonFile(t, "manifest.json", []dockerManifestEntry{
			{Config: one.id.Encoded() + ".json", RepoTags: []string{"one:latest"}, Layers: []string{"aaaa/layer.tar"}},
			{Config: two.id.Encoded() + ".json", RepoTags: []string{"localhost:5000/two:v2", "docker.io/library/two:latest"}, Layers: []string{"bbbb/layer.tar", "cccc/layer.tar"}},
		}),
		file("repositories", []byte(`{"one":{"latest":"aaaa"}}`)),
	)
	for name, data := range map[string][]byte{"plain": archive, "gzip": layertest.Gzip(t, archive)} {
		t.Run(name, func(t *testing.T) {
			s := storetest.New(t)
			loaded, err := Load(t.Context(), s, bytes.NewReader(data))
			require.NoError(t, err)
			assert.Equal(t, []LoadedImage{
				{Name: "docker.io/library/one:latest", ID: one.id},
				{Name: "localhost:5000/two:v2", ID: two.id},
				{Name: "docker.io/library/two:latest", ID: two.id},
			}, loaded)
			img, err := s.Get("localhost:5000/two:v2")
			require.NoError(t, err)
			assert.Equal(t, two.id, img.ID(), "the config is kept byte for byte: the id does not change")
			require.Len(t, img.Manifest.Layers, 2)
			for i, l := range img.Manifest.Layers {
				// Uncompressed, as in the archive: the blob is the diff id.
				assert.Equal(t, ocispec.MediaTypeImageLayer, l.MediaType)
				assert.Equal(t, two.diffIDs[i], l.Digest)
				assert.True(t, s.HasBlob(l.Digest))
			}
			// Loading the same archive again changes nothing.
			again, err := Load(t.Context(), s, bytes.NewReader(data))
			require.NoError(t, err)
			assert.Equal(t, loaded, again)
			imgs, err := s.List()
			require.NoError(t, err)
			assert.Len(t, imgs, 3)
		})
	}
}

// An OCI layout in a tar, as skopeo's oci-archive: writes it, with the
// names in ref.name; a nested index is followed to this machine's
// platform; a ref.name that is only a tag names nothing.
func TestLoadOCIArchive(t *testing.T) {
	layerTar := storetest.Tar(t, map[string]string{"hello": "hi\n"})
	li := newLegacyImage(t, layerTar)
	var ents []entry
	blob := func(b []byte) digest.Digest {
		d := digest.FromBytes(b)
		ents = append(ents, file(blobName(d), b))
		return d
	}
	desc := func(mt string, b []byte) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: mt, Digest: blob(b), Size: int64(len(b))}
	}
	m, _ := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: desc(store.MediaTypeDockerConfig, li.config),
		Layers: []ocispec.Descriptor{desc(store.MediaTypeDockerLayerTar, layerTar)},
	})
	mdesc := desc(ocispec.MediaTypeImageManifest, m)
	other := mdesc
	other.Digest, other.Platform = digest.FromString("another platform's manifest, not in the archive"), &ocispec.Platform{OS: "linux", Architecture: "s390x"}
	mine := mdesc
	mine.Platform = &ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
	nested, _ := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{other, mine}})
	ndesc := desc(ocispec.MediaTypeImageIndex, nested)
	ndesc.Annotations = map[string]string{ocispec.AnnotationRefName: "example.com/multi:1"}
	bare := mdesc
	bare.Annotations = map[string]string{ocispec.AnnotationRefName: "latest"}
	named := mdesc
	named.Annotations = map[string]string{ocispec.AnnotationRefName: "busybox:oci"}
	ents = append(ents,
		file("./oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)),
		jsonFile(t, "./index.json", ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, Manifests: []ocispec.Descriptor{ndesc, bare, named}}))

	s := storetest.New(t)
	loaded, err := Load(t.Context(), s, bytes.NewReader(archiveOf(t, ents...)))
	require.NoError(t, err)
	// One manifest, reached three ways: one image with two names.
	assert.Equal(t, []LoadedImage{
		{Name: "example.com/multi:1", ID: li.id},
		{Name: "docker.io/library/busybox:oci", ID: li.id},
	}, loaded)
	img, err := s.Get("example.com/multi:1")
	require.NoError(t, err)
	assert.Equal(t, mdesc.Digest, img.Descriptor.Digest, "the platform's manifest is stored, not the index")
}

// A store is an OCI layout directory: load -i DIR reads one, copying only
// the blobs its images reach.
func TestLoadDir(t *testing.T) {
	src := storetest.New(t)
	l := storetest.PutLayer(t, src, map[string]string{"x": "1"})
	img, err := src.Commit("dir:test", ocispec.Image{}, []store.Layer{l})
	require.NoError(t, err)
	_, err = src.PutBlob(strings.NewReader("a stray blob nothing names"), "", "")
	require.NoError(t, err)

	dst := storetest.New(t)
	loaded, err := LoadDir(t.Context(), dst, src.Root)
	require.NoError(t, err)
	assert.Equal(t, []LoadedImage{{Name: "docker.io/library/dir:test", ID: img.ID()}}, loaded)
	blobs, err := os.ReadDir(filepath.Join(dst.Root, "blobs", "sha256"))
	require.NoError(t, err)
	assert.Len(t, blobs, 3, "manifest, config, layer: not the stray blob")

	// A blob changed in the directory is refused.
	bad := storetest.New(t)
	require.NoError(t, os.WriteFile(src.BlobPath(l.Blob.Digest), []byte("changed"), 0o644))
	_, err = LoadDir(t.Context(), bad, src.Root)
	assert.ErrorContains(t, err, "refused")
	imgs, err := bad.List()
	require.NoError(t, err)
	assert.Empty(t, imgs)
	assert.Empty(t, storetest.Blobs(t, bad), "the manifest and config it copied are removed")

	_, err = LoadDir(t.Context(), dst, t.TempDir())
	assert.ErrorContains(t, err, "no index.json")
}

// Every way an archive can be wrong ends the load with one error, before
// any name is written; nothing lands outside the store.
func TestLoadRefusesCraftedArchives(t *testing.T) {
	cwd, err := os.Getwd()
	require.NoError(t, err)
	canary := filepath.Join(t.TempDir(), "canary")
	layerTar := storetest.Tar(t, map[string]string{"hello": "hi\n"})
	good := newLegacyImage(t, layerTar)
	goodEntries := func(layerPath string) []entry {
		return []entry{
			file(good.id.Encoded()+".json", good.config),
			file("l/layer.tar", layerTar),
			jsonFile(t, "manifest.json", []dockerManifestEntry{{Config: good.id.Encoded() + ".json", RepoTags: []string{"good:1"}, Layers: []string{layerPath}}}),
		}
	}
	valid := archiveOf(t, goodEntries("l/layer.tar")...)
	with := func(extra ...entry) []byte { return archiveOf(t, append(goodEntries("l/layer.tar"), extra...)...) }
	random := make([]byte, 4096)
	_, err = rand.Read(random)
	require.NoError(t, err)
	second := newLegacyImage(t, layerTar, layerTar)
	liar := newLegacyImage(t, layerTar)
	liar.config = bytes.Replace(liar.config, []byte(good.diffIDs[0].Encoded()), []byte(digest.FromString("x").Encoded()), 1)
	liar.id = digest.FromBytes(liar.config)
	notLayers := newLegacyImage(t, layerTar)
	notLayers.config = bytes.Replace(notLayers.config, []byte(`"type":"layers"`), []byte(`"type":"squashfs"`), 1)
	notLayers.id = digest.FromBytes(notLayers.config)
	mfile, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: good.id, Size: int64(len(good.config))},
		Layers: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayer, Digest: good.diffIDs[0], Size: int64(len(layerTar))}}})
	ociIndex := func(size int64) entry {
		return jsonFile(t, "index.json", ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, Manifests: []ocispec.Descriptor{
			{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(mfile), Size: size, Annotations: map[string]string{AnnotationImageName: "docker.io/library/oci:1"}}}})
	}

	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"dot-dot name", with(file("../"+filepath.Base(cwd)+"/canary", []byte("x"))), "climbs out"},
		{"absolute name", with(file(canary, []byte("x"))), "absolute name"},
		{"symlink to an absolute path", archiveOf(t, append(goodEntries("evil/layer.tar"), symlink("evil/layer.tar", "/etc/passwd"))...), "outside the archive"},
		{"symlink out of the archive", archiveOf(t, append(goodEntries("evil/layer.tar"), symlink("evil/layer.tar", "../../../../../../etc/passwd"))...), "outside the archive"},
		{"hard link out of the archive", with(entry{name: "h", typ: tar.TypeLink, link: "../etc/passwd"}), "climbs out"},
		{"blob not what its name says", with(file(blobName(digest.FromString("what the name says")), []byte("other bytes"))), "refused"},
		{"config not what its name says", archiveOf(t, file(good.id.Encoded()+".json", []byte(`{"other":"config"}`))), "refused"},
		{"blob linked to other content", with(symlink(blobName(digest.FromString("x")), "../../l/layer.tar")), "not what its name says"},
		{"manifest.json names a missing file", archiveOf(t, goodEntries("gone/layer.tar")...), "gone/layer.tar is not in the archive"},
		{"symlink to a missing file", archiveOf(t, append(goodEntries("evil/layer.tar"), symlink("evil/layer.tar", "../nothing.tar"))...), "which is not in the archive"},
		{"symlink loop", archiveOf(t, append(goodEntries("a/layer.tar"), symlink("a/layer.tar", "../b/layer.tar"), symlink("b/layer.tar", "../a/layer.tar"))...), "links in a row"},
		{"layer is not its diff id", archiveOf(t, file(liar.id.Encoded()+".json", liar.config), file("l/layer.tar", layerTar),
			jsonFile(t, "manifest.json", []dockerManifestEntry{{Config: liar.id.Encoded() + ".json", RepoTags: []string{"liar:1"}, Layers: []string{"l/layer.tar"}}})), "refused"},
		{"gzip'd layer is not its diff id", archiveOf(t, file(liar.id.Encoded()+".json", liar.config), file("l/layer.tar.gz", layertest.Gzip(t, layerTar)),
			jsonFile(t, "manifest.json", []dockerManifestEntry{{Config: liar.id.Encoded() + ".json", RepoTags: []string{"liar:1"}, Layers: []string{"l/layer.tar.gz"}}})), "but the config lists"},
		{"rootfs.type is not layers", archiveOf(t, file(notLayers.id.Encoded()+".json", notLayers.config), file("l/layer.tar", layerTar),
			jsonFile(t, "manifest.json", []dockerManifestEntry{{Config: notLayers.id.Encoded() + ".json", RepoTags: []string{"odd:1"}, Layers: []string{"l/layer.tar"}}})), `rootfs.type is "squashfs", not "layers": refused`},
		{"rootfs.type is not layers (OCI)", func() []byte {
			m, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
				Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: notLayers.id, Size: int64(len(notLayers.config))},
				Layers: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayer, Digest: good.diffIDs[0], Size: int64(len(layerTar))}}})
			return archiveOf(t, file(blobName(digest.FromBytes(m)), m), file(blobName(notLayers.id), notLayers.config), file(blobName(good.diffIDs[0]), layerTar),
				jsonFile(t, "index.json", ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, Manifests: []ocispec.Descriptor{
					{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(m), Size: int64(len(m)), Annotations: map[string]string{AnnotationImageName: "docker.io/library/odd:1"}}}}))
		}(), `rootfs.type is "squashfs", not "layers": refused`},
		{"second image broken", archiveOf(t, file(good.id.Encoded()+".json", good.config), file(second.id.Encoded()+".json", second.config), file("l/layer.tar", layerTar),
			jsonFile(t, "manifest.json", []dockerManifestEntry{
				{Config: good.id.Encoded() + ".json", RepoTags: []string{"good:1"}, Layers: []string{"l/layer.tar"}},
				{Config: second.id.Encoded() + ".json", RepoTags: []string{"good:2"}, Layers: []string{"l/layer.tar", "missing.tar"}}})), "image 2 of 2"},
		{"bad name", archiveOf(t, file(good.id.Encoded()+".json", good.config), file("l/layer.tar", layerTar),
			jsonFile(t, "manifest.json", []dockerManifestEntry{{Config: good.id.Encoded() + ".json", RepoTags: []string{"UPPER:case"}, Layers: []string{"l/layer.tar"}}})), "invalid image name"},
		{"truncated", valid[:len(valid)/2+100], "truncated"},
		{"truncated gzip", layertest.Gzip(t, valid)[:300], "truncated"},
		{"random bytes", random, "not a tar archive"},
		{"empty", nil, "not an image archive"},
		{"only repositories", archiveOf(t, file("repositories", []byte(`{}`))), "docker before 1.10"},
		{"a device", with(entry{name: "dev/null", typ: tar.TypeChar}), "only files, directories and links"},
		{"two manifest.json", with(file("manifest.json", []byte("[]"))), "two entries"},
		{"index names a missing manifest", archiveOf(t, ociIndex(int64(len(mfile)))), "is not in the archive"},
		{"descriptor size lies", archiveOf(t, file(blobName(digest.FromBytes(mfile)), mfile), file(blobName(good.id), good.config),
			file(blobName(good.diffIDs[0]), layerTar), ociIndex(int64(len(mfile))+1)), "its descriptor says"},
		{"bad oci-layout", archiveOf(t, file("oci-layout", []byte(`{"imageLayoutVersion":"9"}`)), ociIndex(1)), "version"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := storetest.New(t)
			_, err := Load(t.Context(), s, bytes.NewReader(c.data))
			require.Error(t, err)
			t.Log(err)
			assert.Contains(t, err.Error(), c.want)
			assert.NotContains(t, err.Error(), "\n", "one line")
			imgs, err := s.List()
			require.NoError(t, err)
			assert.Empty(t, imgs, "nothing is named")
			left, err := os.ReadDir(filepath.Join(s.Root, "ingest"))
			require.NoError(t, err)
			assert.Empty(t, left, "nothing is left half-written")
			assert.Empty(t, storetest.Blobs(t, s), "the blobs it stored are removed")
			_, err = os.Stat(canary)
			assert.ErrorIs(t, err, os.ErrNotExist)
			_, err = os.Stat(filepath.Join(cwd, "..", filepath.Base(cwd), "canary"))
			assert.ErrorIs(t, err, os.ErrNotExist)
		})
	}

	// The good archive these were made from loads.
	s := storetest.New(t)
	loaded, err := Load(t.Context(), s, bytes.NewReader(valid))
	require.NoError(t, err)
	assert.Equal(t, []LoadedImage{{Name: "docker.io/library/good:1", ID: good.id}}, loaded)
}

// A failed load removes the blobs it added, and only those: a blob the
// store had before (an image's, the same bytes in the archive) stays.
func TestFailedLoadRemovesOnlyWhatItAdded(t *testing.T) {
	s := storetest.New(t)
	l := storetest.PutLayer(t, s, map[string]string{"hello": "hi\n"})
	img, err := s.Commit("kept:1", ocispec.Image{}, []store.Layer{l})
	require.NoError(t, err)
	before := storetest.Blobs(t, s)
	require.Len(t, before, 3)

	items, err := SaveItems(s, []string{"kept:1"})
	require.NoError(t, err)
	var saved bytes.Buffer
	require.NoError(t, Save(context.Background(), s, &saved, items, SaveDocker))
	layerTar := storetest.Tar(t, map[string]string{"new": "a layer the store has not got\n"})
	legacy := newLegacyImage(t, layerTar)
	// The saved image, an image of new blobs, and at the end an entry that
	// refuses the whole archive: every blob is stored by then.
	var ents []entry
	tr := tar.NewReader(bytes.NewReader(saved.Bytes()))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		if hdr.Typeflag != tar.TypeReg || hdr.Name == "manifest.json" {
			continue
		}
		body, err := io.ReadAll(tr)
		require.NoError(t, err)
		ents = append(ents, file(hdr.Name, body))
	}
	ents = append(ents, file(legacy.id.Encoded()+".json", legacy.config), file("l/layer.tar", layerTar),
		jsonFile(t, "manifest.json", []dockerManifestEntry{{Config: legacy.id.Encoded() + ".json", RepoTags: []string{"new:1"}, Layers: []string{"l/layer.tar"}}}))
	for _, c := range []struct {
		name string
		last entry
		want string
	}{
		{"refused entry", file("../planted", nil), "climbs out"},
		{"truncated", entry{}, "truncated"},
	} {
		t.Run(c.name, func(t *testing.T) {
			data := archiveOf(t, append(ents, c.last)...)
			if c.last.name == "" {
				data = archiveOf(t, append(ents, file("padding", bytes.Repeat([]byte("x"), 4096)))...)
				data = data[:len(data)-3000]
			}
			_, err := Load(t.Context(), s, bytes.NewReader(data))
			require.ErrorContains(t, err, c.want)
			assert.ElementsMatch(t, before, storetest.Blobs(t, s), "the store's own blobs stay; the new ones go")
			got, err := s.Get("kept:1")
			require.NoError(t, err)
			assert.Equal(t, img.ID(), got.ID())
			_, err = s.Unpack(context.Background(), got)
			require.NoError(t, err, "the image the store had is whole")
			_, err = s.Get("new:1")
			assert.ErrorIs(t, err, store.ErrNotFound)
		})
	}
	// Without the bad entry, the same archive loads.
	loaded, err := Load(t.Context(), s, bytes.NewReader(archiveOf(t, ents...)))
	require.NoError(t, err)
	require.Len(t, loaded, 2)
	assert.Len(t, storetest.Blobs(t, s), 6)
}

// A load that its context ends stops at once, even while its input
// stalls, and takes back the blobs it stored.
func TestLoadEndsWithItsContext(t *testing.T) {
	s := storetest.New(t)
	layerTar := storetest.Tar(t, map[string]string{"hello": "hi\n"})
	first := archiveOf(t, file("l/layer.tar", layerTar), file("big", bytes.Repeat([]byte("y"), 64<<10)))
	pr, pw := io.Pipe()
	defer pr.Close()
	go func() {
		_, _ = pw.Write(first[:len(first)-10000]) // inside "big", then nothing more
	}()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := Load(ctx, s, pr)
		done <- err
	}()
	// Wait until the layer is stored and the next blob is being written.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		ingest, err := os.ReadDir(filepath.Join(s.Root, "ingest"))
		require.NoError(t, err)
		if len(storetest.Blobs(t, s)) == 1 && len(ingest) == 1 {
			break
		}
		require.True(t, time.Now().Before(deadline), "the load did not get to the second entry")
	}
	cancel()
	err := <-done
	require.ErrorIs(t, err, context.Canceled)
	ingest, err := os.ReadDir(filepath.Join(s.Root, "ingest"))
	require.NoError(t, err)
	assert.Empty(t, ingest, "the half-written blob is removed")
	assert.Empty(t, storetest.Blobs(t, s), "the blob it stored is removed")
}

// The store is an OCI image layout, as umoci (a reference implementation
// of the layout) reads it.
func TestStoreIsAnOCILayout(t *testing.T) {
	umoci, err := exec.LookPath("umoci")
	if err != nil {
		t.Fatalf("umoci is missing: run sudo make setup (Debian's umoci)")
	}
	s := storetest.New(t)
	l := storetest.PutLayer(t, s, map[string]string{"etc/": "", "etc/motd": "hi\n"})
	_, err = s.Commit("busybox:layout", ocispec.Image{}, []store.Layer{l})
	require.NoError(t, err)
	_, err = s.Commit("example.com/other:2", ocispec.Image{}, []store.Layer{l})
	require.NoError(t, err)
	out, err := exec.Command(umoci, "ls", "--layout", s.Root).CombinedOutput()
	require.NoError(t, err, string(out))
	assert.ElementsMatch(t, []string{"docker.io/library/busybox:layout", "example.com/other:2"}, strings.Fields(string(out)))
}
