//go:build linux

package registry_test

import (
	"context"
	"encoding/json"
	"runtime"
	"testing"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/07-unionfs/layertest"
	"berth/internal/testenv"
)

// A zstd layer (OCI's application/vnd.oci.image.layer.v1.tar+zstd, what
// newer images are pushed with) is pulled, checked against its diff id
// through zstd, and unpacked, beside a gzip'd one.
func TestPullZstdLayer(t *testing.T) {
	testenv.RequireRoot(t)
	f := newFakeRegistry(t)
	zstdTar := layertest.Tar(t, layertest.Reg("from-zstd", "zstd layer\n"))
	gzipTar := layertest.Tar(t, layertest.Reg("from-gzip", "gzip layer\n"))
	cfg, err := json.Marshal(ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromBytes(zstdTar), digest.FromBytes(gzipTar)}}})
	require.NoError(t, err)
	f.manifest("zstd", ocispec.MediaTypeImageManifest, ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest, Config: f.blob(cfg, ocispec.MediaTypeImageConfig),
		Layers: []ocispec.Descriptor{
			f.blob(layertest.Zstd(t, zstdTar), ocispec.MediaTypeImageLayerZstd),
			f.blob(layertest.Gzip(t, gzipTar), ocispec.MediaTypeImageLayerGzip),
		}})
	s, p, out, err := pullFake(t, f, ":zstd")
	require.NoError(t, err, out)
	dirs, err := s.Unpack(context.Background(), p.Image)
	require.NoError(t, err)
	assert.Equal(t, "zstd layer\n", layertest.Read(t, dirs[1]+"/from-zstd"))
	assert.Equal(t, "gzip layer\n", layertest.Read(t, dirs[0]+"/from-gzip"))
}
