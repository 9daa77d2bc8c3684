//go:build linux

package security

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// LastCap is the highest capability number the running kernel knows.
func LastCap() (int, error) {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 0, fmt.Errorf("read /proc/sys/kernel/cap_last_cap: %w", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("/proc/sys/kernel/cap_last_cap: %w", err)
	}
	return n, nil
}

// AvailableCaps is Available for this kernel and this process.
func AvailableCaps() (uint64, error) {
	last, err := LastCap()
	if err != nil {
		return 0, err
	}
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("read /proc/self/status: %w", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapBnd:"); ok {
			bnd, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/self/status: CapBnd %q: %w", v, err)
			}
			return Available(last, bnd), nil
		}
	}
	return 0, errors.New("/proc/self/status has no CapBnd line")
}

// ThisHost is the Host of the running machine.
func ThisHost() (Host, error) {
	avail, err := AvailableCaps()
	if err != nil {
		return Host{}, err
	}
	return Host{Caps: avail, Stat: statDevice, Walk: walkDevices, ReadFile: readProfile,
		AppArmor: appArmorEnabled(), SELinux: seLinuxEnabled()}, nil
}

// appArmorEnabled is what moby's apparmor.HostSupportsAppArmor reads.
func appArmorEnabled() bool {
	b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	return err == nil && len(b) > 0 && b[0] == 'Y'
}

// seLinuxEnabled: selinuxfs is mounted where the kernel has SELinux on.
func seLinuxEnabled() bool {
	var st unix.Statfs_t
	return unix.Statfs("/sys/fs/selinux", &st) == nil && st.Type == unix.SELINUX_MAGIC
}

func statDevice(p string) (DeviceInfo, error) {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return DeviceInfo{}, err
	}
	d := DeviceInfo{Mode: os.FileMode(st.Mode & 0o7777), UID: st.Uid, GID: st.Gid,
		Major: int64(unix.Major(st.Rdev)), Minor: int64(unix.Minor(st.Rdev))}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		d.Type = "c"
	case unix.S_IFBLK:
		d.Type = "b"
	case unix.S_IFDIR:
		d.Dir = true
	}
	return d, nil
}

// walkDevices lists the device nodes under dir, leaving out what every
// container has its own of (pts, shm, mqueue) and links.
func walkDevices(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if p != dir && errors.Is(err, fs.ErrPermission) {
				return nil
			}
			return err
		}
		if e.IsDir() {
			switch e.Name() {
			case "pts", "shm", "mqueue", "fd", ".lxc", ".udev":
				if p != dir {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if e.Type()&(fs.ModeDevice|fs.ModeCharDevice) != 0 && e.Name() != "console" && e.Name() != "ptmx" {
			out = append(out, p)
		}
		return nil
	})
	return out, err
}

func readProfile(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxProfile+1))
}

func init() { isHostNamespace = sameNamespace }

// sameNamespace reports whether path is the runtime's own namespace of
// type t (joining the host's network namespace by path is --net host).
func sameNamespace(path string, t specs.LinuxNamespaceType) bool {
	name := map[specs.LinuxNamespaceType]string{specs.NetworkNamespace: "net", specs.IPCNamespace: "ipc", specs.UTSNamespace: "uts"}[t]
	if name == "" {
		return false
	}
	var a, b unix.Stat_t
	if unix.Stat(path, &a) != nil || unix.Stat("/proc/self/ns/"+name, &b) != nil {
		return false
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}
