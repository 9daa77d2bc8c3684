//go:build linux

package userns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth/01-uts/spine"
	"berth/01-uts/spine/roots"
)

// rootlessRootfs picks the root filesystem. Without root, the spine chose
// your own roots (01-uts/spine/roots.go), and stage 03 defaulted to
// <data root>/busybox: your own busybox tree if you built one
// (scripts/rootfs.sh ~/.local/share/berth/busybox); if you did not, the
// shared one in root's data root that 03's --rootfs defaults to for root.
// Either way you must be able to read it: the container's root is you,
// and gets no more than you from files it does not own.
func rootlessRootfs(o *Options, c *spine.Container) error {
	if c.Spec.Root == nil || c.Spec.Root.Path == "" {
		return nil // no rootfs stage before us
	}
	if !o.changed("rootfs") && os.Getenv("BERTH_ROOTFS") == "" {
		own := c.Spec.Root.Path
		if st, err := os.Stat(own); (err != nil || !st.IsDir()) && isRootlessDataRoot(c.DataRoot) {
			c.Spec.Root.Path = filepath.Join(roots.DefaultDataRoot, "busybox")
		}
	}
	root := c.Spec.Root.Path
	err := unix.Access(root, unix.R_OK|unix.X_OK)
	if errors.Is(err, unix.ENOENT) {
		return nil // a missing rootfs is the rootfs step's to report
	}
	if err == nil {
		sharedTmp(c, root)
		return nil
	}
	if !o.changed("rootfs") && os.Getenv("BERTH_ROOTFS") == "" {
		return fmt.Errorf("the shared busybox tree %s is not readable by uid %d (%v): build your own with `scripts/rootfs.sh %s`, or pass --rootfs DIR",
			root, os.Getuid(), err, filepath.Join(c.DataRoot, "busybox"))
	}
	return fmt.Errorf("rootfs %s is not readable by uid %d (%v): without root the container gets no more than you do; chown -R it to yourself or pick another --rootfs", root, os.Getuid(), err)
}

func (o *Options) changed(flag string) bool {
	return o.fs != nil && o.fs.Lookup(flag) != nil && o.fs.Changed(flag)
}

// isRootlessDataRoot: dir is the data root a user without root gets by
// default, not one given with --data-root or $BERTH_DATA_ROOT.
func isRootlessDataRoot(dir string) bool {
	d, err := roots.RootlessDataRoot()
	return err == nil && d == dir
}

// Prepare refuses resource limits without root. A cgroup limit is written
// into a cgroup the container cannot reach: on cgroup v1 (this machine's
// hybrid layout) only root may create groups, and on v2 only in a subtree
// systemd delegated to the user. berth does not use such a delegation, so
// a rootless container has no cgroup of its own, and a limit asked for
// must not be silently dropped.
func (s *Step) Prepare(c *spine.Container) error {
	if !s.Rootless {
		return nil
	}
	if what := limits(c.Spec.Linux.Resources); what != "" {
		return fmt.Errorf("resource limits (%s) need root: a rootless container has no cgroup of its own; run with sudo, or drop the limit", what)
	}
	return nil
}

// limits names the limits a spec asks for ("" when none). A device
// allow-list is not a limit: it only says what the container may open.
func limits(r *specs.LinuxResources) string {
	if r == nil {
		return ""
	}
	var what []string
	if r.Memory != nil {
		what = append(what, "memory")
	}
	if r.CPU != nil {
		what = append(what, "cpu")
	}
	if r.Pids != nil {
		what = append(what, "pids")
	}
	if r.BlockIO != nil {
		what = append(what, "blkio")
	}
	if len(r.HugepageLimits) > 0 || r.Network != nil || len(r.Rdma) > 0 || len(r.Unified) > 0 {
		what = append(what, "other")
	}
	return strings.Join(what, ", ")
}

// sharedTmp gives the container a private /tmp when its root belongs to
// someone else (the shared busybox tree): its world-writable /tmp is the
// one place there a rootless container could write, and what one user's
// container leaves there the next user's would find.
func sharedTmp(c *spine.Container, root string) {
	var st unix.Stat_t
	if unix.Stat(root, &st) != nil || int(st.Uid) == os.Getuid() {
		return
	}
	c.Spec.Mounts = append(c.Spec.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777", "size=65536k"}})
	c.Logf("userns: %s is not yours: /tmp is a private tmpfs", root)
}

// rootReachable checks, as root with a map, that the container's root can
// walk to the rootfs: a directory owned by an id outside the map gives it
// only the "other" (or group) permission bits, whatever capabilities it
// holds in its namespace. A test's 0700 temporary directory is the usual
// trap.
func rootReachable(c *spine.Container, uids, gids []specs.LinuxIDMapping) error {
	if c.Spec.Root == nil || c.Spec.Root.Path == "" {
		return nil
	}
	uid, _ := ToHost(uids, 0)
	gid, _ := ToHost(gids, 0)
	mapped := func(u, g uint32) bool {
		_, uok := FromHost(uids, u)
		_, gok := FromHost(gids, g)
		return uok && gok
	}
	root := filepath.Clean(c.Spec.Root.Path)
	path := []string{root}
	for p := root; p != "/"; {
		p = filepath.Dir(p)
		path = append([]string{p}, path...)
	}
	for _, p := range path {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			return nil // the rootfs step reports a missing rootfs
		}
		var bit uint32
		switch {
		case mapped(st.Uid, st.Gid):
			bit = 0 // CAP_DAC_OVERRIDE holds for files of mapped ids
		case st.Uid == uid:
			bit = 0o100
		case st.Gid == gid:
			bit = 0o010
		default:
			bit = 0o001
		}
		if bit != 0 && st.Mode&bit == 0 {
			return fmt.Errorf("the container's root (host uid %d) may not enter %s (owner %d, mode %04o) on the way to the rootfs %s: chmod o+x it, or use a rootfs elsewhere",
				uid, p, st.Uid, st.Mode&0o7777, root)
		}
	}
	return nil
}
