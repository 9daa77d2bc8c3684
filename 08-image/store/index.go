//go:build linux

package store

import (
	"fmt"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Tag points name at a manifest already in the store (the name moves if
// it pointed elsewhere, as docker tag does).
//
// A digest reference (name@sha256:…) cannot be given as a name: it names
// content, and only a pull that checked the content sets one (TagPulled).
func (s *Store) Tag(name string, manifest ocispec.Descriptor) error {
	full, err := NormalizeName(name)
	if err != nil {
		return err
	}
	if r, err := reference.ParseNormalizedNamed(full); err == nil {
		if _, ok := r.(reference.Digested); ok {
			return fmt.Errorf("%s names content by its digest: it cannot be given to an image as a name (use NAME:TAG)", FamiliarName(full))
		}
	}
	return s.tag(full, manifest)
}

// TagPulled sets a name that a pull resolved and checked, digest
// references included (name@sha256:<index digest> for a multi-platform
// image points at the platform's manifest).
func (s *Store) TagPulled(name string, manifest ocispec.Descriptor) error {
	full, err := NormalizeName(name)
	if err != nil {
		return err
	}
	return s.tag(full, manifest)
}

func (s *Store) tag(full string, manifest ocispec.Descriptor) error {
	if !s.HasBlob(manifest.Digest) {
		return fmt.Errorf("tag %s: manifest %s is not in the store", full, manifest.Digest)
	}
	return s.updateIndex(func(idx *ocispec.Index) bool {
		idx.Manifests = retag(idx.Manifests, full, manifest)
		return true
	})
}

// retag points name at manifest among the entries.
func retag(entries []ocispec.Descriptor, full string, manifest ocispec.Descriptor) []ocispec.Descriptor {
	desc := ocispec.Descriptor{
		MediaType:   manifest.MediaType,
		Digest:      manifest.Digest,
		Size:        manifest.Size,
		Annotations: map[string]string{RefAnnotation: full},
	}
	if desc.MediaType == "" {
		desc.MediaType = ocispec.MediaTypeImageManifest
	}
	// The image the name leaves keeps an entry without a name (docker's
	// dangling <none>) unless another entry still reaches it.
	var kept, left []ocispec.Descriptor
	for _, d := range entries {
		switch {
		case d.Annotations[RefAnnotation] == full:
			if d.Digest != desc.Digest {
				left = append(left, ocispec.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size})
			}
		case d.Annotations[RefAnnotation] == "" && d.Digest == desc.Digest:
			// an unnamed entry for the same image: the name replaces it
		default:
			kept = append(kept, d)
		}
	}
	kept = append(kept, desc)
	for _, l := range left {
		if !reaches(kept, l.Digest) {
			kept = append(kept, l)
		}
	}
	return kept
}

// updateIndex changes index.json under the store's lock: read, change
// (change says whether it changed anything), write whole.
func (s *Store) updateIndex(change func(*ocispec.Index) bool) error {
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	idx, err := s.readIndex()
	if err != nil {
		return err
	}
	if !change(idx) {
		return nil
	}
	return s.writeIndex(idx)
}

func reaches(ds []ocispec.Descriptor, d digest.Digest) bool {
	for _, x := range ds {
		if x.Digest == d {
			return true
		}
	}
	return false
}

// AddUnnamed keeps an image that has no name yet (docker's <none>).
func (s *Store) AddUnnamed(manifest ocispec.Descriptor) error {
	return s.updateIndex(func(idx *ocispec.Index) bool {
		if reaches(idx.Manifests, manifest.Digest) {
			return false
		}
		idx.Manifests = append(idx.Manifests, ocispec.Descriptor{MediaType: manifest.MediaType, Digest: manifest.Digest, Size: manifest.Size})
		return true
	})
}

// Remove removes an image from the index: every entry of its manifest
// when named by id, or that one name (and the image with it, when it was
// its last name) otherwise. Blobs and unpacked layers stay until GC.
func (s *Store) Remove(img *Image, byID bool) error {
	return s.updateIndex(func(idx *ocispec.Index) bool {
		var kept []ocispec.Descriptor
		for _, d := range idx.Manifests {
			if d.Digest == img.Descriptor.Digest && (byID || d.Annotations[RefAnnotation] == img.Name) {
				continue
			}
			kept = append(kept, d)
		}
		idx.Manifests = kept
		return true
	})
}
