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

const (
	msNoSuidDevExec = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
)

// A device the container gets in its /dev: the usual set Docker gives.
type device struct {
	name         string
	major, minor uint32
}

var devices = []device{
	{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7},
	{"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
}

// mountSpecial mounts /proc, /sys and a minimal /dev inside root.
func mountSpecial(c *spine.Container, root string) error {
	proc := filepath.Join(root, "proc")
	if err := mkdirIn(root, "proc"); err != nil {
		return err
	}
	if err := unix.Mount("proc", proc, "proc", msNoSuidDevExec, ""); err != nil {
		return fmt.Errorf("mount proc on %s: %w", proc, err)
	}

	// sysfs shows the network devices of the mounter's network namespace;
	// the kernel refuses a new sysfs to a user namespace that does not own
	// its network namespace. Then bind the host's, read-only, as runc does.
	sys := filepath.Join(root, "sys")
	if err := mkdirIn(root, "sys"); err != nil {
		return err
	}
	if err := unix.Mount("sysfs", sys, "sysfs", msNoSuidDevExec|unix.MS_RDONLY, ""); err != nil {
		if !errors.Is(err, unix.EPERM) {
			return fmt.Errorf("mount sysfs on %s: %w", sys, err)
		}
		if err := unix.Mount("/sys", sys, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind /sys on %s: %w", sys, err)
		}
		if err := remountReadOnly(sys); err != nil {
			return err
		}
	}
	c.Logf("rootfs: mounted /proc and /sys (read-only)")
	return mountDev(c, root)
}

// mountDev makes /dev a small tmpfs with the devices a program expects and
// nothing else: the host's disks stay out of reach.
func mountDev(c *spine.Container, root string) error {
	dev := filepath.Join(root, "dev")
	if err := mkdirIn(root, "dev"); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", dev, "tmpfs", unix.MS_NOSUID|unix.MS_STRICTATIME, "mode=755,size=65536k"); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", dev, err)
	}
	oldMask := unix.Umask(0)
	defer unix.Umask(oldMask)
	for _, d := range devices {
		if err := makeDevice(dev, d); err != nil {
			return err
		}
	}
	pts := filepath.Join(dev, "pts")
	if err := os.Mkdir(pts, 0o755); err != nil {
		return fmt.Errorf("mkdir %s: %w", pts, err)
	}
	// A new devpts instance: the container sees only its own terminals.
	// gid=5 is the tty group; a user namespace without gid 5 mapped
	// refuses it, so try again without.
	err := unix.Mount("devpts", pts, "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5")
	if errors.Is(err, unix.EINVAL) {
		err = unix.Mount("devpts", pts, "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620")
	}
	if err != nil {
		return fmt.Errorf("mount devpts on %s: %w", pts, err)
	}
	shm := filepath.Join(dev, "shm")
	if err := os.Mkdir(shm, 0o1777); err != nil {
		return fmt.Errorf("mkdir %s: %w", shm, err)
	}
	if err := unix.Mount("shm", shm, "tmpfs", msNoSuidDevExec, "mode=1777,size=65536k"); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", shm, err)
	}
	mq := filepath.Join(dev, "mqueue")
	if err := os.Mkdir(mq, 0o755); err != nil {
		return fmt.Errorf("mkdir %s: %w", mq, err)
	}
	if err := unix.Mount("mqueue", mq, "mqueue", msNoSuidDevExec, ""); err != nil {
		return fmt.Errorf("mount mqueue on %s: %w", mq, err)
	}
	for name, target := range map[string]string{
		"ptmx": "pts/ptmx", "fd": "/proc/self/fd", "stdin": "/proc/self/fd/0",
		"stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2",
	} {
		if err := os.Symlink(target, filepath.Join(dev, name)); err != nil {
			return fmt.Errorf("symlink %s/%s: %w", dev, name, err)
		}
	}
	c.Logf("rootfs: /dev is a tmpfs with null zero full random urandom tty, pts, shm, mqueue")
	return nil
}

// makeDevice creates a character device node. In a user namespace mknod
// is refused (a device node would give its creator the host's device), so
// bind-mount the host's node onto an empty file instead.
func makeDevice(dev string, d device) error {
	p := filepath.Join(dev, d.name)
	err := unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(d.major, d.minor)))
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EPERM) {
		return fmt.Errorf("mknod %s: %w", p, err)
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o666)
	if err != nil {
		return fmt.Errorf("create %s: %w", p, err)
	}
	f.Close()
	if err := unix.Mount("/dev/"+d.name, p, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind /dev/%s on %s: %w", d.name, p, err)
	}
	return nil
}

// mountRequested applies the spec's mounts (bind mounts of /etc/hosts,
// volumes, tmpfs...) inside root, in order. Destinations are resolved with
// github.com/cyphar/filepath-securejoin: a symlink inside the rootfs
// (which an image controls) must not send a mount outside of it.
func mountRequested(c *spine.Container, root string) error {
	for _, m := range c.Spec.Mounts {
		if err := mountOne(c, root, m); err != nil {
			return err
		}
	}
	return nil
}

// mountOne mounts one of the spec's mounts inside root.
func mountOne(c *spine.Container, root string, m specs.Mount) error {
	dest, err := securejoin.SecureJoin(root, m.Destination)
	if err != nil {
		return fmt.Errorf("resolve mount destination %s in %s: %w", m.Destination, root, err)
	}
	flags, data, bind := parseOptions(m)
	if err := makeTarget(m.Source, dest, bind); err != nil {
		return err
	}
	if err := mountFS(m, dest, flags&^unix.MS_RDONLY, data); err != nil {
		return err
	}
	// A bind mount ignores MS_RDONLY on its first mount; it takes a
	// remount to make it read-only.
	if flags&unix.MS_RDONLY != 0 {
		if bind {
			if err := remountReadOnly(dest); err != nil {
				return err
			}
		} else if err := unix.Mount("", dest, "", flags|unix.MS_REMOUNT, data); err != nil {
			return fmt.Errorf("remount %s read-only: %w", m.Destination, err)
		}
	}
	c.Logf("rootfs: mounted %s on %s (%s %s)", m.Source, m.Destination, m.Type, strings.Join(m.Options, ","))
	return nil
}

// parseOptions splits OCI mount options into flags and filesystem data.
func parseOptions(m specs.Mount) (flags uintptr, data string, bind bool) {
	var rest []string
	bind = m.Type == "bind"
	for _, o := range m.Options {
		switch o {
		case "bind":
			flags |= unix.MS_BIND
			bind = true
		case "rbind":
			flags |= unix.MS_BIND | unix.MS_REC
			bind = true
		case "ro":
			flags |= unix.MS_RDONLY
		case "rw":
		case "nosuid":
			flags |= unix.MS_NOSUID
		case "nodev":
			flags |= unix.MS_NODEV
		case "noexec":
			flags |= unix.MS_NOEXEC
		case "suid", "dev", "exec", "atime", "diratime":
			// the defaults: nothing to set
		case "strictatime":
			flags |= unix.MS_STRICTATIME
		case "relatime":
			flags |= unix.MS_RELATIME
		case "noatime":
			flags |= unix.MS_NOATIME
		case "nodiratime":
			flags |= unix.MS_NODIRATIME
		case "sync":
			flags |= unix.MS_SYNCHRONOUS
		case "private", "rprivate", "slave", "rslave":
			// propagation: every mount here is already private
		default:
			rest = append(rest, o)
		}
	}
	if bind {
		flags |= unix.MS_BIND
	}
	return flags, strings.Join(rest, ","), bind
}

// makeTarget creates the mount point: a file for a file, a directory for
// anything else. Only missing mount points are created inside the rootfs.
func makeTarget(source, dest string, bind bool) error {
	if _, err := os.Lstat(dest); err == nil {
		return nil
	}
	dir := true
	if bind {
		st, err := os.Stat(source)
		if err != nil {
			return fmt.Errorf("mount source %s: %w", source, err)
		}
		dir = st.IsDir()
	}
	if dir {
		if err := os.MkdirAll(dest, 0o755); err != nil {
			return fmt.Errorf("create mount point %s: %w", dest, err)
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return fmt.Errorf("create mount point parent %s: %w", filepath.Dir(dest), err)
	}
	f, err := os.OpenFile(dest, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("create mount point %s: %w", dest, err)
	}
	return f.Close()
}

// mkdirIn makes sure root/name exists as a mount point. A symlink there is
// refused, as runc does: the rootfs may come from an image, and proc
// mounted through a link would land wherever the link points.
func mkdirIn(root, name string) error {
	p := filepath.Join(root, name)
	if st, err := os.Lstat(p); err == nil && st.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("/%s in rootfs %s is a symlink: refusing to mount over it", name, root)
	}
	if err := os.MkdirAll(p, 0o755); err != nil {
		return fmt.Errorf("create mount point %s: %w", p, err)
	}
	return nil
}
