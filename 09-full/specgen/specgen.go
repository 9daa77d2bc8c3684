//go:build linux

// Package specgen turns `berth run`'s flags and an image's config into an
// OCI runtime spec and berth's settings, as Docker does with its flags
// (moby's daemon/oci_linux.go, containerd's oci.WithDefaultSpec): Docker's
// defaults (namespaces, the mounts of /proc /dev /sys, PATH, TERM, HOME),
// then the image's ENTRYPOINT, CMD, ENV, WORKDIR, USER, labels and stop
// signal, then what the flags say. It reuses the flag types and checks of
// stages 01-08 (the hostname's, the resource limits', the uid maps'), so a
// flag means and refuses exactly what it does there.
package specgen

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	units "github.com/docker/go-units"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth/01-uts/spine"
	"berth/01-uts/uts"
	"berth/02-pid/pid"
	"berth/04-net/network"
	"berth/05-user/userns"
	"berth/06-cgroups/cgroup"
	"berth/07-unionfs/layer"
	"berth/08-image/image"
	"berth/09-full/engine"
	"berth/09-full/store"
)

// Options are the flags of run and create, parsed.
type Options struct {
	Name          string
	Env           []string
	EnvFiles      []string
	Labels        []string
	Workdir       string
	User          string
	Entrypoint    *string
	Init          bool
	ReadOnly      bool
	Hostname      string
	Publish       []string
	Network       string
	DNS           []string
	Tty           bool
	Interactive   bool
	Restart       string
	StopSignal    string
	StopTimeout   *int
	LogDriver     string
	LogOpts       []string
	Rootfs        string
	Volumes       []string
	AutoRemove    bool
	StorageDriver string
	// The flags of stages 05 and 06, with their types and checks:
	// --memory and its kin, --map-root-user, --uidmap...
	Cgroup cgroup.Options
	UserNS userns.Options
}

// Roots are the data and state roots the container lives under.
type Roots struct{ Data, State string }

// Generate makes the record of a new container (not yet stored) from the
// options, the image (empty with --rootfs) and the command line after it.
func Generate(o *Options, ref string, args []string, roots Roots) (*store.Record, error) {
	id := store.NewID()
	rootless := os.Geteuid() != 0
	c := spine.NewContainer("berth", args)
	c.ID, c.DataRoot, c.State = id, roots.Data, roots.State
	c.Spec.Process.Cwd = "/"
	set := engine.Settings{Rootless: rootless, StorageDriver: o.StorageDriver, AutoRemove: o.AutoRemove,
		Init: o.Init, OpenStdin: o.Interactive, StdinOnce: o.Interactive, StopTimeout: o.StopTimeout}
	rec := &store.Record{ID: id, Name: o.Name, Created: time.Now().UTC(), Labels: map[string]string{}}

	// Stage 01: the hostname (the id's first 12 digits, as Docker).
	if _, err := (&uts.Options{Hostname: o.Hostname}).Configure(c); err != nil {
		return nil, err
	}
	// Stage 02: PID and IPC namespaces, and a mount namespace.
	if _, err := (&pid.Options{Init: o.Init}).Configure(c); err != nil {
		return nil, err
	}
	c.Spec.Root = &specs.Root{Readonly: o.ReadOnly}

	// The root filesystem: an image's layers, or a directory.
	var layers []string
	switch {
	case ref != "" && o.Rootfs != "":
		return nil, errors.New("give an image or --rootfs DIR, not both")
	case ref != "":
		dirs, err := fromImage(c, o, ref, rec, &set)
		if err != nil {
			return nil, err
		}
		layers = dirs
	case o.Rootfs != "":
		dir, err := filepath.Abs(o.Rootfs)
		if err != nil {
			return nil, err
		}
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("--rootfs %s: not a directory", o.Rootfs)
		}
		layers = []string{dir}
		set.Cmd, set.User = args, o.User
		if len(args) == 0 {
			return nil, fmt.Errorf("--rootfs needs a command: %s has no image config to take one from", o.Rootfs)
		}
		if err := setUser(c, o.User, layers); err != nil {
			return nil, err
		}
	default:
		return nil, errors.New("give an image (berth run IMAGE [COMMAND]) or --rootfs DIR")
	}
	set.Layers = layers

	// Stage 05: a user namespace, without root always (its maps as 05
	// chooses them), with root when asked.
	steps, err := o.UserNS.Configure(c)
	if err != nil {
		return nil, err
	}
	_ = steps // engine.Steps makes them again from the spec
	c.State, c.DataRoot = roots.State, roots.Data

	// Stage 06: the resource limits, and /berth/<id> as cgroupsPath.
	c.Steps = []spine.Step{&pid.Step{Init: o.Init}}
	if _, err := o.Cgroup.Configure(c); err != nil {
		return nil, err
	}

	if err := networkFlags(o, &set, rootless); err != nil {
		return nil, err
	}
	switch set.Network.Mode {
	case network.ModeHost:
		c.RemoveNamespace(specs.NetworkNamespace)
	case network.ModeContainer:
		// Joined by path when it is created: the other container's init
		// of that moment (engine).
		c.RemoveNamespace(specs.NetworkNamespace)
	default:
		c.AddNamespace(specs.NetworkNamespace, "")
	}
	if err := processFlags(c, o); err != nil {
		return nil, err
	}
	c.Spec.Mounts = DefaultMounts()
	for _, v := range o.Volumes {
		vol, err := volume(v, roots.Data)
		if err != nil {
			return nil, err
		}
		set.Volumes = append(set.Volumes, vol)
		c.Spec.Mounts = append(c.Spec.Mounts, vol.Mount())
	}
	if err := runtimeFlags(o, &set, rec); err != nil {
		return nil, err
	}
	if len(c.Spec.Process.Args) == 0 {
		return nil, errors.New("no command specified")
	}
	raw, err := set.Encode()
	if err != nil {
		return nil, err
	}
	rec.Spec, rec.Settings = c.Spec, raw
	if _, err := engine.Steps(&engine.Config{Spec: c.Spec, Settings: set}); err != nil {
		return nil, err
	}
	return rec, nil
}

// DefaultMounts are Docker's (moby oci.DefaultSpec), but for the cgroup
// filesystem inside, which comes with the security defaults (issue 14).
func DefaultMounts() []specs.Mount {
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
	}
}

// fromImage takes what docker run takes from an image: its layers, the
// command (ENTRYPOINT + CMD, or the arguments), ENV, WORKDIR, USER (or
// -u), labels and STOPSIGNAL.
func fromImage(c *spine.Container, o *Options, ref string, rec *store.Record, set *engine.Settings) ([]string, error) {
	st := image.NewStore(c.DataRoot)
	img, err := st.Get(ref)
	if errors.Is(err, image.ErrNotFound) {
		return nil, fmt.Errorf("Unable to find image '%s' locally: pull it (berth pull %s), load it or build it", ref, ref)
	}
	if err != nil {
		return nil, err
	}
	dirs, err := st.Unpack(img)
	if err != nil {
		return nil, err
	}
	cfg := img.Config.Config
	if o.Entrypoint != nil {
		cfg.Entrypoint, cfg.Cmd = nil, nil // as docker run --entrypoint: the CMD goes too
		if *o.Entrypoint != "" {
			cfg.Entrypoint = []string{*o.Entrypoint}
		}
	}
	set.Entrypoint, set.Cmd = cfg.Entrypoint, cfg.Cmd
	if len(c.Spec.Process.Args) > 0 {
		set.Cmd = c.Spec.Process.Args
	}
	c.Spec.Process.Args = image.ProcessArgs(cfg, c.Spec.Process.Args)
	for _, kv := range cfg.Env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			c.SetEnv(k, v)
		}
	}
	if cfg.WorkingDir != "" {
		c.Spec.Process.Cwd = cfg.WorkingDir
	}
	user := cfg.User
	if o.User != "" {
		user = o.User
	}
	set.User = user
	layers := unique(dirs)
	if err := setUser(c, user, layers); err != nil {
		return nil, fmt.Errorf("image %s: %w", img.FamiliarName(), err)
	}
	for k, v := range cfg.Labels {
		rec.Labels[k] = v
	}
	if cfg.StopSignal != "" {
		set.StopSignal = cfg.StopSignal
	}
	rec.Image = store.ImageRef{Ref: ref, ID: img.ID().String()}
	return layers, nil
}

// setUser resolves USER against the root's /etc/passwd and /etc/group and
// sets HOME from it (unless the environment has one).
func setUser(c *spine.Container, user string, layers []string) error {
	u, err := image.ResolveUser(user, layers)
	if err != nil {
		return err
	}
	c.Spec.Process.User = u.SpecUser()
	if !hasEnv(c.Spec.Process.Env, "HOME") {
		home := u.Home
		if home == "" {
			home = "/"
		}
		c.SetEnv("HOME", home)
	}
	return nil
}

// unique drops a layer that is already higher in the stack (overlay
// refuses a lower directory twice).
func unique(dirs []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, d := range dirs {
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

func hasEnv(env []string, key string) bool {
	for _, kv := range env {
		if strings.HasPrefix(kv, key+"=") {
			return true
		}
	}
	return false
}

// networkFlags reads --network, -p and --dns: stage 04's modes (05's
// slirp4netns without root), container:NAME_OR_ID by a container's name.
func networkFlags(o *Options, set *engine.Settings, rootless bool) error {
	mode := o.Network
	if mode == "" || mode == "default" {
		mode = network.ModeBridge
		if rootless {
			// As podman: a rootless container reaches out through
			// slirp4netns, where it is installed and may open /dev/net/tun
			// (some hosts keep it 0600); else it has lo alone.
			mode = network.ModeNone
			if _, err := userns.SlirpPath(); err == nil && unix.Access("/dev/net/tun", unix.R_OK|unix.W_OK) == nil {
				mode = engine.ModeSlirp
			}
		}
	}
	name, arg, _ := strings.Cut(mode, ":")
	n := engine.Network{Mode: name, DNS: o.DNS}
	switch name {
	case network.ModeBridge, network.ModeNone, network.ModeHost, engine.ModeSlirp:
		if arg != "" {
			return fmt.Errorf("invalid --network %q", mode)
		}
	case network.ModeContainer:
		if arg == "" {
			return fmt.Errorf("invalid --network %q: want container:NAME_OR_ID", mode)
		}
		n.Container = arg
	default:
		return fmt.Errorf("network %s not found: the networks are bridge, host, none, container:NAME_OR_ID (and slirp4netns); user-defined networks come with issue 15", mode)
	}
	if rootless && (n.Mode == network.ModeBridge || n.Mode == network.ModeContainer) {
		return fmt.Errorf("--network %s needs root (it changes the host's network); without root use none or slirp4netns", mode)
	}
	ports, err := network.ParsePorts(o.Publish)
	if err != nil {
		return err
	}
	if len(ports) > 0 && n.Mode != network.ModeBridge {
		return fmt.Errorf("-p publishes ports through the bridge: it needs --network bridge, not %s", mode)
	}
	n.Ports = ports
	for _, d := range o.DNS {
		if err := checkIP(d); err != nil {
			return err
		}
	}
	set.Network = n
	return nil
}

// processFlags applies -w, -e, --env-file and -t to the process.
func processFlags(c *spine.Container, o *Options) error {
	if o.Workdir != "" {
		if !path.IsAbs(o.Workdir) {
			return fmt.Errorf("the working directory '%s' is invalid, it needs to be an absolute path", o.Workdir)
		}
		c.Spec.Process.Cwd = path.Clean(o.Workdir)
	}
	for _, f := range o.EnvFiles {
		kvs, err := readEnvFile(f)
		if err != nil {
			return err
		}
		setEnv(c, kvs)
	}
	setEnv(c, o.Env)
	if o.Tty {
		c.Spec.Process.Terminal = true
		if !hasEnv(c.Spec.Process.Env, "TERM") {
			c.SetEnv("TERM", "xterm")
		}
	}
	return nil
}

// setEnv sets NAME=VALUE, or NAME alone to the host's value (if it has
// one), as docker run -e does.
func setEnv(c *spine.Container, kvs []string) {
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			if v, ok = os.LookupEnv(k); !ok {
				continue
			}
		}
		if k != "" {
			c.SetEnv(k, v)
		}
	}
}

// readEnvFile reads Docker's --env-file: a NAME=VALUE (or NAME) per line,
// # comments and blank lines skipped, nothing quoted or expanded.
func readEnvFile(p string) ([]string, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("--env-file: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(io.LimitReader(f, 16<<20))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimLeft(sc.Text(), " \t")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, _, _ := strings.Cut(line, "=")
		if k == "" || strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("--env-file %s:%d: variable '%s' contains whitespaces", p, n, k)
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--env-file %s: %w", p, err)
	}
	return out, nil
}

// volume reads one -v: a bind (HOST:CTR[:ro]) or an anonymous volume (CTR)
// made under the data root, which outlives the container unless rm -v.
func volume(v, dataRoot string) (layer.Volume, error) {
	vol, err := layer.ParseVolume(v)
	if err != nil {
		return vol, err
	}
	if vol.Anonymous {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return vol, err
		}
		vol.Source = engine.AnonymousVolumeDir(dataRoot, hex.EncodeToString(b))
	}
	return vol, nil
}

// runtimeFlags are those of the settings: --restart, --stop-signal,
// --log-opt, -l.
func runtimeFlags(o *Options, set *engine.Settings, rec *store.Record) error {
	p, err := engine.ParseRestartPolicy(o.Restart)
	if err != nil {
		return err
	}
	if o.AutoRemove && p.Name != "no" {
		return errors.New("Conflicting options: --restart and --rm")
	}
	set.Restart = p
	if o.StopSignal != "" {
		set.StopSignal = o.StopSignal
	}
	if set.StopSignal != "" {
		if _, err := engine.ParseSignal(set.StopSignal); err != nil {
			return fmt.Errorf("--stop-signal: %w", err)
		}
	}
	if o.LogDriver != "" && o.LogDriver != "json-file" {
		return fmt.Errorf("log driver %q is not supported: berth has json-file", o.LogDriver)
	}
	set.Log = engine.LogConfig{Type: "json-file", MaxFile: 1}
	for _, opt := range o.LogOpts {
		k, v, ok := strings.Cut(opt, "=")
		if !ok {
			return fmt.Errorf("invalid --log-opt %q: want KEY=VALUE", opt)
		}
		switch k {
		case "max-size":
			n, err := units.RAMInBytes(v)
			if err != nil || n < 1 {
				return fmt.Errorf("invalid --log-opt max-size %q: want a size such as 10m", v)
			}
			set.Log.MaxSize = n
		case "max-file":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return fmt.Errorf("invalid --log-opt max-file %q: want a number of files, at least 1", v)
			}
			set.Log.MaxFile = n
		default:
			return fmt.Errorf("unknown log opt '%s' for json-file log driver (berth has max-size and max-file)", k)
		}
	}
	if set.Log.MaxFile > 1 && set.Log.MaxSize == 0 {
		return errors.New("max-file cannot be set without max-size")
	}
	for _, l := range o.Labels {
		k, v, _ := strings.Cut(l, "=")
		if k == "" {
			return fmt.Errorf("invalid label %q: want KEY=VALUE", l)
		}
		rec.Labels[k] = v
	}
	return nil
}

func checkIP(s string) error {
	if net.ParseIP(s) == nil {
		return fmt.Errorf("invalid --dns %q: want an IP address", s)
	}
	return nil
}
