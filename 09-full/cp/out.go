//go:build linux

package cp

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// CopyOut copies src, a path in the container, to dst on the host, as
// docker cp CONTAINER:SRC DEST: into dst if it is a directory, else as
// dst; a SRC ending in "/." copies a directory's contents. The last name
// of src is not followed (a symlink is copied as a symlink).
func (r *Root) CopyOut(src, dst string) error {
	contents := strings.HasSuffix(src, "/.")
	src, as, err := r.source(src)
	if err != nil {
		return err
	}
	dir, name, err := r.parent(src)
	if err != nil {
		return fmt.Errorf("could not find the file %s in container: %w", src, err)
	}
	defer unix.Close(dir)
	var st unix.Stat_t
	if err := unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("could not find the file %s in container: %w", src, err)
	}
	srcIsDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	switch {
	case contents && !srcIsDir:
		return fmt.Errorf("%s: not a directory", src)
	case contents:
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
		sub, err := openDir(dir, name)
		if err != nil {
			return err
		}
		defer unix.Close(sub)
		return r.outChildren(sub, dst)
	case isDir(dst):
		dst = filepath.Join(dst, as)
	case srcIsDir && fileExists(dst):
		return fmt.Errorf("cannot copy a directory to a file: %s", dst)
	case strings.HasSuffix(dst, "/"):
		return fmt.Errorf("%s: no such directory", dst)
	}
	return r.out(dir, name, dst)
}

// source is the path to copy for src (its symlink followed with
// FollowLink) and the name it is copied as (src's own).
func (r *Root) source(src string) (p, as string, err error) {
	p = strings.TrimSuffix(src, "/.")
	as = path.Base(path.Clean("/" + p))
	if r.FollowLink {
		if p, err = r.followLink(p); err != nil {
			return "", "", fmt.Errorf("could not find the file %s in container: %w", src, err)
		}
	}
	return p, as, nil
}

// out copies the entry name of the container's directory dir to the host
// path dst.
func (r *Root) out(dir int, name, dst string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	mode := os.FileMode(st.Mode & 0o7777)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		sub, err := openDir(dir, name)
		if err != nil {
			return err
		}
		defer unix.Close(sub)
		if err := os.Mkdir(dst, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
		if err := r.outChildren(sub, dst); err != nil {
			return err
		}
		return os.Chmod(dst, mode)
	case unix.S_IFREG:
		// O_NONBLOCK: a name swapped for a FIFO meanwhile must not hang us;
		// fstat after the open says what was really opened.
		fd, err := unix.Openat(dir, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", name, err)
		}
		f := os.NewFile(uintptr(fd), name)
		defer f.Close()
		var now unix.Stat_t
		if err := unix.Fstat(fd, &now); err != nil || now.Mode&unix.S_IFMT != unix.S_IFREG {
			return fmt.Errorf("%s changed while it was copied: refused", name)
		}
		out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, f); err != nil {
			out.Close()
			return fmt.Errorf("copy %s: %w", name, err)
		}
		if err := out.Chmod(mode); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	case unix.S_IFLNK:
		target, err := readlinkat(dir, name)
		if err != nil {
			return err
		}
		// Its target is only text here: never followed on the host.
		if err := os.Remove(dst); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return os.Symlink(target, dst)
	}
	r.Warn("skipped %s: not a file, directory or symlink", name)
	return nil
}

func (r *Root) outChildren(dir int, dst string) error {
	names, err := readNames(dir)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := r.out(dir, n, filepath.Join(dst, n)); err != nil {
			return err
		}
	}
	return nil
}

// openDir opens name in dir as a directory, refusing a symlink.
func openDir(dir int, name string) (int, error) {
	fd, err := unix.Openat(dir, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open directory %s: %w", name, err)
	}
	return fd, nil
}

// readNames lists a directory by its fd (a duplicate: the caller keeps
// its own).
func readNames(dir int) ([]string, error) {
	dup, err := unix.Openat(dir, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(dup), "dir")
	defer f.Close()
	return f.Readdirnames(-1)
}

func readlinkat(dir int, name string) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dir, name, buf)
	if err != nil {
		return "", fmt.Errorf("readlink %s: %w", name, err)
	}
	return string(buf[:n]), nil
}

func fileExists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
