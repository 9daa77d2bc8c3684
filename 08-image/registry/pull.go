//go:build linux

package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth/08-image/progress"
	"berth/08-image/store"
)

// PullOptions: which platform to take from a multi-platform image, and
// where progress lines go.
type PullOptions struct {
	Platform ocispec.Platform // zero: HostPlatform
	Out      io.Writer
}

// Pulled says what a pull did.
type Pulled struct {
	Image *store.Image
	// Digest is what the name resolved to at the registry: the manifest's,
	// or the index's for a multi-platform image.
	Digest   digest.Digest
	UpToDate bool
}

// Pull fetches an image by name (a tag or a digest) from its registry:
// the manifest (from an index, the one for the platform), the config,
// then each layer the store lacks, each checked against the digest and
// size that name it, and read to its end as a tar whose content is the
// config's diff id and whose files fit in the image's bound; then the
// layers are unpacked. The name is set only when everything arrived
// whole, as docker pull prints it; a pull that fails takes back the
// blobs it added.
func Pull(ctx context.Context, s *store.Store, c *Client, name string, o PullOptions) (_ *Pulled, err error) {
	// On a terminal, a line per layer with its bar; on a pipe, the
	// lines below (progress.Output.Done and Printf) alone.
	out := progress.New(o.Out)
	want := o.Platform
	if want.OS == "" {
		want = HostPlatform()
	}
	full, err := store.NormalizeName(name)
	if err != nil {
		return nil, err
	}
	host, path, ref, err := store.SplitName(full)
	if err != nil {
		return nil, err
	}
	fam := store.FamiliarName(full)
	out.Printf("%s: Pulling from %s", ref, path)
	repo := c.Repository(host, path)

	added, err := store.Begin(ctx, s)
	if err != nil {
		return nil, err
	}
	defer func() { added.End(err != nil) }()

	top, body, err := repo.GetManifest(ctx, ref)
	if err != nil {
		return nil, pullError(fam, err)
	}
	mdesc, mbody := top, body
	if isIndex(top.MediaType) {
		var idx ocispec.Index
		if err := json.Unmarshal(body, &idx); err != nil {
			return nil, fmt.Errorf("pull %s: decode index %s: %w", fam, top.Digest, err)
		}
		pick, err := PickManifest(idx, want)
		if err != nil {
			return nil, fmt.Errorf("pull %s: %w", fam, err)
		}
		if mdesc, mbody, err = fetchManifest(ctx, s, repo, pick); err != nil {
			return nil, fmt.Errorf("pull %s: %w", fam, err)
		}
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(mbody, &m); err != nil {
		return nil, fmt.Errorf("pull %s: decode manifest %s: %w", fam, mdesc.Digest, err)
	}
	if err := checkImageManifest(m); err != nil {
		return nil, fmt.Errorf("pull %s: manifest %s: %w", fam, mdesc.Digest, err)
	}
	// What the layers take to download is in the manifest: bounded before
	// the first byte, as what they unpack to is bounded below.
	var download int64
	for _, l := range m.Layers {
		if l.Size < 0 || l.Size > s.Bound()-download {
			return nil, fmt.Errorf("pull %s: manifest %s: its layers take more than --max-image-size %s to download: refused", fam, mdesc.Digest, store.FormatSize(s.Bound()))
		}
		download += l.Size
	}

	// Everything there already: docker prints no layer lines then.
	have := s.HasBlob(mdesc.Digest) && s.HasBlob(m.Config.Digest)
	for _, l := range m.Layers {
		have = have && s.HasBlob(l.Digest)
	}

	if !have {
		for _, l := range m.Layers {
			if s.HasBlob(l.Digest) {
				out.Status(store.ShortID(l.Digest), "Already exists")
			} else {
				out.Status(store.ShortID(l.Digest), "Pulling fs layer")
			}
		}
	}
	if err := fetchBlob(ctx, s, repo, m.Config, added, nil); err != nil {
		return nil, fmt.Errorf("pull %s: config: %w", fam, err)
	}
	cb, err := s.ReadBlob(m.Config.Digest)
	if err != nil {
		return nil, err
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(cb, &cfg); err != nil {
		return nil, fmt.Errorf("pull %s: decode config %s: %w", fam, m.Config.Digest, err)
	}
	if cfg.OS != "" && cfg.OS != "linux" {
		return nil, fmt.Errorf("pull %s: the image is for %s/%s: berth runs linux images", fam, cfg.OS, cfg.Architecture)
	}
	if !isIndex(top.MediaType) && cfg.Architecture != "" && normArch(cfg.Architecture) != normArch(want.Architecture) {
		out.Printf("WARNING: the image's platform (%s/%s) does not match this host's (%s)", cfg.OS, cfg.Architecture, PlatformString(want))
	}
	if err := store.CheckRootFS(cfg, len(m.Layers)); err != nil {
		return nil, fmt.Errorf("pull %s: config %s: %w", fam, m.Config.Digest, err)
	}

	// Each layer is read whole before any is unpacked: its content must be
	// the config's diff id, a tar unpack will take, and its files within
	// what the layers below left of the bound. A refused image leaves no
	// half of itself unpacked.
	b := store.NewBudget(s.Bound())
	for i, l := range m.Layers {
		had := s.HasBlob(l.Digest)
		id := store.ShortID(l.Digest)
		show := func(r io.Reader) io.Reader { return out.Reader(id, "Downloading", r, l.Size) }
		if err := fetchBlob(ctx, s, repo, l, added, show); err != nil {
			return nil, fmt.Errorf("pull %s: layer %s: %w", fam, id, err)
		}
		if !had && !have {
			out.Status(id, "Verifying Checksum")
		}
		if err := s.CheckDiffID(l, cfg.RootFS.DiffIDs[i], b); err != nil {
			return nil, fmt.Errorf("pull %s: layer %d of %d: %w", fam, i+1, len(m.Layers), err)
		}
		// docker's words for a layer fetched: checked, then unpacked
		// (below, all at once); one it had said "Already exists" above.
		if !have && !had {
			out.Status(id, "Download complete")
			out.Done(id, "Pull complete")
		}
	}
	if !s.HasBlob(mdesc.Digest) {
		if _, err := added.Put(bytes.NewReader(mbody), mdesc.Digest, mdesc.MediaType); err != nil {
			return nil, fmt.Errorf("pull %s: %w", fam, err)
		}
	}
	img := &store.Image{Name: full, Descriptor: mdesc, Manifest: m, Config: cfg}
	if _, err := s.Unpack(ctx, img); err != nil {
		return nil, fmt.Errorf("pull %s: %w", fam, err)
	}
	prior, err := s.Named(full)
	if err != nil {
		return nil, err
	}
	if err := s.TagPulled(full, mdesc); err != nil {
		return nil, err
	}
	res := &Pulled{
		Image:    img,
		Digest:   top.Digest,
		UpToDate: have && prior == mdesc.Digest,
	}
	out.Printf("Digest: %s", top.Digest)
	if res.UpToDate {
		out.Printf("Status: Image is up to date for %s", fam)
	} else {
		out.Printf("Status: Downloaded newer image for %s", fam)
	}
	// The full name after these is the docker CLI's line, not the
	// daemon's: pull prints it (cmd_pull.go), a build's FROM does not.
	return res, nil
}

// pullError says in one line why a manifest could not be had.
func pullError(fam string, err error) error {
	var re *Error
	if errors.As(err, &re) {
		code := ""
		if len(re.Errors) > 0 {
			code = re.Errors[0].Code
		}
		switch {
		case re.Status == http.StatusNotFound && code == "NAME_UNKNOWN":
			return fmt.Errorf("repository for %s not found: %v", fam, err)
		case re.Status == http.StatusNotFound:
			return fmt.Errorf("manifest for %s not found: %v", fam, err)
		case re.Status == http.StatusUnauthorized || re.Status == http.StatusForbidden:
			return fmt.Errorf("pull access denied for %s: the repository does not exist or needs credentials (--creds): %v", fam, err)
		}
	}
	return fmt.Errorf("pull %s: %w", fam, err)
}

// fetchManifest gets the manifest an index chose: from the store if it is
// there (it was checked when stored), else from the registry, checked
// against the index's digest and size.
func fetchManifest(ctx context.Context, s *store.Store, repo *Repo, pick ocispec.Descriptor) (ocispec.Descriptor, []byte, error) {
	if isIndex(pick.MediaType) {
		return ocispec.Descriptor{}, nil, fmt.Errorf("index entry %s is an index itself: nested indexes are not supported", pick.Digest)
	}
	if err := pick.Digest.Validate(); err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("index entry %q: %w", pick.Digest, err)
	}
	if s.HasBlob(pick.Digest) {
		b, err := s.ReadBlob(pick.Digest)
		if err != nil {
			return ocispec.Descriptor{}, nil, err
		}
		mt, err := manifestMediaType(b, pick.MediaType)
		if err != nil {
			return ocispec.Descriptor{}, nil, fmt.Errorf("manifest %s: %w", pick.Digest, err)
		}
		return ocispec.Descriptor{MediaType: mt, Digest: pick.Digest, Size: int64(len(b))}, b, nil
	}
	desc, b, err := repo.GetManifest(ctx, pick.Digest.String())
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	if desc.Size != pick.Size {
		return ocispec.Descriptor{}, nil, fmt.Errorf("manifest %s is %d bytes, the index says %d: refused", pick.Digest, desc.Size, pick.Size)
	}
	return desc, b, nil
}

// fetchBlob stores a blob the store lacks, as the registry sends it,
// refused unless it has the descriptor's size and digest.
func fetchBlob(ctx context.Context, s *store.Store, repo *Repo, desc ocispec.Descriptor, added *store.Ingest, show func(io.Reader) io.Reader) error {
	if err := desc.Digest.Validate(); err != nil {
		return fmt.Errorf("digest %q: %w", desc.Digest, err)
	}
	if desc.Size < 0 {
		return fmt.Errorf("blob %s: negative size %d", desc.Digest, desc.Size)
	}
	if s.HasBlob(desc.Digest) {
		st, err := os.Stat(s.BlobPath(desc.Digest))
		if err != nil {
			return err
		}
		if st.Size() != desc.Size {
			return fmt.Errorf("blob %s is %d bytes, the manifest says %d: refused", desc.Digest, st.Size(), desc.Size)
		}
		return nil
	}
	rc, err := repo.GetBlob(ctx, desc)
	if err != nil {
		return err
	}
	defer rc.Close()
	var r io.Reader = rc
	if show != nil {
		r = show(rc)
	}
	_, err = added.Put(r, desc.Digest, desc.MediaType)
	return err
}

// checkImageManifest refuses, before anything is downloaded, what berth
// could not run: an artifact that is not a container image, a layer
// format it cannot unpack (Windows' foreign layers).
func checkImageManifest(m ocispec.Manifest) error {
	if m.SchemaVersion != 2 {
		return fmt.Errorf("schemaVersion %d is not 2", m.SchemaVersion)
	}
	switch m.Config.MediaType {
	case ocispec.MediaTypeImageConfig, store.MediaTypeDockerConfig:
	default:
		return fmt.Errorf("config media type %q: not a container image (an artifact?)", m.Config.MediaType)
	}
	if len(m.Layers) > store.MaxLayers {
		return fmt.Errorf("%d layers, more than %d: refused", len(m.Layers), store.MaxLayers)
	}
	if m.Config.Size > store.MaxMetadata {
		return fmt.Errorf("config is %d bytes, over the limit of %d", m.Config.Size, store.MaxMetadata)
	}
	for _, l := range m.Layers {
		if err := store.CheckLayerType(l.MediaType); err != nil {
			return fmt.Errorf("layer %s: %w", store.ShortID(l.Digest), err)
		}
		if l.MediaType == "" {
			return fmt.Errorf("layer %s has no media type", store.ShortID(l.Digest))
		}
	}
	return nil
}
