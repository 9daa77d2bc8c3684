//go:build linux

package archive

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/07-unionfs/layertest"
	"berth/08-image/store"
	"berth/08-image/store/storetest"
)

// dockerArchive is a docker-archive of one image "bad:1" whose layers are
// the given blobs (plain or gzip'd tars, or anything) and whose config
// lists the given diff ids.
func dockerArchive(t *testing.T, blobs [][]byte, diffIDs []digest.Digest) []byte {
	t.Helper()
	cfg, err := json.Marshal(ocispec.Image{
		Platform: ocispec.Platform{Architecture: runtime.GOARCH, OS: "linux"},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
	})
	require.NoError(t, err)
	id := digest.FromBytes(cfg)
	ents := []entry{file(id.Encoded()+".json", cfg)}
	var paths []string
	for i, b := range blobs {
		p := string(rune('a'+i)) + "/layer.tar"
		ents = append(ents, file(p, b))
		paths = append(paths, p)
	}
	ents = append(ents, jsonFile(t, "manifest.json", []dockerManifestEntry{{Config: id.Encoded() + ".json", RepoTags: []string{"bad:1"}, Layers: paths}}))
	return archiveOf(t, ents...)
}

// load reads every layer to its end before it names anything, as import
// reads its input: a layer that is no tar, a tar cut short inside an
// entry, or a gzip whose checksum is wrong is refused, even when the
// config's diff id is the digest of those very bytes, and nothing of the
// image stays. (Before, such an image loaded and failed at its first run,
// and stayed in the store.)
func TestLoadChecksEveryLayer(t *testing.T) {
	good := storetest.Tar(t, map[string]string{"etc/": "", "etc/motd": strings.Repeat("hello\n", 200)})
	random := make([]byte, 3000)
	_, err := rand.Read(random)
	require.NoError(t, err)
	truncated := good[:700] // inside etc/motd's content
	badCRC := layertest.Gzip(t, good)
	badCRC[len(badCRC)-8] ^= 0xff // the CRC-32 in gzip's trailer
	climbs := archiveOf(t, file("../escape", []byte("x")))
	for _, c := range []struct {
		name   string
		blob   []byte
		diffID digest.Digest
		want   string
	}{
		{"no tar", random, digest.FromBytes(random), "not a tar archive"},
		{"truncated tar", truncated, digest.FromBytes(truncated), "is it truncated?"},
		{"gzip with a bad CRC", badCRC, digest.FromBytes(good), "gzip: invalid checksum"},
		{"entry that climbs out", climbs, digest.FromBytes(climbs), `tarball entry "../escape" climbs out with '..': refused`},
		{"garbage after the end", append(bytes.Clone(good), make([]byte, 2<<20)...), digest.FromBytes(append(bytes.Clone(good), make([]byte, 2<<20)...)), "more than 1MiB follows the end of the tar archive: refused"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := storetest.New(t)
			// A good first layer, so the refusal is of the second.
			_, err := Load(t.Context(), s, bytes.NewReader(dockerArchive(t, [][]byte{good, c.blob}, []digest.Digest{digest.FromBytes(good), c.diffID})))
			require.Error(t, err)
			t.Log(err)
			assert.Contains(t, err.Error(), "layer 2 (b/layer.tar)")
			assert.Contains(t, err.Error(), c.want)
			assert.NotContains(t, err.Error(), "\n")
			storetest.AssertEmpty(t, s)
		})
	}
}

// A gzip'd archive of zeros expands a thousandfold: what load stores is
// bounded as an image is, and refused before it fills the disk.
func TestLoadBoundsWhatTheArchiveStores(t *testing.T) {
	s := storetest.New(t)
	s.MaxImageSize = 1 << 20
	bomb := layertest.Gzip(t, archiveOf(t, file("zeros", make([]byte, 2<<20))))
	require.Less(t, len(bomb), 8<<10)
	_, err := Load(t.Context(), s, bytes.NewReader(bomb))
	require.ErrorContains(t, err, "archive entry zeros: the archive's files add up to more than --max-image-size 1MiB: refused")
	storetest.AssertEmpty(t, s)
}

// An OCI layout directory names the sizes of its blobs: what load -i DIR
// copies is bounded from them before it copies.
func TestLoadDirBoundsWhatItCopies(t *testing.T) {
	src := storetest.New(t)
	l := storetest.PutLayer(t, src, map[string]string{"big": strings.Repeat("x", 2<<20)})
	_, err := src.Commit("big:1", ocispec.Image{}, []store.Layer{l})
	require.NoError(t, err)
	dst := storetest.New(t)
	dst.MaxImageSize = 1 << 20
	// The layer gzips to a few KiB; its files are 2 MiB.
	_, err = LoadDir(t.Context(), dst, src.Root)
	require.ErrorContains(t, err, `entry "big" (2MiB) takes the image's files over --max-image-size 1MiB (0B before it): refused`)
	storetest.AssertEmpty(t, dst)
	// A descriptor that says its blob is larger than the bound.
	b, err := os.ReadFile(filepath.Join(src.Root, "index.json"))
	require.NoError(t, err)
	var idx ocispec.Index
	require.NoError(t, json.Unmarshal(b, &idx))
	idx.Manifests[0].Size = 2 << 20
	b, err = json.Marshal(idx)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(src.Root, "index.json"), b, 0o644))
	_, err = LoadDir(t.Context(), dst, src.Root)
	require.ErrorContains(t, err, "the layout's blobs add up to more than --max-image-size 1MiB: refused")
	storetest.AssertEmpty(t, dst)
}

// An archive whose image has more layers than docker's bound is refused.
func TestLoadBoundsTheLayers(t *testing.T) {
	var blobs [][]byte
	var ids []digest.Digest
	for i := 0; i <= store.MaxLayers; i++ {
		l := storetest.Tar(t, map[string]string{"f": string(rune('a' + i%26))})
		blobs, ids = append(blobs, l), append(ids, digest.FromBytes(l))
	}
	s := storetest.New(t)
	_, err := Load(t.Context(), s, bytes.NewReader(dockerArchive(t, blobs, ids)))
	require.ErrorContains(t, err, "126 layers, more than 125: refused")
	storetest.AssertEmpty(t, s)
}

// One bound for the whole image: two layers of 600 KiB each are under a
// bound of 1 MiB, and refused together; nothing of the image stays. The
// same archive loads under 2 MiB, and then runs only under a bound that
// holds it (the sizes of layers unpacked before count too).
func TestImageBoundIsForTheWholeImage(t *testing.T) {
	l1 := storetest.Tar(t, map[string]string{"one": strings.Repeat("1", 600<<10)})
	l2 := storetest.Tar(t, map[string]string{"two": strings.Repeat("2", 600<<10)})
	// gzip'd, as a registry's: what the archive stores is well under the
	// bound, what the layers unpack to is not.
	data := dockerArchive(t, [][]byte{layertest.Gzip(t, l1), layertest.Gzip(t, l2)}, []digest.Digest{digest.FromBytes(l1), digest.FromBytes(l2)})

	s := storetest.New(t)
	s.MaxImageSize = 1 << 20
	_, err := Load(t.Context(), s, bytes.NewReader(data))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "layer 2 (b/layer.tar): layer sha256:")
	assert.Contains(t, err.Error(), `entry "two" (600KiB) takes the image's files over --max-image-size 1MiB (600KiB before it): refused`)
	storetest.AssertEmpty(t, s)
	// Each layer alone is under the bound.
	for _, l := range [][]byte{l1, l2} {
		_, err := Load(t.Context(), s, bytes.NewReader(dockerArchive(t, [][]byte{layertest.Gzip(t, l)}, []digest.Digest{digest.FromBytes(l)})))
		require.NoError(t, err)
	}

	s = storetest.New(t)
	s.MaxImageSize = 2 << 20
	_, err = Load(t.Context(), s, bytes.NewReader(data))
	require.NoError(t, err)
	img, err := s.Get("bad:1")
	require.NoError(t, err)
	s.MaxImageSize = 1 << 20
	_, err = s.Unpack(context.Background(), img)
	assert.ErrorContains(t, err, `entry "two" (600KiB) takes the image's files over --max-image-size 1MiB`)
	s.MaxImageSize = 2 << 20
	_, files, err := s.UnpackCounted(context.Background(), img)
	require.NoError(t, err)
	assert.Equal(t, int64(1200<<10), files)
	// Unpacked now: the recorded sizes count.
	s.MaxImageSize = 1 << 20
	_, err = s.Unpack(context.Background(), img)
	assert.ErrorContains(t, err, "image "+img.ShortID()+", layer 2 of 2: layer "+store.ShortID(img.Manifest.Layers[1].Digest)+" (600KiB) takes the image's files over --max-image-size 1MiB (600KiB before it): refused")
}
