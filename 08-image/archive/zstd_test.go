//go:build linux

package archive

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/07-unionfs/layertest"
	"berth/08-image/store/storetest"
	"berth/internal/testenv"
)

// A docker-archive whose layers are zstd'd (as skopeo copy
// --dest-compress-format zstd writes them) loads: each layer is checked
// against its diff id through zstd, its media type says zstd, and it
// unpacks; a zstd layer whose content is not the diff id is refused.
func TestLoadZstdLayers(t *testing.T) {
	testenv.RequireRoot(t)
	base := storetest.Tar(t, map[string]string{"etc/": "", "etc/motd": strings.Repeat("zstd\n", 100)})
	top := storetest.Tar(t, map[string]string{"etc/": "", "etc/hostname": "zstd-host\n"})
	data := dockerArchive(t, [][]byte{layertest.Zstd(t, base), layertest.Gzip(t, top)}, []digest.Digest{digest.FromBytes(base), digest.FromBytes(top)})

	s := storetest.New(t)
	loaded, err := Load(t.Context(), s, bytes.NewReader(data))
	require.NoError(t, err)
	require.Len(t, loaded, 1)
	img, err := s.Get("bad:1")
	require.NoError(t, err)
	assert.Equal(t, ocispec.MediaTypeImageLayerZstd, img.Manifest.Layers[0].MediaType)
	assert.Equal(t, ocispec.MediaTypeImageLayerGzip, img.Manifest.Layers[1].MediaType)
	dirs, err := s.Unpack(context.Background(), img)
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(dirs[1], "etc/motd"))
	require.NoError(t, err)
	assert.Equal(t, strings.Repeat("zstd\n", 100), string(b))

	// The same archive, its zstd layer claiming another diff id.
	other := storetest.Tar(t, map[string]string{"x": "y"})
	bad := dockerArchive(t, [][]byte{layertest.Zstd(t, base)}, []digest.Digest{digest.FromBytes(other)})
	s = storetest.New(t)
	_, err = Load(t.Context(), s, bytes.NewReader(bad))
	require.ErrorContains(t, err, "holds a tar whose digest is "+digest.FromBytes(base).String())
	storetest.AssertEmpty(t, s)
}
