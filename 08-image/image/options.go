//go:build linux

// Package image runs a container from an image of the store: --image NAME
// unpacks the image's layers as stage 07's read-only layers and takes
// ENTRYPOINT, CMD, ENV, WORKDIR and USER from its config, as docker run
// does; USER is resolved from the image's own /etc/passwd and /etc/group,
// read as hostile input (View: the image's root as a container would see
// it, without mounting it). Chapter: docs/08-image.md, "From config to
// container".
package image

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	units "github.com/docker/go-units"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"berth/01-uts/spine"
	"berth/07-unionfs/layer"
	"berth/08-image/store"
)

func init() { spine.Register("image", func() spine.Step { return &Step{} }) }

// Options are stage 07's layer flags with --image taking an image of the
// store (a name or an id), plus --user. An image folder of stage 07 (a
// directory with an 'order' file) still works. The image's config sets
// what docker run takes from it: ENTRYPOINT and CMD, ENV, WORKDIR, USER.
type Options struct {
	Layer      layer.Options
	User       string
	Entrypoint string
	entrypoint bool     // --entrypoint was given ("" clears the image's)
	bound      SizeFlag // --max-image-size, when the image is unpacked
}

func (o *Options) AddFlags(fs *pflag.FlagSet) {
	o.Layer.AddFlags(fs)
	fs.Lookup("image").Usage = "an image of the store (name or id; see 'images'), or a stage-07 image folder"
	fs.StringVarP(&o.User, "user", "u", "", "run as USER[:GROUP] (names or numbers), instead of the image's USER")
	o.bound.AddFlag(fs)
	fs.Func("entrypoint", "replace the image's ENTRYPOINT (and its CMD) with this program; \"\" for none", func(v string) error {
		o.Entrypoint, o.entrypoint = v, true
		return nil
	})
}

func (o *Options) Configure(c *spine.Container) ([]spine.Step, error) {
	ref := o.Layer.Image
	if ref == "" || isImageFolder(ref) {
		if o.entrypoint {
			return nil, errors.New("--entrypoint needs an image of the store (--image NAME)")
		}
		if o.User != "" {
			return nil, errors.New("--user needs an image of the store, whose /etc/passwd it reads (--image NAME)")
		}
		return o.Layer.Configure(c)
	}
	if o.Layer.Layers != "" {
		return nil, errors.New("--layers and --image both choose the read-only layers: give one")
	}
	st := store.NewStore(c.DataRoot)
	st.MaxImageSize = o.bound.N
	img, err := st.Get(ref)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("image %q is not in the store %s: pull it (%s pull %s), load it, or build it first", ref, st.Root, c.Prog, ref)
	}
	if err != nil {
		return nil, err
	}
	dirs, err := st.Unpack(context.Background(), img)
	if err != nil {
		return nil, err
	}
	c.Logf("image: %s (%s), %d layer(s) unpacked under %s", img.FamiliarName(), img.ShortID(), len(dirs), filepath.Join(st.Layers.Root, "sha256"))
	cfg := img.Config.Config
	if o.entrypoint {
		// As docker run --entrypoint: the image's CMD went with it.
		cfg.Entrypoint, cfg.Cmd = nil, nil
		if o.Entrypoint != "" {
			cfg.Entrypoint = []string{o.Entrypoint}
		}
	}
	user := ApplyConfig(c, cfg, o.User)
	if len(c.Spec.Process.Args) == 0 {
		return nil, fmt.Errorf("image %s has no ENTRYPOINT or CMD: give a command after the flags", img.FamiliarName())
	}
	u, err := ResolveUser(user, dirs)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", img.FamiliarName(), err)
	}
	if !HasEnv(c.Spec.Process.Env, "HOME") {
		home := u.Home
		if home == "" {
			home = "/"
		}
		c.SetEnv("HOME", home)
	}
	su := u.SpecUser()
	c.Spec.Process.User = su
	lo := o.Layer
	lo.Image, lo.Layers = "", strings.Join(UniqueLayers(dirs), ":")
	steps, err := lo.Configure(c)
	if err != nil {
		return nil, err
	}
	return append(steps, &Step{Image: img.Name, ID: img.ID().String(), User: u, Workdir: cfg.WorkingDir}), nil
}

// uniqueLayers drops a layer that appears again higher in the stack (two
// build steps that made the same content): overlay refuses a lower
// directory twice, and the copy below the top one changes nothing the
// container could see.

func isImageFolder(p string) bool {
	st, err := os.Stat(filepath.Join(p, layer.OrderFile))
	return err == nil && st.Mode().IsRegular()
}

// Step switches to the image's user last, just before execve: every
// earlier step needed root in the container.
type Step struct {
	Image   string `json:"image"`
	ID      string `json:"id"`
	User    User   `json:"user"`
	Workdir string `json:"workdir,omitempty"` // the image's WORKDIR, made if missing
}

func (*Step) Name() string { return "image" }

// Child makes the image's working directory if the image lacks it, as
// docker does, inside the container's root: it runs after stage 03's
// pivot_root, so the path (and any symbolic link on it) resolves in the
// container, never on the host.
func (s *Step) Child(c *spine.Container) error {
	if s.Workdir == "" || c.Spec.Process.Cwd != s.Workdir {
		return nil
	}
	if _, err := os.Stat(s.Workdir); err == nil {
		return nil
	}
	if err := os.MkdirAll(s.Workdir, 0o755); err != nil {
		return fmt.Errorf("make the image's working directory %s: %w", s.Workdir, err)
	}
	c.Logf("image: made the working directory %s", s.Workdir)
	return nil
}

// PreExec sets the groups, then the group, then the user: the order in
// which each call is still allowed. x/sys/unix changes the calling thread
// only, which is the thread that execs (the init locked it).
func (s *Step) PreExec(c *spine.Container) error {
	u := s.User
	if u.UID == 0 && u.GID == 0 && len(u.AdditionalGids) == 0 {
		return nil
	}
	gids := make([]int, 0, len(u.AdditionalGids))
	for _, g := range u.AdditionalGids {
		gids = append(gids, int(g))
	}
	if err := unix.Setgroups(gids); err != nil && !(len(gids) == 0 && errors.Is(err, unix.EPERM)) {
		return fmt.Errorf("setgroups %v: %w", gids, err)
	}
	if err := unix.Setresgid(int(u.GID), int(u.GID), int(u.GID)); err != nil {
		return fmt.Errorf("setgid %d: %w (is the group mapped in the user namespace?)", u.GID, err)
	}
	if err := unix.Setresuid(int(u.UID), int(u.UID), int(u.UID)); err != nil {
		return fmt.Errorf("setuid %d: %w (is the user mapped in the user namespace?)", u.UID, err)
	}
	c.Logf("image: running as uid %d gid %d groups %v", u.UID, u.GID, u.AdditionalGids)
	return nil
}

// SizeFlag is the --max-image-size flag: a size as docker's --memory
// takes one (github.com/docker/go-units: 512m, 8GiB, powers of 1024).
type SizeFlag struct{ N int64 }

func (b *SizeFlag) AddFlag(fs *pflag.FlagSet) {
	fs.Var(b, "max-image-size", "refuse an image whose layers' files add up to more than SIZE (as 512MiB, 8GiB); also bounds what a pull downloads and what a load stores")
}

func (b *SizeFlag) Set(v string) error {
	n, err := units.RAMInBytes(v)
	if err != nil || n <= 0 {
		return fmt.Errorf("want a positive size such as 512MiB or 8GiB")
	}
	b.N = n
	return nil
}

func (b *SizeFlag) String() string {
	if b.N == 0 {
		return store.FormatSize(store.DefaultMaxImageSize)
	}
	return store.FormatSize(b.N)
}

func (b *SizeFlag) Type() string { return "size" }
