//go:build linux

// Package layer gives a container a root filesystem made of layers, as
// Docker's overlay2 driver does: read-only layers (an image's), an init
// layer the runtime writes, and one writable layer per container that
// outlives the run until it is removed. Overlay joins them with copy-up on
// write and whiteouts on delete; a copy-based driver stands in where
// overlay cannot be mounted. The verbs diff, commit, apply and rm work on
// the store; what they do is in packages of their own: diff (changes and
// their tarball), untar (a tarball safely into a layer directory), tree
// (every file read and changed through fds). Chapter: docs/07-unionfs.md.
package layer

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/pflag"

	"berth/01-uts/spine"
	"berth/03-mount/rootfs"
	"berth/07-unionfs/tree"
	"berth/07-unionfs/untar"
)

func init() { spine.Register("layer", func() spine.Step { return &Step{} }) }

// Options are the flags of the layered root.
type Options struct {
	Layers  string
	Image   string
	Volumes []string
	Remove  bool
	Driver  string
}

func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Layers, "layers", "", "read-only layers DIR1:DIR2:... (top first) under the container layer")
	fs.StringVar(&o.Image, "image", "", "an image folder: layer tarballs and a file 'order' naming them, base first")
	fs.StringArrayVarP(&o.Volumes, "volume", "v", nil, "bind mount HOSTDIR:CTRPATH[:ro], or CTRPATH for an anonymous volume (repeatable)")
	fs.BoolVar(&o.Remove, "rm", false, "remove the container layer when the container exits")
	fs.StringVar(&o.Driver, "storage-driver", "auto", "overlay, copy, or auto (overlay if it mounts here, else copy)")
}

func (o *Options) Configure(c *spine.Container) ([]spine.Step, error) {
	// Without root (stage 05 has put the container in a user namespace
	// of its own) the layer can only be mounted from inside: see PreChild.
	s := &Step{Image: o.Image, Remove: o.Remove, Driver: o.Driver, Rootless: os.Geteuid() != 0}
	switch o.Driver {
	case "auto", DriverOverlay, DriverCopy:
	default:
		return nil, fmt.Errorf("invalid --storage-driver %q: use overlay, copy or auto", o.Driver)
	}
	if o.Layers != "" && o.Image != "" {
		return nil, errors.New("--layers and --image both choose the read-only layers: give one")
	}
	switch {
	case o.Layers != "":
		for _, d := range strings.Split(o.Layers, ":") {
			abs, err := layerDir(d)
			if err != nil {
				return nil, fmt.Errorf("--layers: %w", err)
			}
			s.Layers = append(s.Layers, abs)
		}
	case o.Image != "":
		abs, err := filepath.Abs(o.Image)
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(filepath.Join(abs, OrderFile)); err != nil {
			return nil, fmt.Errorf("--image %s: %w (an image folder has layer tarballs and a file %q naming them, base first)", o.Image, err, OrderFile)
		}
		s.Image = abs
	default:
		// The tree stage 03 chose (--rootfs, $BERTH_ROOTFS or the busybox
		// tree) becomes a single read-only layer.
		root := ""
		if c.Spec.Root != nil {
			root = c.Spec.Root.Path
		}
		if root == "" {
			root = os.Getenv("BERTH_ROOTFS")
		}
		if root == "" {
			root = filepath.Join(c.DataRoot, "busybox")
		}
		abs, err := layerDir(root)
		if err != nil {
			return nil, fmt.Errorf("rootfs: %w", rootfs.Explain(root, err))
		}
		s.Layers = []string{abs}
	}
	// The layers make the root now (Prepare says where): stage 03 has no
	// directory of its own to check.
	if c.Spec.Root != nil {
		c.Spec.Root.Path = ""
	}
	if NewStore(c.DataRoot).Exists(c.ID) {
		return nil, fmt.Errorf("container %q already has a layer from an earlier run: inspect it with '%s diff %s', remove it with '%s rm %s', or pick another --id",
			c.ID, c.Prog, c.ID, c.Prog, c.ID)
	}
	for i, arg := range o.Volumes {
		v, err := ParseVolume(arg)
		if err != nil {
			return nil, err
		}
		if v.Anonymous {
			v.Source = filepath.Join(c.StateDir(), "volumes", strconv.Itoa(i))
		}
		s.Volumes = append(s.Volumes, v)
		c.Spec.Mounts = append(c.Spec.Mounts, v.Mount())
	}
	return []spine.Step{s}, nil
}

func layerDir(d string) (string, error) {
	if d == "" {
		return "", errors.New("empty layer path")
	}
	abs, err := filepath.Abs(d)
	if err != nil {
		return "", err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return "", err
	}
	if !st.IsDir() {
		return "", fmt.Errorf("%s is not a directory", abs)
	}
	return abs, nil
}

// Step builds the layered root. As root it does so in the parent, in the
// host's mount namespace (as Docker's graph driver does): the child's new
// mount namespace starts as a copy that already holds the overlay, and
// stage 03's rootfs step pivots into c.Spec.Root.Path as usual. Without
// root the parent prepares the directories and the child mounts (PreChild).
type Step struct {
	Driver   string   `json:"driver"`
	Layers   []string `json:"layers,omitempty"` // top first
	Image    string   `json:"image,omitempty"`
	Volumes  []Volume `json:"volumes,omitempty"`
	Remove   bool     `json:"remove,omitempty"`
	Rootless bool     `json:"rootless,omitempty"`
	// Keep: the container layer outlives a run and is used again by the
	// next (stage 09: a container stops and starts again with the changes
	// it made). Prepare then attaches the layer that exists.
	Keep bool `json:"keep,omitempty"`
}

func (*Step) Name() string { return "layer" }

func (s *Step) Prepare(c *spine.Container) error {
	store := NewStore(c.DataRoot)
	if err := store.Init(); err != nil {
		return err
	}
	if s.Keep && store.started(c.ID) {
		return s.reattach(c, store)
	}
	lowers := s.Layers
	if s.Image != "" {
		var err error
		if lowers, err = store.ImportImage(s.Image, untar.Options{Userxattr: s.Rootless, Rootless: s.Rootless}); err != nil {
			return err
		}
	}
	rec := &Record{ID: c.ID, Lowers: lowers}
	if path, ok := c.Namespace(specs.UserNamespace); ok && path == "" {
		rec.UIDMap, rec.GIDMap = c.Spec.Linux.UIDMappings, c.Spec.Linux.GIDMappings
	}
	if s.Rootless {
		// Only the container's user namespace may mount this overlay, and
		// only there can we learn whether it mounts: PreChild decides.
		rec.Driver, rec.Userxattr, rec.Rootless = DriverOverlay, true, true
		if s.Driver == DriverCopy {
			rec.Driver = DriverCopy
		}
	} else {
		driver, err := chooseDriver(c, store, s.Driver)
		if err != nil {
			return err
		}
		rec.Driver = driver
	}
	err := store.New(rec, func(dir string, below []string) error {
		return writeInit(dir, below, s.Volumes, s.Rootless)
	})
	if err != nil {
		return err
	}
	for _, v := range s.Volumes {
		if v.Anonymous || v.Fill {
			if err := seedVolume(store.stack(rec), v, s.Rootless); err != nil {
				return err
			}
		}
		c.Logf("layer: volume %s -> %s (bind, before pivot_root)", v.Source, v.Dest)
	}
	root := store.RootPath(rec)
	if s.Rootless {
		c.Logf("layer: %s root %s on %d layer(s) + init layer, made inside the container's user namespace; container layer %s",
			rec.Driver, root, len(lowers), store.diffDir(c.ID))
	} else {
		if root, err = store.Attach(rec); err != nil {
			return err
		}
		c.Logf("layer: %s root %s on %d layer(s) + init layer; container layer %s", rec.Driver, root, len(lowers), store.diffDir(c.ID))
	}
	if c.Spec.Root == nil {
		c.Spec.Root = &specs.Root{}
	}
	c.Spec.Root.Path = root
	return nil
}

// reattach makes an existing container layer the root again: its
// overlay mounted (as root; without root PreChild mounts it), or its copy,
// which holds the whole tree already, used as it is. Its init layer and
// volumes were made by the first run and are not touched.
func (s *Step) reattach(c *spine.Container, store Store) error {
	rec, err := store.Load(c.ID)
	if err != nil {
		return err
	}
	root := store.RootPath(rec)
	if rec.Driver == DriverOverlay && !s.Rootless {
		if root, err = store.Attach(rec); err != nil {
			return err
		}
	}
	c.Logf("layer: %s root %s, the container layer of an earlier run", rec.Driver, root)
	if c.Spec.Root == nil {
		c.Spec.Root = &specs.Root{}
	}
	c.Spec.Root.Path = root
	return nil
}

// chooseDriver: overlay when asked, or on auto when a probe mount works;
// otherwise the copy driver, said in one line so the user knows why a
// container start got slower.
func chooseDriver(c *spine.Container, store Store, want string) (string, error) {
	if want == DriverCopy {
		return DriverCopy, nil
	}
	remembered, err := overlayMounts(store.Root)
	switch {
	case err == nil && remembered:
		c.Logf("layer: overlay mounts on %s (remembered from this boot's probe in %s)", store.Root, filepath.Join(store.Root, probeFile))
		return DriverOverlay, nil
	case err == nil:
		c.Logf("layer: overlay mounts on %s (probed; remembered until reboot in %s)", store.Root, filepath.Join(store.Root, probeFile))
		return DriverOverlay, nil
	case want == DriverOverlay:
		return "", fmt.Errorf("--storage-driver overlay: %w", err)
	}
	fmt.Fprintf(os.Stderr, "%s: overlay does not mount on %s (mount: %v): using the copy driver (each container gets a full copy of its layers)\n",
		c.Prog, store.Root, cause(err))
	return DriverCopy, nil
}

// cause is the innermost error (an errno), for a one-line message.
func cause(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

// PreChild attaches a rootless container's layer, inside the container
// before any step's Child: 03's rootfs step pivots into c.Spec.Root.Path
// next. An unprivileged user may mount overlay only in a mount namespace
// owned by a user namespace of their own (Linux 5.11 and later), with
// userxattr: its marks go in user.overlay.* xattrs, since trusted.* is for
// the host's root alone. Where that fails (an older kernel, an upper
// directory on overlay or on tmpfs without user.* xattrs), the copy driver
// takes over, here too, with one line saying so. The mount lives and dies
// with the container's mount namespace: nothing to unmount afterwards.
func (s *Step) PreChild(c *spine.Container) error {
	if !s.Rootless {
		return nil
	}
	store := NewStore(c.DataRoot)
	rec, err := store.Load(c.ID)
	if err != nil {
		return err
	}
	if rec.Driver == DriverCopy && s.Keep && store.started(c.ID) {
		c.Spec.Root.Path = store.diffDir(c.ID) // the copy of an earlier run
		return nil
	}
	if rec.Driver == DriverOverlay {
		why := "no user.* extended attributes"
		err := userXattrs(store.diffDir(c.ID))
		if err == nil {
			why = "mount"
			err = store.Mount(rec)
		}
		if err == nil {
			c.Spec.Root.Path = store.mergedDir(c.ID)
			c.Logf("layer: overlay mounted with userxattr in the container's mount namespace")
			return store.markStarted(c.ID)
		}
		if s.Driver == DriverOverlay {
			return fmt.Errorf("--storage-driver overlay: %w", err)
		}
		fmt.Fprintf(os.Stderr, "%s: overlay does not mount in a user namespace on %s (%s: %v): using the copy driver (each container gets a full copy of its layers)\n",
			c.Prog, store.Root, why, cause(err))
		rec.Driver = DriverCopy
		if err := store.save(rec); err != nil {
			return err
		}
	}
	root, err := store.Attach(rec)
	if err != nil {
		return err
	}
	c.Spec.Root.Path = root
	c.Logf("layer: copied the layers into %s", root)
	return store.markStarted(c.ID)
}

// Parent marks the container layer as used: from now on only rm or --rm
// removes it (a start that failed before this leaves nothing behind).
// Without root the child marks it once the layer is attached.
func (s *Step) Parent(c *spine.Container, pid int) error {
	if s.Rootless {
		return nil
	}
	return NewStore(c.DataRoot).markStarted(c.ID)
}

// Cleanup unmounts the overlay (idempotent; paths come from the id, so a
// later run collecting a killed one does the same) and removes the layer
// on --rm or after a failed start.
func (s *Step) Cleanup(c *spine.Container) error {
	store := NewStore(c.DataRoot)
	if err := store.Unmount(c.ID); err != nil {
		return err
	}
	if s.Remove || !store.started(c.ID) {
		return store.Remove(c.ID)
	}
	return nil
}

// seedVolume fills a new anonymous volume with what the image has at its
// path, as Docker does, then the bind hides the original. The path is
// resolved as the container will see it (securejoin over the stack, as for
// the mount points) and copied from the layers, which works before the
// root is attached, as a rootless container's is. A named volume (Fill)
// is seeded only while it is empty, and takes the owner and mode of the
// image's directory too, as Docker's copy-up does.
func seedVolume(layers []string, v Volume, rootless bool) error {
	if err := os.MkdirAll(v.Source, 0o755); err != nil {
		return fmt.Errorf("anonymous volume %s: %w", v.Dest, err)
	}
	if v.Fill {
		f, err := os.Open(v.Source)
		if err != nil {
			return fmt.Errorf("volume %s: %w", v.Name, err)
		}
		names, err := f.Readdirnames(1)
		f.Close()
		if len(names) > 0 {
			return nil // filled already: what it holds is the volume's
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("volume %s: %w", v.Name, err)
		}
	}
	s, err := tree.OpenStack(layers)
	if err != nil {
		return fmt.Errorf("anonymous volume %s: %w", v.Dest, err)
	}
	defer s.Close()
	stack := s.Root()
	resolved, err := securejoin.SecureJoinVFS("/", v.Dest, stackVFS{stack})
	if err != nil {
		return fmt.Errorf("anonymous volume %s: %w", v.Dest, err)
	}
	if e, ok, err := stack.Lookup(resolved); err != nil || !ok || !e.IsDir() {
		return err // nothing there in the image (or not a directory)
	}
	if err := copyMergedAt(layers, resolved, v.Source, rootless); err != nil {
		return fmt.Errorf("seed volume %s: %w", v.Dest, err)
	}
	if v.Fill {
		if e, _, err := stack.Lookup(resolved); err != nil {
			return err
		} else if err := newCopier(rootless).copyMetaTo(e, v.Source); err != nil {
			return fmt.Errorf("seed volume %s: %w", v.Dest, err)
		}
	}
	return nil
}
