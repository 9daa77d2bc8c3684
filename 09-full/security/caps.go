package security

import (
	"fmt"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// capNames are the capabilities by number (linux/capability.h), as the
// runtime spec spells them. The kernel's /proc/sys/kernel/cap_last_cap
// says how many of them the running kernel has.
var capNames = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
	"CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
	"CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
	"CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// DefaultCapabilities is Docker's default set (moby's oci/caps): what a
// container's root keeps. Everything else root may do on the host (load
// modules, mount, trace other processes, change the clock, administer the
// network...) is gone.
func DefaultCapabilities() []string {
	return []string{
		"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
		"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
		"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
	}
}

// CapNumber returns the number of a capability named as in the spec
// (CAP_SYS_ADMIN).
func CapNumber(name string) (int, bool) {
	i := slices.Index(capNames, name)
	return i, i >= 0
}

// AllCapabilities are the capabilities in avail (see Available): what
// --privileged and --cap-add ALL give.
func AllCapabilities(avail uint64) []string { return Names(avail) }

// Available is the mask of the capabilities berth can give: those the
// kernel knows (0 to last, its cap_last_cap) that are in bounding, the
// runtime's own bounding set (as Docker does, so a berth that itself runs
// without a capability, in another container or a user namespace, does
// not ask for it). Only names berth knows count.
func Available(last int, bounding uint64) uint64 {
	last = min(last, len(capNames)-1)
	return bounding & (1<<uint(last+1) - 1)
}

// normalize spells a --cap-add/--cap-drop value as the spec does:
// upper case, with the CAP_ prefix; "ALL" stays ALL.
func normalize(name string, avail uint64) (string, error) {
	c := strings.ToUpper(strings.TrimSpace(name))
	if c == "ALL" {
		return c, nil
	}
	if !strings.HasPrefix(c, "CAP_") {
		c = "CAP_" + c
	}
	n, ok := CapNumber(c)
	if !ok {
		return "", fmt.Errorf("unknown capability: %q (see man 7 capabilities; for example NET_ADMIN or CAP_NET_ADMIN)", name)
	}
	if avail&(1<<uint(n)) == 0 {
		return "", fmt.Errorf("capability %s is not available: this kernel lacks it, or berth runs without it", c)
	}
	return c, nil
}

// TweakCapabilities applies --cap-add and --cap-drop to base, as Docker
// does: --cap-add ALL starts from every capability (then --cap-drop
// removes some), --cap-drop ALL keeps only what --cap-add names, and
// otherwise the drops come off base and the adds go on. A name may be
// given with or without CAP_, in any case; an unknown one is refused.
func TweakCapabilities(base, add, drop []string, avail uint64) ([]string, error) {
	adds, err := normalizeAll(add, avail)
	if err != nil {
		return nil, err
	}
	drops, err := normalizeAll(drop, avail)
	if err != nil {
		return nil, err
	}
	var out []string
	switch {
	case slices.Contains(adds, "ALL"):
		for _, c := range AllCapabilities(avail) {
			if !slices.Contains(drops, c) {
				out = append(out, c)
			}
		}
	case slices.Contains(drops, "ALL"):
		out = adds
	default:
		for _, c := range base {
			if !slices.Contains(drops, c) {
				out = append(out, c)
			}
		}
		out = append(out, adds...)
	}
	return dedupe(out), nil
}

func normalizeAll(names []string, avail uint64) ([]string, error) {
	out := make([]string, 0, len(names))
	for _, n := range names {
		c, err := normalize(n, avail)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// dedupe keeps the first of each name, in order.
func dedupe(list []string) []string {
	out := []string{}
	for _, c := range list {
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// SetCapabilities puts caps in the process's sets the way Docker does:
// root gets them bounding, permitted and effective; any other user gets
// them only in the bounding set, with empty permitted and effective sets,
// which is what an execve by a non-root user would leave it (a setuid or
// file-capability program can still gain them, up to the bounding set).
// Inheritable and ambient stay empty. Call it after process.user is set.
func SetCapabilities(spec *specs.Spec, caps []string) {
	p := spec.Process
	caps = slices.Clone(caps)
	if p.User.UID == 0 {
		p.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Permitted: slices.Clone(caps), Effective: slices.Clone(caps)}
		return
	}
	p.Capabilities = &specs.LinuxCapabilities{Bounding: caps}
}

// Mask turns a list of capability names into the bit mask the kernel
// shows in /proc/PID/status (CapEff: 00000000a80425fb).
func Mask(caps []string) (uint64, error) {
	var m uint64
	for _, c := range caps {
		n, ok := CapNumber(c)
		if !ok {
			return 0, fmt.Errorf("unknown capability %q", c)
		}
		m |= 1 << uint(n)
	}
	return m, nil
}

// Names turns a mask back into names, as capsh --decode does.
func Names(mask uint64) []string {
	var out []string
	for i := 0; i < 64; i++ {
		if mask&(1<<uint(i)) == 0 {
			continue
		}
		if i < len(capNames) {
			out = append(out, capNames[i])
		} else {
			out = append(out, fmt.Sprintf("%d", i))
		}
	}
	return out
}

// checkCapabilities refuses a spec whose capability sets name something
// berth cannot give (avail): a bundle's config.json is input, never
// trusted.
func checkCapabilities(c *specs.LinuxCapabilities, avail uint64) error {
	if c == nil {
		return nil
	}
	for set, list := range map[string][]string{"bounding": c.Bounding, "effective": c.Effective,
		"permitted": c.Permitted, "inheritable": c.Inheritable, "ambient": c.Ambient} {
		for _, name := range list {
			n, ok := CapNumber(name)
			if !ok {
				return fmt.Errorf("process.capabilities.%s: unknown capability %q", set, name)
			}
			if avail&(1<<uint(n)) == 0 {
				return fmt.Errorf("process.capabilities.%s: %s is not available: this kernel lacks it, or berth runs without it", set, name)
			}
		}
	}
	for _, name := range c.Ambient {
		if !slices.Contains(c.Permitted, name) || !slices.Contains(c.Inheritable, name) {
			return fmt.Errorf("process.capabilities.ambient: %s must be in the permitted and inheritable sets too (the kernel refuses it otherwise)", name)
		}
	}
	for _, name := range c.Effective {
		if !slices.Contains(c.Permitted, name) {
			return fmt.Errorf("process.capabilities.effective: %s is not in the permitted set (the kernel refuses it)", name)
		}
	}
	for _, name := range c.Inheritable {
		if !slices.Contains(c.Bounding, name) {
			return fmt.Errorf("process.capabilities.inheritable: %s is not in the bounding set (the kernel refuses it)", name)
		}
	}
	return nil
}
