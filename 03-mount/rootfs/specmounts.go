//go:build linux

package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth/01-uts/spine"
)

// Stage 09 (and an OCI bundle) says in the spec which special filesystems
// a container gets: Docker's default list of mounts (/proc, /dev, /dev/pts,
// /sys, /dev/mqueue, /dev/shm) is data there, not this stage's code. With
// Step.SpecMounts the spec's mounts are all there is, mounted in their
// order, and /dev is filled as runc fills it: the usual six devices, the
// spec's linux.devices, and the links to /proc/self/fd.

// mountFromSpec mounts every mount of the spec inside root, then fills /dev.
func mountFromSpec(c *spine.Container, root string) error {
	devBind := false
	for _, m := range c.Spec.Mounts {
		switch m.Type {
		case "proc", "sysfs":
			// As runc: an image must not send proc or sysfs through a link
			// (its /proc -> /somewhere) to where it wants them.
			if err := notALink(root, m.Destination); err != nil {
				return err
			}
		case "cgroup", "cgroup2":
			if err := cgroupMount(&m); err != nil {
				return err
			}
		}
		if filepath.Clean(m.Destination) == "/dev" && isBind(m) {
			devBind = true
		}
		if err := mountOne(c, root, m); err != nil {
			return err
		}
	}
	if devBind {
		return nil // the caller's own /dev: nothing of ours goes into it
	}
	return fillDev(c, root)
}

func isBind(m specs.Mount) bool {
	_, _, bind := parseOptions(m)
	return bind
}

// notALink refuses a destination whose last component is a symlink.
func notALink(root, dest string) error {
	p := filepath.Join(root, filepath.Clean("/"+dest))
	if st, err := os.Lstat(p); err == nil && st.Mode()&os.ModeSymlink != 0 {
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

// mountFS is mount(2) for one spec mount, with the fallbacks a user
// namespace needs: a new sysfs is refused to one that does not own its
// network namespace (bind the host's, read-only, as runc does), and a
// devpts with gid=5 to one without gid 5 mapped (try again without).
func mountFS(m specs.Mount, dest string, flags uintptr, data string) error {
	err := unix.Mount(m.Source, dest, m.Type, flags, data)
	switch {
	case err == nil:
		return nil
	case m.Type == "sysfs" && errors.Is(err, unix.EPERM):
		if err := unix.Mount("/sys", dest, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind /sys on %s: %w", m.Destination, err)
		}
		return remountReadOnly(dest)
	case m.Type == "devpts" && errors.Is(err, unix.EINVAL) && strings.Contains(data, "gid="):
		var opts []string
		for _, o := range strings.Split(data, ",") {
			if !strings.HasPrefix(o, "gid=") {
				opts = append(opts, o)
			}
		}
		if err := unix.Mount(m.Source, dest, m.Type, flags, strings.Join(opts, ",")); err == nil {
			return nil
		}
	}
	return fmt.Errorf("mount %s on %s (type %q): %w", m.Source, m.Destination, m.Type, err)
}

// fillDev puts the devices in /dev: this stage's six, then the spec's
// linux.devices; and the links a program expects. What is there already
// (an image's own /dev, without a tmpfs over it) is left as it is. It runs
// before pivot_root, so every path is resolved inside root (securejoin):
// a link the image left in its /dev must not send a node to the host.
func fillDev(c *spine.Container, root string) error {
	dev, err := securejoin.SecureJoin(root, "/dev")
	if err != nil {
		return fmt.Errorf("resolve /dev in %s: %w", root, err)
	}
	if err := os.MkdirAll(dev, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dev, err)
	}
	oldMask := unix.Umask(0)
	defer unix.Umask(oldMask)
	for _, d := range devices {
		p := filepath.Join(dev, d.name)
		if err := makeNode(p, unix.S_IFCHR|0o666, d.major, d.minor, -1, -1, "/dev/"+d.name); err != nil {
			return err
		}
	}
	for _, d := range c.Spec.Linux.Devices {
		if err := specDevice(root, d); err != nil {
			return err
		}
	}
	links := map[string]string{
		"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0",
		"stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2",
	}
	if st, err := os.Stat(filepath.Join(dev, "pts", "ptmx")); err == nil && !st.IsDir() {
		links["ptmx"] = "pts/ptmx"
	}
	for name, target := range links {
		p := filepath.Join(dev, name)
		if _, err := os.Lstat(p); err == nil {
			continue
		}
		if err := os.Symlink(target, p); err != nil {
			return fmt.Errorf("symlink %s: %w", p, err)
		}
	}
	c.Logf("rootfs: /dev has null zero full random urandom tty and %d device(s) of the spec", len(c.Spec.Linux.Devices))
	return nil
}

// specDevice makes one of linux.devices: a character, block or FIFO node
// at its path under /dev, with its mode and owner.
func specDevice(root string, d specs.LinuxDevice) error {
	if rel, ok := strings.CutPrefix(filepath.Clean(d.Path), "/dev/"); !ok || rel == "" {
		return fmt.Errorf("linux.devices: %q is not a path under /dev", d.Path)
	}
	p, err := securejoin.SecureJoin(root, d.Path)
	if err != nil {
		return fmt.Errorf("linux.devices: resolve %s in %s: %w", d.Path, root, err)
	}
	var typ uint32
	switch d.Type {
	case "c", "u":
		typ = unix.S_IFCHR
	case "b":
		typ = unix.S_IFBLK
	case "p":
		typ = unix.S_IFIFO
	default:
		return fmt.Errorf("linux.devices %s: unknown type %q (want c, b, u or p)", d.Path, d.Type)
	}
	mode := uint32(0o666)
	if d.FileMode != nil {
		mode = uint32(*d.FileMode) & 0o7777
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(p), err)
	}
	uid, gid := -1, -1
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	return makeNode(p, typ|mode, uint32(d.Major), uint32(d.Minor), uid, gid, d.Path)
}

// makeNode makes a device node (or FIFO) at p, leaving one already there
// alone. In a user namespace mknod of a device is refused (a node would
// give its creator the host's device): then the host's node at hostPath is
// bind-mounted onto an empty file instead, as runc does.
func makeNode(p string, mode, major, minor uint32, uid, gid int, hostPath string) error {
	if _, err := os.Lstat(p); err == nil {
		return nil
	}
	err := unix.Mknod(p, mode, int(unix.Mkdev(major, minor)))
	if errors.Is(err, unix.EPERM) && mode&unix.S_IFMT != unix.S_IFIFO {
		f, ferr := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|unix.O_NOFOLLOW, 0o666)
		if ferr != nil {
			return fmt.Errorf("create %s: %w", p, ferr)
		}
		f.Close()
		if err := unix.Mount(hostPath, p, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s on %s: %w", hostPath, p, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("mknod %s: %w", p, err)
	}
	if uid >= 0 || gid >= 0 {
		if err := os.Lchown(p, uid, gid); err != nil {
			return fmt.Errorf("chown %s: %w", p, err)
		}
	}
	return nil
}
