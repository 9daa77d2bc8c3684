//go:build linux

// Package engine runs one container of stage 09 from its record: it turns
// the OCI spec and berth's settings into the steps of stages 01-08 (Steps),
// creates the container under a monitor that outlives the command that
// asked for it, starts, signals, stops and removes it, and is the exit
// command the monitor runs when the container's init exits. It knows no
// flags (09-full/cli does) and keeps its records in 09-full/store.
package engine

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"berth/01-uts/spine"
	"berth/01-uts/uts"
	"berth/02-pid/pid"
	"berth/03-mount/rootfs"
	"berth/04-net/network"
	"berth/05-user/userns"
	"berth/06-cgroups/cgroup"
	"berth/07-unionfs/layer"
	"berth/09-full/security"
	"berth/09-full/store"
)

// A Config is a container: the OCI runtime spec, which says everything it
// can, and berth's settings for what it has no field for.
type Config struct {
	Spec     *specs.Spec `json:"spec"`
	Settings Settings    `json:"settings"`
}

// Settings are what the OCI spec has no field for.
type Settings struct {
	// The root filesystem: read-only layers (an image's, unpacked; top
	// first) under a container layer of its own, made by stage 07's
	// driver. Empty (an OCI bundle): spec.root.path as it is.
	Layers        []string `json:"layers,omitempty"`
	StorageDriver string   `json:"storageDriver,omitempty"` // auto, overlay or copy
	Network       Network  `json:"network"`
	// Volumes are bind mounts and anonymous volumes (stage 07); they are
	// in the spec's mounts too, the step needs them to make their mount
	// points and seed anonymous ones.
	Volumes []layer.Volume `json:"volumes,omitempty"`
	// ExposedPorts are the image's EXPOSE ("80/tcp"): what -P publishes.
	ExposedPorts []string      `json:"exposedPorts,omitempty"`
	Restart      RestartPolicy `json:"restart"`
	Log          LogConfig     `json:"log"`
	AutoRemove   bool          `json:"autoRemove,omitempty"`  // --rm
	StopSignal   string        `json:"stopSignal,omitempty"`  // default SIGTERM
	StopTimeout  *int          `json:"stopTimeout,omitempty"` // seconds; default 10
	Init         bool          `json:"init,omitempty"`        // --init: a small init as PID 1
	// InitPath is the host's static init (tini) that --init bound at
	// /dev/init and put first in process.args (security.WithInit); empty
	// with --init: the host has none, and stage 02's init is PID 1.
	InitPath  string `json:"initPath,omitempty"`
	OpenStdin bool   `json:"openStdin,omitempty"` // -i: the container's stdin stays open for attach
	StdinOnce bool   `json:"stdinOnce,omitempty"` // close it when the first attached client's input ends
	// Rootless: made by a user without root (stage 05's mechanisms).
	Rootless bool `json:"rootless,omitempty"`
	// As the user gave them, for inspect (the spec has the result:
	// process.args, process.user): the image's or --entrypoint's
	// ENTRYPOINT, the CMD, -u.
	Entrypoint []string `json:"entrypoint,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
	User       string   `json:"user,omitempty"`
	// Healthcheck is the image's HEALTHCHECK with --health-* over it
	// (health.go); nil or Test ["NONE"]: none.
	Healthcheck *dockerspec.HealthcheckConfig `json:"healthcheck,omitempty"`
}

// Network is --network: a mode of stage 04 (bridge, none, host,
// container:NAME) or 05's slirp4netns, with 04's published ports and DNS.
type Network struct {
	Mode      string         `json:"mode"`                // "" (an OCI bundle): no network step
	Container string         `json:"container,omitempty"` // container mode: whose namespace (id)
	Ports     []network.Port `json:"ports,omitempty"`
	DNS       []string       `json:"dns,omitempty"`
	// A user-defined network (issue 15, 09-full/networks; Mode is then
	// bridge): its name, and this container's endpoint on it.
	Name    string   `json:"name,omitempty"`
	Aliases []string `json:"aliases,omitempty"`
	IP      string   `json:"ip,omitempty"`
	MAC     string   `json:"mac,omitempty"`
	// --dns-search, --dns-option, --add-host (NAME:IP).
	DNSSearch  []string `json:"dnsSearch,omitempty"`
	DNSOptions []string `json:"dnsOptions,omitempty"`
	ExtraHosts []string `json:"extraHosts,omitempty"`
	// pid of Container's init, found when the container is created; the
	// user network's bridge, subnet, range and internal flag likewise
	// (the network may have been removed and made again since).
	pid            int
	bridge, subnet string
	ipRange        string
	internal       bool
}

// RestartPolicy is --restart: no, on-failure[:N], always, unless-stopped.
type RestartPolicy struct {
	Name              string `json:"name"`
	MaximumRetryCount int    `json:"maximumRetryCount,omitempty"`
}

// LogConfig is the json-file driver's --log-opt max-size and max-file.
type LogConfig struct {
	Type    string `json:"type"`
	MaxSize int64  `json:"maxSize,omitempty"`
	MaxFile int    `json:"maxFile,omitempty"`
}

// Network modes beyond stage 04's.
const ModeSlirp = userns.SlirpMode

// Steps turns a config into the steps of stages 01-08 that carry it out,
// in the order they must run. It is the one place that does: berth run's
// containers and (issue 16) an OCI bundle's come through here. A field of
// the spec that no step carries out is refused in one line.
func Steps(cfg *Config) ([]spine.Step, error) {
	spec := cfg.Spec
	if err := Supported(spec); err != nil {
		return nil, err
	}
	has := func(t specs.LinuxNamespaceType) bool {
		for _, n := range spec.Linux.Namespaces {
			if n.Type == t {
				return true
			}
		}
		return false
	}
	var steps []spine.Step
	if has(specs.UserNamespace) && len(spec.Linux.UIDMappings) > 0 {
		s := &userns.Step{Rootless: os.Geteuid() != 0}
		if s.Rootless && (len(spec.Linux.UIDMappings) > 1 || len(spec.Linux.GIDMappings) > 1) {
			var err error
			if s.NewUIDMap, err = userns.Helper("newuidmap"); err != nil {
				return nil, err
			}
			if s.NewGIDMap, err = userns.Helper("newgidmap"); err != nil {
				return nil, err
			}
		}
		steps = append(steps, s)
	}
	if has(specs.UTSNamespace) {
		steps = append(steps, &uts.Step{})
	}
	// Stage 02's step makes every mount private and, with --init, keeps a
	// small init as PID 1.
	steps = append(steps, &pid.Step{Init: cfg.Settings.Init && cfg.Settings.InitPath == ""})
	// Before the root is mounted: its Child gives the container a cgroup
	// namespace rooted at its group, which a cgroup mount inside shows.
	if spec.Linux.CgroupsPath != "" && os.Geteuid() == 0 {
		steps = append(steps, &cgroup.Step{})
	}
	if n := cfg.Settings.Network; n.Mode != "" {
		// The network step works on the namespace the spec gives: a new
		// one (bridge, none, slirp4netns), the host's, or another's.
		var netns *specs.LinuxNamespace
		for i, x := range spec.Linux.Namespaces {
			if x.Type == specs.NetworkNamespace {
				netns = &spec.Linux.Namespaces[i]
			}
		}
		switch {
		case n.Mode == network.ModeHost && netns != nil,
			n.Mode == network.ModeContainer && netns != nil && netns.Path == "",
			n.Mode != network.ModeHost && n.Mode != network.ModeContainer && (netns == nil || netns.Path != ""):
			return nil, fmt.Errorf("engine: network mode %s does not match the spec's network namespace", n.Mode)
		}
		mode := n.Mode
		if mode == ModeSlirp {
			mode = network.ModeNone // lo up; slirp4netns adds tap0
		}
		s := &network.Step{Mode: mode, Ports: n.Ports, DNS: n.DNS, Pid: n.pid, IP: n.IP, MAC: n.MAC,
			DNSSearch: n.DNSSearch, DNSOptions: n.DNSOptions, ExtraHosts: n.ExtraHosts}
		if mode == network.ModeBridge {
			s.Bridge, s.Subnet = network.DefaultBridge, network.DefaultSubnet
			if n.bridge != "" {
				s.Bridge, s.Subnet, s.IPRange, s.Internal = n.bridge, n.subnet, n.ipRange, n.internal
				if len(s.DNS) == 0 {
					// The network's name server, on its gateway (dns.go).
					s.DNS = []string{gatewayOf(n.subnet)}
				}
			}
		}
		steps = append(steps, s)
		if n.Mode == ModeSlirp {
			path, err := userns.SlirpPath()
			if err != nil {
				return nil, err
			}
			steps = append(steps, &userns.Slirp{Path: path})
		}
	}
	// Stage 03's step checks a root given as a directory (a bundle's) in
	// its Prepare; stage 07's makes one of layers in its own, after it (as
	// in 07's list), and, without root, mounts it in PreChild, before any
	// step's Child: 03's Child then pivots into it.
	steps = append(steps, &rootfs.Step{SpecMounts: true})
	if len(cfg.Settings.Layers) > 0 {
		steps = append(steps, &layer.Step{
			Driver: driverOr(cfg.Settings.StorageDriver), Layers: cfg.Settings.Layers,
			Volumes: cfg.Settings.Volumes, Rootless: cfg.Settings.Rootless, Keep: true,
		})
	}
	// Last: the working directory (UserStep), then 09-full/security's
	// step, whose PreExec is the last thing before the command: the user
	// switch, the capabilities, no_new_privs, and seccomp last of all
	// (security.Finalize says why in that order). Its Child needs the
	// pivot_root and the cgroup namespace done, so nothing comes after it.
	steps = append(steps, &UserStep{}, security.NewStep())
	return steps, nil
}

func driverOr(d string) string {
	if d == "" {
		return "auto"
	}
	return d
}

// Supported refuses, in one line, a spec field no step carries out yet.
func Supported(spec *specs.Spec) error {
	if spec == nil || spec.Process == nil || spec.Linux == nil || spec.Root == nil {
		return fmt.Errorf("engine: the spec needs process, root and linux")
	}
	if len(spec.Process.Args) == 0 {
		return fmt.Errorf("engine: process.args is empty: no command to run")
	}
	l, p := spec.Linux, spec.Process
	for _, f := range []struct {
		set  bool
		name string
	}{
		{l.IntelRdt != nil, "linux.intelRdt"},
		{l.Personality != nil, "linux.personality"},
		{l.MountLabel != "", "linux.mountLabel"},
		{l.RootfsPropagation != "", "linux.rootfsPropagation"},
		{spec.Hooks != nil, "hooks"},
		{p.SelinuxLabel != "", "process.selinuxLabel"},
		{p.ApparmorProfile != "", "process.apparmorProfile"},
		// The security fields (capabilities, seccomp, rlimits, sysctls,
		// masked and read-only paths...) are 09-full/security's step's:
		// its Prepare refuses what it cannot do (security.Validate).
	} {
		if f.set {
			return fmt.Errorf("engine: %s is not supported", f.name)
		}
	}
	for _, n := range l.Namespaces {
		switch {
		case n.Path == "":
		case n.Type == specs.NetworkNamespace, n.Type == specs.UTSNamespace,
			n.Type == specs.IPCNamespace, n.Type == specs.CgroupNamespace:
			// The spine's init joins these itself (spine's
			// joinNamespaces): they belong to the calling thread, so
			// setns works in the multithreaded Go runtime. A pod's
			// containers join its sandbox's network, IPC and UTS
			// namespaces this way (docs/09-oci.md, "A Kubernetes
			// node's CRI").
		case n.Type == specs.PIDNamespace:
			// Entered only by the children of the caller of setns:
			// the spine's parent forks the init in it (startInPidns).
		default:
			// The kernel refuses setns into a mount or user namespace
			// to a multithreaded process: the init would need exec's
			// single-threaded nsenter.
			return fmt.Errorf("engine: joining a %s namespace (%s) is not supported", n.Type, n.Path)
		}
	}
	return nil
}

// Command is the container's command as the user gave it (inspect's
// Path and Args, ps's COMMAND): process.args without the init --init put
// in front of it, as Docker shows it.
func (c *Config) Command() []string {
	args := c.Spec.Process.Args
	if c.Settings.InitPath != "" && len(args) >= 2 && args[0] == security.InitPath && args[1] == "--" {
		return args[2:]
	}
	return args
}

// Encode and Decode turn settings into the record's opaque field and back.
func (s Settings) Encode() (json.RawMessage, error) { return json.Marshal(s) }

// DecodeSettings reads the settings of a record.
func DecodeSettings(raw json.RawMessage) (Settings, error) {
	var s Settings
	if len(raw) == 0 {
		return s, nil
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return s, fmt.Errorf("decode settings: %w", err)
	}
	return s, nil
}

// ConfigOf is a record's config.
func ConfigOf(rec *store.Record) (*Config, error) {
	set, err := DecodeSettings(rec.Settings)
	if err != nil {
		return nil, err
	}
	return &Config{Spec: rec.Spec, Settings: set}, nil
}

// AnonymousVolumeDir is where an anonymous volume lives (-v /path): in the
// data root, as Docker's /var/lib/docker/volumes/<id>/_data, so that it
// outlives the container unless rm -v or --rm removes it.
func AnonymousVolumeDir(dataRoot, name string) string {
	return filepath.Join(dataRoot, "volumes", name, "_data")
}
