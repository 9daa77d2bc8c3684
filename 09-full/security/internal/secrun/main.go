// Command secrun runs a container through the spine with the steps of
// stages 01-06 and the security package on top, so that its defences can
// be tried and tested before the berth CLI exists. It is a test harness
// (and the chapter's draft uses it); berth run will do the same with
// Docker's full CLI.
//
//	secrun run [flags] COMMAND...   Docker's defaults, and the security flags
//	secrun bpf [--seccomp FILE]      the default (or FILE's) filter, disassembled
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"berth/01-uts/spine"
	"berth/01-uts/uts"
	"berth/02-pid/pid"
	"berth/03-mount/rootfs"
	"berth/04-net/network"
	"berth/05-user/userns"
	"berth/06-cgroups/cgroup"
	"berth/09-full/security"
	"berth/09-full/security/seccomp"
)

func main() {
	spine.Main(spine.Program{
		Name:  "secrun",
		Short: "a container with Docker's security defaults (a harness for 09-full/security)",
		Options: []spine.Option{
			&uts.Options{},
			&pid.Options{},
			&rootfs.Options{},
			&network.Options{OtherModes: []string{userns.SlirpMode}},
			&userns.Options{},
			&cgroup.Options{},
			&harness{},
		},
		Commands: []*cobra.Command{network.CleanupCommand(), bpfCommand(), profileCommand()},
	})
}

// harness adds --user and --docker-init to the security flags, and the
// mounts Docker's spec has that stage 03 makes its own way: the cgroup
// view, and /sys read-write under --privileged.
type harness struct {
	security.Flags
	user             string
	dockerInit       bool
	masked, readonly []string
}

func (h *harness) AddFlags(fs *pflag.FlagSet) {
	h.Flags.AddFlags(fs)
	fs.StringVarP(&h.user, "user", "u", "", "run the command as UID[:GID] (numbers)")
	fs.BoolVar(&h.dockerInit, "docker-init", false, "run tini (Debian's tini-static) as PID 1, as docker run --init does")
	// As a bundle's linux.maskedPaths and linux.readonlyPaths would: the
	// tests hand the step hostile paths this way.
	fs.StringArrayVar(&h.masked, "masked-path", nil, "add a path to linux.maskedPaths")
	fs.StringArrayVar(&h.readonly, "readonly-path", nil, "add a path to linux.readonlyPaths")
}

func (h *harness) Configure(c *spine.Container) ([]spine.Step, error) {
	if h.user != "" {
		u, err := parseUser(h.user)
		if err != nil {
			return nil, err
		}
		c.Spec.Process.User = u
	}
	h.Init = h.dockerInit
	c.Spec.Mounts = append(c.Spec.Mounts, specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup",
		Options: []string{"nosuid", "noexec", "nodev", "ro"}})
	steps, err := h.Flags.Configure(c)
	if err != nil {
		return nil, err
	}
	c.Spec.Linux.MaskedPaths = append(c.Spec.Linux.MaskedPaths, h.masked...)
	c.Spec.Linux.ReadonlyPaths = append(c.Spec.Linux.ReadonlyPaths, h.readonly...)
	if h.Privileged {
		steps = append([]spine.Step{&sysRW{}}, steps...)
	}
	return steps, nil
}

func init() { spine.Register("secrun-sys-rw", func() spine.Step { return &sysRW{} }) }

// sysRW makes /sys writable, as --privileged's spec asks: stage 03 always
// mounts it read-only (berth's engine mounts the spec's /sys as it says).
type sysRW struct{}

func (*sysRW) Name() string { return "secrun-sys-rw" }

func (*sysRW) Child(c *spine.Container) error {
	flags := uintptr(unix.MS_REMOUNT | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	if unix.Mount("", "/sys", "", flags, "") == nil {
		return nil
	}
	// A bind of the host's /sys (a user namespace that does not own the
	// network namespace): only the mount's own flag can change.
	if err := unix.Mount("", "/sys", "", flags|unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("remount /sys read-write: %w", err)
	}
	return nil
}

func parseUser(s string) (specs.User, error) {
	us, gs, hasGroup := strings.Cut(s, ":")
	uid, err := strconv.ParseUint(us, 10, 32)
	if err != nil {
		return specs.User{}, fmt.Errorf("--user %q: use UID[:GID] in numbers", s)
	}
	gid := uid
	if hasGroup {
		if gid, err = strconv.ParseUint(gs, 10, 32); err != nil {
			return specs.User{}, fmt.Errorf("--user %q: use UID[:GID] in numbers", s)
		}
	}
	return specs.User{UID: uint32(uid), GID: uint32(gid)}, nil
}

// profileCommand prints Docker's default profile as the runtime spec's
// linux.seccomp (what a bundle's config.json holds).
func profileCommand() *cobra.Command {
	var capAdd []string
	cmd := &cobra.Command{
		Use:   "profile",
		Short: "print Docker's default seccomp profile as the OCI spec's linux.seccomp (JSON)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := security.ThisHost()
			if err != nil {
				return err
			}
			spec := &specs.Spec{Process: &specs.Process{}, Linux: &specs.Linux{}}
			if err := security.Apply(spec, security.Options{CapAdd: capAdd}, h); err != nil {
				return err
			}
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(spec.Linux.Seccomp)
		},
	}
	cmd.Flags().StringArrayVar(&capAdd, "cap-add", nil, "the profile for these added capabilities")
	return cmd
}

// bpfCommand prints a profile's filter, disassembled.
func bpfCommand() *cobra.Command {
	var profile string
	var capAdd []string
	cmd := &cobra.Command{
		Use:   "bpf",
		Short: "print the seccomp filter berth would load, disassembled",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := security.ThisHost()
			if err != nil {
				return err
			}
			spec := &specs.Spec{Process: &specs.Process{}, Linux: &specs.Linux{}}
			o := security.Options{CapAdd: capAdd}
			if profile != "" {
				o.SecurityOpt = []string{"seccomp=" + profile}
			}
			if err := security.Apply(spec, o, h); err != nil {
				return err
			}
			if spec.Linux.Seccomp == nil {
				return errors.New("no filter: the profile is unconfined")
			}
			p, err := seccomp.Compile(spec.Linux.Seccomp)
			if err != nil {
				return err
			}
			fmt.Print(p)
			return nil
		},
	}
	cmd.Flags().StringVar(&profile, "seccomp", "", "a seccomp profile (JSON, Docker's format) instead of the default")
	cmd.Flags().StringArrayVar(&capAdd, "cap-add", nil, "compile the default profile for these added capabilities")
	return cmd
}
