//go:build linux

package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth/07-unionfs/untar"
	"berth/08-image/store"
)

// LoadedImage is an image that load put in the store.
type LoadedImage struct {
	Name     string        // normalized; "" when the archive gives it none
	ID       digest.Digest // its config's digest
	Replaced digest.Digest // the image the name pointed at until now, if another
}

// Load reads an image archive in one pass, plain or gzip'd: docker save's
// (any age), skopeo's docker-archive or oci-archive, an OCI layout in a
// tar. Every file goes into the store as a blob as it streams past (a
// file under blobs/sha256/ must hash to its name, or the load stops);
// only the small JSON files at the top stay in memory. Then the format is
// known, each image is checked from its manifest down, and only when
// every image is whole are the names tagged. Nothing is ever written by a
// name taken from the archive: blobs land under their own digest. A load
// that fails, or that ctx ends (Ctrl-C), removes the blobs it added.
func Load(ctx context.Context, s *store.Store, r io.Reader) (loaded []LoadedImage, err error) {
	added, err := store.Begin(ctx, s)
	if err != nil {
		return nil, err
	}
	defer func() { added.End(err != nil && len(loaded) == 0) }()
	a, err := readArchive(s, store.ReaderUntil(ctx, r), added)
	if err != nil {
		return nil, err
	}
	plans, err := a.plans()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return tagLoaded(s, plans)
}

// archive is what load keeps of a tar while it streams: which blob each
// file became, the links between names, and the top's JSON files.
type archive struct {
	s         *store.Store
	blobs     *store.Ingest                 // what this load added to the store
	files     map[string]ocispec.Descriptor // regular files, stored as blobs
	links     map[string]string             // symlinks and hard links: name -> target name
	meta      map[string][]byte             // oci-layout, index.json, manifest.json, repositories
	nameBytes int                           // what the names in files and links take
	stored    int64                         // what the files stored as blobs take
}

func readArchive(s *store.Store, r io.Reader, added *store.Ingest) (*archive, error) {
	z, _, err := untar.Decompress(r)
	if err != nil {
		return nil, err
	}
	defer z.Close()
	plain := &lastErr{r: z}
	a := &archive{s: s, blobs: added, files: map[string]ocispec.Descriptor{}, links: map[string]string{}, meta: map[string][]byte{}}
	tr := tar.NewReader(plain)
	for n := 0; ; n++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if n == 0 && store.NotATar(err, plain.n, plain.err) {
				return nil, errNotATar
			}
			return nil, readError(err)
		}
		if n == maxArchiveEntries {
			return nil, fmt.Errorf("more than %d entries: not an image archive", maxArchiveEntries)
		}
		if err := a.entry(hdr, tr); err != nil {
			return nil, err
		}
	}
	// The rest: tar's padding, and a gzip trailer whose checksum is
	// checked only when it is read.
	if _, err := io.Copy(io.Discard, plain); err != nil {
		return nil, readError(err)
	}
	// A link named like a blob must lead to content with that digest.
	for name := range a.links {
		want, ok, err := blobDigest(name)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		got, err := a.resolve(name)
		if err != nil {
			return nil, err
		}
		if got.Digest != want {
			return nil, fmt.Errorf("archive entry %s links to content %s, not what its name says: refused", name, got.Digest)
		}
	}
	return a, nil
}

// errNotATar: the first header is not one.
var errNotATar = errors.New("not a tar archive (a docker-archive or an OCI layout, plain or gzip'd)")

// lastErr remembers how much its reader gave and the last error it
// returned.
type lastErr struct {
	r   io.Reader
	n   int64
	err error
}

func (l *lastErr) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.n += int64(n)
	if err != nil {
		l.err = err
	}
	return n, err
}

func readError(err error) error {
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("the archive ends in the middle of an entry: is it truncated?")
	case errors.Is(err, tar.ErrHeader):
		return fmt.Errorf("an entry's header is damaged: %v", err)
	}
	return fmt.Errorf("read archive: %w", err)
}

// entry takes one tar entry: a regular file is stored as a blob, a link
// is remembered by name, a directory says nothing.
func (a *archive) entry(hdr *tar.Header, r io.Reader) error {
	name, err := store.EntryName(hdr.Name)
	if err != nil {
		return fmt.Errorf("archive entry %w", err)
	}
	if hdr.Typeflag == tar.TypeDir || hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	if _, dup := a.files[name]; dup || a.links[name] != "" || a.meta[name] != nil {
		return fmt.Errorf("archive has two entries named %s: refused", name)
	}
	if a.nameBytes += len(name) + len(hdr.Linkname); a.nameBytes > maxNameBytes {
		return fmt.Errorf("the archive's names take over %d bytes: not an image archive", maxNameBytes)
	}
	switch hdr.Typeflag {
	case tar.TypeSymlink:
		t, err := linkTarget(name, hdr.Linkname)
		if err != nil {
			return err
		}
		a.links[name] = t
		return nil
	case tar.TypeLink:
		t, err := store.EntryName(hdr.Linkname)
		if err != nil {
			return fmt.Errorf("hard link %s: its target %w", name, err)
		}
		a.links[name] = t
		return nil
	case tar.TypeReg:
	default:
		kind := map[byte]string{tar.TypeChar: "a character device", tar.TypeBlock: "a block device", tar.TypeFifo: "a FIFO"}[hdr.Typeflag]
		if kind == "" {
			kind = fmt.Sprintf("of type %q", hdr.Typeflag)
		}
		return fmt.Errorf("archive entry %s is %s: an image archive holds only files, directories and links", name, kind)
	}
	switch name {
	case ".":
		return errors.New("archive entry '.' is a file: not an image archive")
	case ociLayoutFile, indexFile, dockerManifest, dockerRepos:
		b, err := io.ReadAll(io.LimitReader(r, store.MaxMetadata+1))
		if err != nil {
			return readError(err)
		}
		if len(b) > store.MaxMetadata {
			return fmt.Errorf("%s is over %d bytes: not an image archive", name, store.MaxMetadata)
		}
		a.meta[name] = b
		return nil
	}
	want, isBlob, err := blobDigest(name)
	if err != nil {
		return err
	}
	if !isBlob {
		dir, base := path.Split(name)
		if dir != "" && (base == "json" || base == "VERSION") {
			return nil // docker's v1 metadata beside a layer.tar: no loader reads it
		}
		// A config as older docker and skopeo name it: <digest hex>.json.
		if hex, ok := strings.CutSuffix(name, ".json"); ok && dir == "" {
			if d := digest.NewDigestFromEncoded(digest.SHA256, hex); d.Validate() == nil {
				want = d
			}
		}
	}
	// The archive may be a gzip'd bomb: what it stores is bounded as an
	// image is (bound.go), before the first byte of too much is written.
	if a.stored += hdr.Size; a.stored > a.s.Bound() {
		return fmt.Errorf("archive entry %s: the archive's files add up to more than --max-image-size %s: refused", name, store.FormatSize(a.s.Bound()))
	}
	in := &lastErr{r: r}
	desc, err := a.blobs.Put(in, want, "")
	if err != nil {
		if in.err != nil && in.err != io.EOF { // the archive's fault, not the store's
			return fmt.Errorf("archive entry %s: %w", name, readError(in.err))
		}
		return fmt.Errorf("archive entry %s: %w", name, err)
	}
	a.files[name] = desc
	return nil
}

// resolve finds the blob a name stands for, following links by name only.
func (a *archive) resolve(name string) (ocispec.Descriptor, error) {
	n, err := store.EntryName(name)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	for hop := 0; hop <= maxLinkHops; hop++ {
		if d, ok := a.files[n]; ok {
			return d, nil
		}
		t, ok := a.links[n]
		if !ok {
			if n == name {
				return ocispec.Descriptor{}, fmt.Errorf("%s is not in the archive", name)
			}
			return ocispec.Descriptor{}, fmt.Errorf("%s links to %s, which is not in the archive", name, n)
		}
		n = t
	}
	return ocispec.Descriptor{}, fmt.Errorf("%s: more than %d links in a row", name, maxLinkHops)
}

// present is the archive's fetch: every blob the archive had is in the
// store already (verified as it was stored); a blob the store had before
// serves as well, since the digest is the content.
func (a *archive) present(d ocispec.Descriptor) error { return a.s.CheckBlob(d, "the archive") }
