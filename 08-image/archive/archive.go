//go:build linux

// Package archive writes images of the store to a tar file and reads them
// back: docker save's and docker load's formats (docker-archive, and the
// OCI image layout in a tar, or both at once), an OCI layout directory
// too. A loaded archive is hostile input: every name is checked, every
// blob goes into the store under its own digest, and nothing is named
// until every image of the archive is whole. Chapter: docs/08-archive.md.
package archive

import (
	"fmt"
	"path"
	"strings"

	digest "github.com/opencontainers/go-digest"
)

// An image archive (docker save, skopeo copy docker-archive: or
// oci-archive:) is a tar file in one of two formats, or both at once:
//
//	OCI image layout                       docker-archive (docker load)
//	oci-layout  {"imageLayoutVersion"}     manifest.json  [{Config, RepoTags, Layers}]
//	index.json  manifests + their names    repositories   {"busybox": {"latest": ID}}
//	blobs/sha256/<hex>  named by digest    any paths: <id>.json, <id>/layer.tar...
//
// Docker 25 and later write both in one tar, with manifest.json's paths
// pointing at the OCI blobs, so docker load of any age and the OCI tools
// read the same file. So does berth save.
const (
	ociLayoutFile     = "oci-layout"
	indexFile         = "index.json"
	dockerManifest    = "manifest.json"
	dockerRepos       = "repositories"
	blobsDir          = "blobs"
	maxArchiveEntries = 100000   // more than any image needs; with the next two,
	maxNameBytes      = 16 << 20 // all names and link targets together: with the entries, bounds what load keeps in memory
	maxLinkHops       = 16
)

// AnnotationImageName is containerd's annotation for an image's full name
// in an index: docker save writes it beside the OCI ref.name (the tag).
const AnnotationImageName = "io.containerd.image.name"

// dockerManifestEntry is one image of docker's manifest.json.
type dockerManifestEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// blobName is where a blob lives inside an archive.
func blobName(d digest.Digest) string {
	return path.Join(blobsDir, d.Algorithm().String(), d.Encoded())
}

// blobDigest is the digest a name under blobs/ claims; ok is false for
// any other name.
func blobDigest(name string) (d digest.Digest, ok bool, err error) {
	rest, ok := strings.CutPrefix(name, blobsDir+"/")
	if !ok {
		return "", false, nil
	}
	alg, enc, found := strings.Cut(rest, "/")
	if !found || enc == "" || strings.Contains(enc, "/") {
		return "", false, nil
	}
	if alg != string(digest.SHA256) {
		return "", true, fmt.Errorf("archive entry %s: only sha256 blobs are supported", name)
	}
	d = digest.NewDigestFromEncoded(digest.SHA256, enc)
	if err := d.Validate(); err != nil {
		return "", true, fmt.Errorf("archive entry %s: not named by a sha256 digest", name)
	}
	return d, true, nil
}

// linkTarget resolves a symbolic link's target by name, relative to the
// link's directory, as the filesystem would, and refuses a target outside
// the archive. The filesystem itself is never consulted.
func linkTarget(name, target string) (string, error) {
	if target == "" || strings.HasPrefix(target, "/") {
		return "", fmt.Errorf("symlink %s points to %q, outside the archive: refused", name, target)
	}
	t := path.Join(path.Dir(name), target)
	if t == ".." || strings.HasPrefix(t, "../") {
		return "", fmt.Errorf("symlink %s points to %q, outside the archive: refused", name, target)
	}
	return t, nil
}
