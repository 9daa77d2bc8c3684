//go:build linux

package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"berth/01-uts/spine"
	"berth/09-full/execin"
	"berth/09-full/security"
)

type execOpts struct {
	process, pidFile, consoleSocket, cwd, user string
	env                                        []string
	detach, tty                                bool
}

// execCmd is runc's exec: a process.json (containerd's shim writes one) or
// a command line, run in the container's namespaces and cgroup by berth's
// exec (09-full/execin over nsenter's constructor). The process gets
// berth-oci's own stdin, stdout and stderr, as they are.
func execCmd() *cobra.Command {
	var o execOpts
	cmd := &cobra.Command{
		Use:   "exec [flags] ID [COMMAND [ARG...]]",
		Short: "run a process in a running container",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return execIn(args[0], args[1:], o)
		},
	}
	f := cmd.Flags()
	f.SetInterspersed(false)
	f.StringVarP(&o.process, "process", "p", "", "the process as the spec's JSON (- reads stdin)")
	f.StringVar(&o.pidFile, "pid-file", "", "write the process's pid to this file")
	f.StringVar(&o.consoleSocket, "console-socket", "", "with a terminal: a unix socket that receives the pty's master")
	f.StringVar(&o.cwd, "cwd", "", "the working directory")
	f.StringVarP(&o.user, "user", "u", "", "UID[:GID] (or a name in the container's /etc/passwd)")
	f.StringArrayVarP(&o.env, "env", "e", nil, "KEY=VALUE added to the container's environment")
	f.BoolVarP(&o.detach, "detach", "d", false, "return once it runs (the caller, a subreaper, waits for it)")
	f.BoolVarP(&o.tty, "tty", "t", false, "a terminal (with --console-socket)")
	return cmd
}

// maxProcess bounds a process.json.
const maxProcess = 1 << 20

func execIn(id string, args []string, o execOpts) error {
	x, err := load(id)
	if err != nil {
		return err
	}
	if x.status != Running {
		return fmt.Errorf("cannot exec in a container that is %s", x.status)
	}
	var req *execin.Request
	if o.process != "" {
		if len(args) > 0 {
			return errors.New("exec: give --process or a command, not both")
		}
		p, err := readProcess(o.process)
		if err != nil {
			return err
		}
		if err := confine(p, x.c.Spec.Process); err != nil {
			return err
		}
		req = &execin.Request{Process: p, Seccomp: x.c.Spec.Linux.Seccomp}
	} else {
		if req, err = execin.NewRequest(x.c.Spec, execin.Options{
			Args: args, Env: o.env, User: o.user, Workdir: o.cwd, Tty: o.tty,
		}); err != nil {
			return err
		}
	}
	if req.Process.Terminal && o.consoleSocket == "" && o.detach {
		return errors.New("exec: a terminal with --detach needs --console-socket")
	}
	var stdio execin.Stdio
	if !req.Process.Terminal {
		stdio.Files = &[3]*os.File{os.Stdin, os.Stdout, os.Stderr}
	}
	sigs := make(chan os.Signal, 16)
	if !o.detach {
		signal.Notify(sigs, spine.ForwardedSignals...)
		defer signal.Stop(sigs)
	}
	s, err := execin.Start(context.Background(), execin.Target{Pid: x.pid, Start: x.start, CgroupsPath: x.c.Spec.Linux.CgroupsPath}, req, stdio)
	if err != nil {
		return err
	}
	if s.Master != nil {
		if o.consoleSocket == "" {
			s.Master.Close()
			_ = s.Signal(unix.SIGKILL)
			_, _ = s.Wait()
			return errors.New("exec: a terminal needs --console-socket (berth-oci copies no terminal)")
		}
		err := sendMaster(o.consoleSocket, s.Master)
		s.Master.Close()
		if err != nil {
			_ = s.Signal(unix.SIGKILL)
			_, _ = s.Wait()
			return err
		}
	}
	if o.pidFile != "" {
		if err := writePidFile(o.pidFile, s.Pid); err != nil {
			_ = s.Signal(unix.SIGKILL)
			_, _ = s.Wait()
			return err
		}
	}
	if o.detach {
		return nil
	}
	go func() {
		for sig := range sigs {
			_ = s.Signal(sig)
		}
	}()
	code, err := s.Wait()
	if err != nil {
		return err
	}
	return silentExit{code}
}

// readProcess reads a process.json (bounded; - is stdin).
func readProcess(path string) (*specs.Process, error) {
	var r io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("exec --process: %w", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxProcess+1))
	if err != nil {
		return nil, fmt.Errorf("exec --process: %w", err)
	}
	if len(b) > maxProcess {
		return nil, fmt.Errorf("exec --process: larger than %d bytes", maxProcess)
	}
	var p specs.Process
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("exec --process %s: %w", path, err)
	}
	if len(p.Args) == 0 {
		return nil, errors.New("exec --process: args is empty")
	}
	if p.Cwd == "" {
		p.Cwd = "/"
	}
	if !strings.HasPrefix(p.Cwd, "/") {
		return nil, fmt.Errorf("exec --process: cwd %q is not an absolute path", p.Cwd)
	}
	for _, f := range []struct {
		set  bool
		name string
	}{
		{p.ApparmorProfile != "", "apparmorProfile"},
		{p.SelinuxLabel != "", "selinuxLabel"},
	} {
		if f.set {
			// The engine refuses them for the init (engine.Supported):
			// an exec must not look confined when nothing confines it.
			return nil, fmt.Errorf("exec --process: %s is not supported", f.name)
		}
	}
	return &p, nil
}

// confine keeps an exec'd process within the container's init's
// privileges (init is the bundle's process). A process.json without
// capabilities gets the init's sets, as runc does: the security step
// drops nothing when a process names no capabilities, so without this it
// would keep every capability of the host's root, inside the container.
// A set beyond the init's bounding set is refused: the container never
// had those capabilities, and an exec must not bring them in.
func confine(p, init *specs.Process) error {
	if p.Capabilities == nil {
		p.Capabilities = &specs.LinuxCapabilities{}
		if init != nil && init.Capabilities != nil {
			c := init.Capabilities
			p.Capabilities = &specs.LinuxCapabilities{
				Bounding: slices.Clone(c.Bounding), Effective: slices.Clone(c.Effective),
				Permitted: slices.Clone(c.Permitted), Inheritable: slices.Clone(c.Inheritable),
				Ambient: slices.Clone(c.Ambient),
			}
		}
		return nil
	}
	if init == nil || init.Capabilities == nil {
		// A container created before create gave such an init empty
		// sets (noCapabilities): it kept every capability, its bounding
		// set is full.
		return nil
	}
	bound, err := security.Mask(init.Capabilities.Bounding)
	if err != nil {
		return fmt.Errorf("exec: the container's bounding set: %w", err)
	}
	c := p.Capabilities
	for _, set := range []struct {
		name string
		list []string
	}{{"bounding", c.Bounding}, {"effective", c.Effective}, {"permitted", c.Permitted},
		{"inheritable", c.Inheritable}, {"ambient", c.Ambient}} {
		m, err := security.Mask(set.list)
		if err != nil {
			return fmt.Errorf("exec --process: capabilities.%s: %w", set.name, err)
		}
		if extra := m &^ bound; extra != 0 {
			return fmt.Errorf("exec --process: capabilities.%s has %s, beyond the container's bounding set", set.name, strings.Join(security.Names(extra), ", "))
		}
	}
	return nil
}

// sendMaster sends the pty's master over the caller's console socket, as
// runc does (SCM_RIGHTS, the name "/dev/ptmx").
func sendMaster(path string, master *os.File) error {
	sock, err := dialConsole(path)
	if err != nil {
		return err
	}
	defer sock.Close()
	if err := unix.Sendmsg(int(sock.Fd()), []byte("/dev/ptmx"), unix.UnixRights(int(master.Fd())), nil, 0); err != nil {
		return fmt.Errorf("--console-socket %s: send the pty's master: %w", path, err)
	}
	return nil
}
