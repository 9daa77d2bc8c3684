//go:build linux

package layer

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

// A handle is one inode, open by fd, and what fstat said of it when opened.
type handle struct {
	fd int
	st unix.Stat_t
}

// openHandle opens name in the directory dir without following it.
func openHandle(dir int, name string) (handle, error) {
	fd, err := unix.Openat(dir, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return handle{fd: -1}, err
	}
	return newHandle(fd)
}

// newHandle takes over fd (closing it on error).
func newHandle(fd int) (handle, error) {
	h := handle{fd: fd}
	if err := unix.Fstat(fd, &h.st); err != nil {
		unix.Close(fd)
		return handle{fd: -1}, fmt.Errorf("fstat: %w", err)
	}
	return h, nil
}

func (h handle) close() {
	if h.fd >= 0 {
		unix.Close(h.fd)
	}
}

// proc is the magic link to the inode itself.
func (h handle) proc() string { return "/proc/self/fd/" + strconv.Itoa(h.fd) }

func (h handle) typ() uint32        { return h.st.Mode & unix.S_IFMT }
func (h handle) isDir() bool        { return h.typ() == unix.S_IFDIR }
func (h handle) isSymlink() bool    { return h.typ() == unix.S_IFLNK }
func (h handle) isRegular() bool    { return h.typ() == unix.S_IFREG }
func (h handle) id() fileID         { return fileID{dev: h.st.Dev, ino: h.st.Ino, typ: h.typ()} }
func (h handle) same(f fileID) bool { return h.id() == f }

// fileID is what identifies an inode, and its type: a name found to be a
// regular file when it was listed must still be that file when it is read.
type fileID struct {
	dev, ino uint64
	typ      uint32
}

func statID(st *unix.Stat_t) fileID {
	return fileID{dev: st.Dev, ino: st.Ino, typ: st.Mode & unix.S_IFMT}
}

// chown comes first of the metadata: it clears setuid and setgid bits.
func (h handle) chown(uid, gid int) error {
	if err := unix.Fchownat(h.fd, "", uid, gid, unix.AT_EMPTY_PATH); err != nil {
		return fmt.Errorf("chown %d:%d: %w", uid, gid, err)
	}
	return nil
}

func (h handle) chmod(mode uint32) error {
	if h.isSymlink() {
		return errors.New("chmod of a symlink: refusing")
	}
	if err := unix.Chmod(h.proc(), mode); err != nil {
		return fmt.Errorf("chmod %#o: %w", mode, err)
	}
	return nil
}

func (h handle) setTimes(atime, mtime unix.Timespec) error {
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, h.proc(), []unix.Timespec{atime, mtime}, 0); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

func (h handle) setXattr(name string, val []byte) error {
	return unix.Setxattr(h.proc(), name, val, 0)
}

// xattrs reads every extended attribute except overlay's own (those
// describe the layer a file came from, not the file).
func (h handle) xattrs() (map[string][]byte, error) {
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
		if name == "" || isOverlayXattr(name) {
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

// opaque reports whether the directory carries overlay's opaque mark
// (trusted.* for a mount by the host's root, user.* with userxattr).
func (h handle) opaque() bool {
	for _, name := range []string{xattrOpaqueTrusted, xattrOpaqueUser} {
		buf := make([]byte, 8)
		n, err := unix.Getxattr(h.proc(), name, buf)
		if err == nil && n == 1 && buf[0] == 'y' {
			return true
		}
	}
	return false
}

func (h handle) readlink() (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(h.fd, "", buf)
	if err != nil {
		return "", fmt.Errorf("readlink: %w", err)
	}
	return string(buf[:n]), nil
}

// open opens the regular file or directory for reading: the same inode,
// never a name that might have been swapped meanwhile.
func (h handle) open() (*os.File, error) {
	flags := unix.O_RDONLY | unix.O_CLOEXEC
	switch {
	case h.isRegular():
	case h.isDir():
		flags |= unix.O_DIRECTORY
	default:
		return nil, fmt.Errorf("open a file of type %#o for reading: refusing", h.typ())
	}
	fd, err := unix.Open(h.proc(), flags, 0)
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	return os.NewFile(uintptr(fd), h.proc()), nil
}

// fdNames lists the directory open at fd, sorted, leaving fd open.
func fdNames(fd int) ([]string, error) {
	h := handle{fd: fd}
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

// shortName keeps an error line short when a name is long (a path can be
// 4,095 bytes; a hostile one, longer): its start and its end.
func shortName(s string) string {
	const keep = 40
	if len(s) <= 2*keep+3 {
		return s
	}
	return s[:keep] + "…" + s[len(s)-keep:]
}
