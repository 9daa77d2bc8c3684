//go:build linux

// Package rootfs gives a container its own root filesystem: a mount
// namespace whose root is a directory of our choosing, reached with
// pivot_root, with fresh /proc, /sys and /dev, and no way back to the host's
// root. The order follows runc: make / rprivate, bind the rootfs onto
// itself, mount /proc /sys /dev and the requested mounts inside it,
// pivot_root, detach the old root, then make the root read-only if asked.
package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"berth/01-uts/spine"
)

func init() { spine.Register("rootfs", func() spine.Step { return &Step{} }) }

// Options are --rootfs and --read-only.
type Options struct {
	Rootfs   string
	ReadOnly bool
}

func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Rootfs, "rootfs", "", "root filesystem directory (default $BERTH_ROOTFS or <data-root>/busybox, built by make rootfs)")
	fs.BoolVar(&o.ReadOnly, "read-only", false, "mount the container's root filesystem read-only")
}

// DefaultRootfs is where make rootfs puts the busybox tree.
func DefaultRootfs(c *spine.Container) string {
	if p := os.Getenv("BERTH_ROOTFS"); p != "" {
		return p
	}
	return filepath.Join(c.DataRoot, "busybox")
}

func (o *Options) Configure(c *spine.Container) ([]spine.Step, error) {
	path := o.Rootfs
	if path == "" {
		path = DefaultRootfs(c)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("rootfs %s: %w", path, err)
	}
	c.Spec.Root = &specs.Root{Path: abs, Readonly: o.ReadOnly}
	c.AddNamespace(specs.MountNamespace, "")
	c.Spec.Process.Cwd = "/"
	return []spine.Step{&Step{}}, nil
}

// Step sets up the root filesystem; its configuration is the spec's Root
// and Mounts.
type Step struct {
	// SpecMounts: the spec's mounts include /proc, /sys and /dev (stage 09
	// writes Docker's default list; an OCI bundle has its own): mount them
	// as given, instead of this stage's own, and make linux.devices (see
	// specmounts.go).
	SpecMounts bool `json:"specMounts,omitempty"`
}

func (*Step) Name() string { return "rootfs" }

// Prepare checks the rootfs before anything is created, so that a typo
// costs one clear line and nothing else. The root is read from the spec
// when the child runs: a later stage (07's overlay) may replace it.
func (*Step) Prepare(c *spine.Container) error {
	root := c.Spec.Root.Path
	if root == "" {
		return nil // a later stage's step makes the root (07's layers)
	}
	st, err := os.Stat(root)
	if err != nil {
		return Explain(root, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", root)
	}
	return nil
}

// Explain turns the error of looking at a rootfs directory into the line
// every stage prints: stage 07 layers the same tree, and says the same.
func Explain(root string, err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s does not exist: build the busybox tree with `sudo make rootfs`, or pass --rootfs DIR", root)
	}
	return err
}

// Child builds the container's view of the filesystem and moves into it.
func (s *Step) Child(c *spine.Container) error {
	root := c.Spec.Root.Path
	// Nothing we mount from here on may propagate back to the host.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / rprivate: %w", err)
	}
	// pivot_root needs the new root to be a mount point; a bind mount of
	// the directory onto itself makes it one.
	if err := unix.Mount(root, root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s onto itself: %w", root, err)
	}
	rootDir, err := openRoot(root)
	if err != nil {
		return err
	}
	defer rootDir.Close()
	if s.SpecMounts {
		if err := mountFromSpec(c, rootDir, root); err != nil {
			return err
		}
	} else {
		if err := mountSpecial(c, rootDir, root); err != nil {
			return err
		}
		if err := mountRequested(c, rootDir, root); err != nil {
			return err
		}
	}
	if err := pivotRoot(root); err != nil {
		return err
	}
	c.Logf("rootfs: pivot_root into %s; the old root is detached", root)
	if c.Spec.Root.Readonly {
		if err := remountReadOnly("/"); err != nil {
			return err
		}
		c.Logf("rootfs: / is read-only")
	}
	return nil
}

// pivotRoot makes root the new / of this mount namespace and detaches the
// old one. pivot_root(".", ".") stacks the old root on top of the new one
// at the same place; unmounting "." then takes the old root away without
// needing a directory for it inside the container.
func pivotRoot(root string) error {
	if err := unix.Chdir(root); err != nil {
		return fmt.Errorf("chdir %s: %w", root, err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root %s: %w", root, err)
	}
	// Make sure no unmount below spreads to a mount we share with anyone.
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make old root rslave: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir / after pivot_root: %w", err)
	}
	return nil
}

// remountReadOnly adds MS_RDONLY to a mount, keeping the flags it has: in a
// user namespace the kernel refuses a remount that would drop flags such as
// nosuid that were locked by the parent namespace.
func remountReadOnly(path string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return fmt.Errorf("statfs %s: %w", path, err)
	}
	flags := uintptr(unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY) | mountFlags(st.Flags)
	if err := unix.Mount("", path, "", flags, ""); err != nil {
		return fmt.Errorf("remount %s read-only: %w", path, err)
	}
	return nil
}

// mountFlags turns statfs's ST_* flags into the MS_* flags a remount keeps.
func mountFlags(f int64) uintptr {
	var out uintptr
	for st, ms := range map[int64]uintptr{
		unix.ST_NOSUID: unix.MS_NOSUID, unix.ST_NODEV: unix.MS_NODEV, unix.ST_NOEXEC: unix.MS_NOEXEC,
		unix.ST_NOATIME: unix.MS_NOATIME, unix.ST_NODIRATIME: unix.MS_NODIRATIME, unix.ST_RELATIME: unix.MS_RELATIME,
	} {
		if f&st != 0 {
			out |= ms
		}
	}
	return out
}
