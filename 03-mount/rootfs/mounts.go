//go:build linux

package rootfs

import (
	"errors"
	"fmt"
	"os"
	"strings"

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
func mountSpecial(c *spine.Container, rootDir *os.File, root string) error {
	proc, err := mkdirIn(rootDir, root, "proc")
	if err != nil {
		return err
	}
	defer proc.Close()
	if err := unix.Mount("proc", procPath(proc), "proc", msNoSuidDevExec, ""); err != nil {
		return fmt.Errorf("mount proc on %s/proc: %w", root, err)
	}

	// sysfs shows the network devices of the mounter's network namespace;
	// the kernel refuses a new sysfs to a user namespace that does not own
	// its network namespace. Then bind the host's, read-only, as runc does.
	sys, err := mkdirIn(rootDir, root, "sys")
	if err != nil {
		return err
	}
	defer sys.Close()
	if err := unix.Mount("sysfs", procPath(sys), "sysfs", msNoSuidDevExec|unix.MS_RDONLY, ""); err != nil {
		if !errors.Is(err, unix.EPERM) {
			return fmt.Errorf("mount sysfs on %s/sys: %w", root, err)
		}
		if err := bindReadOnly("/sys", rootDir, root, "sys", sys, unix.MS_REC); err != nil {
			return err
		}
	}
	c.Logf("rootfs: mounted /proc and /sys (read-only)")
	return mountDev(c, rootDir, root)
}

// mountDev makes /dev a small tmpfs with the devices a program expects and
// nothing else: the host's disks stay out of reach. Everything below it is
// made relative to a descriptor of the new tmpfs, which exists only in
// this container's mount namespace.
func mountDev(c *spine.Container, rootDir *os.File, root string) error {
	dev, err := mkdirIn(rootDir, root, "dev")
	if err != nil {
		return err
	}
	defer dev.Close()
	if err := unix.Mount("tmpfs", procPath(dev), "tmpfs", unix.MS_NOSUID|unix.MS_STRICTATIME, "mode=755,size=65536k"); err != nil {
		return fmt.Errorf("mount tmpfs on %s/dev: %w", root, err)
	}
	devfs, err := openTmpfs(rootDir, root, "dev")
	if err != nil {
		return err
	}
	defer devfs.Close()
	fd := int(devfs.Fd())
	oldMask := unix.Umask(0)
	defer unix.Umask(oldMask)
	for _, d := range devices {
		if err := makeDevice(devfs, d); err != nil {
			return err
		}
	}
	// A new devpts instance: the container sees only its own terminals.
	// gid=5 is the tty group; a user namespace without gid 5 mapped
	// refuses it, so try again without.
	pts, err := subdir(devfs, "pts", 0o755)
	if err != nil {
		return err
	}
	defer pts.Close()
	err = unix.Mount("devpts", procPath(pts), "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5")
	if errors.Is(err, unix.EINVAL) {
		err = unix.Mount("devpts", procPath(pts), "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620")
	}
	if err != nil {
		return fmt.Errorf("mount devpts on /dev/pts: %w", err)
	}
	shm, err := subdir(devfs, "shm", 0o1777)
	if err != nil {
		return err
	}
	defer shm.Close()
	if err := unix.Mount("shm", procPath(shm), "tmpfs", msNoSuidDevExec, "mode=1777,size=65536k"); err != nil {
		return fmt.Errorf("mount tmpfs on /dev/shm: %w", err)
	}
	mq, err := subdir(devfs, "mqueue", 0o755)
	if err != nil {
		return err
	}
	defer mq.Close()
	if err := unix.Mount("mqueue", procPath(mq), "mqueue", msNoSuidDevExec, ""); err != nil {
		return fmt.Errorf("mount mqueue on /dev/mqueue: %w", err)
	}
	for name, target := range map[string]string{
		"ptmx": "pts/ptmx", "fd": "/proc/self/fd", "stdin": "/proc/self/fd/0",
		"stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2",
	} {
		if err := unix.Symlinkat(target, fd, name); err != nil {
			return fmt.Errorf("symlink /dev/%s: %w", name, err)
		}
	}
	c.Logf("rootfs: /dev is a tmpfs with null zero full random urandom tty, pts, shm, mqueue")
	return nil
}

// makeDevice creates a character device node. In a user namespace mknod
// is refused (a device node would give its creator the host's device), so
// bind-mount the host's node onto an empty file instead.
func makeDevice(dev *os.File, d device) error {
	err := unix.Mknodat(int(dev.Fd()), d.name, unix.S_IFCHR|0o666, int(unix.Mkdev(d.major, d.minor)))
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EPERM) {
		return fmt.Errorf("mknod /dev/%s: %w", d.name, err)
	}
	fd, err := unix.Openat(int(dev.Fd()), d.name, unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_WRONLY|unix.O_CLOEXEC, 0o666)
	if err != nil {
		return fmt.Errorf("create /dev/%s: %w", d.name, err)
	}
	unix.Close(fd)
	f, err := openPath(dev, d.name, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Mount("/dev/"+d.name, procPath(f), "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind /dev/%s on the container's /dev/%s: %w", d.name, d.name, err)
	}
	return nil
}

// mountRequested applies the spec's mounts (bind mounts of /etc/hosts,
// volumes, tmpfs...) inside root, in order.
func mountRequested(c *spine.Container, rootDir *os.File, root string) error {
	return mountEach(c, rootDir, root, nil)
}

// mountEach is mountRequested; between making each mount point and
// mounting on it, it calls between (when not nil): the moment an
// attacker who can change the rootfs would act. Tests use it.
func mountEach(c *spine.Container, rootDir *os.File, root string, between func(rel string)) error {
	for _, m := range c.Spec.Mounts {
		flags, data, bind := parseOptions(m)
		source, isDir := m.Source, true
		var src *os.File
		if bind {
			var err error
			if src, err = os.OpenFile(m.Source, unix.O_PATH|unix.O_CLOEXEC, 0); err != nil {
				return fmt.Errorf("mount source: %w", err)
			}
			defer src.Close()
			st, err := src.Stat()
			if err != nil {
				return fmt.Errorf("mount source: %w", err)
			}
			source, isDir = procPath(src), st.IsDir()
		}
		target, rel, err := makeTarget(rootDir, root, m.Destination, isDir)
		if err != nil {
			return err
		}
		defer target.Close()
		if between != nil {
			between(rel)
		}
		// A bind mount ignores MS_RDONLY on its first mount; it takes a
		// remount to make it read-only. Any other type is read-only at once.
		first := flags
		if bind {
			first &^= unix.MS_RDONLY
		}
		if err := unix.Mount(source, procPath(target), m.Type, first, data); err != nil {
			if err := mountFallback(m, rootDir, rel, target, first, data, err); err != nil {
				return fmt.Errorf("mount %s on %s (type %q): %w", m.Source, m.Destination, m.Type, err)
			}
		}
		if bind && flags&unix.MS_RDONLY != 0 {
			if err := remountBind(rootDir, rel, src, m.Destination); err != nil {
				return err
			}
		}
		if bind && hasOption(m, "rro") {
			if err := readOnlyBelow(rootDir, rel, m.Destination); err != nil {
				return err
			}
		}
		c.Logf("rootfs: mounted %s on %s (%s %s)", m.Source, m.Destination, m.Type, strings.Join(m.Options, ","))
	}
	return nil
}

// bindReadOnly binds the host's source onto target (name, right under the
// root) and makes the bind read-only.
func bindReadOnly(source string, rootDir *os.File, root, name string, target *os.File, flags uintptr) error {
	src, err := os.OpenFile(source, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bind %s: %w", source, err)
	}
	defer src.Close()
	if err := unix.Mount(procPath(src), procPath(target), "", unix.MS_BIND|flags, ""); err != nil {
		return fmt.Errorf("bind %s on %s/%s: %w", source, root, name, err)
	}
	return remountBind(rootDir, name, src, "/"+name)
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
		case "ro", "rro":
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
