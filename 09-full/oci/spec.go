//go:build linux

package oci

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"github.com/spf13/cobra"

	"berth/06-cgroups/cgroup"
)

var specVersion = specs.Version

func specCmd() *cobra.Command {
	var bundle string
	var rootless bool
	cmd := &cobra.Command{
		Use:   "spec [--rootless] [--bundle B]",
		Short: "write a default config.json (runc spec's) into the bundle",
		Args:  cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			mode, err := cgroup.DetectMode()
			unified := err == nil && mode == cgroup.V2
			spec := DefaultSpec(rootless, unified, os.Getuid(), os.Getgid())
			b, err := json.MarshalIndent(spec, "", "\t")
			if err != nil {
				return err
			}
			path := filepath.Join(bundle, "config.json")
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_CLOEXEC, 0o644)
			if errors.Is(err, os.ErrExist) {
				return fmt.Errorf("file %s exists: remove it first", path)
			}
			if err != nil {
				return err
			}
			if _, err := f.Write(append(b, '\n')); err != nil {
				f.Close()
				return fmt.Errorf("write %s: %w", path, err)
			}
			return f.Close()
		},
	}
	cmd.Flags().StringVarP(&bundle, "bundle", "b", ".", "the bundle directory")
	cmd.Flags().BoolVar(&rootless, "rootless", false, "a spec for a user without root: a user namespace mapping uid and gid to 0")
	return cmd
}

// defaultCaps is runc spec's short list (the process keeps these).
var defaultCaps = []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}

// DefaultSpec is runc spec's config.json: `sh` with a terminal in a
// directory rootfs, every namespace but the user's (rootless: with it,
// and without a network namespace of its own or a cgroup mount), the
// kernel's files masked or read-only.
//
// A cgroup namespace only on a host of pure cgroup v2 (unified), as
// runc's spec does (and Docker's --cgroupns default): there the
// container's cgroup2 mount and /proc/self/cgroup start at its own
// group, not the host's root. On v1 and hybrid hosts they leave it out,
// and so does berth-oci: there it would change the paths programs in
// containers had always seen, and older kernels lack the namespace.
func DefaultSpec(rootless, unified bool, uid, gid int) *specs.Spec {
	s := &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: "rootfs", Readonly: true},
		Process: &specs.Process{
			Terminal: true,
			Args:     []string{"sh"},
			Env:      []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"},
			Cwd:      "/",
			Capabilities: &specs.LinuxCapabilities{
				Bounding: defaultCaps, Effective: defaultCaps, Permitted: defaultCaps,
			},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
			NoNewPrivileges: true,
		},
		Hostname: "berth-oci",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.MountNamespace},
			},
			// Every device denied, but those the runtime makes (/dev/null...).
			Resources: &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}},
			MaskedPaths: []string{"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
				"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
	if unified {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	}
	if rootless {
		// The same namespaces but the network's (a user without root has
		// no way to connect a new one), and a user namespace last.
		ns := s.Linux.Namespaces[:0]
		for _, n := range s.Linux.Namespaces {
			if n.Type != specs.NetworkNamespace {
				ns = append(ns, n)
			}
		}
		s.Linux.Namespaces = append(ns, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{HostID: uint32(uid), ContainerID: 0, Size: 1}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{HostID: uint32(gid), ContainerID: 0, Size: 1}}
		// Without a network namespace of its own, sysfs cannot be mounted
		// anew: bind the host's, read-only. No cgroup mount.
		m := s.Mounts[:0]
		for _, x := range s.Mounts {
			switch x.Destination {
			case "/sys":
				x = specs.Mount{Destination: "/sys", Type: "none", Source: "/sys", Options: []string{"rbind", "nosuid", "noexec", "nodev", "ro"}}
			case "/sys/fs/cgroup":
				continue
			case "/dev/pts":
				x.Options = []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}
			}
			m = append(m, x)
		}
		s.Mounts = m
	}
	return s
}

func featuresCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "features",
		Short: "print what this runtime supports (the runtime spec's features document)",
		Args:  cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			yes, no := true, false
			return printJSON(features.Features{
				OCIVersionMin: "1.0.0",
				OCIVersionMax: specs.Version,
				// The hooks runHooks runs; createContainer and startContainer
				// are refused (checkHooks).
				Hooks: []string{"prestart", "createRuntime", "poststart", "poststop"},
				MountOptions: []string{"bind", "rbind", "ro", "rw", "nosuid", "suid", "nodev", "dev", "noexec", "exec",
					"private", "rprivate", "shared", "rshared", "slave", "rslave"},
				Linux: &features.Linux{
					Namespaces: []string{"cgroup", "ipc", "mount", "network", "pid", "user", "uts"},
					Cgroup:     &features.Cgroup{V1: &yes, V2: &yes, Systemd: &no, SystemdUser: &no},
					Seccomp:    &features.Seccomp{Enabled: &yes},
				},
				Annotations: map[string]string{"io.github.berth.version": Version},
			})
		},
	}
}
