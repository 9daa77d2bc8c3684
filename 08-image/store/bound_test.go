//go:build linux

package store_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/07-unionfs/layertest"
	"berth/08-image/store"
	"berth/08-image/store/storetest"
)

// import bounds what it stores the same way.
func TestImportBound(t *testing.T) {
	s := storetest.New(t)
	s.MaxImageSize = 1 << 20
	tarball := filepath.Join(t.TempDir(), "big.tar.gz")
	require.NoError(t, os.WriteFile(tarball, layertest.Gzip(t, storetest.Tar(t, map[string]string{"a": strings.Repeat("a", 700<<10), "b": strings.Repeat("b", 700<<10)})), 0o644))
	_, err := s.ImportLayer(t.Context(), tarball)
	require.ErrorContains(t, err, "takes the image's files over --max-image-size 1MiB (700KiB before it): refused")
	assert.Empty(t, storetest.Blobs(t, s))
}

// A writer that fails takes back the blobs it added only when no other
// writer is at work (one may be storing the same blob for an image it is
// about to name), and never a blob a name reaches: what it leaves is
// garbage for the next sweep, never a hole in a named image.
func TestFailedWriterTakesBackOnlyWhatNoOneNeeds(t *testing.T) {
	s := storetest.New(t)
	l := storetest.PutLayer(t, s, map[string]string{"a": "a"})
	_, err := s.Commit("named:1", ocispec.Image{}, []store.Layer{l})
	require.NoError(t, err)
	stray, err := s.PutBlob(strings.NewReader("a blob no image names"), "", "")
	require.NoError(t, err)
	n := store.NewIngest(s) // a writer that added both
	n.Note(l.Blob.Digest)
	n.Note(stray.Digest)

	release, err := s.Hold(context.Background()) // another pull, load or import at work
	require.NoError(t, err)
	n.Remove()
	assert.True(t, s.HasBlob(stray.Digest), "left for the sweep while another writer works")
	release()

	n.Remove()
	assert.False(t, s.HasBlob(stray.Digest), "taken back")
	assert.True(t, s.HasBlob(l.Blob.Digest), "a named image's blob stays")
	img, err := s.Get("named:1")
	require.NoError(t, err)
	_, err = s.Unpack(context.Background(), img)
	require.NoError(t, err)
}
