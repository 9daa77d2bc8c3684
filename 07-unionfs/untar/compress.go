//go:build linux

package untar

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// A layer tarball travels plain, gzip'd (what registries have always
// served) or zstd'd (what OCI images use more and more: it unpacks several
// times faster). Its first bytes tell which; a name or a media type would
// be a claim to check against them anyway. Every reader of a tarball in
// berth (apply, an image's load, import, pull and unpack, a build's ADD)
// asks here.

// Compression is how a stream is compressed.
type Compression int

const (
	Uncompressed Compression = iota
	Gzip
	Zstd
)

func (c Compression) String() string {
	return [...]string{"plain", "gzip", "zstd"}[c]
}

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// MaxZstdWindow bounds the window a zstd stream may ask its decoder to keep
// in memory: the frame header names its size, and a hostile layer could
// name gigabytes. 128 MiB is what zstd(1) itself decompresses without
// --memory (the window of zstd --long=27); images use 8 MiB at most.
const MaxZstdWindow = 128 << 20

// Decompress returns r's content with its compression undone, and which it
// was; a stream that is neither gzip nor zstd passes as it is (a plain tar,
// or what the tar reader then refuses). The stream is read to its very end
// by whoever reads the result to io.EOF: a gzip member's checksum and
// length, a zstd frame's checksum, are checked there, and bytes after the
// last member or frame that are not another are an error. Close releases
// the decoder (not r).
func Decompress(r io.Reader) (io.ReadCloser, Compression, error) {
	br := bufio.NewReader(r)
	magic, _ := br.Peek(len(zstdMagic))
	switch {
	case bytes.HasPrefix(magic, gzipMagic):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, Gzip, fmt.Errorf("gzip: %w", err)
		}
		return zr, Gzip, nil
	case bytes.Equal(magic, zstdMagic):
		zr, err := zstd.NewReader(br,
			zstd.WithDecoderConcurrency(1), // decodes in this goroutine, no others
			zstd.WithDecoderMaxWindow(MaxZstdWindow),
			zstd.WithDecoderMaxMemory(MaxZstdWindow))
		if err != nil {
			return nil, Zstd, fmt.Errorf("zstd: %w", err)
		}
		return zstdReader{zr}, Zstd, nil
	}
	return io.NopCloser(br), Uncompressed, nil
}

// zstdReader names zstd in its errors, as gzip's own do ("gzip: invalid
// checksum").
type zstdReader struct{ d *zstd.Decoder }

func (z zstdReader) Read(p []byte) (int, error) {
	n, err := z.d.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("zstd: %w", err)
	}
	return n, err
}

func (z zstdReader) Close() error {
	z.d.Close()
	return nil
}
