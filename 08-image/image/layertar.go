//go:build linux

package image

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Every layer that enters the store, or leaves it to be unpacked, is read
// as a tar from its first byte to its last: import reads its input so,
// load and pull each layer blob before the image gets a name, and unpack
// each layer as it applies it. A blob that is no tar, a tar cut short, a
// gzip whose checksum is wrong, an entry unpack would refuse, or files
// over the image's bound (bound.go) stop it there, in one line, before
// anything is named; nothing waits for the first run to fail.

const (
	// maxLayerEntries is stage 07's Apply bound on entries, applied
	// before Apply sees the layer.
	maxLayerEntries = 1 << 20
	// maxAfterEnd bounds what may follow a tar's end-of-archive blocks:
	// padding to a record (GNU tar's is 10 KiB) is normal; gigabytes of
	// zeros gzip'd into a few megabytes are not, and would all be hashed
	// (the diff id covers the whole stream).
	maxAfterEnd = 1 << 20
)

// errLayerNotATar: the first header of a layer is none.
var errLayerNotATar = errors.New("not a tar archive")

// checkedTar passes a tar stream through unchanged, reading it with
// archive/tar as it goes: a read fails when the stream is no tar, is cut
// short, or has an entry unpack would refuse (an absolute name, a "..",
// a hard link to such a name, a type no layer holds), when it has more
// entries than Apply takes, when its files pass the image's budget, or
// when more than maxAfterEnd follows the end of the archive. It counts
// the layer's files (content) as Apply will.
type checkedTar struct {
	src     io.Reader
	tr      *tar.Reader
	budget  *budget      // the image's
	buf     bytes.Buffer // what tr read from src, not yet passed on
	n       int64        // bytes read from src
	srcErr  error        // src's last error
	entries int
	content int64 // this layer's files
	inEntry bool
	done    bool  // the end of the archive: the rest (padding) passes as it is
	after   int64 // bytes after the end
	err     error // why the stream is refused; also what Read returns
	scratch [32 << 10]byte
}

func newCheckedTar(src io.Reader, b *budget) *checkedTar {
	c := &checkedTar{src: src, budget: b}
	c.tr = tar.NewReader(readerFunc(c.record))
	return c
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// record is tr's source: src, with every byte kept to be passed on.
func (c *checkedTar) record(p []byte) (int, error) {
	n, err := c.src.Read(p)
	c.buf.Write(p[:n])
	c.n += int64(n)
	if err != nil {
		c.srcErr = err
	}
	return n, err
}

func (c *checkedTar) Read(p []byte) (int, error) {
	for c.buf.Len() == 0 && c.err == nil {
		if c.done {
			n, err := c.src.Read(p)
			if c.after += int64(n); c.after > maxAfterEnd {
				c.err = fmt.Errorf("more than %s follows the end of the tar archive: refused", size(maxAfterEnd))
				return 0, c.err
			}
			if err != nil && err != io.EOF {
				c.err = fmt.Errorf("read: %w", err)
			}
			return n, err
		}
		c.step()
	}
	if c.buf.Len() > 0 {
		return c.buf.Read(p)
	}
	return 0, c.err
}

// step moves tr on by a header or a piece of an entry's content.
func (c *checkedTar) step() {
	if c.inEntry {
		_, err := c.tr.Read(c.scratch[:])
		switch {
		case err == io.EOF:
			c.inEntry = false
		case err != nil:
			c.err = c.readError(err)
		}
		return
	}
	hdr, err := c.tr.Next()
	switch {
	case err == io.EOF && c.n == 0:
		c.err = fmt.Errorf("empty input: %w", errLayerNotATar)
	case err == io.EOF:
		c.done = true
	case err != nil && c.entries == 0 && (errors.Is(err, tar.ErrHeader) ||
		errors.Is(err, io.ErrUnexpectedEOF) && c.srcErr == io.EOF && c.n < tarBlock):
		c.err = errLayerNotATar
	case err != nil:
		c.err = c.readError(err)
	case c.entries == maxLayerEntries:
		c.err = fmt.Errorf("more than %d entries: refused (a tar bomb?)", maxLayerEntries)
	default:
		c.entries++
		c.inEntry = true
		if c.err = checkLayerEntry(hdr); c.err == nil && hdr.Typeflag == tar.TypeReg {
			c.content += hdr.Size
			c.err = c.budget.take(hdr.Size, fmt.Sprintf("entry %q", hdr.Name))
		}
	}
}

func (c *checkedTar) readError(err error) error {
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("the tarball ends in the middle of entry %d: is it truncated?", c.entries)
	case errors.Is(err, tar.ErrHeader):
		return fmt.Errorf("the header after entry %d is damaged: %v", c.entries, err)
	}
	return fmt.Errorf("read tarball after %d entries: %w", c.entries, err)
}

// checkLayerEntry refuses an entry that stage 07's unpack would refuse for
// its name or its type, with the same reasons.
func checkLayerEntry(hdr *tar.Header) error {
	name, err := entryName(hdr.Name)
	if err != nil {
		return fmt.Errorf("tarball entry %w", err)
	}
	switch hdr.Typeflag {
	case tar.TypeDir, tar.TypeReg, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
	case tar.TypeLink:
		if _, err := entryName(hdr.Linkname); err != nil {
			return fmt.Errorf("tarball entry %q: hard link target %w", hdr.Name, err)
		}
	default:
		return fmt.Errorf("tarball entry %q has type %q: a layer holds files, directories, links, devices and FIFOs", hdr.Name, hdr.Typeflag)
	}
	if name == "." && hdr.Typeflag != tar.TypeDir {
		return fmt.Errorf("tarball entry %q: the root of a layer must be a directory", hdr.Name)
	}
	return nil
}

// layerScan is what reading a layer blob found.
type layerScan struct {
	diffID    digest.Digest // the digest of its tar stream
	content   int64         // its files
	mediaType string        // as the blob is: gzip'd or plain tar
}

// scanLayer reads a layer blob of the store to its end: through gunzip
// when it is gzip'd (as its first bytes tell; the checksum in gzip's
// trailer is checked only there), as a tar (checkedTar, its files counted
// against b), hashing the tar stream: what it holds, without unpacking it.
func (s *Store) scanLayer(blob digest.Digest, b *budget) (layerScan, error) {
	f, err := s.OpenBlob(blob)
	if err != nil {
		return layerScan{}, err
	}
	defer f.Close()
	plain, gz, err := decompressedKind(f)
	if err != nil {
		return layerScan{}, fmt.Errorf("layer %s: %w", blob, err)
	}
	h := sha256.New()
	checked := newCheckedTar(io.TeeReader(plain, h), b)
	if _, err := io.Copy(io.Discard, checked); err != nil {
		return layerScan{}, fmt.Errorf("layer %s: %w", blob, err)
	}
	mt := ocispec.MediaTypeImageLayer
	if gz {
		mt = ocispec.MediaTypeImageLayerGzip
	}
	return layerScan{diffID: digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil)), content: checked.content, mediaType: mt}, nil
}
