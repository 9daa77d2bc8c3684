//go:build linux

package security

import (
	"fmt"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// AddDeviceCgroupRule is --device-cgroup-rule 'TYPE MAJOR:MINOR ACCESS'
// (Docker's form: c 1:3 rwm, b 8:* r, a *:* m): one more rule of the
// device cgroup, after the defaults, allowing what it names. Unlike
// --device it makes no node: the container may mknod it (CAP_MKNOD),
// or a volume brings one. It changes nothing without root: a rootless
// container has no device cgroup of its own, and the kernel refuses
// device nodes in a user namespace anyway.
func AddDeviceCgroupRule(spec *specs.Spec, rule string) error {
	bad := func(why string) error {
		return fmt.Errorf("--device-cgroup-rule %q: %s (want TYPE MAJOR:MINOR ACCESS, for example 'c 10:200 rwm' or 'b 8:* r')", rule, why)
	}
	f := strings.Fields(rule)
	if len(f) != 3 {
		return bad("three fields")
	}
	typ := f[0]
	if typ != "a" && typ != "b" && typ != "c" {
		return bad("the type is a, b or c")
	}
	majStr, minStr, ok := strings.Cut(f[1], ":")
	if !ok {
		return bad("MAJOR:MINOR")
	}
	major, err := devNumber(majStr)
	if err != nil {
		return bad("the major number " + err.Error())
	}
	minor, err := devNumber(minStr)
	if err != nil {
		return bad("the minor number " + err.Error())
	}
	if !validPerms(f[2]) {
		return bad("the access is a combination of r, w and m")
	}
	if spec.Linux.Resources == nil {
		spec.Linux.Resources = &specs.LinuxResources{}
	}
	spec.Linux.Resources.Devices = append(spec.Linux.Resources.Devices,
		specs.LinuxDeviceCgroup{Allow: true, Type: typ, Major: &major, Minor: &minor, Access: f[2]})
	return nil
}

// devNumber is a device number or * (any: -1, as the rest of the rules
// spell a wildcard).
func devNumber(s string) (int64, error) {
	if s == "*" {
		return -1, nil
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number or *", s)
	}
	return int64(n), nil
}

// checkLSMOpt is --security-opt apparmor=PROFILE and label=...: what
// Docker does on a host without AppArmor or SELinux, berth does
// everywhere it can: Docker's daemon accepts the option and, the
// security module being off, applies nothing (moby's WithApparmor checks
// apparmor.HostSupportsAppArmor; go-selinux's InitLabels returns empty
// labels when SELinux is disabled). On a host where the module is on,
// Docker would confine the container and berth cannot: it refuses
// rather than run it less confined than asked.
func checkLSMOpt(k, v string, h Host) error {
	switch k {
	case "apparmor":
		if v == "" {
			return fmt.Errorf("--security-opt apparmor needs a profile: apparmor=PROFILE or apparmor=unconfined")
		}
		if h.AppArmor && v != "unconfined" {
			return fmt.Errorf("--security-opt apparmor=%s: this host runs AppArmor and berth cannot load profiles", v)
		}
	case "label":
		key, _, _ := strings.Cut(v, ":")
		switch key {
		case "disable", "nested", "user", "role", "type", "level", "filetype":
		default:
			return fmt.Errorf("--security-opt label=%s: want disable, nested, or user:, role:, type:, level:, filetype: followed by a value", v)
		}
		if h.SELinux && key != "disable" {
			return fmt.Errorf("--security-opt label=%s: this host runs SELinux and berth cannot label a container", v)
		}
	}
	return nil
}
