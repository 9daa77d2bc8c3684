//go:build linux

package security

import (
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	units "github.com/docker/go-units"
	mobyseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Options are the security flags of docker run, as the user typed them.
// Apply turns them into spec fields; the engine's CLI only collects the
// strings (Flags does that for a pflag set).
type Options struct {
	CapAdd, CapDrop []string
	Privileged      bool
	SecurityOpt     []string // seccomp=PROFILE.json|unconfined, no-new-privileges[=true|false], systempaths=unconfined
	Devices         []string // HOST[:CONTAINER[:PERMS]]
	DeviceRules     []string // --device-cgroup-rule 'c 1:3 rwm'
	Ulimits         []string // NAME=SOFT[:HARD]
	Sysctls         []string // KEY=VALUE
	OOMScoreAdj     *int
	ShmSize         string   // a size: 64m
	Tmpfs           []string // /PATH[:OPTIONS]
	Init            bool     // --init: a tiny init (tini) as PID 1
	InitPath        string   // the static init binary on the host (default: FindInit)
}

// Host is what Apply needs to know of the machine: it is passed in so
// that the rules are tested without one.
type Host struct {
	Caps     uint64                           // the capabilities berth can give (Available)
	Stat     func(string) (DeviceInfo, error) // the device at a host path
	Walk     func(string) ([]string, error)   // the device nodes under a host directory
	ReadFile func(string) ([]byte, error)     // a seccomp profile
	// The Linux security modules that are on: where one is, an apparmor=
	// or label= option berth cannot honour is refused (checkLSMOpt).
	AppArmor, SELinux bool
}

// DeviceInfo is a device node as stat shows it.
type DeviceInfo struct {
	Dir          bool
	Type         string // "c" or "b"; "" for neither
	Major, Minor int64
	Mode         os.FileMode
	UID, GID     uint32
}

// Apply gives the spec Docker's defaults and then the flags, in the order
// that makes them compose: capabilities first, because the default
// seccomp profile depends on them (CAP_SYS_ADMIN opens mount, unshare...)
// and --privileged overrides both. spec.Process.User must be final.
func Apply(spec *specs.Spec, o Options, h Host) error {
	if err := SetDefaults(spec); err != nil {
		return err
	}
	sec, err := parseSecurityOpts(o.SecurityOpt, h)
	if err != nil {
		return err
	}
	caps := AllCapabilities(h.Caps)
	if !o.Privileged {
		if caps, err = TweakCapabilities(DefaultCapabilities(), o.CapAdd, o.CapDrop, h.Caps); err != nil {
			return err
		}
	}
	SetCapabilities(spec, caps)

	switch {
	case o.Privileged || sec.seccomp == "unconfined":
		spec.Linux.Seccomp = nil
	case sec.seccomp != "":
		if h.ReadFile == nil {
			return errors.New("--security-opt seccomp=FILE: no file reader")
		}
		body, err := h.ReadFile(sec.seccomp)
		if err != nil {
			return fmt.Errorf("--security-opt seccomp: %w", err)
		}
		if len(body) > maxProfile {
			return fmt.Errorf("--security-opt seccomp: %s is larger than %d bytes", sec.seccomp, maxProfile)
		}
		p, err := mobyseccomp.LoadProfile(string(body), spec)
		if err != nil {
			return fmt.Errorf("--security-opt seccomp=%s: %w", sec.seccomp, err)
		}
		spec.Linux.Seccomp = p
	default:
		if err := SetDefaultSeccomp(spec); err != nil {
			return err
		}
	}
	spec.Process.NoNewPrivileges = sec.noNewPrivs
	if o.Privileged || sec.systemPaths {
		spec.Linux.MaskedPaths = nil
		spec.Linux.ReadonlyPaths = nil
	}
	if o.Privileged {
		if err := SetPrivilegedDevices(spec, h); err != nil {
			return err
		}
		setSystemMounts(spec, false)
	}
	for _, d := range o.Devices {
		if err := AddDevice(spec, d, h); err != nil {
			return err
		}
	}
	for _, r := range o.DeviceRules {
		if err := AddDeviceCgroupRule(spec, r); err != nil {
			return err
		}
	}
	for _, u := range o.Ulimits {
		if err := AddUlimit(spec, u); err != nil {
			return err
		}
	}
	for _, kv := range o.Sysctls {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("--sysctl %q: use KEY=VALUE, for example net.ipv4.ip_forward=1", kv)
		}
		if err := SetSysctl(spec, k, v); err != nil {
			return err
		}
	}
	if o.OOMScoreAdj != nil {
		if err := checkOOMScoreAdj(*o.OOMScoreAdj); err != nil {
			return fmt.Errorf("--oom-score-adj: %w", err)
		}
		v := *o.OOMScoreAdj
		spec.Process.OOMScoreAdj = &v
	}
	if o.ShmSize != "" {
		if err := SetShmSize(spec, o.ShmSize); err != nil {
			return err
		}
	}
	for _, t := range o.Tmpfs {
		if err := AddTmpfs(spec, t); err != nil {
			return err
		}
	}
	if o.Init {
		p := o.InitPath
		if p == "" {
			if p, err = FindInit(); err != nil {
				return err
			}
		}
		WithInit(spec, p)
	}
	return nil
}

// maxProfile bounds a seccomp profile file (Docker's default is ~20 kB).
const maxProfile = 1 << 20

type securityOpts struct {
	seccomp     string // "", "unconfined" or a file
	noNewPrivs  bool
	systemPaths bool // systempaths=unconfined
}

// parseSecurityOpts reads --security-opt values. Docker accepts KEY=VALUE
// and the older KEY:VALUE; so does berth. apparmor= and label= are taken
// as Docker takes them on a host without those modules (checkLSMOpt).
func parseSecurityOpts(opts []string, h Host) (securityOpts, error) {
	var s securityOpts
	for _, opt := range opts {
		k, v, ok := strings.Cut(opt, "=")
		if !ok {
			k, v, ok = strings.Cut(opt, ":")
		}
		switch k {
		case "no-new-privileges":
			if !ok {
				s.noNewPrivs = true
				continue
			}
			b, err := strconv.ParseBool(v)
			if err != nil {
				return s, fmt.Errorf("--security-opt no-new-privileges=%s: use true or false", v)
			}
			s.noNewPrivs = b
		case "seccomp":
			if !ok || v == "" {
				return s, errors.New("--security-opt seccomp needs a value: seccomp=PROFILE.json or seccomp=unconfined")
			}
			s.seccomp = v
		case "systempaths":
			if v != "unconfined" {
				return s, fmt.Errorf("--security-opt systempaths=%s: the only value is unconfined", v)
			}
			s.systemPaths = true
		case "apparmor", "label":
			if err := checkLSMOpt(k, v, h); err != nil {
				return s, err
			}
		default:
			return s, fmt.Errorf("--security-opt %q: berth knows seccomp=, no-new-privileges, systempaths=unconfined, and apparmor= and label= (which do nothing here: no AppArmor or SELinux)", opt)
		}
	}
	return s, nil
}

// SetPrivilegedDevices is --privileged's /dev: every device node of the
// host's /dev in the container, and a device cgroup that allows them all.
func SetPrivilegedDevices(spec *specs.Spec, h Host) error {
	all := int64(-1)
	spec.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Type: "a", Major: &all, Minor: &all, Access: "rwm"}}
	if h.Walk == nil {
		return nil
	}
	nodes, err := h.Walk("/dev")
	if err != nil {
		return fmt.Errorf("--privileged: list the host's devices: %w", err)
	}
	for _, n := range nodes {
		d, err := h.Stat(n)
		if err != nil || d.Type == "" {
			continue // gone since, or not a device
		}
		addDeviceNode(spec, n, d)
	}
	return nil
}

// AddDevice is --device HOST[:CONTAINER[:PERMS]]: the host's node appears
// in the container (at CONTAINER, default the same path) and the device
// cgroup allows PERMS (default rwm) on it. A directory adds every device
// under it, as Docker does.
func AddDevice(spec *specs.Spec, arg string, h Host) error {
	parts := strings.Split(arg, ":")
	if len(parts) > 3 || parts[0] == "" {
		return fmt.Errorf("--device %q: use HOST[:CONTAINER[:PERMS]], for example /dev/fuse or /dev/sdb:/dev/xvdb:r", arg)
	}
	host, dst, perms := parts[0], parts[0], "rwm"
	switch len(parts) {
	case 2:
		if validPerms(parts[1]) {
			perms = parts[1]
		} else {
			dst = parts[1]
		}
	case 3:
		dst, perms = parts[1], parts[2]
	}
	if !validPerms(perms) {
		return fmt.Errorf("--device %q: permissions %q must be a combination of r, w and m", arg, perms)
	}
	if !path.IsAbs(host) || !path.IsAbs(dst) {
		return fmt.Errorf("--device %q: paths must be absolute", arg)
	}
	if dst = path.Clean(dst); !strings.HasPrefix(dst, "/dev/") {
		return fmt.Errorf("--device %q: the container path must be under /dev", arg)
	}
	if h.Stat == nil {
		return errors.New("--device: no way to stat the host's device")
	}
	d, err := h.Stat(host)
	if err != nil {
		return fmt.Errorf("--device %s: %w", host, err)
	}
	nodes := []string{host}
	if d.Dir {
		if h.Walk == nil {
			return errors.New("--device: no way to list a directory")
		}
		if nodes, err = h.Walk(host); err != nil {
			return fmt.Errorf("--device %s: %w", host, err)
		}
	} else if d.Type == "" {
		return fmt.Errorf("--device %s: not a device node", host)
	}
	for _, n := range nodes {
		nd, err := h.Stat(n)
		if err != nil {
			return fmt.Errorf("--device %s: %w", n, err)
		}
		if nd.Type == "" {
			continue
		}
		target := dst
		if d.Dir {
			target = path.Join(dst, strings.TrimPrefix(n, host))
		}
		addDeviceNode(spec, target, nd)
		major, minor := nd.Major, nd.Minor
		spec.Linux.Resources.Devices = append(spec.Linux.Resources.Devices,
			specs.LinuxDeviceCgroup{Allow: true, Type: nd.Type, Major: &major, Minor: &minor, Access: perms})
	}
	return nil
}

func addDeviceNode(spec *specs.Spec, target string, d DeviceInfo) {
	mode := d.Mode.Perm()
	uid, gid := d.UID, d.GID
	spec.Linux.Devices = slices.DeleteFunc(spec.Linux.Devices, func(x specs.LinuxDevice) bool { return x.Path == target })
	spec.Linux.Devices = append(spec.Linux.Devices, specs.LinuxDevice{
		Path: target, Type: d.Type, Major: d.Major, Minor: d.Minor, FileMode: &mode, UID: &uid, GID: &gid,
	})
}

func validPerms(p string) bool {
	if p == "" || len(p) > 3 {
		return false
	}
	for _, c := range p {
		if !strings.ContainsRune("rwm", c) || strings.Count(p, string(c)) > 1 {
			return false
		}
	}
	return true
}

// AddUlimit is --ulimit NAME=SOFT[:HARD] (-1 for unlimited), parsed by
// docker/go-units as Docker does, into process.rlimits.
func AddUlimit(spec *specs.Spec, arg string) error {
	u, err := units.ParseUlimit(arg)
	if err != nil {
		return fmt.Errorf("--ulimit %q: %w", arg, err)
	}
	if u.Soft < -1 || u.Hard < -1 {
		return fmt.Errorf("--ulimit %q: a limit is a number, or -1 for unlimited", arg)
	}
	typ := "RLIMIT_" + strings.ToUpper(u.Name)
	spec.Process.Rlimits = slices.DeleteFunc(spec.Process.Rlimits, func(r specs.POSIXRlimit) bool { return r.Type == typ })
	spec.Process.Rlimits = append(spec.Process.Rlimits, specs.POSIXRlimit{Type: typ, Soft: uint64(u.Soft), Hard: uint64(u.Hard)})
	return nil
}

// SetShmSize is --shm-size: the size of the container's /dev/shm tmpfs.
func SetShmSize(spec *specs.Spec, size string) error {
	n, err := units.RAMInBytes(size)
	if err != nil || n <= 0 {
		return fmt.Errorf("--shm-size %q: use a positive size, for example 64m or 1g", size)
	}
	opt := "size=" + strconv.FormatInt(n, 10)
	for i, m := range spec.Mounts {
		if m.Destination == "/dev/shm" {
			spec.Mounts[i].Options = append(slices.DeleteFunc(slices.Clone(m.Options), func(o string) bool { return strings.HasPrefix(o, "size=") }), opt)
			return nil
		}
	}
	spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/dev/shm", Type: "tmpfs", Source: "shm",
		Options: []string{"nosuid", "noexec", "nodev", "mode=1777", opt}})
	return nil
}

// tmpfsOptions are what --tmpfs accepts; the flags come in opposite pairs.
var tmpfsFlags = map[string]string{"ro": "rw", "rw": "ro", "exec": "noexec", "noexec": "exec",
	"suid": "nosuid", "nosuid": "suid", "dev": "nodev", "nodev": "dev"}

// AddTmpfs is --tmpfs /PATH[:OPTIONS]: a tmpfs mount, noexec, nosuid and
// nodev unless the options say otherwise (Docker's defaults).
func AddTmpfs(spec *specs.Spec, arg string) error {
	dst, optStr, _ := strings.Cut(arg, ":")
	if !path.IsAbs(dst) || path.Clean(dst) == "/" {
		return fmt.Errorf("--tmpfs %q: the path must be absolute and not /", arg)
	}
	dst = path.Clean(dst)
	opts := []string{"noexec", "nosuid", "nodev"}
	if optStr != "" {
		for _, o := range strings.Split(optStr, ",") {
			k, v, hasValue := strings.Cut(o, "=")
			switch {
			case tmpfsFlags[o] != "":
				opts = slices.DeleteFunc(opts, func(x string) bool { return x == tmpfsFlags[o] || x == o })
				opts = append(opts, o)
			case hasValue && (k == "size" || k == "nr_inodes" || k == "nr_blocks"):
				n, err := units.RAMInBytes(v)
				if err != nil || n <= 0 {
					return fmt.Errorf("--tmpfs %q: %s must be a positive size", arg, k)
				}
				opts = append(opts, k+"="+strconv.FormatInt(n, 10))
			case hasValue && k == "mode":
				if _, err := strconv.ParseUint(v, 8, 32); err != nil {
					return fmt.Errorf("--tmpfs %q: mode must be octal, for example 1777", arg)
				}
				opts = append(opts, o)
			case hasValue && (k == "uid" || k == "gid"):
				if _, err := strconv.ParseUint(v, 10, 32); err != nil {
					return fmt.Errorf("--tmpfs %q: %s must be a number", arg, k)
				}
				opts = append(opts, o)
			default:
				return fmt.Errorf("--tmpfs %q: unknown option %q (berth knows ro, rw, [no]exec, [no]suid, [no]dev, size, mode, uid, gid, nr_inodes)", arg, o)
			}
		}
	}
	for _, m := range spec.Mounts {
		if m.Destination == dst && m.Type == "tmpfs" {
			return fmt.Errorf("--tmpfs %s: given twice", dst)
		}
	}
	spec.Mounts = append(spec.Mounts, specs.Mount{Destination: dst, Type: "tmpfs", Source: "tmpfs", Options: opts})
	return nil
}

func checkOOMScoreAdj(v int) error {
	if v < -1000 || v > 1000 {
		return fmt.Errorf("%d is out of range: use -1000 to 1000", v)
	}
	return nil
}
