//go:build linux

package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	securejoin "github.com/cyphar/filepath-securejoin"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Every mount into the rootfs goes through a file descriptor, never a path
// string. The rootfs is hostile input: an image chooses its symlinks, and
// in stages 03 to 06 another container that shares the busybox tree can
// change it while this one is being set up. A destination resolved to a
// string and then mounted by that string can be swapped for a symlink in
// between, and the mount lands wherever the link points: on the host (the
// CVE-2021-30465 pattern). So, as runc does since that CVE:
//
//   - a mount point is found, or made, from an O_PATH handle on the root,
//     one component at a time, never leaving it (github.com/cyphar/
//     filepath-securejoin's pathrs-lite: MkdirAllHandle, OpenatInRoot; or
//     openat with O_NOFOLLOW for a name right under a handle);
//   - mount(2) gets /proc/self/fd/N of that handle as its target: the
//     kernel follows the descriptor to the very directory it holds, and no
//     path is looked up again;
//   - a second call on the new mount (a read-only bind) first reopens it
//     inside the root and checks it is the mount just made.

// procPath names an open file for a mount call: /proc/self/fd/N, a "magic
// link" that the kernel resolves to the file the descriptor holds.
func procPath(f *os.File) string { return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())) }

// openRoot opens the rootfs itself. Its path is the runtime's choice
// (--rootfs, or stage 07's overlay), not the image's.
func openRoot(root string) (*os.File, error) {
	f, err := os.OpenFile(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open rootfs: %w", err)
	}
	return f, nil
}

// openTmpfs opens the tmpfs just mounted on name, right under the root,
// and checks that it is one: a mount point cannot be renamed or removed,
// so this is the mount that was made.
func openTmpfs(rootDir *os.File, root, name string) (*os.File, error) {
	fd, err := unix.Openat(int(rootDir.Fd()), name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s/%s after mounting it: %w", root, name, err)
	}
	f := os.NewFile(uintptr(fd), filepath.Join(root, name))
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil || st.Type != unix.TMPFS_MAGIC {
		f.Close()
		return nil, fmt.Errorf("%s/%s is not the tmpfs just mounted there: refused", root, name)
	}
	return f, nil
}

// subdir makes the directory name under dir (a directory this runtime
// made) and opens it for a mount.
func subdir(dir *os.File, name string, mode uint32) (*os.File, error) {
	if err := unix.Mkdirat(int(dir.Fd()), name, mode); err != nil {
		return nil, fmt.Errorf("mkdir %s/%s: %w", dir.Name(), name, err)
	}
	return openPath(dir, name, unix.O_DIRECTORY)
}

// openPath opens name right under dir as an O_PATH handle, without
// following a symlink.
func openPath(dir *os.File, name string, flags int) (*os.File, error) {
	fd, err := unix.Openat(int(dir.Fd()), name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC|flags, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s/%s: %w", dir.Name(), name, err)
	}
	return os.NewFile(uintptr(fd), filepath.Join(dir.Name(), name)), nil
}

// remountBind makes the bind of src just mounted at rel read-only. The
// handle the mount was made on holds the directory under the new mount,
// not the mount itself, so it reopens rel inside the root and checks that
// it found the bind: a bind's root is its source, the same file.
func remountBind(rootDir *os.File, rel string, src *os.File, dest string) error {
	f, err := pathrs.OpenatInRoot(rootDir, rel)
	if err != nil {
		return fmt.Errorf("reopen %s after mounting it: %w", dest, err)
	}
	defer f.Close()
	var a, b unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &a); err != nil {
		return fmt.Errorf("stat %s: %w", dest, err)
	}
	if err := unix.Fstat(int(src.Fd()), &b); err != nil {
		return fmt.Errorf("stat the source of %s: %w", dest, err)
	}
	if a.Dev != b.Dev || a.Ino != b.Ino {
		return fmt.Errorf("mount destination %s changed while it was being mounted: refused", dest)
	}
	return remountReadOnly(procPath(f))
}

// makeTarget finds the mount point for dest inside the root, making it if
// it is missing (a directory, or an empty file to bind a file on), and
// returns it open, with its path relative to the root. securejoin computes
// where dest leads in the root now, following its symlinks as the
// container would see them; pathrs-lite then makes and opens it from the
// root's handle, component by component, so that whatever changed in the
// meantime it stays inside the root.
func makeTarget(rootDir *os.File, root, dest string, dir bool) (*os.File, string, error) {
	resolved, err := securejoin.SecureJoin(root, dest)
	if err != nil {
		return nil, "", fmt.Errorf("resolve mount destination %s in %s: %w", dest, root, err)
	}
	rel, err := filepath.Rel(root, resolved)
	if err != nil {
		return nil, "", fmt.Errorf("resolve mount destination %s in %s: %w", dest, root, err)
	}
	if dir {
		f, err := pathrs.MkdirAllHandle(rootDir, rel, 0o755)
		if err != nil {
			return nil, "", fmt.Errorf("create mount point %s: %w", dest, err)
		}
		return f, rel, nil
	}
	parent, err := pathrs.MkdirAllHandle(rootDir, filepath.Dir(rel), 0o755)
	if err != nil {
		return nil, "", fmt.Errorf("create mount point %s: %w", dest, err)
	}
	defer parent.Close()
	base := filepath.Base(rel)
	fd, err := unix.Openat(int(parent.Fd()), base, unix.O_CREAT|unix.O_NOFOLLOW|unix.O_RDONLY|unix.O_CLOEXEC, 0o644)
	if err != nil {
		// ELOOP: a symlink appeared where securejoin saw none.
		return nil, "", fmt.Errorf("create mount point %s: %w", dest, err)
	}
	unix.Close(fd)
	f, err := openPath(parent, base, 0)
	if err != nil {
		return nil, "", fmt.Errorf("create mount point %s: %w", dest, err)
	}
	return f, rel, nil
}

// mkdirIn makes sure root/name exists as a mount point, and opens it. A
// symlink there is refused, as runc does, not followed: /proc and /sys are
// where the kernel's own files are expected, and a link would put them
// elsewhere.
func mkdirIn(rootDir *os.File, root, name string) (*os.File, error) {
	err := unix.Mkdirat(int(rootDir.Fd()), name, 0o755)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("create mount point %s/%s: %w", root, name, err)
	}
	f, err := openPath(rootDir, name, 0)
	if err != nil {
		return nil, fmt.Errorf("create mount point %s/%s: %w", root, name, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("stat %s/%s: %w", root, name, err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return f, nil
	case unix.S_IFLNK:
		f.Close()
		return nil, fmt.Errorf("/%s in rootfs %s is a symlink: refusing to mount over it", name, root)
	}
	f.Close()
	return nil, fmt.Errorf("/%s in rootfs %s is not a directory: refusing to mount over it", name, root)
}

// readOnlyBelow makes every mount under the bind at rel read-only too
// (OCI's "rro", Docker 25's recursive read-only). MS_RDONLY on a remount
// changes the top mount only: a mount under the bind's source (a tmpfs in
// a host directory) would stay writable, and the container's writes land
// on the host. mount_setattr(2) with AT_RECURSIVE (Linux 5.12) sets the
// attribute on the whole tree at once; without it, the mount is refused.
func readOnlyBelow(rootDir *os.File, rel, dest string) error {
	f, err := pathrs.OpenatInRoot(rootDir, rel)
	if err != nil {
		return fmt.Errorf("reopen %s after mounting it: %w", dest, err)
	}
	defer f.Close()
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
	if err := unix.MountSetattr(int(f.Fd()), "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, attr); err != nil {
		if errors.Is(err, unix.ENOSYS) {
			return fmt.Errorf("%s: a recursive read-only mount needs mount_setattr (Linux 5.12): refused rather than half read-only", dest)
		}
		return fmt.Errorf("make the mounts under %s read-only: mount_setattr: %w", dest, err)
	}
	return nil
}

// hasOption reports whether the mount has the option o.
func hasOption(m specs.Mount, o string) bool {
	for _, x := range m.Options {
		if x == o {
			return true
		}
	}
	return false
}
