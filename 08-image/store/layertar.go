//go:build linux

package store

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth/07-unionfs/untar"
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

// ErrLayerNotATar: the first header of a layer is none.
var ErrLayerNotATar = errors.New("not a tar archive")

// CheckedTar passes a tar stream through unchanged, reading it with
// archive/tar as it goes: a read fails when the stream is no tar, is cut
// short, or has an entry unpack would refuse (an absolute name, a "..",
// a hard link to such a name, a type no layer holds), when it has more
// entries than Apply takes, when its files pass the image's budget, or
// when more than maxAfterEnd follows the end of the archive. It counts
// the layer's files (content) as Apply will.
type CheckedTar struct {
	src     io.Reader
	tr      *tar.Reader
	budget  *Budget      // the image's
	buf     bytes.Buffer // what tr read from src, not yet passed on
	n       int64        // bytes read from src
	srcErr  error        // src's last error
	entries int
	Content int64 // this layer's files
	inEntry bool
	done    bool  // the end of the archive: the rest (padding) passes as it is
	after   int64 // bytes after the end
	Err     error // why the stream is refused; also what Read returns
	scratch [32 << 10]byte
}

func NewCheckedTar(src io.Reader, b *Budget) *CheckedTar {
	c := &CheckedTar{src: src, budget: b}
	c.tr = tar.NewReader(readerFunc(c.record))
	return c
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// record is tr's source: src, with every byte kept to be passed on.
func (c *CheckedTar) record(p []byte) (int, error) {
	n, err := c.src.Read(p)
	c.buf.Write(p[:n])
	c.n += int64(n)
	if err != nil {
		c.srcErr = err
	}
	return n, err
}

func (c *CheckedTar) Read(p []byte) (int, error) {
	for c.buf.Len() == 0 && c.Err == nil {
		if c.done {
			n, err := c.src.Read(p)
			if c.after += int64(n); c.after > maxAfterEnd {
				c.Err = fmt.Errorf("more than %s follows the end of the tar archive: refused", FormatSize(maxAfterEnd))
				return 0, c.Err
			}
			if err != nil && err != io.EOF {
				c.Err = fmt.Errorf("read: %w", err)
			}
			return n, err
		}
		c.step()
	}
	if c.buf.Len() > 0 {
		return c.buf.Read(p)
	}
	return 0, c.Err
}

// step moves tr on by a header or a piece of an entry's content.
func (c *CheckedTar) step() {
	if c.inEntry {
		_, err := c.tr.Read(c.scratch[:])
		switch {
		case err == io.EOF:
			c.inEntry = false
		case err != nil:
			c.Err = c.readError(err)
		}
		return
	}
	hdr, err := c.tr.Next()
	switch {
	case err == io.EOF && c.n == 0:
		c.Err = fmt.Errorf("empty input: %w", ErrLayerNotATar)
	case err == io.EOF:
		c.done = true
	case err != nil && c.entries == 0 && NotATar(err, c.n, c.srcErr):
		c.Err = ErrLayerNotATar
	case err != nil:
		c.Err = c.readError(err)
	case c.entries == maxLayerEntries:
		c.Err = fmt.Errorf("more than %d entries: refused (a tar bomb?)", maxLayerEntries)
	default:
		c.entries++
		c.inEntry = true
		if c.Err = checkLayerEntry(hdr); c.Err == nil && hdr.Typeflag == tar.TypeReg {
			c.Content += hdr.Size
			c.Err = c.budget.Take(hdr.Size, fmt.Sprintf("entry %q", hdr.Name))
		}
	}
}

func (c *CheckedTar) readError(err error) error {
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
	name, err := EntryName(hdr.Name)
	if err != nil {
		return fmt.Errorf("tarball entry %w", err)
	}
	switch hdr.Typeflag {
	case tar.TypeDir, tar.TypeReg, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
	case tar.TypeLink:
		if _, err := EntryName(hdr.Linkname); err != nil {
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

// EntryName turns a name from a tar (an entry of a layer or an image
// archive, a path in manifest.json, a hard link's target) into a clean
// name relative to the tar's top. It refuses absolute names and any ".." element: load
// never writes by these names, but it resolves them, and a name that can
// leave the archive is a sign of a crafted file.
func EntryName(n string) (string, error) {
	if n == "" {
		return "", errors.New("with an empty name: refused")
	}
	if len(n) > maxNameLength {
		return "", fmt.Errorf("%.40q… is a name over %d bytes: refused", n, maxNameLength)
	}
	if strings.HasPrefix(n, "/") {
		return "", fmt.Errorf("%q is an absolute name: refused", n)
	}
	for _, p := range strings.Split(n, "/") {
		if p == ".." {
			return "", fmt.Errorf("%q climbs out with '..': refused", n)
		}
	}
	return path.Clean(n), nil // "./index.json" -> "index.json"; "." is the top
}

// maxNameLength bounds a name (PATH_MAX).
const maxNameLength = 4096

// tarBlock is a tar header's size.
const tarBlock = 512

// NotATar tells, from the error at a tar's first header, a file that is
// no tar from one cut short: a text file shorter than a header ends
// inside it, which tar reports as an unexpected EOF, as it does a
// truncation. read is what the tar reader was given, srcErr the last
// error of its source.
func NotATar(tarErr error, read int64, srcErr error) bool {
	return errors.Is(tarErr, tar.ErrHeader) ||
		errors.Is(tarErr, io.ErrUnexpectedEOF) && srcErr == io.EOF && read < tarBlock
}

// layerScan is what reading a layer blob found.
type layerScan struct {
	diffID    digest.Digest // the digest of its tar stream
	content   int64         // its files
	mediaType string        // as the blob is: plain, gzip'd or zstd'd tar
}

// scanLayer reads a layer blob of the store to its end: through gunzip
// or zstd when it is compressed (as its first bytes tell; the checksum in
// the compressed stream's trailer is checked only there), as a tar (CheckedTar, its files counted
// against b), hashing the tar stream: what it holds, without unpacking it.
func (s *Store) scanLayer(blob digest.Digest, b *Budget) (layerScan, error) {
	f, err := s.OpenBlob(blob)
	if err != nil {
		return layerScan{}, err
	}
	defer f.Close()
	plain, kind, err := untar.Decompress(f)
	if err != nil {
		return layerScan{}, fmt.Errorf("layer %s: %w", blob, err)
	}
	defer plain.Close()
	h := sha256.New()
	checked := NewCheckedTar(io.TeeReader(plain, h), b)
	if _, err := io.Copy(io.Discard, checked); err != nil {
		return layerScan{}, fmt.Errorf("layer %s: %w", blob, err)
	}
	mt := map[untar.Compression]string{
		untar.Uncompressed: ocispec.MediaTypeImageLayer,
		untar.Gzip:         ocispec.MediaTypeImageLayerGzip,
		untar.Zstd:         ocispec.MediaTypeImageLayerZstd,
	}[kind]
	return layerScan{diffID: digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil)), content: checked.Content, mediaType: mt}, nil
}

// CheckLayer reads a layer blob to its end (scanLayer: through gunzip
// if it is gzip'd, as a tar, its files counted against the image's
// budget b) and checks that the tar stream hashes to the diff id the
// config lists: the config's digest is the image id, so this is what
// makes the layers the image's. docker load checks the digest; a blob
// that is no tar, or is cut short inside its last entry, with the digest
// to match, is refused here too, not at the first run. It returns the
// layer's media type, as the blob is.
func (s *Store) CheckLayer(blob, diffID digest.Digest, b *Budget) (mediaType string, err error) {
	scan, err := s.scanLayer(blob, b)
	if err != nil {
		return "", err
	}
	if scan.diffID != diffID {
		return "", fmt.Errorf("layer %s holds a tar whose digest is %s, but the config lists %s: refused", blob, scan.diffID, diffID)
	}
	s.recordDiffID(blob, diffID, scan.content)
	return scan.mediaType, nil
}
