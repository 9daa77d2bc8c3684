//go:build linux

package layer

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"

	"golang.org/x/sys/unix"

	"berth/07-unionfs/tree"
)

// The copy driver is the fallback for a host where overlay cannot be
// mounted (no overlay module, an upper directory on overlay or on 9p, an
// old kernel in a user namespace). It does what Docker's vfs driver does:
// the container gets its own full copy of the merged layers, so writes never
// reach a layer. It costs a copy per container instead of a mount, and the
// changes are found afterwards by comparing the copy with the layers
// (changes.go) instead of reading an upper directory.
//
// Both sides are trees (tree.go): the layers are read and the copy is
// written through directory fds, a path at a time beneath a root fd with
// no symlink followed, so a layer's symlinks are copied as symlinks and
// never followed, and a tree as deep as the kernel's path limit copies
// like any other.

// materialize copies the merged view of a stack of layers (top first)
// into dst, which must be empty or missing: whiteouts and opaque
// directories are applied, so dst holds exactly what a container on an
// overlay mount would see. rootless: see copier.
func materialize(layers []string, dst string, rootless bool) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dst, err)
	}
	s, err := tree.OpenStack(layers)
	if err != nil {
		return err
	}
	defer s.Close()
	out, err := tree.Open(dst)
	if err != nil {
		return err
	}
	defer out.Close()
	cp := newCopier(rootless)
	if err := cp.copyMerged(s.Root(), out, ""); err != nil {
		return err
	}
	if len(s.Layers) == 0 {
		return nil
	}
	// The root takes the metadata of the top layer's root.
	return cp.copyMeta(tree.Entry{Tree: s.Layers[0]}, out, "")
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

// copyMerged copies the merged directory s into the directory rel of out.
func (cp *copier) copyMerged(s tree.StackDir, out *tree.Tree, rel string) error {
	ents, err := s.Entries()
	if cp.rootless && errors.Is(err, os.ErrPermission) {
		return nil // the user may not read it, nor could the container: it stays empty
	}
	if err != nil {
		return err
	}
	// The files first, through one fd of the directory; then each
	// subdirectory, whose fd is opened afresh: one open directory at a
	// time, however deep the tree.
	dir, err := out.Dir(rel)
	if err != nil {
		return err
	}
	var subdirs []string
	for _, name := range tree.SortedKeys(ents) {
		e := ents[name]
		if e.IsDir() {
			if err := unix.Mkdirat(dir, name, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
				unix.Close(dir)
				return fmt.Errorf("mkdir %s: %w", out.Name(path.Join(rel, name)), err)
			}
			subdirs = append(subdirs, name)
			continue
		}
		if err := cp.copyEntry(e, dir, out, path.Join(rel, name)); err != nil {
			unix.Close(dir)
			return err
		}
	}
	unix.Close(dir)
	for _, name := range subdirs {
		r := path.Join(rel, name)
		if err := cp.copyMerged(s.Child(name), out, r); err != nil {
			return err
		}
		// After the children, so creating them does not move its mtime.
		if err := cp.copyMeta(ents[name], out, r); err != nil {
			return err
		}
	}
	return nil
}

// copyMergedAt copies the merged directory rel of a stack of layers into
// dst: used to seed an anonymous volume with what the image has there.
func copyMergedAt(layers []string, rel, dst string, rootless bool) error {
	s, err := tree.OpenStack(layers)
	if err != nil {
		return err
	}
	defer s.Close()
	out, err := tree.Open(dst)
	if err != nil {
		return err
	}
	defer out.Close()
	sd := s.Root()
	for _, name := range tree.SplitPath(rel) {
		sd = sd.Child(name)
	}
	return newCopier(rootless).copyMerged(sd, out, "")
}

// copyEntry copies one non-directory into the directory dir (rel in out):
// contents, owner, mode, xattrs, times.
func (cp *copier) copyEntry(e tree.Entry, dir int, out *tree.Tree, rel string) error {
	name := path.Base(rel)
	st := &e.Stat
	if st.Nlink > 1 {
		key := [2]uint64{st.Dev, st.Ino}
		if first, ok := cp.links[key]; ok {
			return cp.link(out, first, dir, name)
		}
		cp.links[key] = rel
	}
	src, err := e.Handle()
	if err != nil {
		return err
	}
	defer src.Close()
	switch src.Type() {
	case unix.S_IFREG:
		err := copyFile(src, dir, name)
		if cp.rootless && errors.Is(err, os.ErrPermission) {
			return nil // unreadable to the user, and so to the container
		}
		if err != nil {
			return fmt.Errorf("copy %s: %w", out.Name(rel), err)
		}
	case unix.S_IFLNK:
		target, err := src.Readlink()
		if err != nil {
			return err
		}
		if err := unix.Symlinkat(target, dir, name); err != nil {
			return fmt.Errorf("symlink %s: %w", out.Name(rel), err)
		}
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO, unix.S_IFSOCK:
		isDev := src.Type() == unix.S_IFCHR || src.Type() == unix.S_IFBLK
		if cp.rootless && isDev {
			return nil
		}
		if err := unix.Mknodat(dir, name, src.Stat.Mode, int(src.Stat.Rdev)); err != nil {
			return fmt.Errorf("mknod %s: %w", out.Name(rel), err)
		}
	default:
		return fmt.Errorf("copy %s: unknown file type %#o", out.Name(rel), src.Type())
	}
	dst, err := tree.OpenHandle(dir, name)
	if err != nil {
		return fmt.Errorf("open %s: %w", out.Name(rel), err)
	}
	defer dst.Close()
	return cp.setMeta(src, dst)
}

// link makes name in dir a hard link to the earlier copy first (in out).
func (cp *copier) link(out *tree.Tree, first string, dir int, name string) error {
	fdir, err := out.Dir(dirOf(first))
	if err != nil {
		return err
	}
	defer unix.Close(fdir)
	if err := unix.Linkat(fdir, path.Base(first), dir, name, 0); err != nil {
		return fmt.Errorf("link %s: %w", out.Name(first), err)
	}
	return nil
}

// dirOf is the directory of a relative path, "" for the root.
func dirOf(rel string) string {
	if d := path.Dir(rel); d != "." {
		return d
	}
	return ""
}

// copyFile copies the contents of src into a new file name in dir.
func copyFile(src tree.Handle, dir int, name string) error {
	in, err := src.Open()
	if err != nil {
		return err
	}
	defer in.Close()
	fd, err := unix.Openat(dir, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	out := os.NewFile(uintptr(fd), name)
	// io.Copy between two *os.File uses copy_file_range: a reflink on a
	// filesystem that can, an in-kernel copy otherwise.
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// copyMeta gives the directory rel of out the metadata of e.
func (cp *copier) copyMeta(e tree.Entry, out *tree.Tree, rel string) error {
	src, err := e.Handle()
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := out.Handle(rel)
	if err != nil {
		return err
	}
	defer dst.Close()
	return cp.setMeta(src, dst)
}

// setMeta gives dst the owner, mode, xattrs and times of src, through
// their fds. chown comes first because it clears the setuid and setgid
// bits.
func (cp *copier) setMeta(src, dst tree.Handle) error {
	st := &src.Stat
	if err := dst.Chown(int(st.Uid), int(st.Gid)); err != nil && !cp.mayNot(err) {
		return err
	}
	if !dst.IsSymlink() {
		if err := dst.Chmod(st.Mode & 07777); err != nil {
			return err
		}
	}
	xs, err := src.Xattrs()
	if err != nil {
		return err
	}
	for name, val := range xs {
		if err := dst.SetXattr(name, val); err != nil && !cp.mayNot(err) {
			return fmt.Errorf("set xattr %s: %w", name, err)
		}
	}
	return dst.SetTimes(st.Atim, st.Mtim)
}

// mayNot: without root, EPERM (not ours to give) and EINVAL (an id the
// user namespace does not map) are what may not be kept, not failures.
func (cp *copier) mayNot(err error) bool {
	return cp.rootless && (errors.Is(err, unix.EPERM) || errors.Is(err, unix.EINVAL))
}
