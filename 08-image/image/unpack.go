//go:build linux

package image

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth/07-unionfs/layer"
)

// LayerDir is where a layer with this diff id is (or would be) unpacked:
// stage 07's store, so that a container's overlay stacks it directly.
func (s *Store) LayerDir(diffID digest.Digest) string {
	return filepath.Join(s.Layers.Root, diffID.Algorithm().String(), diffID.Encoded())
}

// Unpack makes sure every layer of img is unpacked and returns their
// directories top first (overlay's lowerdir order). A layer unpacked
// before, by any image, is reused.
func (s *Store) Unpack(img *Image) ([]string, error) {
	if err := s.Layers.Init(); err != nil {
		return nil, err
	}
	// A sweep must not take a layer being unpacked (GC removes what a
	// killed unpack left, under its exclusive lock).
	release, err := s.Hold()
	if err != nil {
		return nil, err
	}
	defer release()
	var dirs []string
	for i, l := range img.Manifest.Layers {
		diffID := img.Config.RootFS.DiffIDs[i]
		dir, err := s.unpackLayer(l, diffID)
		if err != nil {
			return nil, fmt.Errorf("image %s, layer %d of %d: %w", img.ShortID(), i+1, len(img.Manifest.Layers), err)
		}
		dirs = append([]string{dir}, dirs...)
	}
	return dirs, nil
}

func (s *Store) unpackLayer(blob ocispec.Descriptor, diffID digest.Digest) (string, error) {
	if err := diffID.Validate(); err != nil || diffID.Algorithm() != digest.SHA256 {
		return "", fmt.Errorf("diff id %q is not a sha256 digest", diffID)
	}
	dir := s.LayerDir(diffID)
	if err := checkLayerType(blob.MediaType); err != nil {
		return "", err
	}
	if _, err := os.Stat(dir); err == nil {
		// Unpacked already (Apply renames into place only when complete),
		// maybe from another image's blob: this image's blob must still be
		// shown to hold that content, or a config could borrow a layer its
		// own blob does not have, and save and push would pass it on.
		if err := s.checkDiffID(blob, diffID); err != nil {
			return "", err
		}
		return dir, nil
	}
	f, err := s.OpenBlob(blob.Digest)
	if err != nil {
		return "", err
	}
	defer f.Close()
	// The blob was verified when it was stored; what it decompresses to
	// must be the diff id the config names, checked as it is applied.
	// layer.Apply undoes a gzip itself, so the hash sees the tar stream
	// through a decompressing tee.
	tr, err := newDiffReader(f)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return "", err
	}
	// Apply into a private name first: the diff id is checked only when
	// the whole stream has been read, and a layer must never appear under
	// a digest its content does not have.
	tmp := filepath.Join(filepath.Dir(dir), ".unpack-"+diffID.Encoded()+fmt.Sprint("-", os.Getpid()))
	os.RemoveAll(tmp)
	// Device nodes in a layer are made as root (docker does too; a
	// container still needs the device cgroup's permission to use them) and
	// left out without root, which may not mknod them.
	devices := layer.DevicesCreate
	if s.Rootless {
		devices = layer.DevicesSkip
	}
	_, err = layer.Apply(tr, tmp, layer.ApplyOptions{Userxattr: s.Rootless, Rootless: s.Rootless, Devices: devices})
	if err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("unpack %s: %w", blob.Digest, err)
	}
	// Read what tar left unread (the end-of-archive padding): it is part
	// of the digested stream.
	if _, err := io.Copy(io.Discard, tr); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("unpack %s: %w", blob.Digest, err)
	}
	if got := tr.Digest(); got != diffID {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("layer %s unpacks to content %s, not %s as the image config says: refused", blob.Digest, got, diffID)
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		if _, serr := os.Stat(dir); serr != nil {
			return "", fmt.Errorf("unpack: rename %s to %s: %w", tmp, dir, err)
		}
		// another run unpacked it meanwhile
	}
	s.recordDiffID(blob.Digest, diffID)
	return dir, nil
}

// The pairs blob digest -> diff id that were checked are kept, one file
// per blob, so a layer is hashed once, not at every run:
//
//	<data-root>/images/diffids/<blob hex>   holds the diff id
func (s *Store) diffIDFile(blob digest.Digest) string {
	return filepath.Join(s.Root, "diffids", blob.Encoded())
}

func (s *Store) recordDiffID(blob, diffID digest.Digest) {
	if blob.Validate() != nil {
		return
	}
	if err := os.MkdirAll(filepath.Dir(s.diffIDFile(blob)), 0o700); err == nil {
		_ = writeFileAtomic(s.diffIDFile(blob), []byte(diffID.String()), 0o600) // a cache: on failure, hashed again next time
	}
}

// checkDiffID shows that a blob holds the content a config names: from
// the record of an earlier check, or by hashing it uncompressed.
func (s *Store) checkDiffID(blob ocispec.Descriptor, diffID digest.Digest) error {
	if b, err := os.ReadFile(s.diffIDFile(blob.Digest)); err == nil && string(b) == diffID.String() {
		return nil
	}
	f, err := s.OpenBlob(blob.Digest)
	if err != nil {
		return err
	}
	defer f.Close()
	tr, err := newDiffReader(f)
	if err != nil {
		return fmt.Errorf("layer %s: %w", blob.Digest, err)
	}
	if _, err := io.Copy(io.Discard, tr); err != nil {
		return fmt.Errorf("layer %s: %w", blob.Digest, err)
	}
	if got := tr.Digest(); got != diffID {
		return fmt.Errorf("layer %s unpacks to content %s, not %s as the image config says: refused", blob.Digest, got, diffID)
	}
	s.recordDiffID(blob.Digest, diffID)
	return nil
}

// checkLayerType accepts tar and gzip'd tar layers, OCI's or Docker's.
func checkLayerType(mt string) error {
	switch mt {
	case ocispec.MediaTypeImageLayer, ocispec.MediaTypeImageLayerGzip,
		MediaTypeDockerLayer, MediaTypeDockerLayerTar, "":
		return nil
	case ocispec.MediaTypeImageLayerZstd:
		return errors.New("zstd-compressed layers are not supported here: pull a gzip variant")
	case "application/vnd.oci.image.layer.nondistributable.v1.tar",
		"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip":
		return nil // deprecated by the spec, still met in old images
	}
	return fmt.Errorf("layer media type %q is not a layer tarball berth can unpack", mt)
}

// diffReader hands layer.Apply the blob's bytes as they are (Apply
// detects gzip) while hashing the uncompressed stream.
type diffReader struct {
	io.Reader
	h interface {
		io.Writer
		Sum([]byte) []byte
	}
}

func newDiffReader(f *os.File) (*diffReader, error) {
	plain, err := decompressed(f)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	return &diffReader{Reader: io.TeeReader(plain, h), h: h}, nil
}

func (d *diffReader) Digest() digest.Digest {
	return digest.NewDigestFromBytes(digest.SHA256, d.h.Sum(nil))
}

func goArch() string { return runtime.GOARCH }
