//go:build linux

package archive

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth/08-image/store"
)

// Save formats: both halves in one tar (docker save since 25), or the OCI
// image layout alone (what skopeo copy oci-archive: writes).
const (
	SaveDocker = "docker"
	SaveOCI    = "oci"
)

// SaveItem is one image to save and the names it is saved under
// (normalized); none when it was asked for by id, as docker save does.
type SaveItem struct {
	Image *store.Image
	Names []string
}

// SaveItems resolves save's arguments: a name saves the image under that
// name; an id or a name@digest saves it without one. Two arguments for
// one image make one item with both names.
func SaveItems(s *store.Store, args []string) ([]SaveItem, error) {
	var items []SaveItem
	at := map[digest.Digest]int{}
	for _, a := range args {
		img, err := s.Get(a)
		if err != nil {
			return nil, err
		}
		i, ok := at[img.Descriptor.Digest]
		if !ok {
			i = len(items)
			at[img.Descriptor.Digest] = i
			items = append(items, SaveItem{Image: img})
		}
		hex := strings.TrimPrefix(a, "sha256:")
		byID := store.IsHexPrefix(hex) && strings.HasPrefix(img.ID().Encoded(), hex)
		if img.Name == "" || byID || strings.Contains(a, "@") || strings.Contains(img.Name, "@") {
			continue
		}
		if !contains(items[i].Names, img.Name) {
			items[i].Names = append(items[i].Names, img.Name)
		}
	}
	return items, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Save writes the images as one tar archive to w: an OCI image layout
// (oci-layout, index.json, blobs/sha256/...) and, in the docker format,
// docker's manifest.json and repositories beside it, whose paths point at
// the same blobs. Blobs go out as the store has them (a layer stays
// gzip'd), so manifest digests and image ids come back unchanged from a
// load; each is hashed on the way out and must still match its name.
// Every entry has mode 0644 and time 0, so the same images make the same
// bytes.
func Save(ctx context.Context, s *store.Store, w io.Writer, items []SaveItem, format string) error {
	if format != SaveDocker && format != SaveOCI {
		return fmt.Errorf("unknown archive format %q: use %s or %s", format, SaveDocker, SaveOCI)
	}
	if len(items) == 0 {
		return fmt.Errorf("nothing to save")
	}
	// rmi's GC waits until the last blob is out.
	release, err := s.Hold(ctx)
	if err != nil {
		return err
	}
	defer release()

	blobs := map[digest.Digest]int64{}
	index := []ocispec.Descriptor{}
	var manifest []dockerManifestEntry
	repos := map[string]map[string]string{}
	for _, it := range items {
		img := it.Image
		mdesc := ocispec.Descriptor{MediaType: img.Descriptor.MediaType, Digest: img.Descriptor.Digest, Size: img.Descriptor.Size}
		if mdesc.MediaType == "" {
			mdesc.MediaType = ocispec.MediaTypeImageManifest
		}
		blobs[mdesc.Digest] = mdesc.Size
		blobs[img.Manifest.Config.Digest] = img.Manifest.Config.Size
		entry := dockerManifestEntry{Config: blobName(img.ID()), Layers: []string{}}
		for _, l := range img.Manifest.Layers {
			blobs[l.Digest] = l.Size
			entry.Layers = append(entry.Layers, blobName(l.Digest))
		}
		if img.Config.OS != "" {
			mdesc.Platform = &ocispec.Platform{Architecture: img.Config.Architecture, OS: img.Config.OS, Variant: img.Config.Variant, OSVersion: img.Config.OSVersion}
		}
		if len(it.Names) == 0 {
			index = append(index, mdesc) // docker leaves it out; an OCI tool could not see it
		}
		for _, n := range it.Names {
			r, err := reference.ParseNormalizedNamed(n)
			if err != nil {
				return fmt.Errorf("save %s: %w", n, err)
			}
			tagged, ok := reference.TagNameOnly(r).(reference.NamedTagged)
			if !ok {
				return fmt.Errorf("save %s: not a name:tag", n)
			}
			// As docker: containerd's annotation has the full name, the
			// OCI one the tag alone (what skopeo oci-archive:FILE:TAG finds).
			d := mdesc
			d.Annotations = map[string]string{AnnotationImageName: tagged.String(), ocispec.AnnotationRefName: tagged.Tag()}
			index = append(index, d)
			entry.RepoTags = append(entry.RepoTags, reference.FamiliarString(tagged))
			if n := len(img.Manifest.Layers); n > 0 {
				repo := reference.FamiliarName(tagged)
				if repos[repo] == nil {
					repos[repo] = map[string]string{}
				}
				repos[repo][tagged.Tag()] = img.Manifest.Layers[n-1].Digest.Encoded()
			}
		}
		manifest = append(manifest, entry)
	}

	// Every blob must be there before the first byte goes out: a missing
	// one found halfway would leave half an archive on stdout.
	order := make([]digest.Digest, 0, len(blobs))
	for d, size := range blobs {
		st, err := os.Stat(s.BlobPath(d))
		if err != nil {
			return fmt.Errorf("blob %s is missing from the store %s: %w", d, s.Root, err)
		}
		if st.Size() != size {
			return fmt.Errorf("blob %s is %d bytes in the store, its descriptor says %d: the store is damaged", d, st.Size(), size)
		}
		order = append(order, d)
	}
	sort.Slice(order, func(i, j int) bool { return order[i] < order[j] })

	// Entries in the order docker's (a directory tarred) has them.
	tw := tar.NewWriter(w)
	for _, dir := range []string{blobsDir + "/", blobsDir + "/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: time.Unix(0, 0)}); err != nil {
			return err
		}
	}
	for _, d := range order {
		if err := saveBlob(s, tw, d, blobs[d]); err != nil {
			return err
		}
	}
	idx, _ := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: index})
	layout, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	type file struct {
		name string
		data []byte
	}
	files := []file{{indexFile, idx}}
	if format == SaveDocker {
		m, _ := json.Marshal(manifest)
		files = append(files, file{dockerManifest, m})
	}
	files = append(files, file{ociLayoutFile, layout})
	if format == SaveDocker && len(repos) > 0 {
		r, _ := json.Marshal(repos)
		files = append(files, file{dockerRepos, r})
	}
	for _, f := range files {
		if err := tw.WriteHeader(fileHeader(f.name, int64(len(f.data)))); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	return tw.Close()
}

func fileHeader(name string, size int64) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, ModTime: time.Unix(0, 0)}
}

// saveBlob copies one blob into the archive, hashing it on the way.
func saveBlob(s *store.Store, tw *tar.Writer, d digest.Digest, size int64) error {
	f, err := s.OpenBlob(d)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := tw.WriteHeader(fileHeader(blobName(d), size)); err != nil {
		return err
	}
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(tw, h), f, size); err != nil {
		return fmt.Errorf("save blob %s: %w", d, err)
	}
	if got := digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil)); got != d {
		return fmt.Errorf("blob %s in the store hashes to %s: the store is damaged, the archive is not finished", d, got)
	}
	return nil
}
