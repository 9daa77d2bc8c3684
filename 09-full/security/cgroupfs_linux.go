//go:build linux

package security

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// isCgroupMount: the spec's view of the cgroup tree (Docker's default
// list has one at /sys/fs/cgroup, read-only). The Step mounts it, not the
// rootfs step: it must wait until the container has its own cgroup
// namespace, so that the view's root is the container's own group.
func isCgroupMount(m specs.Mount) bool { return m.Type == "cgroup" || m.Type == "cgroup2" }

// mountCgroupView mounts the cgroup file system at m.Destination, as the
// container's cgroup namespace shows it: its own group is the root, so it
// can read its limits and counters; read-only (unless the spec says rw,
// as --privileged does), so it can neither change them nor write a v1
// release_agent, the classic escape through cgroups.
//
// cgroup2's options (nsdelegate, memory_recursiveprot…) belong to its one
// superblock, and a cgroup2 mount made from the host's cgroup namespace
// sets them all again: one without nsdelegate would turn off, for the
// whole host, the delegation systemd relies on. A container without a
// cgroup namespace of its own (a bundle that asks for none, as runc
// spec's older default and ctr's) mounts from the host's: so every
// cgroup2 mount here carries the options the host has (v2data, read by
// PreChild from the host's mount table; in a cgroup namespace of its own
// the kernel ignores them).
func mountCgroupView(m specs.Mount, v2data string) error {
	flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	ro := slices.Contains(m.Options, "ro")
	if ro {
		flags |= unix.MS_RDONLY
	}
	dst, err := openHandle(m.Destination)
	if err != nil {
		return fmt.Errorf("cgroup view: %w", err)
	}
	defer unix.Close(dst)
	v1, err := v1Hierarchies()
	if err != nil {
		return err
	}
	if len(v1) == 0 { // pure cgroup v2: one file system
		if err := unix.Mount("cgroup2", fdPath(dst), "cgroup2", flags, v2data); err != nil {
			return fmt.Errorf("mount cgroup2 on %s: %w", m.Destination, err)
		}
		return nil
	}
	// cgroup v1: a tmpfs holding one directory per hierarchy, each a
	// mount of that hierarchy, as on the host; and the v2 tree of a
	// hybrid host at unified/.
	if err := unix.Mount("tmpfs", fdPath(dst), "tmpfs", flags&^unix.MS_RDONLY, "mode=755,size=64k"); err != nil {
		return fmt.Errorf("mount a tmpfs on %s: %w", m.Destination, err)
	}
	top, err := openHandle(m.Destination)
	if err != nil {
		return fmt.Errorf("cgroup view: %w", err)
	}
	defer unix.Close(top)
	for _, h := range v1 {
		if err := mountIn(top, h.dir, "cgroup", h.options, flags); err != nil {
			return err
		}
		for _, link := range h.links {
			if err := unix.Symlinkat(h.dir, top, link); err != nil {
				return fmt.Errorf("symlink %s/%s: %w", m.Destination, link, err)
			}
		}
	}
	if hasUnified() {
		if err := mountIn(top, "unified", "cgroup2", v2data, flags); err != nil {
			return err
		}
	}
	if ro {
		return remountRO(top, m.Destination)
	}
	return nil
}

// mountIn makes directory name under the directory handle dir and mounts
// a file system of type fstype there.
func mountIn(dir int, name, fstype, data string, flags uintptr) error {
	if err := unix.Mkdirat(dir, name, 0o755); err != nil {
		return fmt.Errorf("mkdir %s in the cgroup view: %w", name, err)
	}
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC | unix.O_NOFOLLOW | unix.O_DIRECTORY, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS}
	fd, err := unix.Openat2(dir, name, &how)
	if err != nil {
		return fmt.Errorf("open %s in the cgroup view: %w", name, err)
	}
	defer unix.Close(fd)
	if err := unix.Mount(fstype, fdPath(fd), fstype, flags, data); err != nil {
		return fmt.Errorf("mount %s (%s) in the cgroup view: %w", fstype, name, err)
	}
	return nil
}

type hierarchy struct {
	dir     string   // cpu,cpuacct or systemd
	options string   // the mount data: cpu,cpuacct or none,name=systemd
	links   []string // cpu and cpuacct, to a joint hierarchy
}

// v1Hierarchies reads /proc/self/cgroup: a line ID:CONTROLLERS:PATH per
// v1 hierarchy the process belongs to (and 0::PATH for v2).
func v1Hierarchies() ([]hierarchy, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("read /proc/self/cgroup: %w", err)
	}
	defer f.Close()
	var out []hierarchy
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 || parts[0] == "0" || parts[1] == "" {
			continue
		}
		ctrls := parts[1]
		h := hierarchy{dir: ctrls, options: ctrls}
		if name, ok := strings.CutPrefix(ctrls, "name="); ok {
			h.dir, h.options = name, "none,name="+name
		} else if strings.Contains(ctrls, ",") {
			h.links = strings.Split(ctrls, ",")
		}
		for _, part := range []string{h.dir} {
			if part == "" || strings.ContainsAny(part, "/") || part == "." || part == ".." {
				return nil, fmt.Errorf("odd cgroup hierarchy %q in /proc/self/cgroup", ctrls)
			}
		}
		out = append(out, h)
	}
	return out, sc.Err()
}

// hasUnified: a hybrid host's /proc/self/cgroup also has a 0:: line.
func hasUnified() bool {
	b, err := os.ReadFile("/proc/self/cgroup")
	return err == nil && (strings.HasPrefix(string(b), "0::") || strings.Contains(string(b), "\n0::"))
}

// cgroup2Flags are the superblock options of cgroup2 (Documentation/
// admin-guide/cgroup-v2.rst, "Mounting").
var cgroup2Flags = []string{"nsdelegate", "favordynmods", "memory_localevents", "memory_recursiveprot", "memory_hugetlb_accounting", "pids_localevents"}

// cgroup2Options reads, from a mount table in /proc/PID/mountinfo's
// format, the cgroup2 superblock options a new cgroup2 mount must carry
// so as not to change the host's (see mountCgroupView); "" when there is
// no cgroup2 mount.
func cgroup2Options(mountinfo string) string {
	for _, line := range strings.Split(mountinfo, "\n") {
		_, after, ok := strings.Cut(line, " - ")
		f := strings.Fields(after)
		if !ok || len(f) < 3 || f[0] != "cgroup2" {
			continue
		}
		var keep []string
		for _, o := range strings.Split(f[2], ",") {
			if slices.Contains(cgroup2Flags, o) {
				keep = append(keep, o)
			}
		}
		return strings.Join(keep, ",")
	}
	return ""
}
