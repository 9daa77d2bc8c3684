//go:build linux

package image

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// LoadDir loads the images of an OCI image layout directory (skopeo copy
// ... oci:DIR:TAG, an unpacked oci-archive). Only the blobs its images
// reach are copied, each verified against its digest; the directory is
// read through an os.Root, so no symlink in it leads outside.
func (s *Store) LoadDir(dir string) ([]LoadedImage, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	idx, err := readSmall(root, indexFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s is not an OCI image layout: it has no index.json", dir)
	}
	if err != nil {
		return nil, err
	}
	layout, err := readSmall(root, ociLayoutFile)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := checkLayout(layout); err != nil {
		return nil, err
	}
	release, err := s.Hold()
	if err != nil {
		return nil, err
	}
	defer release()
	fetch := func(d ocispec.Descriptor) error {
		if d.Digest.Validate() != nil || d.Digest.Algorithm() != digest.SHA256 {
			return fmt.Errorf("descriptor digest %q: berth reads sha256 digests", d.Digest)
		}
		if s.HasBlob(d.Digest) {
			return s.checkBlob(d, "the store")
		}
		f, err := root.Open(blobName(d.Digest))
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("blob %s (%s) is not in %s", d.Digest, d.MediaType, dir)
		}
		if err != nil {
			return err
		}
		defer f.Close()
		if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
			return fmt.Errorf("%s/%s is not a regular file", dir, blobName(d.Digest))
		}
		// One byte more than the descriptor says shows a blob too long.
		if _, err := s.PutBlob(io.LimitReader(f, d.Size+1), d.Digest, d.MediaType); err != nil {
			return fmt.Errorf("%s/%s: %w", dir, blobName(d.Digest), err)
		}
		return s.checkBlob(d, dir)
	}
	plans, err := s.ociPlans(idx, fetch)
	if err != nil {
		return nil, err
	}
	if len(plans) == 0 {
		return nil, fmt.Errorf("%s lists no image", dir)
	}
	return s.tagLoaded(plans)
}

func readSmall(root *os.Root, name string) ([]byte, error) {
	f, err := root.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxMetadata+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxMetadata {
		return nil, fmt.Errorf("%s is over %d bytes: not an image layout", name, maxMetadata)
	}
	return b, nil
}
