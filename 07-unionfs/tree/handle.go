//go:build linux

package tree

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Every file of a layer or of a container is someone else's: its name may
// be a symlink already (a hostile layer) or become one at any moment (a
// running container swaps it). So berth never reads or sets metadata
// through a path. An inode is opened once, by name from its directory's
// fd, with O_PATH|O_NOFOLLOW (a symlink is opened as itself), and from then
// on everything goes through that fd: fchownat(fd, "", AT_EMPTY_PATH), and,
// for what the kernel only offers by path (chmod, extended attributes and
// utimensat on an O_PATH fd), the magic link /proc/self/fd/N, which the
// kernel resolves to that very inode and no further. A symlink opened so is
// changed itself, never what it points to; and it is never chmod'ed (the
// kernel refuses, and berth does not ask). Only a regular file or a
// directory is ever opened for reading, again through /proc/self/fd/N.

// A Handle is one inode, open by fd, and what fstat said of it when opened.
type Handle struct {
	Fd   int
	Stat unix.Stat_t
}

// OpenHandle opens name in the directory dir without following it.
func OpenHandle(dir int, name string) (Handle, error) {
	fd, err := unix.Openat(dir, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return Handle{Fd: -1}, err
	}
	return NewHandle(fd)
}

// NewHandle takes over fd (closing it on error).
func NewHandle(fd int) (Handle, error) {
	h := Handle{Fd: fd}
	if err := unix.Fstat(fd, &h.Stat); err != nil {
		unix.Close(fd)
		return Handle{Fd: -1}, fmt.Errorf("fstat: %w", err)
	}
	return h, nil
}

// Close closes the handle's fd.
func (h Handle) Close() {
	if h.Fd >= 0 {
		unix.Close(h.Fd)
	}
}

// proc is the magic link to the inode itself.
func (h Handle) proc() string { return "/proc/self/fd/" + strconv.Itoa(h.Fd) }

func (h Handle) Type() uint32       { return h.Stat.Mode & unix.S_IFMT }
func (h Handle) IsDir() bool        { return h.Type() == unix.S_IFDIR }
func (h Handle) IsSymlink() bool    { return h.Type() == unix.S_IFLNK }
func (h Handle) IsRegular() bool    { return h.Type() == unix.S_IFREG }
func (h Handle) id() FileID         { return FileID{dev: h.Stat.Dev, ino: h.Stat.Ino, typ: h.Type()} }
func (h Handle) Same(f FileID) bool { return h.id() == f }

// FileID is what identifies an inode, and its type: a name found to be a
// regular file when it was listed must still be that file when it is read.
type FileID struct {
	dev, ino uint64
	typ      uint32
}

// StatID is the FileID of what st describes.
func StatID(st *unix.Stat_t) FileID {
	return FileID{dev: st.Dev, ino: st.Ino, typ: st.Mode & unix.S_IFMT}
}

// Chown comes first of the metadata: it clears setuid and setgid bits.
func (h Handle) Chown(uid, gid int) error {
	if err := unix.Fchownat(h.Fd, "", uid, gid, unix.AT_EMPTY_PATH); err != nil {
		return fmt.Errorf("chown %d:%d: %w", uid, gid, err)
	}
	return nil
}

func (h Handle) Chmod(mode uint32) error {
	if h.IsSymlink() {
		return errors.New("chmod of a symlink: refusing")
	}
	if err := unix.Chmod(h.proc(), mode); err != nil {
		return fmt.Errorf("chmod %#o: %w", mode, err)
	}
	return nil
}

func (h Handle) SetTimes(atime, mtime unix.Timespec) error {
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, h.proc(), []unix.Timespec{atime, mtime}, 0); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

func (h Handle) SetXattr(name string, val []byte) error {
	return unix.Setxattr(h.proc(), name, val, 0)
}

// Xattrs reads every extended attribute except overlay's own (those
// describe the layer a file came from, not the file).
func (h Handle) Xattrs() (map[string][]byte, error) {
	p := h.proc()
	size, err := unix.Listxattr(p, nil)
	if errors.Is(err, unix.ENOTSUP) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list xattrs: %w", err)
	}
	if size == 0 {
		return nil, nil
	}
	buf := make([]byte, size)
	n, err := unix.Listxattr(p, buf)
	if err != nil {
		return nil, fmt.Errorf("list xattrs: %w", err)
	}
	out := map[string][]byte{}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		if name == "" || IsOverlayXattr(name) {
			continue
		}
		size, err := unix.Getxattr(p, name, nil)
		if err != nil {
			return nil, fmt.Errorf("get xattr %s: %w", name, err)
		}
		val := make([]byte, size)
		n, err := unix.Getxattr(p, name, val)
		if err != nil {
			return nil, fmt.Errorf("get xattr %s: %w", name, err)
		}
		out[name] = val[:n]
	}
	return out, nil
}

// Opaque reports whether the directory carries overlay's opaque mark
// (trusted.* for a mount by the host's root, user.* with userxattr).
func (h Handle) Opaque() bool {
	for _, name := range []string{XattrOpaqueTrusted, XattrOpaqueUser} {
		buf := make([]byte, 8)
		n, err := unix.Getxattr(h.proc(), name, buf)
		if err == nil && n == 1 && buf[0] == 'y' {
			return true
		}
	}
	return false
}

func (h Handle) Readlink() (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(h.Fd, "", buf)
	if err != nil {
		return "", fmt.Errorf("readlink: %w", err)
	}
	return string(buf[:n]), nil
}

// Open opens the regular file or directory for reading: the same inode,
// never a name that might have been swapped meanwhile.
func (h Handle) Open() (*os.File, error) {
	flags := unix.O_RDONLY | unix.O_CLOEXEC
	switch {
	case h.IsRegular():
	case h.IsDir():
		flags |= unix.O_DIRECTORY
	default:
		return nil, fmt.Errorf("open a file of type %#o for reading: refusing", h.Type())
	}
	fd, err := unix.Open(h.proc(), flags, 0)
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	return os.NewFile(uintptr(fd), h.proc()), nil
}

// FDNames lists the directory open at fd, sorted, leaving fd open.
func fdNames(fd int) ([]string, error) {
	h := Handle{Fd: fd}
	f, err := unix.Open(h.proc(), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open directory: %w", err)
	}
	d := os.NewFile(uintptr(f), "dir")
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("readdir: %w", err)
	}
	sort.Strings(names)
	return names, nil
}

// ShortName keeps an error line short when a name is long (a path can be
// 4,095 bytes; a hostile one, longer): its start and its end.
func ShortName(s string) string {
	const keep = 40
	if len(s) <= 2*keep+3 {
		return s
	}
	return s[:keep] + "…" + s[len(s)-keep:]
}

// Trunc keeps the first n bytes of a long string for a message.
func Trunc(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
