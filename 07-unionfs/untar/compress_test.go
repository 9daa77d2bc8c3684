//go:build linux

package untar

import (
	"bytes"
	"encoding/binary"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/07-unionfs/layertest"
	"berth/internal/testenv"
)

// A zstd layer (what OCI images use more and more) applies like a gzip'd
// one: its first bytes tell, whatever its name or media type says.
func TestApplyZstd(t *testing.T) {
	testenv.RequireRoot(t)
	tarball := layertest.Tar(t, layertest.Dir("etc/"), layertest.Reg("etc/motd", "zstd works\n"), layertest.Reg("etc/.wh.gone", ""))
	for _, tc := range []struct {
		name string
		data []byte
		want Compression
	}{
		{"plain", tarball, Uncompressed},
		{"gzip", layertest.Gzip(t, tarball), Gzip},
		{"zstd", layertest.Zstd(t, tarball), Zstd},
		{"two zstd frames", append(layertest.Zstd(t, tarball[:1024]), layertest.Zstd(t, tarball[1024:])...), Zstd},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, kind, err := Decompress(bytes.NewReader(tc.data))
			require.NoError(t, err)
			r.Close()
			assert.Equal(t, tc.want, kind)
			target, _ := jail(t)
			st, err := Apply(bytes.NewReader(tc.data), target, Options{})
			require.NoError(t, err)
			assert.Equal(t, "zstd works\n", layertest.Read(t, filepath.Join(target, "etc/motd")))
			assert.Equal(t, 1, st.Whiteouts)
		})
	}
}

// A zstd stream is read to its end, as a gzip one is: a frame whose
// checksum is wrong, bytes after the last frame that are no frame, a
// stream cut short, and a frame that asks for a window over MaxZstdWindow
// are each refused, and nothing is applied.
func TestApplyZstdReadToItsEnd(t *testing.T) {
	testenv.RequireRoot(t)
	tarball := layertest.Tar(t, layertest.Reg("f", strings.Repeat("x", 10000)))
	good := layertest.Zstd(t, tarball)
	badSum := bytes.Clone(good)
	badSum[len(badSum)-1] ^= 0xff // the last 4 bytes are the frame's checksum
	// A frame header that names a window of 256 MiB, over MaxZstdWindow
	// and under the library's own default (512 MiB): the window descriptor
	// (exponent 18 + 10) of a frame with no content size.
	huge := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, byte(18 << 3)}
	huge = binary.LittleEndian.AppendUint32(huge, 0) // and a little more
	for _, tc := range []struct {
		name, want string
		data       []byte
	}{
		{"checksum", "zstd: CRC check failed", badSum},
		{"garbage after the last frame", "reading the layer to its end: zstd: invalid input: magic number mismatch", append(bytes.Clone(good), []byte("not a frame at all")...)},
		{"cut short", "zstd: unexpected EOF", good[:len(good)-10]},
		{"window too large", "zstd: window size exceeded", huge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target, outside := jail(t)
			_, err := Apply(bytes.NewReader(tc.data), target, Options{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assertNothingWritten(t, target, outside)
		})
	}
}
