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
	"syscall"

	"golang.org/x/sys/unix"
)

// CopyIn copies src, a path on the host, to dst in the container, as
// docker cp SRC CONTAINER:DEST: into dst if it is a directory there, else
// as dst; a SRC ending in "/." copies a directory's contents. What is
// written belongs to the container's root (its uid 0 on the host), or,
// with archive, keeps the host file's owner as the container's ids.
func (r *Root) CopyIn(src, dst string, archive bool) error {
	contents := strings.HasSuffix(src, "/.")
	as := filepath.Base(strings.TrimSuffix(src, "/."))
	if r.FollowLink { // the host's path, the user's own: followed as given
		real, err := filepath.EvalSymlinks(strings.TrimSuffix(src, "/."))
		if err != nil {
			return err
		}
		if src = real; contents {
			src += "/."
		}
	}
	st, err := os.Lstat(strings.TrimSuffix(src, "/."))
	if err != nil {
		return err
	}
	if contents && !st.IsDir() {
		return fmt.Errorf("%s: not a directory", src)
	}
	// dst itself, every symlink resolved in the container's root.
	if fd, err := r.resolve(dst, unix.O_PATH|unix.O_DIRECTORY); err == nil {
		defer unix.Close(fd)
		if contents {
			return r.inChildren(strings.TrimSuffix(src, "/."), fd, archive)
		}
		return r.in(src, fd, as, archive)
	}
	if strings.HasSuffix(dst, "/") {
		return fmt.Errorf("%s: no such directory in the container", dst)
	}
	dir, name, err := r.parent(dst)
	if err != nil {
		return fmt.Errorf("could not find the directory of %s in container: %w", dst, err)
	}
	defer unix.Close(dir)
	if contents {
		if err := r.in(strings.TrimSuffix(src, "/."), dir, name, archive); err != nil {
			return err
		}
		return nil
	}
	return r.in(src, dir, name, archive)
}

// in copies the host path src to the entry name of the container's
// directory dir.
func (r *Root) in(src string, dir int, name string, archive bool) error {
	st, err := os.Lstat(src)
	if err != nil {
		return err
	}
	uid, gid := r.owner(st, archive)
	mode := unixMode(st)
	switch {
	case st.IsDir():
		if err := unix.Mkdirat(dir, name, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("mkdir %s: %w", name, err)
		}
		sub, err := openDir(dir, name) // a symlink there: refused, not followed
		if err != nil {
			return err
		}
		defer unix.Close(sub)
		if err := r.inChildren(src, sub, archive); err != nil {
			return err
		}
		if err := unix.Fchown(sub, uid, gid); err != nil {
			return fmt.Errorf("chown %s: %w", name, err)
		}
		return fchmod(sub, mode)
	case st.Mode().IsRegular():
		if err := replace(dir, name); err != nil {
			return err
		}
		fd, err := unix.Openat(dir, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return fmt.Errorf("create %s: %w", name, err)
		}
		out := os.NewFile(uintptr(fd), name)
		defer out.Close()
		in, err := os.Open(src)
		if err != nil {
			return err
		}
		defer in.Close()
		if _, err := io.Copy(out, in); err != nil {
			return fmt.Errorf("copy to %s: %w", name, err)
		}
		if err := unix.Fchown(fd, uid, gid); err != nil {
			return fmt.Errorf("chown %s: %w", name, err)
		}
		return fchmod(fd, mode)
	case st.Mode()&os.ModeSymlink != 0:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := replace(dir, name); err != nil {
			return err
		}
		if err := unix.Symlinkat(target, dir, name); err != nil {
			return fmt.Errorf("symlink %s: %w", name, err)
		}
		return unix.Fchownat(dir, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW)
	}
	r.Warn("skipped %s: not a file, directory or symlink", src)
	return nil
}

func (r *Root) inChildren(src string, dir int, archive bool) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := r.in(filepath.Join(src, e.Name()), dir, e.Name(), archive); err != nil {
			return err
		}
	}
	return nil
}

// replace removes what is at name in dir, unless it is a directory: the
// new entry is then created with O_EXCL, never written through a file or
// symlink the container left there.
func replace(dir int, name string) error {
	var st unix.Stat_t
	err := unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return fmt.Errorf("cannot overwrite directory %q with non-directory", path.Clean(name))
	}
	if err := unix.Unlinkat(dir, name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	return nil
}

// owner is who a copied file belongs to, on the host: the container's
// root, or with archive the source's ids taken as the container's.
func (r *Root) owner(st os.FileInfo, archive bool) (int, int) {
	uid, gid := uint32(0), uint32(0)
	if archive {
		if s, ok := st.Sys().(*syscall.Stat_t); ok {
			uid, gid = s.Uid, s.Gid
		}
	}
	return hostID(r.uids, uid), hostID(r.gids, gid)
}

func unixMode(st os.FileInfo) uint32 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return s.Mode & 0o7777
	}
	return uint32(st.Mode().Perm())
}

// fchmod sets the mode through the fd (a directory or regular file we
// opened ourselves).
func fchmod(fd int, mode uint32) error {
	if err := unix.Fchmod(fd, mode); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	return nil
}
