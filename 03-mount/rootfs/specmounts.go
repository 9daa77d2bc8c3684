//go:build linux

package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth/01-uts/spine"
)

// Stage 09 (and an OCI bundle) says in the spec which special filesystems
// a container gets: Docker's default list of mounts (/proc, /dev, /dev/pts,
// /sys, /dev/mqueue, /dev/shm) is data there, not this stage's code. With
// Step.SpecMounts the spec's mounts are all there is, mounted in their
// order through handles (handles.go), and a tmpfs /dev is filled as runc
// fills it: the usual six devices, the spec's linux.devices, and the links
// to /proc/self/fd.

// mountFromSpec mounts every mount of the spec inside root, then fills /dev.
func mountFromSpec(c *spine.Container, rootDir *os.File, root string) error {
	devTmpfs := false
	for i := range c.Spec.Mounts {
		m := &c.Spec.Mounts[i]
		switch m.Type {
		case "proc", "sysfs":
			// As runc: an image must not send proc or sysfs through a link
			// (its /proc -> /somewhere) to where it wants them.
			if err := notALink(rootDir, root, m.Destination); err != nil {
				return err
			}
		case "cgroup", "cgroup2":
			if err := cgroupMount(m); err != nil {
				return err
			}
		}
		if path.Clean(m.Destination) == "/dev" {
			devTmpfs = m.Type == "tmpfs"
		}
	}
	if err := mountRequested(c, rootDir, root); err != nil {
		return err
	}
	if !devTmpfs {
		return nil // the image's own /dev, or the caller's: nothing of ours goes into it
	}
	dev, err := openTmpfs(rootDir, root, "dev")
	if err != nil {
		return err
	}
	defer dev.Close()
	return fillDev(c, dev)
}

// notALink refuses a destination whose last component, in the root, is a
// symlink; the mount itself goes through a handle (mountEach).
func notALink(rootDir *os.File, root, dest string) error {
	rel := strings.TrimPrefix(path.Clean("/"+dest), "/")
	if rel == "" {
		return nil
	}
	var st unix.Stat_t
	parent, base := path.Split(rel)
	dir := rootDir
	if parent != "" {
		fd, err := unix.Openat(int(rootDir.Fd()), strings.TrimSuffix(parent, "/"), unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil // made by the mount, as a directory
		}
		dir = os.NewFile(uintptr(fd), parent)
		defer dir.Close()
	}
	if err := unix.Fstatat(int(dir.Fd()), base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return fmt.Errorf("%s in rootfs %s is a symlink: it must be mounted on an ordinary directory", dest, root)
	}
	return nil
}

// cgroupMount turns a "cgroup" mount into what this host can give inside
// the container's cgroup namespace: cgroup2 where the host is unified.
// A cgroup v1 tree inside a container (a tmpfs with each hierarchy under
// it, as runc builds) is not made yet: refused in one line.
func cgroupMount(m *specs.Mount) error {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		m.Type, m.Source = "cgroup2", "cgroup2"
		return nil
	}
	return fmt.Errorf("mount %s (type %s): a cgroup filesystem inside the container needs a cgroup v2 host; this one is v1 or hybrid", m.Destination, m.Type)
}

// mountFallback tries again what a user namespace refuses: a new sysfs to
// one that does not own its network namespace (bind the host's, read-only,
// as runc does), a devpts with gid=5 to one without gid 5 mapped (without
// it). Anything else, it returns the error as it was.
func mountFallback(m specs.Mount, rootDir *os.File, rel string, target *os.File, flags uintptr, data string, err error) error {
	switch {
	case m.Type == "sysfs" && errors.Is(err, unix.EPERM):
		src, oerr := os.OpenFile("/sys", unix.O_PATH|unix.O_CLOEXEC, 0)
		if oerr != nil {
			return oerr
		}
		defer src.Close()
		if err := unix.Mount(procPath(src), procPath(target), "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind /sys: %w", err)
		}
		return remountBind(rootDir, rel, src, m.Destination)
	case m.Type == "devpts" && errors.Is(err, unix.EINVAL) && strings.Contains(data, "gid="):
		var opts []string
		for _, o := range strings.Split(data, ",") {
			if !strings.HasPrefix(o, "gid=") {
				opts = append(opts, o)
			}
		}
		return unix.Mount(m.Source, procPath(target), m.Type, flags, strings.Join(opts, ","))
	}
	return err
}

// fillDev puts the devices in the container's fresh /dev tmpfs (dev): this
// stage's six, then the spec's linux.devices; and the links a program
// expects. Everything is made relative to the tmpfs's handle: nothing in it
// but what this runtime made, so nothing there leads elsewhere.
func fillDev(c *spine.Container, dev *os.File) error {
	oldMask := unix.Umask(0)
	defer unix.Umask(oldMask)
	for _, d := range devices {
		if err := makeDevice(dev, d); err != nil && !errors.Is(err, unix.EEXIST) {
			return err
		}
	}
	for _, d := range c.Spec.Linux.Devices {
		if err := specDevice(dev, d); err != nil {
			return err
		}
	}
	links := map[string]string{
		"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0",
		"stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2",
	}
	var st unix.Stat_t
	if unix.Fstatat(int(dev.Fd()), "pts/ptmx", &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
		links["ptmx"] = "pts/ptmx"
	}
	for name, target := range links {
		if err := unix.Symlinkat(target, int(dev.Fd()), name); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("symlink /dev/%s: %w", name, err)
		}
	}
	c.Logf("rootfs: /dev has null zero full random urandom tty and %d device(s) of the spec", len(c.Spec.Linux.Devices))
	return nil
}

// DeviceType is the file type of a linux.devices entry, for mknod:
// character ("c", or "u", unbuffered), block or FIFO.
func DeviceType(d specs.LinuxDevice) (uint32, error) {
	switch d.Type {
	case "c", "u":
		return unix.S_IFCHR, nil
	case "b":
		return unix.S_IFBLK, nil
	case "p":
		return unix.S_IFIFO, nil
	}
	return 0, fmt.Errorf("linux.devices %s: unknown type %q (want c, b, u or p)", d.Path, d.Type)
}

// specDevice makes one of linux.devices: a character, block or FIFO node
// at its path under /dev, with its mode and owner.
func specDevice(dev *os.File, d specs.LinuxDevice) error {
	rel, ok := strings.CutPrefix(filepath.Clean(d.Path), "/dev/")
	if !ok || rel == "" || rel == ".." || strings.HasPrefix(rel, "../") {
		return fmt.Errorf("linux.devices: %q is not a path under /dev", d.Path)
	}
	typ, err := DeviceType(d)
	if err != nil {
		return err
	}
	mode := uint32(0o666)
	if d.FileMode != nil {
		mode = uint32(*d.FileMode) & 0o7777
	}
	// Its directories (/dev/net of /dev/net/tun), one name at a time.
	dir := dev
	parts := strings.Split(rel, "/")
	for _, name := range parts[:len(parts)-1] {
		if err := unix.Mkdirat(int(dir.Fd()), name, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("linux.devices %s: mkdir %s: %w", d.Path, name, err)
		}
		fd, err := unix.Openat(int(dir.Fd()), name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("linux.devices %s: open %s: %w", d.Path, name, err)
		}
		next := os.NewFile(uintptr(fd), name)
		if dir != dev {
			dir.Close()
		}
		dir = next
	}
	if dir != dev {
		defer dir.Close()
	}
	base := parts[len(parts)-1]
	err = unix.Mknodat(int(dir.Fd()), base, typ|mode, int(unix.Mkdev(uint32(d.Major), uint32(d.Minor))))
	switch {
	case errors.Is(err, unix.EEXIST):
		return nil
	case errors.Is(err, unix.EPERM) && typ != unix.S_IFIFO:
		// In a user namespace: bind the host's node at the same path.
		fd, err := unix.Openat(int(dir.Fd()), base, unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_WRONLY|unix.O_CLOEXEC, 0o666)
		if err != nil {
			return fmt.Errorf("linux.devices: create %s: %w", d.Path, err)
		}
		unix.Close(fd)
		f, err := openPath(dir, base, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := unix.Mount(d.Path, procPath(f), "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("linux.devices: bind the host's %s: %w", d.Path, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("linux.devices: mknod %s: %w", d.Path, err)
	}
	if d.UID != nil || d.GID != nil {
		uid, gid := -1, -1
		if d.UID != nil {
			uid = int(*d.UID)
		}
		if d.GID != nil {
			gid = int(*d.GID)
		}
		if err := unix.Fchownat(int(dir.Fd()), base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("linux.devices: chown %s: %w", d.Path, err)
		}
	}
	return nil
}
