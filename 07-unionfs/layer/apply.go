//go:build linux

package layer

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// A layer tarball is hostile input: it comes from a registry, a colleague's
// laptop or a build step, and it names the paths it writes. Apply never
// trusts a name. Every entry is checked (no absolute path, no ".."), then
// its parent directory is reached one name at a time with
// openat(O_NOFOLLOW|O_DIRECTORY) from the extraction root, and the entry is
// created with the *at() call on that directory fd. A symlink met on the
// way is refused, never followed, so neither "../x", "/etc/x", a symlinked
// parent nor a hardlink can reach outside the root. The open directory fds
// of the last path are kept, so an entry below the previous one costs one
// openat, not one per level: 1,000 nested directories apply in linear time.
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

// ApplyOptions bound and shape an extraction.
type ApplyOptions struct {
	MaxBytes   int64        // file contents, summed (sparse files count their full size); 0: DefaultMaxBytes
	MaxEntries int          // 0: one million
	Devices    DevicePolicy // "": DevicesRefuse
	NoSetuid   bool         // clear setuid/setgid bits instead of keeping them
	Userxattr  bool         // mark opaque directories with user.overlay.opaque (rootless overlay)
	Rootless   bool         // without root: owners and xattrs the user may not give are left out (see copier)
}

// ApplyStats counts what an extraction did.
type ApplyStats struct {
	Entries        int
	Bytes          int64 // file contents written
	Whiteouts      int
	Opaque         int
	SkippedXattrs  int // trusted.overlay.* / user.overlay.* in the tarball
	SkippedDevices int
}

// ErrUnsafe marks an entry refused because it would reach outside the root.
var ErrUnsafe = errors.New("unsafe entry")

// ApplyFile applies the layer tarball at path (plain or gzip) into dir.
func ApplyFile(path, dir string, opt ApplyOptions) (ApplyStats, error) {
	f, err := os.Open(path)
	if err != nil {
		return ApplyStats{}, err
	}
	defer f.Close()
	return Apply(f, dir, opt)
}

// Apply extracts a layer tarball into dir, which must be missing or empty,
// turning OCI whiteouts (.wh.NAME, .wh..wh..opq) into overlay's (0/0
// character devices, the opaque xattr). dir is complete or absent: never
// half-extracted.
func Apply(r io.Reader, dir string, opt ApplyOptions) (ApplyStats, error) {
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
		return ApplyStats{}, err
	}
	// 0700 while it is being filled: no one but root walks into a
	// half-made layer (or reaches a setuid file in it).
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".apply-")
	if err != nil {
		return ApplyStats{}, fmt.Errorf("apply: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	x, err := newExtractor(tmp, opt)
	if err != nil {
		return ApplyStats{}, err
	}
	defer x.close()
	tr, err := tarReader(r)
	if err != nil {
		return ApplyStats{}, err
	}
	if err := x.run(tr); err != nil {
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
	names, err := readNames(dir)
	if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	if len(names) > 0 {
		return fmt.Errorf("apply: %s is not empty: apply a layer into a new directory", dir)
	}
	return nil
}

// tarReader accepts a plain or gzip-compressed tarball.
func tarReader(r io.Reader) (*tar.Reader, error) {
	br := bufio.NewReader(r)
	magic, _ := br.Peek(4)
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("apply: gzip: %w", err)
		}
		return tar.NewReader(zr), nil
	case len(magic) == 4 && string(magic) == "\x28\xb5\x2f\xfd":
		return nil, errors.New("apply: zstd-compressed layers are not supported: decompress it first (zstd -d)")
	}
	return tar.NewReader(br), nil
}

type extractor struct {
	opt     ApplyOptions
	root    int // fd of the extraction root
	w       walker
	stats   ApplyStats
	dirs    []dirMeta // directory metadata, applied at the end
	rootSet bool      // the tarball had an entry for "./"
}

type dirMeta struct {
	parts []string
	hdr   *tar.Header
}

func newExtractor(root string, opt ApplyOptions) (*extractor, error) {
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: root, Err: err}
	}
	return &extractor{opt: opt, root: fd, w: walker{root: fd}}, nil
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
			return fmt.Errorf("apply: entry %q: %w", hdr.Name, err)
		}
	}
	// Directories last, deepest first, so that creating their children
	// does not move their times again.
	for i := len(x.dirs) - 1; i >= 0; i-- {
		d := x.dirs[i]
		if err := x.dirMetadata(d); err != nil {
			return fmt.Errorf("apply: entry %q: %w", d.hdr.Name, err)
		}
	}
	return nil
}

// cleanName checks an entry name and splits it into names. It refuses
// absolute paths and any ".." instead of cleaning them away: a tarball that
// says "../" means harm, and the error should say so.
func cleanName(name string) ([]string, error) {
	if strings.HasPrefix(name, "/") {
		return nil, fmt.Errorf("%w: absolute path", ErrUnsafe)
	}
	var parts []string
	for _, p := range strings.Split(name, "/") {
		switch p {
		case "", ".":
		case "..":
			return nil, fmt.Errorf("%w: path contains \"..\"", ErrUnsafe)
		default:
			parts = append(parts, p)
		}
	}
	return parts, nil
}

func (x *extractor) entry(tr *tar.Reader, hdr *tar.Header) error {
	parts, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if len(parts) == 0 { // "./": the root itself
		if hdr.Typeflag != tar.TypeDir {
			return fmt.Errorf("%w: the root of a layer must be a directory", ErrUnsafe)
		}
		x.rootSet = true
		x.dirs = append(x.dirs, dirMeta{nil, hdr})
		return nil
	}
	base := parts[len(parts)-1]
	parent, err := x.w.dir(parts[:len(parts)-1])
	if err != nil {
		return err
	}

	if strings.HasPrefix(base, whiteoutPrefix) {
		return x.whiteout(parent, parts, base)
	}

	switch hdr.Typeflag {
	case tar.TypeDir:
		return x.mkdir(parent, parts, base, hdr)
	case tar.TypeReg: // the reader reports old TypeRegA entries as TypeReg
		return x.file(tr, parent, base, hdr)
	case tar.TypeSymlink:
		if err := x.replace(parent, base); err != nil {
			return err
		}
		if err := unix.Symlinkat(hdr.Linkname, parent, base); err != nil {
			return fmt.Errorf("symlink: %w", err)
		}
		return x.metadata(parent, base, hdr, -1)
	case tar.TypeLink:
		return x.hardlink(parent, base, hdr)
	case tar.TypeChar, tar.TypeBlock:
		return x.device(parent, base, hdr)
	case tar.TypeFifo:
		if err := x.replace(parent, base); err != nil {
			return err
		}
		if err := unix.Mknodat(parent, base, unix.S_IFIFO|0o600, 0); err != nil {
			return fmt.Errorf("mkfifo: %w", err)
		}
		return x.metadata(parent, base, hdr, -1)
	default:
		return fmt.Errorf("unsupported tar entry type %q", hdr.Typeflag)
	}
}

const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	opaqueMarker   = ".wh..wh..opq"
)

// whiteout turns .wh.NAME into overlay's whiteout for NAME, and
// .wh..wh..opq into the opaque mark on the parent directory.
func (x *extractor) whiteout(parent int, parts []string, base string) error {
	if base == opaqueMarker {
		name := xattrOpaqueTrusted
		if x.opt.Userxattr {
			name = xattrOpaqueUser
		}
		if err := unix.Fsetxattr(parent, name, []byte("y"), 0); err != nil {
			return fmt.Errorf("mark %s opaque (%s): %w", strings.Join(parts[:len(parts)-1], "/"), name, err)
		}
		x.stats.Opaque++
		return nil
	}
	if strings.HasPrefix(base, whiteoutMeta) {
		return nil // aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): not content
	}
	name := strings.TrimPrefix(base, whiteoutPrefix)
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("%w: whiteout of %q", ErrUnsafe, name)
	}
	if err := x.replace(parent, name); err != nil {
		return err
	}
	if err := unix.Mknodat(parent, name, unix.S_IFCHR, 0); err != nil {
		return fmt.Errorf("whiteout %s: mknod 0/0: %w", name, err)
	}
	x.stats.Whiteouts++
	return nil
}

func (x *extractor) mkdir(parent int, parts []string, base string, hdr *tar.Header) error {
	var st unix.Stat_t
	err := unix.Fstatat(parent, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	if err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
		if err := x.replace(parent, base); err != nil {
			return err
		}
		err = unix.ENOENT
	}
	if err != nil {
		if err := unix.Mkdirat(parent, base, 0o700); err != nil {
			return fmt.Errorf("mkdir: %w", err)
		}
	}
	x.dirs = append(x.dirs, dirMeta{parts, hdr})
	return nil
}

func (x *extractor) file(tr *tar.Reader, parent int, base string, hdr *tar.Header) error {
	if hdr.Size < 0 || hdr.Size > x.opt.MaxBytes-x.stats.Bytes {
		return fmt.Errorf("layer would exceed the size bound of %d bytes (entry of %d bytes after %d written): refusing (a tar bomb?)",
			x.opt.MaxBytes, hdr.Size, x.stats.Bytes)
	}
	if err := x.replace(parent, base); err != nil {
		return err
	}
	fd, err := unix.Openat(parent, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	f := os.NewFile(uintptr(fd), base)
	defer f.Close()
	n, err := io.CopyN(f, tr, hdr.Size)
	x.stats.Bytes += n
	if err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return x.metadata(parent, base, hdr, fd)
}

func (x *extractor) hardlink(parent int, base string, hdr *tar.Header) error {
	tparts, err := cleanName(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("hardlink target %q: %w", hdr.Linkname, err)
	}
	if len(tparts) == 0 {
		return fmt.Errorf("%w: hardlink to the root", ErrUnsafe)
	}
	// Hold the entry's parent while the walker moves to the target's,
	// and clear the name while the walker's path still ends at parent.
	own, err := unix.Dup(parent)
	if err != nil {
		return err
	}
	defer unix.Close(own)
	if err := x.replace(own, base); err != nil {
		return err
	}
	tdir, err := x.w.dir(tparts[:len(tparts)-1])
	if err != nil {
		return fmt.Errorf("hardlink target %q: %w", hdr.Linkname, err)
	}
	tname := tparts[len(tparts)-1]
	var st unix.Stat_t
	if err := unix.Fstatat(tdir, tname, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("hardlink target %q is not in the layer: %w", hdr.Linkname, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return fmt.Errorf("hardlink target %q is a directory", hdr.Linkname)
	}
	// flags 0: link the target itself, never what a symlink points to.
	if err := unix.Linkat(tdir, tname, own, base, 0); err != nil {
		return fmt.Errorf("link to %q: %w", hdr.Linkname, err)
	}
	return nil
}

func (x *extractor) device(parent int, base string, hdr *tar.Header) error {
	if hdr.Typeflag == tar.TypeChar && hdr.Devmajor == 0 && hdr.Devminor == 0 {
		// An overlay-format whiteout stored as is: same meaning as .wh.
		if err := x.replace(parent, base); err != nil {
			return err
		}
		if err := unix.Mknodat(parent, base, unix.S_IFCHR, 0); err != nil {
			return fmt.Errorf("whiteout: %w", err)
		}
		x.stats.Whiteouts++
		return nil
	}
	switch x.opt.Devices {
	case DevicesSkip:
		x.stats.SkippedDevices++
		return nil
	case DevicesCreate:
	default:
		return fmt.Errorf("device node %d:%d refused: a layer should not carry devices (apply with --devices=skip or --devices=create)",
			hdr.Devmajor, hdr.Devminor)
	}
	mode := uint32(unix.S_IFCHR)
	if hdr.Typeflag == tar.TypeBlock {
		mode = unix.S_IFBLK
	}
	if err := x.replace(parent, base); err != nil {
		return err
	}
	dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
	if err := unix.Mknodat(parent, base, mode|0o600, int(dev)); err != nil {
		return fmt.Errorf("mknod: %w", err)
	}
	return x.metadata(parent, base, hdr, -1)
}

// replace removes whatever is at name, as a later tar entry replaces an
// earlier one with the same name.
func (x *extractor) replace(parent int, name string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(parent, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return unix.Unlinkat(parent, name, 0)
	}
	// A directory replaced by something else. The walker's open path ends
	// at parent, so it holds no fd inside name. os.RemoveAll works with
	// openat and O_NOFOLLOW, and the /proc/self/fd path is parent itself.
	return os.RemoveAll(fmt.Sprintf("/proc/self/fd/%d/%s", parent, name))
}

// metadata sets owner, mode, xattrs and times of a non-directory. fd is
// the open file for a regular file, -1 otherwise.
func (x *extractor) metadata(parent int, base string, hdr *tar.Header, fd int) error {
	if err := unix.Fchownat(parent, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil && !x.mayNot(err) {
		return fmt.Errorf("chown %d:%d: %w", hdr.Uid, hdr.Gid, err)
	}
	if hdr.Typeflag != tar.TypeSymlink {
		mode := x.mode(hdr)
		var err error
		if fd >= 0 {
			err = unix.Fchmod(fd, mode)
		} else {
			err = unix.Fchmodat(parent, base, mode, 0)
		}
		if err != nil {
			return fmt.Errorf("chmod %#o: %w", mode, err)
		}
	}
	if err := x.xattrs(fmt.Sprintf("/proc/self/fd/%d/%s", parent, base), hdr); err != nil {
		return err
	}
	return setTimes(parent, base, hdr)
}

func (x *extractor) dirMetadata(d dirMeta) error {
	if len(d.parts) == 0 { // the root
		return x.metadata(x.root, ".", d.hdr, -1)
	}
	parent, err := x.w.dir(d.parts[:len(d.parts)-1])
	if err != nil {
		return err
	}
	return x.metadata(parent, d.parts[len(d.parts)-1], d.hdr, -1)
}

// mode is the permission bits to set; setuid and setgid are kept unless
// asked otherwise (a layer's /bin/su needs them; the layer store is 0700,
// so no user of the host can reach such a file).
func (x *extractor) mode(hdr *tar.Header) uint32 {
	m := uint32(hdr.Mode) & 07777
	if x.opt.NoSetuid {
		m &^= unix.S_ISUID | unix.S_ISGID
	}
	return m
}

// xattrs applies the entry's extended attributes, except overlay's own:
// trusted.overlay.opaque or .redirect from a tarball would let a layer
// hide or redirect lower layers' files behind the union's back.
func (x *extractor) xattrs(path string, hdr *tar.Header) error {
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok {
			continue
		}
		if isOverlayXattr(name) {
			x.stats.SkippedXattrs++
			continue
		}
		if err := unix.Lsetxattr(path, name, []byte(v), 0); err != nil {
			if errors.Is(err, unix.ENOTSUP) && hdr.Typeflag == tar.TypeSymlink {
				continue // user.* xattrs are not allowed on symlinks
			}
			if x.mayNot(err) {
				continue
			}
			return fmt.Errorf("set xattr %s: %w", name, err)
		}
	}
	return nil
}

// mayNot: without root, an owner or xattr the user may not give.
func (x *extractor) mayNot(err error) bool {
	return x.opt.Rootless && (errors.Is(err, unix.EPERM) || errors.Is(err, unix.EINVAL))
}

func setTimes(parent int, base string, hdr *tar.Header) error {
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = hdr.ModTime
	}
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(hdr.ModTime.UnixNano())}
	if err := unix.UtimesNanoAt(parent, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// A walker holds the open directory fds of the last path it resolved, so
// that the next path only opens the names it does not share with it. It
// refuses symlinks on the way instead of following them.
type walker struct {
	root  int
	names []string
	fds   []int
}

// dir returns an fd for the directory parts (relative to root), creating
// missing directories (mode 0755, as OCI's implied directories). The fd
// belongs to the walker: valid until its next call.
func (w *walker) dir(parts []string) (int, error) {
	common := 0
	for common < len(parts) && common < len(w.names) && parts[common] == w.names[common] {
		common++
	}
	w.truncate(common)
	for _, name := range parts[common:] {
		parent := w.root
		if n := len(w.fds); n > 0 {
			parent = w.fds[n-1]
		}
		fd, err := unix.Openat(parent, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			if err := unix.Mkdirat(parent, name, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
				return -1, fmt.Errorf("mkdir %s: %w", strings.Join(append(w.names, name), "/"), err)
			}
			fd, err = unix.Openat(parent, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		}
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return -1, fmt.Errorf("%w: parent %s is a symlink or not a directory", ErrUnsafe, strings.Join(append(w.names, name), "/"))
		}
		if err != nil {
			return -1, fmt.Errorf("open %s: %w", strings.Join(append(w.names, name), "/"), err)
		}
		w.names = append(w.names, name)
		w.fds = append(w.fds, fd)
	}
	if len(w.fds) == 0 {
		return w.root, nil
	}
	return w.fds[len(w.fds)-1], nil
}

func (w *walker) truncate(n int) {
	for i := len(w.fds) - 1; i >= n; i-- {
		unix.Close(w.fds[i])
	}
	w.fds = w.fds[:n]
	w.names = w.names[:n]
}

func (w *walker) reset() { w.truncate(0) }
