//go:build linux

package security

import (
	"errors"
	"slices"

	mobyseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"berth/06-cgroups/cgroup"
)

// MaskedPaths are Docker's: files and directories of /proc and /sys that
// tell about, or reach into, the host's hardware and kernel. A file is
// covered by /dev/null, a directory by an empty read-only tmpfs.
func MaskedPaths() []string {
	return []string{
		"/proc/asound",     // sound cards
		"/proc/acpi",       // ACPI: power buttons, thermal zones, some writable
		"/proc/interrupts", // interrupt counts: a side channel into other tenants
		"/proc/kcore",      // the host's physical memory, as an ELF core
		"/proc/keys",       // every key of the kernel's keyrings the reader may view
		"/proc/latency_stats",
		"/proc/timer_list", // timers of every task: a side channel
		"/proc/timer_stats",
		"/proc/sched_debug",             // the scheduler's view of every host process
		"/proc/scsi",                    // SCSI hosts; once writable to rescan them
		"/sys/firmware",                 // ACPI tables, EFI variables (some writable)
		"/sys/devices/virtual/powercap", // RAPL energy counters: the Platypus side channel
	}
}

// ReadonlyPaths are Docker's: /proc entries that set kernel state, left
// readable but not writable.
func ReadonlyPaths() []string {
	return []string{
		"/proc/bus",           // PCI and USB config space
		"/proc/fs",            // file system tunables
		"/proc/irq",           // interrupt affinity
		"/proc/sys",           // every sysctl: core_pattern, modprobe path...
		"/proc/sysrq-trigger", // one write reboots or crashes the host
	}
}

// DeviceRules are the device cgroup rules: stage 06's allow-list, which
// is Docker's and runc's (deny every device, then allow creating any node
// and using the few a program expects: cgroup.DefaultDevices), and
// /dev/fuse denied explicitly, as Docker does.
func DeviceRules() []specs.LinuxDeviceCgroup {
	major, minor := int64(10), int64(229)
	fuse := specs.LinuxDeviceCgroup{Allow: false, Type: "c", Major: &major, Minor: &minor, Access: "rwm"}
	return append(cgroup.DefaultDevices(), fuse)
}

// DefaultMounts is Docker's mount list (moby's oci/defaults.go): /proc,
// a tmpfs /dev with its pts, shm and mqueue, and /sys and its cgroup view
// read-only. The engine mounts them in order; the cgroup one is mounted
// by this package's Step, after the cgroup namespace exists.
func DefaultMounts() []specs.Mount {
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
	}
}

// SetDefaults gives a spec Docker's security defaults: the default
// capabilities (for process.user as already set), the masked and
// read-only paths, the device cgroup rules, the default seccomp profile
// (built for those capabilities), no_new_privileges off, and /sys and the
// cgroup view read-only where the spec mounts them.
func SetDefaults(spec *specs.Spec) error {
	if spec.Process == nil || spec.Linux == nil {
		return errors.New("security: the spec needs process and linux sections")
	}
	SetCapabilities(spec, DefaultCapabilities())
	spec.Linux.MaskedPaths = MaskedPaths()
	spec.Linux.ReadonlyPaths = ReadonlyPaths()
	if spec.Linux.Resources == nil {
		spec.Linux.Resources = &specs.LinuxResources{}
	}
	spec.Linux.Resources.Devices = DeviceRules()
	spec.Process.NoNewPrivileges = false
	setSystemMounts(spec, true)
	return SetDefaultSeccomp(spec)
}

// SetDefaultSeccomp sets Docker's default profile, as moby's
// github.com/moby/profiles/seccomp builds it for the spec's bounding set:
// a container given CAP_SYS_ADMIN may also call mount, unshare, setns...
// (the capability checks those calls' kernel code makes, and the filter
// steps aside). Call it after the capabilities are final.
func SetDefaultSeccomp(spec *specs.Spec) error {
	if spec.Process.Capabilities == nil {
		spec.Process.Capabilities = &specs.LinuxCapabilities{}
	}
	p, err := mobyseccomp.GetDefaultProfile(spec)
	if err != nil {
		return err
	}
	spec.Linux.Seccomp = p
	return nil
}

// setSystemMounts makes the spec's /sys (sysfs) and cgroup mounts
// read-only, or read-write for --privileged.
func setSystemMounts(spec *specs.Spec, readOnly bool) {
	for i, m := range spec.Mounts {
		if m.Type != "sysfs" && m.Type != "cgroup" && m.Type != "cgroup2" {
			continue
		}
		opts := slices.DeleteFunc(slices.Clone(m.Options), func(o string) bool { return o == "ro" || o == "rw" })
		if readOnly {
			opts = append(opts, "ro")
		} else {
			opts = append(opts, "rw")
		}
		spec.Mounts[i].Options = opts
	}
}
