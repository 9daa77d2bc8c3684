//go:build linux

package store

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth/07-unionfs/diff"
	"berth/07-unionfs/untar"
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

// ImportLayer stores src as a layer (docker import): a directory's tree, or a tarball,
// plain or gzip'd, which is read through tar as it streams to the store
// (layertar.go), so that what is not a tar, names a path outside the
// root, or holds more files than --max-image-size stops the import with
// its reason before the blob is complete (and PutBlob removes it);
// nothing is left for run to trip on.
func (s *Store) ImportLayer(ctx context.Context, src string) (Layer, error) {
	var in io.Reader
	if st, err := os.Stat(src); err == nil && st.IsDir() {
		// PutTree, through the interruptible reader and the bound.
		pr, pw := io.Pipe()
		go func() {
			_, err := diff.WriteTree(pw, src)
			pw.CloseWithError(err)
		}()
		defer pr.CloseWithError(io.ErrClosedPipe) // stops WriteTree if PutLayer gave up
		in = ReaderUntil(ctx, pr)
	} else {
		f := os.Stdin
		if src != "-" {
			if f, err = os.Open(src); err != nil {
				return Layer{}, err
			}
			defer f.Close()
		}
		plain, _, err := untar.Decompress(ReaderUntil(ctx, f))
		if err != nil {
			return Layer{}, fmt.Errorf("import %s: %w", src, err)
		}
		defer plain.Close()
		in = plain
	}
	checked := NewCheckedTar(in, NewBudget(s.Bound()))
	l, err := s.PutLayer(checked)
	switch {
	case err != nil && errors.Is(checked.Err, ErrLayerNotATar):
		return Layer{}, fmt.Errorf("import %s: %w (a tarball of a root filesystem, plain or gzip'd, or a directory)", src, checked.Err)
	case err != nil && checked.Err != nil:
		return Layer{}, fmt.Errorf("import %s: %w", src, checked.Err)
	}
	return l, err
}

// ReaderUntil reads r until ctx ends. A read from a pipe that stalls
// (load < fifo, ssh ... | load) cannot be cancelled in the kernel, so each
// read runs in a goroutine, into a buffer of its own, and is abandoned
// when ctx ends: the caller gets ctx's error at once, and the half-written
// blob is removed. The buffer on top keeps reads large.
func ReaderUntil(ctx context.Context, r io.Reader) io.Reader {
	return bufio.NewReaderSize(&ctxReader{ctx: ctx, r: r, res: make(chan ctxRead, 1)}, 64<<10)
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
	buf []byte
	res chan ctxRead
}

type ctxRead struct {
	n   int
	err error
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err // and never again from r: a read may still be running
	}
	if len(p) == 0 {
		return 0, nil
	}
	if c.buf == nil {
		c.buf = make([]byte, 64<<10)
	}
	buf := c.buf[:min(len(p), len(c.buf))]
	go func() {
		n, err := c.r.Read(buf)
		c.res <- ctxRead{n, err}
	}()
	select {
	case <-c.ctx.Done():
		return 0, c.ctx.Err()
	case res := <-c.res:
		return copy(p, buf[:res.n]), res.err
	}
}
