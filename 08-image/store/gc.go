//go:build linux

package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth/07-unionfs/layer"
	"berth/07-unionfs/tree"
	"berth/internal/lockfile"
)

// Hold keeps GC away while new blobs are written and not yet named (a
// pull, a load, a build): a shared lock that GC takes exclusively. It
// waits while a GC runs, or until ctx ends.
func (s *Store) Hold(ctx context.Context) (release func(), err error) {
	l, err := s.gcLock(ctx, lockfile.Shared)
	if err != nil {
		return nil, err
	}
	return l.Unlock, nil
}

// gcLock takes gc.lock: shared by writers (Hold), exclusive for GC.
func (s *Store) gcLock(ctx context.Context, m lockfile.Mode) (*lockfile.Lock, error) {
	if err := s.Init(); err != nil {
		return nil, err
	}
	return lockfile.Acquire(ctx, filepath.Join(s.Root, "gc.lock"), m)
}

// GCResult says what GC removed.
type GCResult struct {
	Blobs  []digest.Digest
	Layers []digest.Digest // unpacked layers (diff ids)
}

// GC removes the blobs no named or unnamed image reaches, and the
// unpacked layers that no image lists and no container layer (stage 07's
// records) stands on: a mark and sweep, as containerd's garbage collector.
// It waits until no writer holds the store (Hold), or until ctx ends.
func (s *Store) GC(ctx context.Context) (GCResult, error) {
	var res GCResult
	lock, err := s.gcLock(ctx, lockfile.Exclusive)
	if err != nil {
		return res, err
	}
	defer lock.Unlock()
	idx, err := s.readIndex()
	if err != nil {
		return res, err
	}
	blobs := map[digest.Digest]bool{}
	diffIDs := map[string]bool{}
	for _, d := range idx.Manifests {
		blobs[d.Digest] = true
		img, err := s.load("", d)
		if err != nil {
			// A damaged image keeps what it still reaches; the rest of the
			// store is swept as usual.
			if b, rerr := s.ReadBlob(d.Digest); rerr == nil {
				var m ocispec.Manifest
				if json.Unmarshal(b, &m) == nil {
					blobs[m.Config.Digest] = true
					for _, l := range m.Layers {
						blobs[l.Digest] = true
					}
				}
			}
			continue
		}
		blobs[d.Digest], blobs[img.Manifest.Config.Digest] = true, true
		for _, l := range img.Manifest.Layers {
			blobs[l.Digest] = true
		}
		for _, id := range img.Config.RootFS.DiffIDs {
			diffIDs[id.Encoded()] = true
		}
	}
	dir := filepath.Join(s.Root, "blobs", "sha256")
	names, err := tree.ReadNames(dir)
	if err != nil {
		return res, err
	}
	for _, n := range names {
		d := digest.NewDigestFromEncoded(digest.SHA256, n)
		if d.Validate() != nil || blobs[d] {
			continue
		}
		if err := os.Remove(filepath.Join(dir, n)); err != nil {
			return res, fmt.Errorf("gc: %w", err)
		}
		os.Remove(s.diffIDFile(d)) // the record of its check, if any
		res.Blobs = append(res.Blobs, d)
	}
	if err := s.sweepLeftovers(); err != nil {
		return res, err
	}
	used, err := containerLowers(s.Layers)
	if err != nil {
		return res, err
	}
	ldir := filepath.Join(s.Layers.Root, "sha256")
	names, err = tree.ReadNames(ldir)
	if err != nil {
		return res, err
	}
	for _, n := range names {
		p := filepath.Join(ldir, n)
		if strings.HasPrefix(n, ".") || diffIDs[n] || used[n] || digest.NewDigestFromEncoded(digest.SHA256, n).Validate() != nil {
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			return res, fmt.Errorf("gc: remove layer %s: %w", p, err)
		}
		res.Layers = append(res.Layers, digest.NewDigestFromEncoded(digest.SHA256, n))
	}
	return res, nil
}

// reachable is every blob a manifest of index.json reaches: the
// manifests, their configs and layers, readable or not.
func (s *Store) reachable() (map[digest.Digest]bool, error) {
	idx, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	out := map[digest.Digest]bool{}
	for _, d := range idx.Manifests {
		out[d.Digest] = true
		b, err := s.ReadBlob(d.Digest)
		if err != nil {
			continue
		}
		var m ocispec.Manifest
		if json.Unmarshal(b, &m) != nil {
			continue
		}
		out[m.Config.Digest] = true
		for _, l := range m.Layers {
			out[l.Digest] = true
		}
	}
	return out, nil
}

// containerLowers names every layer directory a container layer stands
// on, by its base name (the diff id, for a layer unpacked here): the same
// directory may have been reached through another path (a data root given
// through a symbolic link).
func containerLowers(ls layer.Store) (map[string]bool, error) {
	used := map[string]bool{}
	dir := filepath.Join(ls.Root, "containers")
	names, err := tree.ReadNames(dir)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n, "layer.json"))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var r layer.Record
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("gc: decode %s: %w", filepath.Join(dir, n, "layer.json"), err)
		}
		for _, l := range r.Lowers {
			used[filepath.Base(filepath.Clean(l))] = true
		}
	}
	return used, nil
}

// sweepLeftovers removes what a killed pull, load, import, unpack or
// build left: files in ingest/, half-unpacked layers, a build's staging
// directories, and build cache entries whose image is gone. GC holds the
// store exclusively, so no writer is at work (each holds Hold).
func (s *Store) sweepLeftovers() error {
	ingest := filepath.Join(s.Root, "ingest")
	names, err := tree.ReadNames(ingest)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := os.RemoveAll(filepath.Join(ingest, n)); err != nil {
			return fmt.Errorf("gc: %w", err)
		}
	}
	ldir := filepath.Join(s.Layers.Root, "sha256")
	names, err = tree.ReadNames(ldir)
	if err != nil {
		return err
	}
	for _, n := range names {
		if strings.HasPrefix(n, ".unpack-") || strings.HasPrefix(n, "..unpack-") {
			if err := os.RemoveAll(filepath.Join(ldir, n)); err != nil {
				return fmt.Errorf("gc: %w", err)
			}
		}
	}
	// Build cache entries: "<image id>\n<key as JSON>\n". One whose image
	// is gone, a half-written one (.name), or one of the older one-line
	// form is of no use to the next build.
	cache := filepath.Join(s.Root, "buildcache")
	names, err = tree.ReadNames(cache)
	if err != nil {
		return err
	}
	for _, n := range names {
		p := filepath.Join(cache, n)
		b, err := os.ReadFile(p)
		if err == nil && !strings.HasPrefix(n, ".") {
			id, rest, two := strings.Cut(string(b), "\n")
			if d := digest.Digest(id); two && rest != "" && d.Validate() == nil && s.HasBlob(d) {
				continue
			}
		}
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("gc: %w", err)
		}
	}
	names, err = tree.ReadNames(s.Layers.Root)
	if err != nil {
		return err
	}
	for _, n := range names {
		if strings.HasPrefix(n, ".build-") {
			if err := os.RemoveAll(filepath.Join(s.Layers.Root, n)); err != nil {
				return fmt.Errorf("gc: %w", err)
			}
		}
	}
	return nil
}
