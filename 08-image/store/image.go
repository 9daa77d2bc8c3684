//go:build linux

package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Docker's media types: a registry or a docker save may use them instead
// of the OCI ones; the JSON is the same shape.
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerLayer        = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	MediaTypeDockerLayerTar     = "application/vnd.docker.image.rootfs.diff.tar"
)

// Image is one image of the store: a manifest, its config, and the name
// that points at it (empty for an image reached by its id alone).
type Image struct {
	Name       string             // normalized: docker.io/library/busybox:latest
	Descriptor ocispec.Descriptor // the manifest's
	Manifest   ocispec.Manifest
	Config     ocispec.Image
	// Docker is what a Docker image config has beside the OCI fields: the
	// HEALTHCHECK (config.Healthcheck), ONBUILD, SHELL.
	Docker dockerspec.DockerOCIImageConfigExt
}

// ID is the image's id, the digest of its config, as docker images shows.
func (i *Image) ID() digest.Digest { return i.Manifest.Config.Digest }

// ShortID is the first 12 hex digits of the id.
func (i *Image) ShortID() string { return ShortID(i.ID()) }

// ShortID shortens a digest to 12 hex digits.
func ShortID(d digest.Digest) string {
	e := d.Encoded()
	if len(e) > 12 {
		e = e[:12]
	}
	return e
}

// Size is what the image's layers take as stored (compressed where they
// are), plus its config.
func (i *Image) Size() int64 {
	n := i.Manifest.Config.Size
	for _, l := range i.Manifest.Layers {
		n += l.Size
	}
	return n
}

// FamiliarName is the name as a Docker user writes it: busybox:latest.
func (i *Image) FamiliarName() string { return FamiliarName(i.Name) }

// FamiliarName shortens a normalized name as docker does (drops
// docker.io/library/); an empty name prints as <none>.
func FamiliarName(name string) string {
	if name == "" {
		return "<none>"
	}
	r, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return name
	}
	return reference.FamiliarString(r)
}

// NormalizeName turns what a user typed into the full name the store
// keeps: "busybox" is docker.io/library/busybox:latest, as for docker.
func NormalizeName(s string) (string, error) {
	r, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return "", fmt.Errorf("invalid image name %q: %w", s, err)
	}
	return reference.TagNameOnly(r).String(), nil
}

// SplitName splits a normalized name into registry host, repository path
// and tag or digest, as a registry client needs them.
func SplitName(name string) (host, repo, ref string, err error) {
	r, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return "", "", "", fmt.Errorf("invalid image name %q: %w", name, err)
	}
	r = reference.TagNameOnly(r)
	host, repo = reference.Domain(r), reference.Path(r)
	if d, ok := r.(reference.Digested); ok {
		return host, repo, d.Digest().String(), nil
	}
	return host, repo, r.(reference.Tagged).Tag(), nil
}

// load reads an image's manifest and config from their blobs.
func (s *Store) load(name string, desc ocispec.Descriptor) (*Image, error) {
	b, err := s.ReadBlob(desc.Digest)
	if err != nil {
		return nil, err
	}
	img := &Image{Name: name, Descriptor: desc}
	if err := json.Unmarshal(b, &img.Manifest); err != nil {
		return nil, fmt.Errorf("decode manifest %s: %w", desc.Digest, err)
	}
	if img.Manifest.Config.Digest == "" {
		return nil, fmt.Errorf("manifest %s has no config: not an image manifest", desc.Digest)
	}
	cb, err := s.ReadBlob(img.Manifest.Config.Digest)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(cb, &img.Config); err != nil {
		return nil, fmt.Errorf("decode config %s: %w", img.Manifest.Config.Digest, err)
	}
	var docker struct {
		Config dockerspec.DockerOCIImageConfigExt `json:"config"`
	}
	if err := json.Unmarshal(cb, &docker); err != nil {
		return nil, fmt.Errorf("decode config %s: %w", img.Manifest.Config.Digest, err)
	}
	img.Docker = docker.Config
	if err := CheckRootFS(img.Config, len(img.Manifest.Layers)); err != nil {
		return nil, fmt.Errorf("image %s: config %s: %w", img.ShortID(), img.Manifest.Config.Digest, err)
	}
	return img, nil
}

// MaxLayers bounds the layers of an image, as Docker's layer store does
// (125: "max depth exceeded"): a manifest of 4 MiB could list tens of
// thousands, each unpacked into up to a million entries, and overlay
// stacks 500 lowers at most.
const MaxLayers = 125

// CheckRootFS checks what a config says of the layers: rootfs.type
// "layers", the only type the image spec defines (a config that says
// anything else describes a root berth does not know how to make), one
// diff id per layer of the manifest, and not more than MaxLayers.
func CheckRootFS(cfg ocispec.Image, layers int) error {
	if cfg.RootFS.Type != "layers" {
		return fmt.Errorf("rootfs.type is %q, not \"layers\": refused", cfg.RootFS.Type)
	}
	if len(cfg.RootFS.DiffIDs) != layers {
		return fmt.Errorf("it lists %d diff ids for %d layers: refused", len(cfg.RootFS.DiffIDs), layers)
	}
	if layers > MaxLayers {
		return fmt.Errorf("%d layers, more than %d: refused", layers, MaxLayers)
	}
	return nil
}

// List returns every image, named or not, sorted by name. An entry whose
// manifest or config cannot be read is left out with a warning on
// stderr, so that one damaged image does not hide the others; rmi by its
// name or manifest digest still removes it.
func (s *Store) List() ([]*Image, error) {
	idx, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	var out []*Image
	for _, d := range idx.Manifests {
		img, err := s.load(d.Annotations[RefAnnotation], d)
		if err != nil {
			fmt.Fprintf(os.Stderr, "warning: image %s (manifest %s) is damaged, left out: %v\n",
				FamiliarName(d.Annotations[RefAnnotation]), d.Digest, err)
			continue
		}
		out = append(out, img)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out, nil
}

// ErrNotFound: no image has that name or id.
var ErrNotFound = errors.New("no such image")

// Get finds an image by name (busybox, busybox:1.36, a full name), by
// manifest digest (name@sha256:…), or, when no name matches, by id
// (sha256:…, or at least 4 hex digits of it, as docker accepts): a name
// wins over an id prefix, as with docker.
func (s *Store) Get(nameOrID string) (*Image, error) {
	img, _, err := s.Lookup(nameOrID)
	return img, err
}

// Lookup is Get, and says whether the argument named the image (true) or
// gave its id (false): rmi removes one name, or the image with all its
// names.
func (s *Store) Lookup(nameOrID string) (*Image, bool, error) {
	imgs, err := s.List()
	if err != nil {
		return nil, false, err
	}
	name, nameErr := NormalizeName(nameOrID)
	if nameErr == nil {
		if r, err := reference.ParseNormalizedNamed(name); err == nil {
			if d, ok := r.(reference.Digested); ok {
				// The name a pull by digest set, else any image whose
				// manifest has that digest.
				for _, img := range imgs {
					if img.Name == name {
						return img, true, nil
					}
				}
				for _, img := range imgs {
					if img.Descriptor.Digest == d.Digest() {
						return img, true, nil
					}
				}
			}
		}
		for _, img := range imgs {
			if img.Name == name {
				return img, true, nil
			}
		}
		// A damaged entry is still found by its name, for rmi.
		if d, ok, err := s.entry(name); err != nil {
			return nil, false, err
		} else if ok {
			return &Image{Name: name, Descriptor: d}, true, nil
		}
	}
	if id := strings.TrimPrefix(nameOrID, "sha256:"); IsHexPrefix(id) {
		var found *Image
		for _, img := range imgs {
			if strings.HasPrefix(img.ID().Encoded(), id) {
				if found != nil && found.ID() != img.ID() {
					return nil, false, fmt.Errorf("%q matches more than one image id: give more digits", nameOrID)
				}
				found = img
			}
		}
		if found != nil {
			return found, false, nil
		}
	}
	if nameErr != nil {
		return nil, false, nameErr
	}
	return nil, false, fmt.Errorf("%w: %s", ErrNotFound, nameOrID)
}

// entry is the index's descriptor for a name, readable or not.
func (s *Store) entry(name string) (ocispec.Descriptor, bool, error) {
	idx, err := s.readIndex()
	if err != nil {
		return ocispec.Descriptor{}, false, err
	}
	for _, d := range idx.Manifests {
		if d.Annotations[RefAnnotation] == name {
			return d, true, nil
		}
	}
	return ocispec.Descriptor{}, false, nil
}

func IsHexPrefix(s string) bool {
	if len(s) < 4 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// named is the manifest a name points at now, or "".
func (s *Store) Named(full string) (digest.Digest, error) {
	idx, err := s.readIndex()
	if err != nil {
		return "", err
	}
	for _, d := range idx.Manifests {
		if d.Annotations[RefAnnotation] == full {
			return d.Digest, nil
		}
	}
	return "", nil
}

// ByName finds the image a full name points at, or nil. Never by id, as
// Get would: "push cafe" pushes the image named cafe, not one whose id
// starts with those hex digits.
func (s *Store) ByName(full string) (*Image, error) {
	imgs, err := s.List()
	if err != nil {
		return nil, err
	}
	for _, img := range imgs {
		if img.Name == full {
			return img, nil
		}
	}
	return nil, nil
}
