//go:build linux

package archive

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth/08-image/store"
)

// loadPlan is one image of an archive, checked and ready to be named.
type loadPlan struct {
	manifest ocispec.Descriptor
	id       digest.Digest
	names    []string
}

func (p *loadPlan) addNames(names ...string) {
	for _, n := range names {
		if !contains(p.names, n) {
			p.names = append(p.names, n)
		}
	}
}

// fetcher makes sure a descriptor's blob is in the store, of its size.
type fetcher func(ocispec.Descriptor) error

// plans reads the archive's format. index.json (OCI) comes first: its
// manifests are kept as they are, so their digests survive. manifest.json
// (docker) adds the names docker gives in RepoTags, and every image that
// index.json does not have (docker 25 leaves an image saved by id out of it).
func (a *archive) plans() ([]*loadPlan, error) {
	idx, hasIndex := a.meta[indexFile]
	mj, hasManifest := a.meta[dockerManifest]
	if !hasIndex && !hasManifest {
		if _, ok := a.meta[dockerRepos]; ok {
			return nil, errors.New("the archive has only a 'repositories' file, as docker before 1.10 wrote them: not supported")
		}
		return nil, errors.New("not an image archive: it has no index.json (an OCI layout) and no manifest.json (docker's) at its top")
	}
	var plans []*loadPlan
	if hasIndex {
		if err := checkLayout(a.meta[ociLayoutFile]); err != nil {
			return nil, err
		}
		var err error
		if plans, err = ociPlans(a.s, idx, a.present); err != nil {
			return nil, err
		}
	}
	if hasManifest {
		var entries []dockerManifestEntry
		if err := json.Unmarshal(mj, &entries); err != nil {
			return nil, fmt.Errorf("decode manifest.json: %w", err)
		}
		for i, e := range entries {
			p, err := a.dockerPlan(e, plans)
			if err != nil {
				return nil, fmt.Errorf("manifest.json, image %d of %d: %w", i+1, len(entries), err)
			}
			if p != nil {
				plans = append(plans, p)
			}
		}
	}
	if len(plans) == 0 {
		return nil, errors.New("the archive lists no image")
	}
	return plans, nil
}

func checkLayout(b []byte) error {
	if b == nil {
		return nil // required by the spec, often left out of archives; index.json says enough
	}
	var l ocispec.ImageLayout
	if err := json.Unmarshal(b, &l); err != nil {
		return fmt.Errorf("decode oci-layout: %w", err)
	}
	if l.Version != ocispec.ImageLayoutVersion {
		return fmt.Errorf("oci-layout says version %q; berth reads %s", l.Version, ocispec.ImageLayoutVersion)
	}
	return nil
}

// ociPlans checks every image index.json lists, following a nested index
// to this machine's platform, and gathers each manifest's names.
func ociPlans(s *store.Store, b []byte, fetch fetcher) ([]*loadPlan, error) {
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("decode index.json: %w", err)
	}
	var plans []*loadPlan
	for i, d := range idx.Manifests {
		m, id, err := ociManifest(s, d, fetch, 0)
		if err != nil {
			return nil, fmt.Errorf("index.json, entry %d of %d: %w", i+1, len(idx.Manifests), err)
		}
		names, err := indexNames(d.Annotations)
		if err != nil {
			return nil, fmt.Errorf("index.json, entry %d of %d: %w", i+1, len(idx.Manifests), err)
		}
		p := planOf(plans, func(p *loadPlan) bool { return p.manifest.Digest == m.Digest })
		if p == nil {
			p = &loadPlan{manifest: m, id: id}
			plans = append(plans, p)
		}
		p.addNames(names...)
	}
	return plans, nil
}

func planOf(plans []*loadPlan, match func(*loadPlan) bool) *loadPlan {
	for _, p := range plans {
		if match(p) {
			return p
		}
	}
	return nil
}

// indexNames is the name an index entry gives its image: containerd's
// annotation (the full name), else the OCI ref.name when it is a name
// (skopeo's oci-archive:FILE:busybox:latest). A ref.name that is a bare
// tag (docker's "latest") names no repository: alone it names nothing.
func indexNames(ann map[string]string) ([]string, error) {
	n := ann[AnnotationImageName]
	if n == "" {
		n = ann[ocispec.AnnotationRefName]
		if !strings.ContainsAny(n, ":/") {
			return nil, nil
		}
	}
	full, err := tagName(n)
	if err != nil {
		return nil, err
	}
	return []string{full}, nil
}

// tagName normalizes a name an archive gives; it must be NAME[:TAG], not
// a digest, since a name in the store points at a manifest by tag.
func tagName(n string) (string, error) {
	full, err := store.NormalizeName(n)
	if err != nil {
		return "", err
	}
	if strings.Contains(full, "@") {
		return "", fmt.Errorf("the archive names an image %q: a digest, not a tag", n)
	}
	return full, nil
}

// ociManifest checks the image a descriptor leads to and returns its
// manifest's descriptor and the image id.
func ociManifest(s *store.Store, d ocispec.Descriptor, fetch fetcher, depth int) (ocispec.Descriptor, digest.Digest, error) {
	if depth > 4 {
		return d, "", errors.New("indexes nested more than 4 deep")
	}
	if err := fetch(d); err != nil {
		return d, "", err
	}
	switch d.MediaType {
	case ocispec.MediaTypeImageIndex, store.MediaTypeDockerManifestList:
		b, err := s.ReadBlob(d.Digest)
		if err != nil {
			return d, "", err
		}
		var idx ocispec.Index
		if err := json.Unmarshal(b, &idx); err != nil {
			return d, "", fmt.Errorf("decode index %s: %w", d.Digest, err)
		}
		var seen []string
		for _, m := range idx.Manifests {
			if m.Platform == nil {
				continue
			}
			if m.Platform.OS == "linux" && m.Platform.Architecture == runtime.GOARCH {
				return ociManifest(s, m, fetch, depth+1)
			}
			seen = append(seen, m.Platform.OS+"/"+m.Platform.Architecture)
		}
		return d, "", fmt.Errorf("index %s has no image for linux/%s (it has: %s)", d.Digest, runtime.GOARCH, strings.Join(seen, ", "))
	case ocispec.MediaTypeImageManifest, store.MediaTypeDockerManifest:
		id, err := checkManifest(s, d, fetch)
		return d, id, err
	}
	return d, "", fmt.Errorf("%s has media type %q: not an image manifest or index", d.Digest, d.MediaType)
}

// checkManifest checks an image from its manifest down: the config and
// every layer present and of their size, as many diff ids as layers, and
// each layer's tar stream hashing to its diff id.
func checkManifest(s *store.Store, d ocispec.Descriptor, fetch fetcher) (digest.Digest, error) {
	b, err := s.ReadBlob(d.Digest)
	if err != nil {
		return "", err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return "", fmt.Errorf("decode manifest %s: %w", d.Digest, err)
	}
	switch m.Config.MediaType {
	case ocispec.MediaTypeImageConfig, store.MediaTypeDockerConfig:
	default:
		return "", fmt.Errorf("manifest %s: config media type %q: not a container image", d.Digest, m.Config.MediaType)
	}
	if err := fetch(m.Config); err != nil {
		return "", err
	}
	cfg, err := s.ReadConfig(m.Config.Digest)
	if err != nil {
		return "", err
	}
	if err := store.CheckRootFS(cfg, len(m.Layers)); err != nil {
		return "", fmt.Errorf("manifest %s, config %s: %w", d.Digest, m.Config.Digest, err)
	}
	budget := store.NewBudget(s.Bound())
	for i, l := range m.Layers {
		if err := store.CheckLayerType(l.MediaType); err != nil {
			return "", fmt.Errorf("layer %s: %w", l.Digest, err)
		}
		if err := fetch(l); err != nil {
			return "", err
		}
		if _, err := s.CheckLayer(l.Digest, cfg.RootFS.DiffIDs[i], budget); err != nil {
			return "", fmt.Errorf("layer %d of %d: %w", i+1, len(m.Layers), err)
		}
	}
	return m.Config.Digest, nil
}

// dockerPlan reads one image of manifest.json. One whose config
// index.json already gave lends it its RepoTags and is done; any other
// gets an OCI manifest written for it, with the config's bytes unchanged
// (so the image id is the same) and the layers as the archive has them,
// plain or gzip'd, each checked against its diff id.
func (a *archive) dockerPlan(e dockerManifestEntry, plans []*loadPlan) (*loadPlan, error) {
	cdesc, err := a.resolve(e.Config)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var names []string
	for _, t := range e.RepoTags {
		n, err := tagName(t)
		if err != nil {
			return nil, err
		}
		names = append(names, n)
	}
	if p := planOf(plans, func(p *loadPlan) bool { return p.id == cdesc.Digest }); p != nil {
		p.addNames(names...)
		return nil, nil
	}
	cfg, err := a.s.ReadConfig(cdesc.Digest)
	if err != nil {
		return nil, err
	}
	if err := store.CheckRootFS(cfg, len(e.Layers)); err != nil {
		return nil, fmt.Errorf("config %s: %w", cdesc.Digest, err)
	}
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cdesc.Digest, Size: cdesc.Size},
		Layers:    []ocispec.Descriptor{},
	}
	b := store.NewBudget(a.s.Bound())
	for i, l := range e.Layers {
		ld, err := a.resolve(l)
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i+1, err)
		}
		mt, err := a.s.CheckLayer(ld.Digest, cfg.RootFS.DiffIDs[i], b)
		if err != nil {
			return nil, fmt.Errorf("layer %d (%s): %w", i+1, l, err)
		}
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: mt, Digest: ld.Digest, Size: ld.Size})
	}
	mdesc, err := a.blobs.PutJSON(m, ocispec.MediaTypeImageManifest)
	if err != nil {
		return nil, err
	}
	return &loadPlan{manifest: mdesc, id: cdesc.Digest, names: names}, nil
}

// tagLoaded names what load checked, once every image of the archive
// passed: a bad archive leaves no name behind.
func tagLoaded(s *store.Store, plans []*loadPlan) ([]LoadedImage, error) {
	var out []LoadedImage
	for _, p := range plans {
		if len(p.names) == 0 {
			if err := s.AddUnnamed(p.manifest); err != nil {
				return out, err
			}
			out = append(out, LoadedImage{ID: p.id})
			continue
		}
		for _, n := range p.names {
			li := LoadedImage{Name: n, ID: p.id}
			old, err := s.Get(n)
			if err != nil {
				old = nil
			} else if old.ID() != p.id {
				li.Replaced = old.ID()
			}
			if err := s.Tag(n, p.manifest); err != nil {
				return out, err
			}
			// The same image under another manifest (a docker-archive's
			// layers are not compressed as a registry's): for docker it is
			// one image, so no <none> twin with the same id stays behind.
			if old != nil && old.ID() == p.id && old.Descriptor.Digest != p.manifest.Digest {
				if err := s.Remove(&store.Image{Descriptor: old.Descriptor}, false); err != nil {
					return out, err
				}
			}
			out = append(out, li)
		}
	}
	return out, nil
}
