//go:build linux

package store

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth/07-unionfs/untar"
)

// LayerDir is where a layer with this diff id is (or would be) unpacked:
// stage 07's store, so that a container's overlay stacks it directly.
func (s *Store) LayerDir(diffID digest.Digest) string {
	return filepath.Join(s.Layers.Root, diffID.Algorithm().String(), diffID.Encoded())
}

// Unpack makes sure every layer of img is unpacked and returns their
// directories top first (overlay's lowerdir order). A layer unpacked
// before, by any image, is reused. The layers' files, summed, must stay
// within the store's bound (bound.go), unpacked now or before.
func (s *Store) Unpack(ctx context.Context, img *Image) ([]string, error) {
	dirs, _, err := s.UnpackCounted(ctx, img)
	return dirs, err
}

// unpack is Unpack, and says what the image's files add up to.
func (s *Store) UnpackCounted(ctx context.Context, img *Image) ([]string, int64, error) {
	if err := s.Layers.Init(); err != nil {
		return nil, 0, err
	}
	// A sweep must not take a layer being unpacked (GC removes what a
	// killed unpack left, under its exclusive lock).
	release, err := s.Hold(ctx)
	if err != nil {
		return nil, 0, err
	}
	defer release()
	b := NewBudget(s.Bound())
	var dirs []string
	for i, l := range img.Manifest.Layers {
		diffID := img.Config.RootFS.DiffIDs[i]
		dir, err := s.unpackLayer(l, diffID, b)
		if err != nil {
			return nil, 0, fmt.Errorf("image %s, layer %d of %d: %w", img.ShortID(), i+1, len(img.Manifest.Layers), err)
		}
		dirs = append([]string{dir}, dirs...)
	}
	return dirs, b.Used, nil
}

// unpackSeq tells apart the unpacks one process makes at once (berth
// daemon serves many runs in one process): the pid alone would give two
// of them one private directory, each removing the other's files.
var unpackSeq atomic.Uint64

// unpackLayer unpacks a layer unless it is unpacked already, counting its
// files against b.
func (s *Store) unpackLayer(blob ocispec.Descriptor, diffID digest.Digest, b *Budget) (string, error) {
	if err := diffID.Validate(); err != nil || diffID.Algorithm() != digest.SHA256 {
		return "", fmt.Errorf("diff id %q is not a sha256 digest", diffID)
	}
	dir := s.LayerDir(diffID)
	if err := CheckLayerType(blob.MediaType); err != nil {
		return "", err
	}
	if _, err := os.Stat(dir); err == nil {
		// Unpacked already (Apply renames into place only when complete),
		// maybe from another image's blob: this image's blob must still be
		// shown to hold that content, or a config could borrow a layer its
		// own blob does not have, and save and push would pass it on.
		if err := s.CheckDiffID(blob, diffID, b); err != nil {
			return "", err
		}
		return dir, nil
	}
	f, err := s.OpenBlob(blob.Digest)
	if err != nil {
		return "", err
	}
	defer f.Close()
	// The blob was verified when it was stored; what it decompresses to
	// must be the diff id the config names, checked as it is applied, and
	// a whole tar whose files fit in what is left of the bound: the stream
	// goes through gunzip (or zstd), a sha256 and CheckedTar (layertar.go)
	// into stage 07's Apply.
	plain, _, err := untar.Decompress(f)
	if err != nil {
		return "", fmt.Errorf("layer %s: %w", blob.Digest, err)
	}
	defer plain.Close()
	h := sha256.New()
	checked := NewCheckedTar(io.TeeReader(plain, h), b)
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return "", err
	}
	// Apply into a private name first: the diff id is checked only when
	// the whole stream has been read, and a layer must never appear under
	// a digest its content does not have.
	tmp := filepath.Join(filepath.Dir(dir), ".unpack-"+diffID.Encoded()+fmt.Sprint("-", os.Getpid(), "-", unpackSeq.Add(1)))
	os.RemoveAll(tmp)
	// Device nodes in a layer are made as root (docker does too; a
	// container still needs the device cgroup's permission to use them) and
	// left out without root, which may not mknod them.
	devices := untar.DevicesCreate
	if s.Rootless {
		devices = untar.DevicesSkip
	}
	// Apply's own bound is per layer: it gets what the layers below left.
	// CheckedTar enforces that exactly before Apply sees an entry (0, all
	// used, would mean Apply's default to Apply).
	opt := untar.Options{Userxattr: s.Rootless, Rootless: s.Rootless, Devices: devices, MaxBytes: max(b.Left(), 1)}
	if _, err = untar.Apply(checked, tmp, opt); err != nil {
		os.RemoveAll(tmp)
		if checked.Err != nil {
			err = checked.Err // the reason, not Apply's "read tarball" around it
		}
		return "", fmt.Errorf("unpack %s: %w", blob.Digest, err)
	}
	// Read what tar left unread (the end-of-archive padding, the gzip
	// trailer): it is part of the digested stream, and holds the checksum.
	if _, err := io.Copy(io.Discard, checked); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("unpack %s: %w", blob.Digest, err)
	}
	if got := digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil)); got != diffID {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("layer %s unpacks to content %s, not %s as the image config says: refused", blob.Digest, got, diffID)
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		if _, serr := os.Stat(dir); serr != nil {
			return "", fmt.Errorf("unpack: rename %s to %s: %w", tmp, dir, err)
		}
		// another run unpacked it meanwhile
	}
	s.recordDiffID(blob.Digest, diffID, checked.Content)
	return dir, nil
}

// The layers that were checked are kept, one file per blob, so that a
// layer is read once, not at every run: the diff id its blob holds and
// what its files add up to.
//
//	<data-root>/images/diffids/<blob hex>   "sha256:<diff id>\n<bytes of files>\n"
func (s *Store) diffIDFile(blob digest.Digest) string {
	return filepath.Join(s.Root, "diffids", blob.Encoded())
}

func (s *Store) recordDiffID(blob, diffID digest.Digest, content int64) {
	if blob.Validate() != nil {
		return
	}
	if err := os.MkdirAll(filepath.Dir(s.diffIDFile(blob)), 0o700); err == nil {
		rec := fmt.Sprintf("%s\n%d\n", diffID, content)
		_ = WriteFileAtomic(s.diffIDFile(blob), []byte(rec), 0o600) // a cache: on failure, read again next time
	}
}

// recorded is the size of the files of blob as an earlier check recorded
// it, if that check found diffID. A record of another form (berth before
// it kept sizes) is no record.
func (s *Store) recorded(blob, diffID digest.Digest) (int64, bool) {
	b, err := os.ReadFile(s.diffIDFile(blob))
	if err != nil {
		return 0, false
	}
	id, rest, _ := strings.Cut(string(b), "\n")
	n, err := strconv.ParseInt(strings.TrimSuffix(rest, "\n"), 10, 64)
	if id != diffID.String() || err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// CheckDiffID shows that a blob holds the content a config names, a whole
// tar, and counts its files against b: from the record of an earlier
// check, or by reading it.
func (s *Store) CheckDiffID(blob ocispec.Descriptor, diffID digest.Digest, b *Budget) error {
	if n, ok := s.recorded(blob.Digest, diffID); ok {
		return b.Take(n, "layer "+ShortID(blob.Digest))
	}
	scan, err := s.scanLayer(blob.Digest, b)
	if err != nil {
		return err
	}
	if scan.diffID != diffID {
		return fmt.Errorf("layer %s unpacks to content %s, not %s as the image config says: refused", blob.Digest, scan.diffID, diffID)
	}
	s.recordDiffID(blob.Digest, diffID, scan.content)
	return nil
}

// CheckLayerType accepts tar layers, plain, gzip'd or zstd'd, OCI's or
// Docker's.
func CheckLayerType(mt string) error {
	switch mt {
	case ocispec.MediaTypeImageLayer, ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageLayerZstd,
		MediaTypeDockerLayer, MediaTypeDockerLayerTar, "":
		return nil
	case "application/vnd.oci.image.layer.nondistributable.v1.tar",
		"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip":
		return nil // deprecated by the spec, still met in old images
	}
	return fmt.Errorf("layer media type %q is not a layer tarball berth can unpack", mt)
}

func goArch() string { return runtime.GOARCH }
