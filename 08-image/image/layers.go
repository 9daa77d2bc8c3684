//go:build linux

package image

import (
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"io"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth/07-unionfs/diff"
)

// PutLayer stores an uncompressed layer tarball as a gzip'd blob, as a
// registry wants it, and returns both digests: the blob's (the manifest
// names it) and the tar stream's, the diff id (the config names it; it
// does not change when the layer is compressed another way).
func (s *Store) PutLayer(tarStream io.Reader) (Layer, error) {
	pr, pw := io.Pipe()
	h := sha256.New()
	go func() {
		zw := gzip.NewWriter(pw)
		_, err := io.Copy(zw, io.TeeReader(tarStream, h))
		if cerr := zw.Close(); err == nil {
			err = cerr
		}
		pw.CloseWithError(err)
	}()
	desc, err := s.PutBlob(pr, "", ocispec.MediaTypeImageLayerGzip)
	pr.CloseWithError(io.ErrClosedPipe) // stops the writer if PutBlob gave up early
	if err != nil {
		return Layer{}, fmt.Errorf("store layer: %w", err)
	}
	return Layer{Blob: desc, DiffID: digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil))}, nil
}

// PutTree stores the tree under dir as one layer (a base layer: every
// file, as docker import makes it).
func (s *Store) PutTree(dir string) (Layer, error) {
	pr, pw := io.Pipe()
	go func() {
		_, err := diff.WriteTree(pw, dir)
		pw.CloseWithError(err)
	}()
	l, err := s.PutLayer(pr)
	pr.CloseWithError(io.ErrClosedPipe)
	return l, err
}

// PutContainerLayer stores a container's layer (stage 07's commit: its
// changes, with whiteouts for what it deleted) as a layer.
func (s *Store) PutContainerLayer(id string) (Layer, error) {
	pr, pw := io.Pipe()
	go func() {
		_, err := s.Layers.Commit(id, pw)
		pw.CloseWithError(err)
	}()
	l, err := s.PutLayer(pr)
	pr.CloseWithError(io.ErrClosedPipe)
	return l, err
}
