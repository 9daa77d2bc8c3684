//go:build linux

// Package userns puts a container in a user namespace: root inside is an
// ordinary user outside. The parent writes the namespace's uid and gid
// maps while the child waits at the spine's sync point; an unprivileged
// user can do that for their own id (--map-root-user) or, through the
// setuid helpers newuidmap and newgidmap, for the subordinate ids that
// /etc/subuid and /etc/subgid give them (--map-subids). With a user
// namespace the whole container runs without root (rootless.go), and
// reaches the network through slirp4netns (slirp.go).
package userns

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"berth/01-uts/spine"
)

func init() { spine.Register("userns", func() spine.Step { return &Step{} }) }

// Where the subordinate ranges live (variables so that tests can point
// them elsewhere).
var (
	SubUIDFile = "/etc/subuid"
	SubGIDFile = "/etc/subgid"
)

// Options are the user-namespace flags, and the rootless defaults that
// follow from running without root (see rootless.go).
type Options struct {
	MapRootUser bool
	MapSubIDs   bool
	UIDMaps     []string
	GIDMaps     []string
	// KeepID is stage 09's --userns=keep-id (podman's; no flag of this
	// stage): without root, your uid and gid are the same ids inside, and
	// the container's other ids come from your subordinate ranges.
	KeepID bool

	fs *pflag.FlagSet // to tell a flag given from a default, and to read --net
}

func (o *Options) AddFlags(fs *pflag.FlagSet) {
	o.fs = fs
	fs.BoolVar(&o.MapRootUser, "map-root-user", false, "new user namespace; container root is you (one id; the default without root)")
	fs.BoolVar(&o.MapSubIDs, "map-subids", false, "new user namespace; container root is you, ids 1-65536 are your ranges in /etc/subuid and /etc/subgid (via newuidmap/newgidmap)")
	fs.StringArrayVar(&o.UIDMaps, "uidmap", nil, "new user namespace with this uid map line CONTAINER:HOST:SIZE (repeatable)")
	fs.StringArrayVar(&o.GIDMaps, "gidmap", nil, "gid map line CONTAINER:HOST:SIZE (repeatable; default: the same as --uidmap)")
}

// RunsRootless: without root, Configure makes a container in a user
// namespace of its own, which needs none (spine.RootlessOption).
func (o *Options) RunsRootless() bool { return true }

func (o *Options) Configure(c *spine.Container) ([]spine.Step, error) {
	rootless := os.Geteuid() != 0
	modes := 0
	for _, on := range []bool{o.MapRootUser, o.MapSubIDs, o.KeepID, len(o.UIDMaps)+len(o.GIDMaps) > 0} {
		if on {
			modes++
		}
	}
	if modes > 1 {
		if o.KeepID {
			return nil, errors.New("--userns=keep-id makes its own maps: drop --map-root-user, --map-subids, --uidmap and --gidmap")
		}
		return nil, errors.New("choose one of --map-root-user, --map-subids and --uidmap/--gidmap")
	}
	if o.KeepID && !rootless {
		return nil, errors.New("--userns=keep-id is for a user without root: as root your ids are the host's own (for a user namespace, give --uidmap)")
	}
	if modes == 0 && !rootless {
		// As root, no user namespace unless asked for, as with docker run.
		return netSteps(o)
	}
	if rootless {
		if err := rootlessRootfs(o, c); err != nil {
			return nil, err
		}
	}

	uids, gids, err := o.maps()
	if err != nil {
		return nil, err
	}
	if err := CheckMap("uid", uids); err != nil {
		return nil, err
	}
	if err := CheckMap("gid", gids); err != nil {
		return nil, err
	}
	step := &Step{Rootless: rootless}
	if rootless {
		// berth's init runs as you; it must become the container's root.
		// (With --userns=keep-id, KeepIDMap keeps your ids as they are,
		// and the init becomes the container's root, a subordinate id,
		// with the capabilities SetupCmd keeps for it.)
		uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
		if h, ok := ToHost(uids, 0); !o.KeepID && (!ok || h != uid) {
			return nil, fmt.Errorf("without root, the uid map must map container 0 to your uid %d (berth's init runs as you and becomes the container's root)", uid)
		}
		if h, ok := ToHost(gids, 0); !o.KeepID && (!ok || h != gid) {
			return nil, fmt.Errorf("without root, the gid map must map container 0 to your gid %d", gid)
		}
		// One line for your own id you may write yourself; anything more
		// needs the setuid helpers, which check /etc/subuid.
		if len(uids) > 1 || len(gids) > 1 {
			if step.NewUIDMap, err = helper("newuidmap"); err != nil {
				return nil, err
			}
			if step.NewGIDMap, err = helper("newgidmap"); err != nil {
				return nil, err
			}
		}
	} else {
		if _, ok := ToHost(uids, 0); !ok {
			return nil, errors.New("the uid map must map container id 0 (the container's root)")
		}
		if _, ok := ToHost(gids, 0); !ok {
			return nil, errors.New("the gid map must map container id 0 (the container's root)")
		}
		if err := rootReachable(c, uids, gids); err != nil {
			return nil, err
		}
	}
	c.Spec.Linux.UIDMappings = uids
	c.Spec.Linux.GIDMappings = gids
	c.AddNamespace(specs.UserNamespace, "")

	steps, err := netSteps(o)
	if err != nil {
		return nil, err
	}
	return append([]spine.Step{step}, steps...), nil
}

// maps turns the flags into the uid and gid maps.
func (o *Options) maps() (uids, gids []specs.LinuxIDMapping, err error) {
	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	switch {
	case o.MapSubIDs || o.KeepID:
		flag := "--map-subids"
		if o.KeepID {
			flag = "--userns=keep-id"
		}
		name := strconv.Itoa(int(uid))
		if u, err := user.LookupId(name); err == nil {
			name = u.Username
		}
		ur, err := ReadSubIDs(SubUIDFile, name, uid)
		if err != nil {
			return nil, nil, err
		}
		gr, err := ReadSubIDs(SubGIDFile, name, uid)
		if err != nil {
			return nil, nil, err
		}
		if len(ur) == 0 || len(gr) == 0 {
			return nil, nil, fmt.Errorf("%s: user %s (uid %d) has no subordinate ids in %s and %s: "+
				"have root run 'usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s', or use --map-root-user",
				flag, name, uid, SubUIDFile, SubGIDFile, name)
		}
		if o.KeepID {
			return KeepIDMap(uid, ur), KeepIDMap(gid, gr), nil
		}
		return RangeMap(uid, ur), RangeMap(gid, gr), nil
	case len(o.UIDMaps) > 0 || len(o.GIDMaps) > 0:
		if len(o.UIDMaps) == 0 {
			return nil, nil, errors.New("--gidmap needs --uidmap too")
		}
		if uids, err = parseMaps("--uidmap", o.UIDMaps); err != nil {
			return nil, nil, err
		}
		if len(o.GIDMaps) == 0 {
			return uids, uids, nil // as podman does
		}
		gids, err = parseMaps("--gidmap", o.GIDMaps)
		return uids, gids, err
	default: // --map-root-user, and the default without root
		return []specs.LinuxIDMapping{{ContainerID: 0, HostID: uid, Size: 1}},
			[]specs.LinuxIDMapping{{ContainerID: 0, HostID: gid, Size: 1}}, nil
	}
}

func parseMaps(flag string, in []string) ([]specs.LinuxIDMapping, error) {
	var out []specs.LinuxIDMapping
	for _, s := range in {
		m, err := ParseMapping(s)
		if err != nil {
			return nil, fmt.Errorf("invalid %s: %w", flag, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// Helper finds newuidmap or newgidmap (stage 09 builds the step itself).
func Helper(name string) (string, error) { return helper(name) }

// helper finds newuidmap or newgidmap.
func helper(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found in $PATH: mapping more than your own id without root needs it: install the uidmap package (sudo apt-get install uidmap), or use --map-root-user", name)
	}
	return p, nil
}

// Step writes the maps. Its configuration is the spec's UIDMappings and
// GIDMappings, and how they get written.
type Step struct {
	Rootless  bool   `json:"rootless,omitempty"`
	NewUIDMap string `json:"newuidmap,omitempty"` // helper paths, when the maps need them
	NewGIDMap string `json:"newgidmap,omitempty"`
}

func (*Step) Name() string { return "userns" }

// SetupCmd, as root, hands the maps to os/exec: the forked child waits on
// a pipe until the parent has written them, then becomes uid 0 before its
// execve, so berth's init starts as the namespace's root with every
// capability in it. This is the only way for a map whose container root is
// not the host's root (0:100000:65536): the child, still host uid 0, would
// be an unmapped nobody after its execve, with no capability left to
// become anyone. Without root, os/exec can write only a map of our own id,
// and newuidmap must run after the child exists: that is Parent's job.
//
// Without root, a map in which your uid is not the container's root
// (--userns=keep-id: you are yourself inside) leaves the child, once the
// maps are written, an ordinary user of its namespace with no capability
// left after its execve, unable to become root there as the spine's
// reexecAsRoot does. So the child raises every capability into its
// ambient set before that execve: an execve by a non-root user keeps the
// ambient set, and the spine's init, with CAP_SETUID in the namespace,
// becomes its root and clears the ambient set before it executes itself
// again. The capabilities are the new user namespace's only, which owns
// nothing yet.
func (s *Step) SetupCmd(c *spine.Container, cmd *exec.Cmd) error {
	if s.Rootless {
		if h, ok := ToHost(c.Spec.Linux.UIDMappings, 0); ok && h == uint32(os.Getuid()) {
			return nil
		}
		last, err := lastCap()
		if err != nil {
			return err
		}
		for cp := 0; cp <= last; cp++ {
			cmd.SysProcAttr.AmbientCaps = append(cmd.SysProcAttr.AmbientCaps, uintptr(cp))
		}
		return nil
	}
	sys := cmd.SysProcAttr
	sys.UidMappings = procMaps(c.Spec.Linux.UIDMappings)
	sys.GidMappings = procMaps(c.Spec.Linux.GIDMappings)
	sys.GidMappingsEnableSetgroups = true
	sys.Credential = &syscall.Credential{Uid: 0, Gid: 0} // and no supplementary groups
	return nil
}

// lastCap is the kernel's highest capability number.
func lastCap() (int, error) {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 0, fmt.Errorf("read the last capability: %w", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("read the last capability: /proc/sys/kernel/cap_last_cap: %q", b)
	}
	return n, nil
}

func procMaps(m []specs.LinuxIDMapping) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, len(m))
	for i, l := range m {
		out[i] = syscall.SysProcIDMap{ContainerID: int(l.ContainerID), HostID: int(l.HostID), Size: int(l.Size)}
	}
	return out
}

// Parent writes the maps of the child's namespace while the child waits.
// Until then the child is nobody (65534) in a namespace without ids, and
// holds no capability.
func (s *Step) Parent(c *spine.Container, pid int) error {
	if s.Rootless {
		if err := s.writeMap(pid, "uid", s.NewUIDMap, c.Spec.Linux.UIDMappings); err != nil {
			return err
		}
		if err := s.writeMap(pid, "gid", s.NewGIDMap, c.Spec.Linux.GIDMappings); err != nil {
			return err
		}
	}
	if c.Verbose {
		for _, f := range []string{"uid_map", "gid_map", "setgroups"} {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, f))
			if err != nil {
				return fmt.Errorf("read /proc/%d/%s: %w", pid, f, err)
			}
			c.Logf("userns: /proc/%d/%s: %s", pid, f, strings.Join(strings.Fields(string(b)), " "))
		}
	}
	return nil
}

// writeMap writes one map: through the helper when there is one, or
// straight into /proc/PID/{uid,gid}_map. An unprivileged process may write
// one line mapping its own id, and for gid_map only once setgroups(2) is
// denied in the namespace: otherwise a user could drop a group that denies
// them access to a file (a "negative" group permission) inside it.
func (s *Step) writeMap(pid int, kind, helper string, m []specs.LinuxIDMapping) error {
	if helper != "" {
		out, err := exec.Command(helper, helperArgs(pid, m)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s %s: %s", helper, strings.Join(helperArgs(pid, m), " "), strings.TrimSpace(string(out)+" "+err.Error()))
		}
		return nil
	}
	if kind == "gid" {
		p := fmt.Sprintf("/proc/%d/setgroups", pid)
		if err := os.WriteFile(p, []byte("deny"), 0); err != nil {
			return fmt.Errorf("write deny to %s: %w", p, err)
		}
	}
	p := fmt.Sprintf("/proc/%d/%s_map", pid, kind)
	if err := os.WriteFile(p, []byte(mapFile(m)), 0); err != nil {
		return fmt.Errorf("write %q to %s: %w", mapFile(m), p, err)
	}
	return nil
}

// Child drops the supplementary groups the invoking user came with, where
// the namespace allows setgroups (they would show as nogroup inside), and
// shows what the process is now.
func (*Step) Child(c *spine.Container) error {
	if b, err := os.ReadFile("/proc/self/setgroups"); err == nil && strings.TrimSpace(string(b)) == "allow" {
		if err := unix.Setgroups(nil); err != nil {
			return fmt.Errorf("setgroups([]): %w", err)
		}
	}
	if c.Verbose {
		var caps unix.CapUserHeader
		caps.Version = unix.LINUX_CAPABILITY_VERSION_3
		var data [2]unix.CapUserData
		if err := unix.Capget(&caps, &data[0]); err != nil {
			return fmt.Errorf("capget: %w", err)
		}
		c.Logf("userns: inside: uid %d gid %d, effective capabilities %#x", os.Getuid(), os.Getgid(), uint64(data[1].Effective)<<32|uint64(data[0].Effective))
	}
	return nil
}
