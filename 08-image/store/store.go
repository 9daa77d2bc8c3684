//go:build linux

// Package store keeps container images as Docker and containerd do: every
// manifest, config and layer tarball is a blob named by the sha256 of its
// bytes, and a name such as docker.io/library/busybox:latest is only a
// pointer to a manifest's digest. The store is an OCI image layout (so
// skopeo, umoci and oras can read it); an image's layers are unpacked once
// into stage 07's layer store, keyed by their uncompressed digest (the
// "diff id"), and shared by every container and image that uses them.
// Everything that enters the store is checked first: a blob against its
// digest, a layer read as a tar to its end against its diff id, every
// image against one bound on what its files unpack to. Chapter:
// docs/08-image.md, "The store".
package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth/07-unionfs/layer"
	"berth/internal/lockfile"
)

// The image store lives under the data root:
//
//	<data-root>/images/                    an OCI image layout
//	  oci-layout                           {"imageLayoutVersion": "1.0.0"}
//	  index.json                           one descriptor per name, annotated with it
//	  index.lock                           flock'd while index.json changes
//	  blobs/sha256/<hex>                   manifests, configs, layer tarballs
//	  ingest/                              blobs being written (renamed when verified)
//	  diffids/<blob hex>                   the diff id a layer blob was checked to hold
//	<data-root>/layers/sha256/<diff id>/   stage 07's store: a layer unpacked

// RefAnnotation names an image in index.json, as containerd's
// "ctr images export" does: the OCI annotation holds the full reference.
const RefAnnotation = ocispec.AnnotationRefName

// Store is the image store of one data root.
type Store struct {
	Root   string      // <data-root>/images
	Layers layer.Store // where layers are unpacked
	// Rootless: layers are unpacked without root (stage 05): owners the user
	// may not give are left out, opaque directories use user.* xattrs.
	Rootless bool
	// MaxImageSize bounds what an image's layers unpack to, their files
	// summed (bound.go); 0: DefaultMaxImageSize.
	MaxImageSize int64
}

// NewStore returns the store under dataRoot.
func NewStore(dataRoot string) *Store {
	return &Store{
		Root:     filepath.Join(dataRoot, "images"),
		Layers:   layer.NewStore(dataRoot),
		Rootless: os.Geteuid() != 0,
	}
}

// Init creates the layout if it is missing.
func (s *Store) Init() error {
	for _, d := range []string{s.Root, filepath.Join(s.Root, "blobs", "sha256"), filepath.Join(s.Root, "ingest"), filepath.Join(s.Root, "diffids")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create image store %s: %w", d, err)
		}
	}
	layout := filepath.Join(s.Root, ocispec.ImageLayoutFile)
	if _, err := os.Stat(layout); errors.Is(err, os.ErrNotExist) {
		b, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
		if err := WriteFileAtomic(layout, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// BlobPath is where a blob lives, present or not.
func (s *Store) BlobPath(d digest.Digest) string {
	return filepath.Join(s.Root, "blobs", d.Algorithm().String(), d.Encoded())
}

// HasBlob reports whether the store holds a blob.
func (s *Store) HasBlob(d digest.Digest) bool {
	if d.Validate() != nil {
		return false
	}
	_, err := os.Stat(s.BlobPath(d))
	return err == nil
}

// OpenBlob opens a blob for reading.
func (s *Store) OpenBlob(d digest.Digest) (*os.File, error) {
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("blob %q: %w", d, err)
	}
	f, err := os.Open(s.BlobPath(d))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("blob %s is not in the store %s", d, s.Root)
	}
	return f, err
}

// ReadBlob reads a small blob (a manifest, a config) whole.
func (s *Store) ReadBlob(d digest.Digest) ([]byte, error) {
	f, err := s.OpenBlob(d)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxMetadata+1))
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", d, err)
	}
	if len(b) > MaxMetadata {
		return nil, fmt.Errorf("blob %s is over %d bytes: not a manifest or config", d, MaxMetadata)
	}
	return b, nil
}

// MaxMetadata bounds a manifest or config read into memory.
const MaxMetadata = 8 << 20

// PutBlob writes r into the store and returns its descriptor. When want is
// not empty the content must hash to it, or nothing is stored: a registry
// or an archive names its blobs, and what it sends must be what it named.
func (s *Store) PutBlob(r io.Reader, want digest.Digest, mediaType string) (ocispec.Descriptor, error) {
	if want != "" {
		if err := want.Validate(); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("blob digest %q: %w", want, err)
		}
		if want.Algorithm() != digest.SHA256 {
			return ocispec.Descriptor{}, fmt.Errorf("blob %s: only sha256 digests are supported", want)
		}
	}
	if err := s.Init(); err != nil {
		return ocispec.Descriptor{}, err
	}
	tmp, err := os.CreateTemp(filepath.Join(s.Root, "ingest"), "blob-")
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("ingest: %w", err)
	}
	defer os.Remove(tmp.Name()) // gone after the rename, or on any error
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), r)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("ingest %s: %w", tmp.Name(), err)
	}
	got := digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil))
	if want != "" && got != want {
		return ocispec.Descriptor{}, fmt.Errorf("blob content hashes to %s, not %s as it was named: refused", got, want)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return ocispec.Descriptor{}, err
	}
	if err := os.Rename(tmp.Name(), s.BlobPath(got)); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("store blob %s: %w", got, err)
	}
	return ocispec.Descriptor{MediaType: mediaType, Digest: got, Size: n}, nil
}

// PutJSON stores v as JSON and returns its descriptor.
func (s *Store) PutJSON(v any, mediaType string) (ocispec.Descriptor, []byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	desc, err := s.PutBlob(bytes.NewReader(b), "", mediaType)
	return desc, b, err
}

// lock takes the store's lock for a change of index.json (or a sweep of
// blobs), so that two runs that pull or tag at once do not lose an entry.
func (s *Store) lock() (unlock func(), err error) {
	if err := s.Init(); err != nil {
		return nil, err
	}
	// Held for a read and a write of index.json: a wait of milliseconds.
	l, err := lockfile.Acquire(context.Background(), filepath.Join(s.Root, "index.lock"), lockfile.Exclusive)
	if err != nil {
		return nil, err
	}
	return l.Unlock, nil
}

// readIndex reads index.json; a store without one has no images.
func (s *Store) readIndex() (*ocispec.Index, error) {
	p := filepath.Join(s.Root, ocispec.ImageIndexFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return &ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}, nil
	}
	if err != nil {
		return nil, err
	}
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("decode %s: %w", p, err)
	}
	return &idx, nil
}

func (s *Store) writeIndex(idx *ocispec.Index) error {
	if idx.Manifests == nil {
		idx.Manifests = []ocispec.Descriptor{}
	}
	b, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(filepath.Join(s.Root, ocispec.ImageIndexFile), b, 0o644)
}

// WriteFileAtomic writes a file that readers see whole or not at all.
func WriteFileAtomic(p string, b []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", p, err)
	}
	// On disk before the rename: after a power cut, index.json is the old
	// one or the new one, never an empty file.
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", p, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

// ReadConfig reads an image config blob.
func (s *Store) ReadConfig(d digest.Digest) (ocispec.Image, error) {
	var cfg ocispec.Image
	b, err := s.ReadBlob(d)
	if err != nil {
		return cfg, err
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return cfg, fmt.Errorf("decode config %s: %w", d, err)
	}
	return cfg, nil
}

// CheckBlob: the blob is in the store and has the size its descriptor
// says (its content matches its digest: the store checks that on entry).
func (s *Store) CheckBlob(d ocispec.Descriptor, from string) error {
	if d.Digest.Validate() != nil || d.Digest.Algorithm() != digest.SHA256 {
		return fmt.Errorf("descriptor digest %q: berth reads sha256 digests", d.Digest)
	}
	st, err := os.Stat(s.BlobPath(d.Digest))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob %s (%s) is not in %s", d.Digest, d.MediaType, from)
	}
	if err != nil {
		return err
	}
	if st.Size() != d.Size {
		return fmt.Errorf("blob %s is %d bytes, but its descriptor says %d: refused", d.Digest, st.Size(), d.Size)
	}
	return nil
}
