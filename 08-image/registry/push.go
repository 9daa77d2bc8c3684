//go:build linux

package registry

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth/08-image/store"
)

// Push sends an image of the store to the registry its name names: each
// blob the repository lacks (layers, then the config), then the manifest,
// byte for byte as stored, so that its digest is the same there. It
// returns the manifest's digest.
func Push(ctx context.Context, s *store.Store, c *Client, name string, out io.Writer) (digest.Digest, error) {
	if out == nil {
		out = io.Discard
	}
	full, err := store.NormalizeName(name)
	if err != nil {
		return "", err
	}
	if r, err := reference.ParseNormalizedNamed(full); err == nil {
		if _, ok := r.(reference.Digested); ok {
			return "", fmt.Errorf("push %s: a name with a digest cannot be pushed: tag the image (tag IMAGE NAME:TAG) and push that", name)
		}
	}
	// An rmi at the same time must not sweep the blobs being sent.
	release, err := s.Hold(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	img, err := s.ByName(full)
	if err != nil {
		return "", err
	}
	if img == nil {
		return "", fmt.Errorf("an image does not exist locally with the name %s (see 'images'; 'tag IMAGE %s' names one)", store.FamiliarName(full), store.FamiliarName(full))
	}
	host, path, tag, err := store.SplitName(full)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(out, "The push refers to repository [%s/%s]\n", host, path)
	repo := c.Repository(host, path)
	// Top layer first, as docker prints them.
	for i := len(img.Manifest.Layers) - 1; i >= 0; i-- {
		l := img.Manifest.Layers[i]
		pushed, err := pushBlob(ctx, s, repo, l)
		if err != nil {
			return "", fmt.Errorf("push %s: %w", store.FamiliarName(full), err)
		}
		status := "Layer already exists"
		if pushed {
			status = "Pushed"
		}
		fmt.Fprintf(out, "%s: %s\n", store.ShortID(l.Digest), status)
	}
	if _, err := pushBlob(ctx, s, repo, img.Manifest.Config); err != nil {
		return "", fmt.Errorf("push %s: config: %w", store.FamiliarName(full), err)
	}
	b, err := s.ReadBlob(img.Descriptor.Digest)
	if err != nil {
		return "", err
	}
	mt := img.Descriptor.MediaType
	if mt == "" {
		mt = ocispec.MediaTypeImageManifest
	}
	d, err := repo.PutManifest(ctx, tag, mt, b)
	if err != nil {
		return "", fmt.Errorf("push %s: %w", store.FamiliarName(full), err)
	}
	fmt.Fprintf(out, "%s: digest: %s size: %d\n", tag, d, len(b))
	return d, nil
}

// pushBlob uploads a blob unless the repository has it already.
func pushBlob(ctx context.Context, s *store.Store, repo *Repo, desc ocispec.Descriptor) (bool, error) {
	st, err := os.Stat(s.BlobPath(desc.Digest))
	if err != nil {
		return false, fmt.Errorf("blob %s is not in the store: %w", desc.Digest, err)
	}
	if st.Size() != desc.Size {
		return false, fmt.Errorf("blob %s is %d bytes in the store, %d in its descriptor", desc.Digest, st.Size(), desc.Size)
	}
	has, err := repo.HasBlob(ctx, desc.Digest)
	if err != nil || has {
		return false, err
	}
	open := func() (io.ReadCloser, error) { return s.OpenBlob(desc.Digest) }
	return true, repo.PushBlob(ctx, desc, open)
}
