//go:build linux

// Package untar extracts a layer tarball safely: every name checked, every
// path reached one directory fd at a time with no symlink followed, every
// size bounded, OCI's whiteouts turned into overlay's, and the result
// renamed into place only when whole. Stage 07's layer store applies
// tarballs with it, and stage 08 unpacks every image layer with it.
// Chapter: docs/07-unionfs.md, "Why a layer tarball is hostile input".
package untar

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"berth/07-unionfs/tree"
)

// A layer tarball is hostile input: it comes from a registry, a colleague's
// laptop or a build step, and it names the paths it writes. Apply never
// trusts a name. Every entry is checked (no absolute path, no "..", no
// path longer than the kernel takes), then its parent directory is reached
// one name at a time with openat(O_NOFOLLOW|O_DIRECTORY) from the
// extraction root, and the entry is created with the *at() call on that
// directory fd. A symlink met on the way is refused, never followed, so
// neither "../x", "/etc/x", a symlinked parent nor a hardlink can reach
// outside the root. The open directory fds of the last path are kept, so
// an entry below the previous one costs one openat, not one per level.
//
// The metadata of an entry (owner, mode, xattrs, times) is set through an
// fd of the entry itself, opened without following it (handle.go), never
// by name: a later entry may have replaced the name with a symlink to a
// host file. A directory's metadata waits for the end of the tarball (its
// children would move its mtime); it is kept in a tree of names
// (pendingDir) from which a directory replaced by a later entry is
// forgotten with everything below it, and applied through an fd opened
// with O_NOFOLLOW.
//
// Extraction goes into a fresh temporary directory beside DIR and is renamed
// into place only when the whole tarball applied; on any error the
// temporary directory is removed, so nothing half-extracted is left.

// DevicePolicy says what to do with character and block device entries
// (other than 0/0, which is overlay's whiteout).
type DevicePolicy string

const (
	DevicesRefuse DevicePolicy = "refuse" // fail, naming the entry (the default)
	DevicesSkip   DevicePolicy = "skip"   // leave them out and count them
	DevicesCreate DevicePolicy = "create" // mknod them (root only)
)

// DefaultMaxBytes bounds the file contents one layer may write.
const DefaultMaxBytes int64 = 8 << 30

// maxID is the largest uid or gid a file may have: 2^32-1 is -1, "no
// change", to chown(2).
const maxID = 1<<32 - 2

// ApplyOptions bound and shape an extraction.
type Options struct {
	MaxBytes   int64        // file contents, summed (sparse files count their full size); 0: DefaultMaxBytes
	MaxEntries int          // 0: one million
	Devices    DevicePolicy // "": DevicesRefuse
	NoSetuid   bool         // clear setuid/setgid bits instead of keeping them
	Userxattr  bool         // mark opaque directories with user.overlay.opaque (rootless overlay)
	Rootless   bool         // without root: owners and xattrs the user may not give are left out (see copier)
}

// ApplyStats counts what an extraction did.
type Stats struct {
	Entries        int
	Bytes          int64 // file contents written
	Whiteouts      int
	Opaque         int
	SkippedXattrs  int // trusted.overlay.* / user.overlay.* in the tarball
	SkippedDevices int
}

// ErrUnsafe marks an entry refused because it would reach outside the root.
var ErrUnsafe = errors.New("unsafe entry")

// ApplyFile applies the layer tarball at path (plain, gzip or zstd) into dir.
func ApplyFile(path, dir string, opt Options) (Stats, error) {
	f, err := os.Open(path)
	if err != nil {
		return Stats{}, err
	}
	defer f.Close()
	return Apply(f, dir, opt)
}

// Apply extracts a layer tarball into dir, which must be missing or empty,
// turning OCI whiteouts (.wh.NAME, .wh..wh..opq) into overlay's (0/0
// character devices, the opaque xattr). dir is complete or absent: never
// half-extracted.
func Apply(r io.Reader, dir string, opt Options) (Stats, error) {
	if opt.MaxBytes <= 0 {
		opt.MaxBytes = DefaultMaxBytes
	}
	if opt.MaxEntries <= 0 {
		opt.MaxEntries = 1 << 20
	}
	if opt.Devices == "" {
		opt.Devices = DevicesRefuse
	}
	dir = filepath.Clean(dir)
	if err := checkEmptyOrMissing(dir); err != nil {
		return Stats{}, err
	}
	// 0700 while it is being filled: no one but root walks into a
	// half-made layer (or reaches a setuid file in it).
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".apply-")
	if err != nil {
		return Stats{}, fmt.Errorf("apply: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	x, err := newExtractor(tmp, opt)
	if err != nil {
		return Stats{}, err
	}
	defer x.close()
	tr, stream, err := tarReader(r)
	if err != nil {
		return Stats{}, err
	}
	defer stream.Close()
	if err := x.run(tr); err != nil {
		return x.stats, err
	}
	if err := x.trailer(stream); err != nil {
		return x.stats, err
	}
	x.close()
	if !x.rootSet {
		if err := os.Chmod(tmp, 0o755); err != nil {
			return x.stats, err
		}
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return x.stats, fmt.Errorf("apply: replace %s: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return x.stats, fmt.Errorf("apply: rename %s to %s: %w", tmp, dir, err)
	}
	ok = true
	return x.stats, nil
}

func checkEmptyOrMissing(dir string) error {
	names, err := tree.ReadNames(dir)
	if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	if len(names) > 0 {
		return fmt.Errorf("apply: %s is not empty: apply a layer into a new directory", dir)
	}
	return nil
}

// tarReader accepts a plain, gzip'd or zstd'd tarball (compress.go).
// stream is what the tar reader reads, for the trailer check; closing it
// releases the decompressor.
func tarReader(r io.Reader) (*tar.Reader, io.ReadCloser, error) {
	stream, _, err := Decompress(r)
	if err != nil {
		return nil, nil, fmt.Errorf("apply: %w", err)
	}
	return tar.NewReader(stream), stream, nil
}

// trailer reads the stream to its very end once the tar archive has
// ended. Only zeros may follow the end-of-archive marker: the padding tar
// writes to fill its last record, counted against the size bound. So
// nothing can hide after a layer's end that another tool would unpack and
// this one would not, and a gzip stream is read through its last member's
// trailer, where Go's reader checks the CRC-32 and the length (a member
// read only as far as the tar end would never be checked), a zstd stream
// through its last frame and its checksum. Concatenated gzip members (zstd
// frames) are one stream, as gunzip and 08's diff id read them; bytes
// after the last member that are not another member are refused.
func (x *extractor) trailer(stream io.Reader) error {
	budget := x.opt.MaxBytes - x.stats.Bytes
	buf := make([]byte, 32<<10)
	var n int64
	for {
		m, err := stream.Read(buf)
		for _, b := range buf[:m] {
			if b != 0 {
				return fmt.Errorf("apply: data after the end of the tar archive (%d bytes past it): refusing: a layer is one tar archive", n)
			}
			n++
		}
		if n > budget {
			return fmt.Errorf("apply: more than %d bytes of padding after the tar archive: refusing (a tar bomb?)", budget)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("apply: reading the layer to its end: %w: refusing a damaged, cut or extended layer", err)
		}
	}
}

type extractor struct {
	opt     Options
	root    int // fd of the extraction root
	w       walker
	stats   Stats
	dirs    *pendingDir // the root: directories whose metadata is set at the end
	rootSet bool        // the tarball had an entry for "./"
}

func newExtractor(root string, opt Options) (*extractor, error) {
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: root, Err: err}
	}
	x := &extractor{opt: opt, root: fd, dirs: &pendingDir{}}
	x.w = walker{root: fd, overWhiteout: x.dirOverWhiteout}
	return x, nil
}

func (x *extractor) close() {
	x.w.reset()
	if x.root >= 0 {
		unix.Close(x.root)
		x.root = -1
	}
}

func (x *extractor) run(tr *tar.Reader) error {
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("apply: read tarball after %d entries: %w", x.stats.Entries, err)
		}
		x.stats.Entries++
		if x.stats.Entries > x.opt.MaxEntries {
			return fmt.Errorf("apply: more than %d entries: refusing (a tar bomb?)", x.opt.MaxEntries)
		}
		if err := x.entry(tr, hdr); err != nil {
			return fmt.Errorf("apply: entry %q: %w", tree.ShortName(hdr.Name), err)
		}
	}
	// The walker's fds go first: the directories are walked again, each
	// opened with O_NOFOLLOW from its parent.
	x.w.reset()
	return x.applyDirs(x.root, x.dirs, nil)
}

// cleanName checks an entry name and splits it into names. It refuses
// absolute paths and any ".." instead of cleaning them away: a tarball that
// says "../" means harm, and the error should say so. A path longer than
// the kernel resolves in one call could be made (one name at a time) but
// not used by any path-based tool afterwards: it is refused too.
func cleanName(name string) ([]string, error) {
	if strings.HasPrefix(name, "/") {
		return nil, fmt.Errorf("%w: absolute path", ErrUnsafe)
	}
	var parts []string
	size := -1
	for _, p := range strings.Split(name, "/") {
		switch p {
		case "", ".":
		case "..":
			return nil, fmt.Errorf("%w: path contains \"..\"", ErrUnsafe)
		default:
			parts = append(parts, p)
			size += len(p) + 1
		}
	}
	if size > tree.MaxPath {
		return nil, fmt.Errorf("a path of %d bytes, longer than the kernel's limit of %d: refusing", size, tree.MaxPath)
	}
	return parts, nil
}

func (x *extractor) entry(tr *tar.Reader, hdr *tar.Header) error {
	parts, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if hdr.Uid < 0 || int64(hdr.Uid) > maxID || hdr.Gid < 0 || int64(hdr.Gid) > maxID {
		return fmt.Errorf("owner %d:%d is outside 0 to %d: refusing", hdr.Uid, hdr.Gid, maxID)
	}
	if len(parts) == 0 { // "./": the root itself
		if hdr.Typeflag != tar.TypeDir {
			return fmt.Errorf("%w: the root of a layer must be a directory", ErrUnsafe)
		}
		x.rootSet = true
		x.dirs.meta = x.metaOf(hdr)
		return nil
	}
	dirParts, base := parts[:len(parts)-1], parts[len(parts)-1]
	parent, err := x.w.dir(dirParts)
	if err != nil {
		return err
	}

	if strings.HasPrefix(base, tree.WhiteoutPrefix) {
		return x.whiteout(parent, dirParts, base)
	}

	switch hdr.Typeflag {
	case tar.TypeDir:
		return x.mkdir(parent, parts, base, hdr)
	case tar.TypeReg: // the reader reports old TypeRegA entries as TypeReg
		return x.file(tr, parent, dirParts, base, hdr)
	case tar.TypeSymlink:
		if err := x.replace(parent, dirParts, base); err != nil {
			return err
		}
		if err := unix.Symlinkat(hdr.Linkname, parent, base); err != nil {
			return fmt.Errorf("symlink: %w", err)
		}
		return x.created(parent, base, unix.S_IFLNK, hdr)
	case tar.TypeLink:
		return x.hardlink(parent, dirParts, base, hdr)
	case tar.TypeChar, tar.TypeBlock:
		return x.device(parent, dirParts, base, hdr)
	case tar.TypeFifo:
		if err := x.replace(parent, dirParts, base); err != nil {
			return err
		}
		if err := unix.Mknodat(parent, base, unix.S_IFIFO|0o600, 0); err != nil {
			return fmt.Errorf("mkfifo: %w", err)
		}
		return x.created(parent, base, unix.S_IFIFO, hdr)
	default:
		return fmt.Errorf("unsupported tar entry type %q", hdr.Typeflag)
	}
}
