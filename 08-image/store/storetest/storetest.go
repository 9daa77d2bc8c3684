//go:build linux

// Package storetest helps the tests of stage 08's packages: a private
// image store, and layers made from a map of files.
package storetest

import (
	"archive/tar"
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/07-unionfs/tree"
	"berth/08-image/store"
)

// New is an empty store in a temporary data root.
func New(t testing.TB) *store.Store {
	t.Helper()
	s := store.NewStore(t.TempDir())
	require.NoError(t, s.Init())
	return s
}

// Tar builds an uncompressed layer tarball: "path" -> content, a path
// ending in "/" a directory.
func Tar(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, content := range files {
		hdr := &tar.Header{Name: name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(content)), ModTime: time.Unix(1, 0)}
		if strings.HasSuffix(name, "/") {
			hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeDir, 0o755, 0
		}
		require.NoError(t, tw.WriteHeader(hdr))
		if hdr.Typeflag == tar.TypeReg {
			_, err := tw.Write([]byte(content))
			require.NoError(t, err)
		}
	}
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

// PutLayer stores a layer of files (see Tar).
func PutLayer(t testing.TB, s *store.Store, files map[string]string) store.Layer {
	t.Helper()
	l, err := s.PutLayer(bytes.NewReader(Tar(t, files)))
	require.NoError(t, err)
	return l
}

// assertStoreEmpty: no name, no blob, nothing half-written, no record of
// a check, no layer unpacked: a refused image left nothing of itself.
// AssertEmpty: nothing is named, no blob is left, no layer unpacked or half
// written: the store as a refused load or pull must leave it.
func AssertEmpty(t testing.TB, s *store.Store) {
	t.Helper()
	imgs, err := s.List()
	require.NoError(t, err)
	assert.Empty(t, imgs, "nothing is named")
	assert.Empty(t, Blobs(t, s), "no blob is left")
	for _, dir := range []string{filepath.Join(s.Root, "ingest"), filepath.Join(s.Root, "diffids"), filepath.Join(s.Layers.Root, "sha256")} {
		names, err := tree.ReadNames(dir)
		require.NoError(t, err)
		assert.Empty(t, names, dir)
	}
}

// storeBlobs lists the digests of the blobs in a store.
// Blobs lists the store's blobs (their hex digests).
func Blobs(t testing.TB, s *store.Store) []string {
	t.Helper()
	names, err := tree.ReadNames(filepath.Join(s.Root, "blobs", "sha256"))
	require.NoError(t, err)
	return names
}
