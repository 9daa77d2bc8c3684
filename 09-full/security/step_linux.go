//go:build linux

package security

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth/01-uts/spine"
	"berth/09-full/security/seccomp"
)

func init() { spine.Register("security", func() spine.Step { return &Step{} }) }

// Step carries out the spec's security fields inside the container. It
// has no settings of its own: everything comes from the spec (its one
// field is the filter Prepare compiled from it), so a bundle's
// config.json and berth run's flags go the same way. Put it last
// in the step list: its Child must follow pivot_root (the rootfs step)
// and the cgroup namespace (the cgroup step), its PreExec every other.
//
//	Prepare   validate the spec: refuse what cannot be done; compile
//	          the seccomp filter
//	PreChild  set aside the cgroup mounts; in a user namespace, take the
//	          host's device nodes (open_tree) before pivot_root
//	Child     sysctls, devices, the cgroup view, read-only and masked
//	          paths, a session keyring of the container's own
//	PreExec   Finalize: rlimits, user, capabilities, no_new_privs, seccomp
type Step struct {
	// The seccomp filter, compiled by Prepare from linux.seccomp, for the
	// child to load as is (the kernel's struct sock_filter array).
	Filter      []byte  `json:"filter,omitempty"`
	FilterFlags uintptr `json:"filterFlags,omitempty"`

	cgroupMounts []specs.Mount
	cgroup2Data  string // the host's cgroup2 options (mountCgroupView)
	hostDevs     map[string]int
}

// NewStep returns the step (Prepare fills it from the spec).
func NewStep() *Step { return &Step{} }

func (*Step) Name() string { return "security" }

// Prepare refuses, before anything exists, what the child could not do,
// and compiles the filter once.
func (s *Step) Prepare(c *spine.Container) error {
	if err := validate(c.Spec); err != nil {
		return err
	}
	s.Filter, s.FilterFlags = nil, 0
	if c.Spec.Linux.Seccomp == nil {
		return nil
	}
	start := time.Now()
	p, err := seccomp.Compile(c.Spec.Linux.Seccomp)
	if err != nil {
		return err
	}
	if s.Filter, err = p.MarshalBinary(); err != nil {
		return err
	}
	s.FilterFlags = p.Flags
	c.Logf("security: seccomp profile compiled to %d BPF instructions in %v", len(p.Instructions), time.Since(start).Round(time.Microsecond))
	return nil
}

// PreChild runs before the rootfs step mounts the spec's mounts. The
// cgroup view must wait for the container's own cgroup namespace (made
// by the cgroup step's Child, after pivot_root): take it out of the list
// here (the child's copy of the spec), mount it in Child.
func (s *Step) PreChild(c *spine.Container) error {
	s.cgroupMounts = nil
	c.Spec.Mounts = slices.DeleteFunc(c.Spec.Mounts, func(m specs.Mount) bool {
		if isCgroupMount(m) {
			s.cgroupMounts = append(s.cgroupMounts, m)
			return true
		}
		return false
	})
	if len(s.cgroupMounts) > 0 {
		// Still the host's mount table (a copy): its cgroup2's options.
		mi, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			return fmt.Errorf("read the mount table for cgroup2's options: %w", err)
		}
		s.cgroup2Data = cgroup2Options(string(mi))
	}
	if len(c.Spec.Linux.Devices) > 0 && inUserNamespace() {
		s.hostDevs = hostDevices(c.Spec.Linux.Devices)
	}
	return nil
}

// Child sets up what the container's file system shows.
func (s *Step) Child(c *spine.Container) error {
	defer func() {
		for _, fd := range s.hostDevs {
			unix.Close(fd)
		}
		s.hostDevs = nil
	}()
	l := c.Spec.Linux
	if err := checkProc(); err != nil {
		return err
	}
	if err := writeSysctls(l.Sysctl); err != nil {
		return err
	}
	for _, d := range l.Devices {
		if err := createDevice(d, s.hostDevs); err != nil {
			return err
		}
	}
	for _, m := range s.cgroupMounts {
		if err := mountCgroupView(m, s.cgroup2Data); err != nil {
			return err
		}
	}
	for _, p := range l.ReadonlyPaths {
		if err := readonlyPath(p); err != nil {
			return err
		}
	}
	for _, p := range l.MaskedPaths {
		if err := maskPath(p); err != nil {
			return err
		}
	}
	if err := joinSessionKeyring(c.ID); err != nil {
		return err
	}
	c.Logf("security: %d sysctls, %d devices, %d read-only and %d masked paths", len(l.Sysctl), len(l.Devices), len(l.ReadonlyPaths), len(l.MaskedPaths))
	return nil
}

// PreExec is the last thing before the command: see Finalize.
func (s *Step) PreExec(c *spine.Container) error {
	if c.Verbose {
		c.Logf("security: user %d:%d, capabilities %s, no_new_privs %v, seccomp %v",
			c.Spec.Process.User.UID, c.Spec.Process.User.GID, capSummary(c.Spec.Process.Capabilities),
			c.Spec.Process.NoNewPrivileges, c.Spec.Linux.Seccomp != nil)
	}
	var prog *seccomp.Program
	if s.Filter != nil {
		var err error
		if prog, err = seccomp.UnmarshalProgram(s.Filter, s.FilterFlags); err != nil {
			return err
		}
	}
	return finalize(c.Spec, c.Spec.Process, prog, c.Logf)
}

func capSummary(c *specs.LinuxCapabilities) string {
	if c == nil {
		return "unchanged"
	}
	m, _ := Mask(c.Effective)
	b, _ := Mask(c.Bounding)
	return fmt.Sprintf("effective %016x bounding %016x", m, b)
}

// joinSessionKeyring gives the container a session keyring of its own,
// as runc does. A process inherits its session keyring; the container's
// init would otherwise share the one of whoever ran berth, and the keys
// in it (a login's, a Kerberos ticket). The default seccomp profile
// blocks the key calls anyway, but --privileged or a custom profile
// would not. A kernel built without keys has no keyring to share.
func joinSessionKeyring(id string) error {
	_, err := unix.KeyctlJoinSessionKeyring("_ses.berth." + id)
	if errors.Is(err, unix.ENOSYS) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("keyctl(KEYCTL_JOIN_SESSION_KEYRING): %w", err)
	}
	return nil
}

// Validate checks the security fields of a spec before any work: the
// engine calls it (Prepare does) for berth run's spec and for a bundle's
// config.json alike, so that anything berth cannot carry out is refused
// in one line rather than half done or ignored.
func Validate(spec *specs.Spec) error {
	if err := validate(spec); err != nil {
		return err
	}
	if spec.Linux.Seccomp != nil {
		if _, err := seccomp.Compile(spec.Linux.Seccomp); err != nil {
			return err
		}
	}
	return nil
}

// validate is Validate but for the seccomp profile, which Prepare
// compiles anyway.
func validate(spec *specs.Spec) error {
	if spec == nil || spec.Process == nil || spec.Linux == nil {
		return errors.New("security: the spec needs process and linux sections")
	}
	avail, err := AvailableCaps()
	if err != nil {
		return err
	}
	if err := checkCapabilities(spec.Process.Capabilities, avail); err != nil {
		return err
	}
	for _, r := range spec.Process.Rlimits {
		if _, ok := rlimitTypes[r.Type]; !ok {
			return fmt.Errorf("process.rlimits: unknown type %q", r.Type)
		}
		if r.Soft > r.Hard {
			return fmt.Errorf("process.rlimits %s: soft limit %d above the hard limit %d", r.Type, r.Soft, r.Hard)
		}
	}
	if p := spec.Process.OOMScoreAdj; p != nil {
		if err := checkOOMScoreAdj(*p); err != nil {
			return fmt.Errorf("process.oomScoreAdj: %w", err)
		}
	}
	if err := checkSysctls(spec); err != nil {
		return err
	}
	for _, list := range [][]string{spec.Linux.MaskedPaths, spec.Linux.ReadonlyPaths} {
		for _, p := range list {
			if len(p) == 0 || p[0] != '/' {
				return fmt.Errorf("linux.maskedPaths/readonlyPaths: %q is not an absolute path", p)
			}
		}
	}
	return nil
}
