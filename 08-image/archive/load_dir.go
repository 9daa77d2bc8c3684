//go:build linux

package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth/07-unionfs/tree"
	"berth/08-image/store"
)

// LoadDir loads the images of an OCI image layout directory (skopeo copy
// ... oci:DIR:TAG, an unpacked oci-archive). Only the blobs its images
// reach are copied, each verified against its digest; the directory is
// read through an os.Root, so no symlink in it leads outside, and only
// regular files are opened (a FIFO named index.json would block forever).
// A load that fails, or that ctx ends, removes the blobs it added.
func LoadDir(ctx context.Context, s *store.Store, dir string) (loaded []LoadedImage, err error) {
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
	added, err := store.Begin(ctx, s)
	if err != nil {
		return nil, err
	}
	defer func() { added.End(err != nil && len(loaded) == 0) }()
	var copied int64 // what the blobs copied take: bounded as an image is
	fetch := func(d ocispec.Descriptor) error {
		if d.Digest.Validate() != nil || d.Digest.Algorithm() != digest.SHA256 {
			return fmt.Errorf("descriptor digest %q: berth reads sha256 digests", d.Digest)
		}
		if s.HasBlob(d.Digest) {
			return s.CheckBlob(d, "the store")
		}
		if d.Size < 0 || d.Size > s.Bound()-copied {
			return fmt.Errorf("blob %s: the layout's blobs add up to more than --max-image-size %s: refused", d.Digest, store.FormatSize(s.Bound()))
		}
		copied += d.Size
		f, err := tree.OpenRegular(root, blobName(d.Digest))
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("blob %s (%s) is not in %s", d.Digest, d.MediaType, dir)
		}
		if err != nil {
			return fmt.Errorf("in %s: %w", dir, err)
		}
		defer f.Close()
		// One byte more than the descriptor says shows a blob too long.
		in := &lastErr{r: store.ReaderUntil(ctx, io.LimitReader(f, d.Size+1))}
		if _, err := added.Put(in, d.Digest, d.MediaType); err != nil {
			if in.err != nil && in.err != io.EOF {
				err = in.err
			}
			return fmt.Errorf("%s/%s: %w", dir, blobName(d.Digest), err)
		}
		return s.CheckBlob(d, dir)
	}
	plans, err := ociPlans(s, idx, fetch)
	if err != nil {
		return nil, err
	}
	if len(plans) == 0 {
		return nil, fmt.Errorf("%s lists no image", dir)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return tagLoaded(s, plans)
}

func readSmall(root *os.Root, name string) ([]byte, error) {
	f, err := tree.OpenRegular(root, name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, store.MaxMetadata+1))
	if err != nil {
		return nil, err
	}
	if len(b) > store.MaxMetadata {
		return nil, fmt.Errorf("%s is over %d bytes: not an image layout", name, store.MaxMetadata)
	}
	return b, nil
}
