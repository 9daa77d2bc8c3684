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

	"berth/08-image/progress"
	"berth/08-image/store"
)

// Push sends an image of the store to the registry its name names: each
// blob the repository lacks (layers, then the config), then the manifest,
// byte for byte as stored, so that its digest is the same there. It
// returns the manifest's digest.
func Push(ctx context.Context, s *store.Store, c *Client, name string, w io.Writer) (digest.Digest, error) {
	// On a terminal, a line per layer with its bar; on a pipe, the lines
	// of Printf and Done alone.
	out := progress.New(w)
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
	out.Printf("The push refers to repository [%s/%s]", host, path)
	repo := c.Repository(host, path)
	// Top layer first, as docker prints them.
	for i := len(img.Manifest.Layers) - 1; i >= 0; i-- {
		out.Status(store.ShortID(img.Manifest.Layers[i].Digest), "Preparing")
	}
	for i := len(img.Manifest.Layers) - 1; i >= 0; i-- {
		l := img.Manifest.Layers[i]
		id := store.ShortID(l.Digest)
		show := func(r io.Reader) io.Reader { return out.Reader(id, "Pushing", r, l.Size) }
		pushed, err := pushBlob(ctx, s, repo, l, show)
		if err != nil {
			return "", fmt.Errorf("push %s: %w", store.FamiliarName(full), err)
		}
		status := "Layer already exists"
		if pushed {
			status = "Pushed"
		}
		out.Done(id, status)
	}
	if _, err := pushBlob(ctx, s, repo, img.Manifest.Config, nil); err != nil {
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
	out.Printf("%s: digest: %s size: %d", tag, d, len(b))
	return d, nil
}

// pushBlob uploads a blob unless the repository has it already.
func pushBlob(ctx context.Context, s *store.Store, repo *Repo, desc ocispec.Descriptor, show func(io.Reader) io.Reader) (bool, error) {
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
	open := func() (io.ReadCloser, error) {
		f, err := s.OpenBlob(desc.Digest)
		if err != nil {
			return nil, err
		}
		if show == nil {
			return f, nil
		}
		return struct {
			io.Reader
			io.Closer
		}{show(f), f}, nil
	}
	return true, repo.PushBlob(ctx, desc, open)
}
