//go:build linux

package store

import (
	"fmt"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Layer is a layer blob already in the store, with its uncompressed
// digest (what the config's rootfs lists) and what made it.
type Layer struct {
	Blob   ocispec.Descriptor
	DiffID digest.Digest
}

// Commit writes a new image: its config (with rootfs filled from layers,
// and one history entry per layer unless the config has them already), its
// manifest, and the name. It is how load, build and commit end.
func (s *Store) Commit(name string, cfg ocispec.Image, layers []Layer) (*Image, error) {
	return s.CommitDocker(name, cfg, dockerspec.DockerOCIImageConfigExt{}, layers)
}

// CommitDocker is Commit with Docker's fields of the config beside the
// OCI ones (config.Healthcheck): written only when set, so that an image
// without them has the same config, and id, as Commit makes.
func (s *Store) CommitDocker(name string, cfg ocispec.Image, docker dockerspec.DockerOCIImageConfigExt, layers []Layer) (*Image, error) {
	if len(layers) > MaxLayers {
		return nil, fmt.Errorf("an image of %d layers: more than %d (docker's bound too): refused", len(layers), MaxLayers)
	}
	if cfg.OS == "" {
		cfg.OS = "linux"
	}
	if cfg.Architecture == "" {
		cfg.Architecture = goArch()
	}
	cfg.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{}}
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Layers:    []ocispec.Descriptor{},
	}
	for _, l := range layers {
		if !s.HasBlob(l.Blob.Digest) {
			return nil, fmt.Errorf("layer %s is not in the store", l.Blob.Digest)
		}
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.DiffID)
		m.Layers = append(m.Layers, l.Blob)
	}
	if len(cfg.History) == 0 {
		now := time.Now().UTC()
		for range layers {
			cfg.History = append(cfg.History, ocispec.History{Created: &now})
		}
	}
	var body any = cfg
	if docker.Healthcheck != nil || len(docker.OnBuild) > 0 || len(docker.Shell) > 0 {
		body = dockerspec.DockerOCIImage{Image: cfg, Config: dockerspec.DockerOCIImageConfig{ImageConfig: cfg.Config, DockerOCIImageConfigExt: docker}}
	}
	cdesc, _, err := s.PutJSON(body, ocispec.MediaTypeImageConfig)
	if err != nil {
		return nil, err
	}
	m.Config = cdesc
	mdesc, _, err := s.PutJSON(m, ocispec.MediaTypeImageManifest)
	if err != nil {
		return nil, err
	}
	if name != "" {
		if err := s.Tag(name, mdesc); err != nil {
			return nil, err
		}
		name, _ = NormalizeName(name)
	} else if err := s.AddUnnamed(mdesc); err != nil {
		return nil, err
	}
	return &Image{Name: name, Descriptor: mdesc, Manifest: m, Config: cfg, Docker: docker}, nil
}
