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
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"berth/01-uts/spine"
	"berth/01-uts/uts"
	"berth/02-pid/pid"
	"berth/04-net/network"
	"berth/05-user/userns"
	"berth/06-cgroups/cgroup"
	"berth/09-full/engine"
	"berth/09-full/security"
	"berth/09-full/store"
)

// Options are the flags of run and create, parsed.
type Options struct {
	Name       string
	Env        []string
	EnvFiles   []string
	Labels     []string
	Workdir    string
	User       string
	Entrypoint *string
	Init       bool
	ReadOnly   bool
	Hostname   string
	Publish    []string
	PublishAll bool // -P
	Network    string
	// A user-defined network's endpoint: --network-alias, --ip, --mac-address.
	NetworkAliases []string
	IP, MAC        string
	// --dns-search, --dns-option, --add-host.
	DNSSearch, DNSOptions, AddHosts []string
	DNS                             []string
	Tty                             bool
	Interactive                     bool
	// KeepStdin keeps an interactive container's stdin open when its
	// first client leaves: the API's OpenStdin without StdinOnce (docker
	// run -di); berth run -i closes it then, as docker run -i.
	KeepStdin     bool
	Restart       string
	StopSignal    string
	StopTimeout   *int
	LogDriver     string
	LogOpts       []string
	Rootfs        string
	Volumes       []string
	Mounts        []string // --mount
	VolumesFrom   []string // --volumes-from
	AutoRemove    bool
	StorageDriver string
	// The flags of stages 05 and 06, with their types and checks:
	// --memory and its kin, --map-root-user, --uidmap...
	Cgroup     cgroup.Options
	UserNS     userns.Options
	UserNSMode string // --userns: host or keep-id (usernsMode)
	// Docker's security flags (--cap-add, --privileged, --security-opt,
	// --device, --ulimit, --sysctl...), 09-full/security's.
	Security security.Flags
	// --health-* (health.go)
	Health HealthOptions
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
		Init: o.Init, OpenStdin: o.Interactive, StdinOnce: o.Interactive && !o.KeepStdin, StopTimeout: o.StopTimeout}
	rec := &store.Record{ID: id, Name: o.Name, Created: time.Now().UTC(), Labels: map[string]string{}}

	// Stage 01: the hostname (the id's first 12 digits, as Docker).
	if _, err := (&uts.Options{Hostname: o.Hostname}).Configure(c); err != nil {
		return nil, err
	}
	// --init: Docker's is tini (docker-init), bound read-only, so that
	// PID 1 is not berth's own binary (which root in the container could
	// read through /proc/1/exe, or trace, for the container's whole life).
	// A host without a static tini gets a refusal, as Docker without
	// docker-init does, never stage 02's init in its place.
	if o.Init {
		p, err := security.FindInit()
		if err != nil {
			return nil, err
		}
		set.InitPath = p
	}
	// Stage 02: PID and IPC namespaces, and a mount namespace.
	if _, err := (&pid.Options{}).Configure(c); err != nil {
		return nil, err
	}
	c.Spec.Root = &specs.Root{Readonly: o.ReadOnly}
	if err := usernsMode(o, rootless); err != nil {
		return nil, err
	}

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
	c.Steps = []spine.Step{&pid.Step{}}
	if _, err := o.Cgroup.Configure(c); err != nil {
		return nil, err
	}

	if err := networkFlags(o, &set, rootless, roots.Data); err != nil {
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
	c.Spec.Mounts = security.DefaultMounts()
	mounts, err := mountFlags(o, &set, roots)
	if err != nil {
		return nil, err
	}
	c.Spec.Mounts = append(c.Spec.Mounts, mounts...)
	// Docker's security defaults, then the flags: last, once the user
	// (a non-root one gets no effective capabilities), the namespaces (a
	// sysctl must be namespaced) and the mounts (/sys read-only) are set.
	if err := applySecurity(c, o, &set); err != nil {
		return nil, err
	}
	if err := runtimeFlags(o, &set, rec); err != nil {
		return nil, err
	}
	if set.Healthcheck, err = healthcheck(&o.Health, set.Healthcheck); err != nil {
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

// applySecurity gives the spec Docker's security defaults and the
// security flags (09-full/security's Apply).
func applySecurity(c *spine.Container, o *Options, set *engine.Settings) error {
	h, err := security.ThisHost()
	if err != nil {
		return err
	}
	so := o.Security.Parsed()
	so.Init, so.InitPath = set.InitPath != "", set.InitPath
	if len(so.DeviceRules) > 0 && os.Geteuid() != 0 {
		return errors.New("--device-cgroup-rule needs root: a rootless container has no device cgroup of its own")
	}
	if err := security.Apply(c.Spec, so, h); err != nil {
		return err
	}
	// A profile of the user's is compiled now, so that one it cannot be
	// compiled from is refused before the container is recorded; Docker's
	// own is known to compile (security's tests), and compiling it costs
	// a millisecond or two that the create would pay twice.
	for _, opt := range so.SecurityOpt {
		if strings.HasPrefix(opt, "seccomp") && c.Spec.Linux.Seccomp != nil {
			return security.Validate(c.Spec)
		}
	}
	return nil
}
