//go:build linux

package image

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
)

// decompressed returns r's content with a gzip layer undone; a plain tar
// passes through. zstd is named and refused.
func decompressed(r io.Reader) (io.Reader, error) {
	plain, _, err := decompressedKind(r)
	return plain, err
}

// decompressedKind is decompressed, and says whether r was gzip'd.
func decompressedKind(r io.Reader) (plain io.Reader, gzipped bool, err error) {
	br := bufio.NewReader(r)
	magic, _ := br.Peek(4)
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, false, fmt.Errorf("gzip: %w", err)
		}
		return zr, true, nil
	case len(magic) == 4 && string(magic) == "\x28\xb5\x2f\xfd":
		return nil, false, errors.New("zstd-compressed layers are not supported here")
	}
	return br, false, nil
}
