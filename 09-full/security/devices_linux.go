//go:build linux

package security

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth/03-mount/rootfs"
)

// hostDevices takes, before pivot_root, a copy of the mount of the
// host's node of each device the spec asks for (at the same path, as runc
// assumes): in a user namespace mknod is refused, and the node is
// bind-mounted instead. A bind mount's source must be a mount of the
// caller's namespace, and after pivot_root the host's /dev is detached;
// open_tree(OPEN_TREE_CLONE) makes a detached mount of the node now,
// which move_mount puts in place later.
func hostDevices(devs []specs.LinuxDevice) map[string]int {
	trees := map[string]int{}
	for _, d := range devs {
		fd, err := openHandle(d.Path)
		if err != nil {
			continue // createDevice will say the host has none
		}
		tree, err := unix.OpenTree(fd, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH)
		unix.Close(fd)
		if err == nil {
			trees[d.Path] = tree
		}
	}
	return trees
}

// inUserNamespace: mknod of a device is refused in any but the initial
// user namespace, whose uid map is the identity of every id.
func inUserNamespace() bool {
	b, err := os.ReadFile("/proc/self/uid_map")
	return err == nil && strings.Join(strings.Fields(string(b)), " ") != "0 0 4294967295"
}

// createDevice makes the node d in the container's /dev (or wherever the
// spec puts it): mknod, owned as the spec says; or, where mknod is
// refused (a user namespace), an empty file with the host's node bound
// on it. Parent directories are made; none may be a symlink.
func createDevice(d specs.LinuxDevice, host map[string]int) error {
	p := path.Clean(d.Path)
	if !path.IsAbs(p) || p == "/" {
		return fmt.Errorf("linux.devices: %q is not an absolute file path", d.Path)
	}
	typ, err := rootfs.DeviceType(d)
	if err != nil {
		return err
	}
	dir, err := mkdirAll(path.Dir(p))
	if err != nil {
		return fmt.Errorf("linux.devices %s: %w", p, err)
	}
	defer unix.Close(dir)
	name := path.Base(p)
	// The same device already there (the runtime's own /dev/null, say)
	// stays; anything else is replaced, unless it is a directory.
	var st unix.Stat_t
	if err := unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil &&
		st.Mode&unix.S_IFMT == typ && st.Rdev == unix.Mkdev(uint32(d.Major), uint32(d.Minor)) {
		return nil
	}
	if err := unix.Unlinkat(dir, name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("linux.devices %s: remove the old node: %w", p, err)
	}
	mode := uint32(0o666)
	if d.FileMode != nil {
		mode = uint32(d.FileMode.Perm())
	}
	old := unix.Umask(0)
	err = unix.Mknodat(dir, name, typ|mode, int(unix.Mkdev(uint32(d.Major), uint32(d.Minor))))
	unix.Umask(old)
	if errors.Is(err, unix.EPERM) {
		return bindDevice(dir, name, p, d, host)
	}
	if err != nil {
		return fmt.Errorf("mknod %s: %w", p, err)
	}
	uid, gid := -1, -1
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	if err := unix.Fchownat(dir, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown %s: %w", p, err)
	}
	return nil
}

func bindDevice(dir int, name, p string, d specs.LinuxDevice, host map[string]int) error {
	src, ok := host[d.Path]
	if !ok {
		return fmt.Errorf("linux.devices %s: mknod is not allowed here (a user namespace) and the host has no %s to bind", p, d.Path)
	}
	var st unix.Stat_t
	if err := unix.Fstat(src, &st); err != nil {
		return fmt.Errorf("linux.devices %s: fstat the host's node: %w", p, err)
	}
	if unix.Major(st.Rdev) != uint32(d.Major) || unix.Minor(st.Rdev) != uint32(d.Minor) {
		return fmt.Errorf("linux.devices %s: the host's %s is device %d:%d, not %d:%d", p, d.Path, unix.Major(st.Rdev), unix.Minor(st.Rdev), d.Major, d.Minor)
	}
	fd, err := unix.Openat(dir, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("linux.devices %s: create the mount point: %w", p, err)
	}
	defer unix.Close(fd)
	if err := unix.MoveMount(src, "", fd, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("linux.devices %s: mount the host's node: %w", p, err)
	}
	return nil
}

// mkdirAll opens directory p, making what is missing, refusing symlinks.
func mkdirAll(p string) (int, error) {
	fd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open /: %w", err)
	}
	for _, part := range strings.Split(strings.Trim(p, "/"), "/") {
		if part == "" {
			continue
		}
		if err := unix.Mkdirat(fd, part, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			unix.Close(fd)
			return -1, fmt.Errorf("mkdir %s: %w", part, err)
		}
		how := unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC | unix.O_NOFOLLOW, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS}
		next, err := unix.Openat2(fd, part, &how)
		unix.Close(fd)
		if err != nil {
			return -1, fmt.Errorf("open directory %s of %s: %w", part, p, err)
		}
		fd = next
	}
	return fd, nil
}
