//go:build linux

package untar

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"berth/07-unionfs/tree"
)

// What each kind of tar entry becomes, and how an entry's metadata is
// set: through an fd of the entry itself (handle.go), never by name.

// opaqueXattr is the name of overlay's opaque mark for this layer.
func (x *extractor) opaqueXattr() string {
	if x.opt.Userxattr {
		return tree.XattrOpaqueUser
	}
	return tree.XattrOpaqueTrusted
}

// markOpaque marks the directory open at fd opaque.
func (x *extractor) markOpaque(fd int) error {
	if err := unix.Fsetxattr(fd, x.opaqueXattr(), []byte("y"), 0); err != nil {
		return fmt.Errorf("mark opaque (%s): %w", x.opaqueXattr(), err)
	}
	x.stats.Opaque++
	return nil
}

// whiteout turns .wh.NAME into overlay's whiteout for NAME, and
// .wh..wh..opq into the opaque mark on the parent directory.
//
// Whiteouts delete what the layers BELOW have, never what the same layer
// has (OCI image spec, layer.md: "files that are present in the same layer
// as a whiteout file can only be hidden by whiteout files in subsequent
// layers"), whichever comes first in the tarball. So .wh.NAME where this
// layer already has NAME keeps it: a file of this layer hides the lower
// NAME by being there; a directory of this layer is made opaque, so that
// what the lower NAME held stays deleted while this layer's files in it
// stay. (An entry NAME after .wh.NAME replaces the whiteout the same way:
// see mkdir and walker.dir.)
func (x *extractor) whiteout(parent int, dirParts []string, base string) error {
	if base == tree.OpaqueMarker {
		return x.markOpaque(parent)
	}
	if strings.HasPrefix(base, tree.WhiteoutMeta) {
		return nil // aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): not content
	}
	name := strings.TrimPrefix(base, tree.WhiteoutPrefix)
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("%w: whiteout of %q", ErrUnsafe, name)
	}
	var st unix.Stat_t
	err := unix.Fstatat(parent, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case errors.Is(err, unix.ENOENT):
		if err := unix.Mknodat(parent, name, unix.S_IFCHR, 0); err != nil {
			return fmt.Errorf("whiteout %s: mknod 0/0: %w", name, err)
		}
		x.stats.Whiteouts++
		return nil
	case err != nil:
		return fmt.Errorf("whiteout %s: %w", name, err)
	case st.Mode&unix.S_IFMT == unix.S_IFDIR:
		fd, err := unix.Openat(parent, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("whiteout %s: open the layer's own directory: %w", name, err)
		}
		defer unix.Close(fd)
		return x.markOpaque(fd)
	}
	return nil // a whiteout already, or this layer's own file: kept
}

func (x *extractor) mkdir(parent int, parts []string, base string, hdr *tar.Header) error {
	var st unix.Stat_t
	err := unix.Fstatat(parent, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	overWhiteout := err == nil && tree.IsWhiteout(&st)
	if err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
		if err := x.replace(parent, parts[:len(parts)-1], base); err != nil {
			return err
		}
		err = unix.ENOENT
	}
	if err != nil {
		if err := unix.Mkdirat(parent, base, 0o700); err != nil {
			return fmt.Errorf("mkdir: %w", err)
		}
	}
	if overWhiteout {
		// .wh.NAME, then NAME/: the lower NAME stays deleted.
		fd, err := unix.Openat(parent, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open: %w", err)
		}
		defer unix.Close(fd)
		if err := x.markOpaque(fd); err != nil {
			return err
		}
	}
	x.dirs.add(parts, x.metaOf(hdr))
	return nil
}

// dirOverWhiteout replaces this layer's whiteout name with a directory
// the walker needs as a parent (.wh.d, then d/f without d/): opaque, as
// mkdir makes it.
func (x *extractor) dirOverWhiteout(parent int, name string) error {
	if err := unix.Unlinkat(parent, name, 0); err != nil {
		return err
	}
	if err := unix.Mkdirat(parent, name, 0o755); err != nil {
		return err
	}
	fd, err := unix.Openat(parent, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return x.markOpaque(fd)
}

func (x *extractor) file(tr *tar.Reader, parent int, dirParts []string, base string, hdr *tar.Header) error {
	if hdr.Size < 0 || hdr.Size > x.opt.MaxBytes-x.stats.Bytes {
		return fmt.Errorf("layer would exceed the size bound of %d bytes (entry of %d bytes after %d written): refusing (a tar bomb?)",
			x.opt.MaxBytes, hdr.Size, x.stats.Bytes)
	}
	if err := x.replace(parent, dirParts, base); err != nil {
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
	h := tree.Handle{Fd: fd}
	if err := unix.Fstat(fd, &h.Stat); err != nil {
		return fmt.Errorf("fstat: %w", err)
	}
	return x.setMeta(h, x.metaOf(hdr))
}

func (x *extractor) hardlink(parent int, dirParts []string, base string, hdr *tar.Header) error {
	tparts, err := cleanName(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("hardlink target %q: %w", tree.ShortName(hdr.Linkname), err)
	}
	if len(tparts) == 0 {
		return fmt.Errorf("%w: hardlink to the root", ErrUnsafe)
	}
	// Hold the entry's parent while the walker moves to the target's.
	own, err := unix.Dup(parent)
	if err != nil {
		return err
	}
	defer unix.Close(own)
	if err := x.replace(own, dirParts, base); err != nil {
		return err
	}
	tdir, err := x.w.dir(tparts[:len(tparts)-1])
	if err != nil {
		return fmt.Errorf("hardlink target %q: %w", tree.ShortName(hdr.Linkname), err)
	}
	tname := tparts[len(tparts)-1]
	var st unix.Stat_t
	if err := unix.Fstatat(tdir, tname, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("hardlink target %q is not in the layer: %w", tree.ShortName(hdr.Linkname), err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return fmt.Errorf("hardlink target %q is a directory", tree.ShortName(hdr.Linkname))
	}
	// flags 0: link the target itself, never what a symlink points to.
	if err := unix.Linkat(tdir, tname, own, base, 0); err != nil {
		return fmt.Errorf("link to %q: %w", tree.ShortName(hdr.Linkname), err)
	}
	return nil
}

func (x *extractor) device(parent int, dirParts []string, base string, hdr *tar.Header) error {
	if hdr.Typeflag == tar.TypeChar && hdr.Devmajor == 0 && hdr.Devminor == 0 {
		// An overlay-format whiteout stored as is: same meaning as .wh.
		return x.whiteout(parent, dirParts, tree.WhiteoutPrefix+base)
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
	if err := x.replace(parent, dirParts, base); err != nil {
		return err
	}
	dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
	if err := unix.Mknodat(parent, base, mode|0o600, int(dev)); err != nil {
		return fmt.Errorf("mknod: %w", err)
	}
	return x.created(parent, base, mode, hdr)
}

// replace removes whatever is at name in the directory dirParts, as a
// later tar entry replaces an earlier one with the same name. A directory
// is forgotten with everything below it: its metadata must never be set
// on what replaced it.
func (x *extractor) replace(parent int, dirParts []string, name string) error {
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
	x.dirs.forget(dirParts, name)
	// The walker's open path ends at parent, so it holds no fd inside
	// name. os.RemoveAll works with openat and O_NOFOLLOW, and the
	// /proc/self/fd path is parent itself.
	return os.RemoveAll(fmt.Sprintf("/proc/self/fd/%d/%s", parent, name))
}

// meta is what an entry says of its inode besides its contents.
type meta struct {
	uid, gid     int
	mode         uint32 // permission bits
	atime, mtime unix.Timespec
	xattrs       []xattr // sorted by name; overlay's own left out
}

type xattr struct{ name, value string }

func (x *extractor) metaOf(hdr *tar.Header) *meta {
	m := &meta{uid: hdr.Uid, gid: hdr.Gid, mode: x.mode(hdr), mtime: timespec(hdr.ModTime), atime: timespec(hdr.AccessTime)}
	if hdr.AccessTime.IsZero() {
		m.atime = m.mtime
	}
	// trusted.overlay.opaque or .redirect from a tarball would let a layer
	// hide or redirect lower layers' files behind the union's back.
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok {
			continue
		}
		if tree.IsOverlayXattr(name) {
			x.stats.SkippedXattrs++
			continue
		}
		m.xattrs = append(m.xattrs, xattr{strings.Clone(name), strings.Clone(v)})
	}
	sort.Slice(m.xattrs, func(i, j int) bool { return m.xattrs[i].name < m.xattrs[j].name })
	return m
}

func timespec(t time.Time) unix.Timespec {
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}

// created sets the metadata of a symlink, fifo or device node just made
// in parent, through an fd of the node itself.
func (x *extractor) created(parent int, name string, typ uint32, hdr *tar.Header) error {
	h, err := tree.OpenHandle(parent, name)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer h.Close()
	if h.Type() != typ {
		return fmt.Errorf("%w: not the %#o just made (changed meanwhile)", ErrUnsafe, typ)
	}
	return x.setMeta(h, x.metaOf(hdr))
}

// setMeta gives an inode its owner, mode, xattrs and times, in that order
// (chown clears setuid and setgid; the times go last, after everything
// that would move them). A symlink's mode is never set: there is none.
func (x *extractor) setMeta(h tree.Handle, m *meta) error {
	if err := h.Chown(m.uid, m.gid); err != nil && !x.mayNot(err) {
		return err
	}
	if !h.IsSymlink() {
		if err := h.Chmod(m.mode); err != nil {
			return err
		}
	}
	for _, a := range m.xattrs {
		err := h.SetXattr(a.name, []byte(a.value))
		switch {
		case err == nil, x.mayNot(err):
		case !h.IsRegular() && !h.IsDir() && (errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOTSUP)) && strings.HasPrefix(a.name, "user."):
			// user.* xattrs exist only on files and directories
		default:
			return fmt.Errorf("set xattr %s: %w", a.name, err)
		}
	}
	return h.SetTimes(m.atime, m.mtime)
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

// mayNot: without root, an owner or xattr the user may not give.
func (x *extractor) mayNot(err error) bool {
	return x.opt.Rootless && (errors.Is(err, unix.EPERM) || errors.Is(err, unix.EINVAL))
}
