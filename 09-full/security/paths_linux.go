//go:build linux

package security

import (
	"errors"
	"fmt"
	"path"
	"strconv"

	"golang.org/x/sys/unix"
)

// Everything here runs inside the container's mount namespace after
// pivot_root, so "/" is the container's root. Paths come from the spec,
// and the files they name from the image: a path is opened as a handle
// (O_PATH) with openat2's RESOLVE_NO_SYMLINKS, so no symlink planted in
// the image can send a mount elsewhere, and the mount's target is that
// handle, as /proc/self/fd/N. The kernel follows such a "magic link" to
// exactly the file the handle holds, whatever happens to the path.

// openHandle opens an absolute path as an O_PATH handle, refusing a
// symlink anywhere on the way, the last component included. (With O_PATH
// and O_NOFOLLOW, openat2 returns a handle on a final symlink itself
// rather than failing: that case is caught by the fstat.)
func openHandle(p string) (int, error) {
	if !path.IsAbs(p) {
		return -1, fmt.Errorf("%s: not an absolute path", p)
	}
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC | unix.O_NOFOLLOW,
		Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS}
	fd, err := unix.Openat2(unix.AT_FDCWD, path.Clean(p), &how)
	if errors.Is(err, unix.ELOOP) {
		return -1, fmt.Errorf("%s: a symbolic link on the way (refusing to follow it): %w", p, err)
	}
	if err != nil {
		return -1, fmt.Errorf("open %s: %w", p, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("fstat %s: %w", p, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		unix.Close(fd)
		return -1, fmt.Errorf("%s: a symbolic link (refusing to follow it): %w", p, unix.ELOOP)
	}
	return fd, nil
}

func fdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// checkProc makes sure /proc is a procfs: the /proc/self/fd/N targets
// below mean what they say only there.
func checkProc() error {
	fd, err := openHandle("/proc")
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil {
		return fmt.Errorf("fstatfs /proc: %w", err)
	}
	if st.Type != unix.PROC_SUPER_MAGIC {
		return errors.New("/proc in the container is not a procfs: refusing to mount through it")
	}
	return nil
}

// maskPath hides p: a file under /dev/null (reads are empty, writes
// vanish), a directory under an empty read-only tmpfs. A path that does
// not exist on this kernel is skipped, as runc does.
func maskPath(p string) error {
	fd, err := openHandle(p)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("masked path %w", err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("masked path %s: fstat: %w", p, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if err := unix.Mount("tmpfs", fdPath(fd), "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0555"); err != nil {
			return fmt.Errorf("masked path %s: mount a read-only tmpfs over it: %w", p, err)
		}
		return nil
	}
	null, err := openHandle("/dev/null")
	if err != nil {
		return fmt.Errorf("masked path %s: %w", p, err)
	}
	defer unix.Close(null)
	var nst unix.Stat_t
	if err := unix.Fstat(null, &nst); err != nil || nst.Mode&unix.S_IFMT != unix.S_IFCHR || nst.Rdev != unix.Mkdev(1, 3) {
		return fmt.Errorf("masked path %s: the container's /dev/null is not the null device", p)
	}
	if err := unix.Mount(fdPath(null), fdPath(fd), "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("masked path %s: bind /dev/null over it: %w", p, err)
	}
	return nil
}

// readonlyPath bind-mounts p onto itself and makes that mount read-only.
// The remount must reach the new mount, not the one below it: the first
// handle still points below, so the path is opened again.
func readonlyPath(p string) error {
	fd, err := openHandle(p)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read-only path %w", err)
	}
	err = unix.Mount(fdPath(fd), fdPath(fd), "", unix.MS_BIND|unix.MS_REC, "")
	unix.Close(fd)
	if err != nil {
		return fmt.Errorf("read-only path %s: bind it onto itself: %w", p, err)
	}
	top, err := openHandle(p)
	if err != nil {
		return fmt.Errorf("read-only path %w", err)
	}
	defer unix.Close(top)
	return remountRO(top, p)
}

// remountRO adds MS_RDONLY to the mount fd is the root of, keeping its
// other flags: in a user namespace the kernel refuses a remount that
// would clear flags (nosuid, nodev...) a more privileged namespace set.
func remountRO(fd int, what string) error {
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil {
		return fmt.Errorf("fstatfs %s: %w", what, err)
	}
	flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY)
	for stf, ms := range map[int64]uintptr{
		unix.ST_NOSUID: unix.MS_NOSUID, unix.ST_NODEV: unix.MS_NODEV, unix.ST_NOEXEC: unix.MS_NOEXEC,
		unix.ST_NOATIME: unix.MS_NOATIME, unix.ST_NODIRATIME: unix.MS_NODIRATIME, unix.ST_RELATIME: unix.MS_RELATIME,
	} {
		if st.Flags&stf != 0 {
			flags |= ms
		}
	}
	if err := unix.Mount("", fdPath(fd), "", flags, ""); err != nil {
		return fmt.Errorf("remount %s read-only: %w", what, err)
	}
	return nil
}
