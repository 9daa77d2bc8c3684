//go:build linux

package layer

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// The copy driver is the fallback for a host where overlay cannot be
// mounted (no overlay module, an upper directory on overlay or on 9p, an
// old kernel in a user namespace). It does what Docker's vfs driver does:
// the container gets its own full copy of the merged layers, so writes never
// reach a layer. It costs a copy per container instead of a mount, and the
// changes are found afterwards by comparing the copy with the layers
// (changes.go) instead of reading an upper directory.

// materialize copies the merged view of a stack of layers (top first)
// into dst, which must be empty or missing: whiteouts and opaque
// directories are applied, so dst holds exactly what a container on an
// overlay mount would see. rootless: see copier.
func materialize(layers []string, dst string, rootless bool) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dst, err)
	}
	s := newStack(layers)
	cp := newCopier(rootless)
	if err := cp.copyMerged(s, dst); err != nil {
		return err
	}
	if len(s) == 0 {
		return nil
	}
	// The root takes the metadata of the top layer's root.
	var st unix.Stat_t
	if err := unix.Lstat(s[0], &st); err != nil {
		return &os.PathError{Op: "lstat", Path: s[0], Err: err}
	}
	return cp.setMeta(s[0], dst, &st)
}

// A copier copies files with their metadata. As root it copies all of it
// or fails. Without root (a rootless container: the copy driver's copy
// made inside the container's user namespace, or the init layer written
// by the user) it keeps what it may, as rootless Docker and podman do: an
// owner it cannot give (an id outside the namespace's map) stays the
// copier's, that is the container's root; an extended attribute it may
// not set (trusted.*, security.*) is left out; a device node, which only
// the host's root may create, is skipped; and what the user may not read
// (the shared busybox tree's /root) is left out, as the container could
// not read it either.
type copier struct {
	rootless bool
	// links remembers the first copy of each multiply-linked inode, so a
	// second name becomes a link to it rather than a second file.
	links map[[2]uint64]string
}

func newCopier(rootless bool) *copier {
	return &copier{rootless: rootless, links: map[[2]uint64]string{}}
}

func (cp *copier) copyMerged(s stackDir, dst string) error {
	ents, err := s.entries()
	if cp.rootless && errors.Is(err, os.ErrPermission) {
		return nil // the user may not read it, nor could the container: it stays empty
	}
	if err != nil {
		return err
	}
	for _, name := range sortedKeys(ents) {
		e := ents[name]
		target := filepath.Join(dst, name)
		if e.isDir() {
			if err := os.Mkdir(target, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
				return err
			}
			if err := cp.copyMerged(s.child(name), target); err != nil {
				return err
			}
			// After the children, so creating them does not move its mtime.
			if err := cp.setMeta(e.path, target, &e.st); err != nil {
				return err
			}
			continue
		}
		if err := cp.copyEntry(e.path, &e.st, target); err != nil {
			return err
		}
	}
	return nil
}

// copyMergedAt copies the merged directory rel of a stack of layers into
// dst: used to seed an anonymous volume with what the image has there.
func copyMergedAt(layers []string, rel, dst string, rootless bool) error {
	s := newStack(layers)
	for _, name := range splitPath(rel) {
		s = s.child(name)
	}
	return newCopier(rootless).copyMerged(s, dst)
}

// copyEntry copies one non-directory: contents, owner, mode, xattrs, times.
func (cp *copier) copyEntry(src string, st *unix.Stat_t, dst string) error {
	if st.Nlink > 1 && st.Mode&unix.S_IFMT != unix.S_IFDIR {
		key := [2]uint64{st.Dev, st.Ino}
		if first, ok := cp.links[key]; ok {
			if err := os.Link(first, dst); err != nil {
				return fmt.Errorf("link %s: %w", dst, err)
			}
			return nil
		}
		cp.links[key] = dst
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		err := copyFile(src, dst)
		if cp.rootless && errors.Is(err, os.ErrPermission) {
			return nil // unreadable to the user, and so to the container
		}
		if err != nil {
			return err
		}
	case unix.S_IFLNK:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := os.Symlink(target, dst); err != nil {
			return err
		}
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO, unix.S_IFSOCK:
		isDev := st.Mode&unix.S_IFMT == unix.S_IFCHR || st.Mode&unix.S_IFMT == unix.S_IFBLK
		if cp.rootless && isDev {
			return nil
		}
		if err := unix.Mknod(dst, st.Mode, int(st.Rdev)); err != nil {
			return &os.PathError{Op: "mknod", Path: dst, Err: err}
		}
	default:
		return fmt.Errorf("copy %s: unknown file type %#o", src, st.Mode&unix.S_IFMT)
	}
	return cp.setMeta(src, dst, st)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	// io.Copy between two *os.File uses copy_file_range: a reflink on a
	// filesystem that can, an in-kernel copy otherwise.
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}

// setMeta gives dst the owner, mode, xattrs and times of src (st).
// chown comes first because it clears the setuid and setgid bits.
func (cp *copier) setMeta(src, dst string, st *unix.Stat_t) error {
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil && !cp.mayNot(err) {
		return &os.PathError{Op: "lchown", Path: dst, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		if err := unix.Chmod(dst, st.Mode&07777); err != nil {
			return &os.PathError{Op: "chmod", Path: dst, Err: err}
		}
	}
	if err := cp.copyXattrs(src, dst); err != nil {
		return err
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimensat", Path: dst, Err: err}
	}
	return nil
}

// mayNot: without root, EPERM (not ours to give) and EINVAL (an id the
// user namespace does not map) are what may not be kept, not failures.
func (cp *copier) mayNot(err error) bool {
	return cp.rootless && (errors.Is(err, unix.EPERM) || errors.Is(err, unix.EINVAL))
}

// copyXattrs copies extended attributes, except overlay's own: those
// describe the layer a file came from, not the file.
func (cp *copier) copyXattrs(src, dst string) error {
	xs, err := listXattrs(src)
	if err != nil {
		return err
	}
	for name, val := range xs {
		if err := unix.Lsetxattr(dst, name, val, 0); err != nil && !cp.mayNot(err) {
			return fmt.Errorf("set xattr %s on %s: %w", name, dst, err)
		}
	}
	return nil
}

// listXattrs reads every extended attribute of path except overlay's.
func listXattrs(path string) (map[string][]byte, error) {
	size, err := unix.Llistxattr(path, nil)
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		return nil, &os.PathError{Op: "llistxattr", Path: path, Err: err}
	}
	if size == 0 {
		return nil, nil
	}
	buf := make([]byte, size)
	n, err := unix.Llistxattr(path, buf)
	if err != nil {
		return nil, &os.PathError{Op: "llistxattr", Path: path, Err: err}
	}
	out := map[string][]byte{}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		if name == "" || isOverlayXattr(name) {
			continue
		}
		val, err := getXattr(path, name)
		if err != nil {
			return nil, err
		}
		out[name] = val
	}
	return out, nil
}

func getXattr(path, name string) ([]byte, error) {
	size, err := unix.Lgetxattr(path, name, nil)
	if err != nil {
		return nil, fmt.Errorf("get xattr %s of %s: %w", name, path, err)
	}
	buf := make([]byte, size)
	n, err := unix.Lgetxattr(path, name, buf)
	if err != nil {
		return nil, fmt.Errorf("get xattr %s of %s: %w", name, path, err)
	}
	return buf[:n], nil
}

// isOverlayXattr: overlay keeps its bookkeeping (opaque, redirect,
// origin, metacopy) in trusted.overlay.* or, with userxattr, user.overlay.*.
func isOverlayXattr(name string) bool {
	return strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.")
}
