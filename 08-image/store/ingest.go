//go:build linux

package store

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth/07-unionfs/tree"
	"berth/internal/lockfile"
)

// An Ingest is the blobs one load (or import, or pull) adds to the store:
// those it stored that the store did not have before. If the load fails
// they are removed, so a refused or interrupted load leaves the store as
// it found it (see Remove for when they are not).
type Ingest struct {
	s       *Store
	added   []digest.Digest
	had     map[string]bool // the store's blobs before the first put of unknown digest
	release func()          // the hold Begin took
}

// NewIngest is what one writer adds to s; the writer holds s itself.
func NewIngest(s *Store) *Ingest { return &Ingest{s: s} }

// Begin starts a writer's additions: it holds the store (Hold: no GC
// sweeps what is not named yet) until End. It waits while a GC runs, or
// until ctx ends.
func Begin(ctx context.Context, s *Store) (*Ingest, error) {
	release, err := s.Hold(ctx)
	if err != nil {
		return nil, err
	}
	return &Ingest{s: s, release: release}, nil
}

// End lets the store go and, when the writer failed, takes back what it
// added (Remove).
func (n *Ingest) End(failed bool) {
	if n.release != nil {
		n.release()
		n.release = nil
	}
	if failed {
		n.Remove()
	}
}

// Put stores a blob as PutBlob does and remembers it if it is new.
func (n *Ingest) Put(r io.Reader, want digest.Digest, mediaType string) (ocispec.Descriptor, error) {
	existed := false
	if want != "" {
		existed = n.s.HasBlob(want)
	} else if err := n.Snapshot(); err != nil {
		return ocispec.Descriptor{}, err
	}
	desc, err := n.s.PutBlob(r, want, mediaType)
	if err != nil {
		return desc, err
	}
	if !existed {
		n.Note(desc.Digest)
	}
	return desc, nil
}

// PutJSON stores v as JSON, as PutJSON does, and remembers it if it is new.
func (n *Ingest) PutJSON(v any, mediaType string) (ocispec.Descriptor, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return n.Put(bytes.NewReader(b), digest.FromBytes(b), mediaType)
}

// snapshot lists the store's blobs once, before a blob whose digest is
// known only once it is stored (a layer.tar, a layer import gzips).
func (n *Ingest) Snapshot() error {
	if n.had != nil {
		return nil
	}
	names, err := tree.ReadNames(filepath.Join(n.s.Root, "blobs", "sha256"))
	if err != nil {
		return err
	}
	n.had = make(map[string]bool, len(names))
	for _, name := range names {
		n.had[name] = true
	}
	return nil
}

// note remembers d as added unless the snapshot had it.
func (n *Ingest) Note(d digest.Digest) {
	if n.had[d.Encoded()] || containsDigest(n.added, d) {
		return
	}
	n.added = append(n.added, d)
}

// remove takes back the blobs added, once the writer has let go of its
// shared hold on gc.lock: only if it can take the lock exclusively at
// once, so that no other writer is at work (one may be storing the same
// blob, for an image it is about to name), and only the blobs that no
// name reaches (another writer may have named an image with the same blob
// meanwhile). Otherwise they stay, unnamed, for the next sweep (rmi):
// a blob left behind is garbage, a blob taken from under a named image
// would be damage.
func (n *Ingest) Remove() {
	if len(n.added) == 0 {
		return
	}
	lock, err := lockfile.TryAcquire(filepath.Join(n.s.Root, "gc.lock"), lockfile.Exclusive)
	if err != nil {
		return
	}
	defer lock.Unlock()
	named, err := n.s.reachable()
	if err != nil {
		return
	}
	for _, d := range n.added {
		if !named[d] {
			_ = os.Remove(n.s.BlobPath(d))
			_ = os.Remove(n.s.diffIDFile(d)) // the record of its check, if any
		}
	}
	n.added = nil
}

func containsDigest(list []digest.Digest, d digest.Digest) bool {
	for _, x := range list {
		if x == d {
			return true
		}
	}
	return false
}
