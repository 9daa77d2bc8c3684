//go:build linux

package oci

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"

	"berth/01-uts/spine"
	"berth/06-cgroups/cgroup"
	"berth/09-full/engine"
)

// metaName is berth-oci's own file in the spine's state directory: what
// `state` reports that the spine does not keep (the bundle, when).
const metaName = "oci.json"

type meta struct {
	Bundle  string    `json:"bundle"`
	Created time.Time `json:"created"`
	Owner   string    `json:"owner"`
	// Hooks are the bundle's, which berth-oci runs itself (hooks.go):
	// the engine's spec has none.
	Hooks *specs.Hooks `json:"hooks,omitempty"`
}

type createOpts struct {
	bundle, pidFile, consoleSocket string
	preserveFds                    int
	noPivot, noNewKeyring          bool
}

func (o *createOpts) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVarP(&o.bundle, "bundle", "b", ".", "the bundle: a directory with config.json")
	f.StringVar(&o.pidFile, "pid-file", "", "write the init's pid (as the host sees it) to this file")
	f.StringVar(&o.consoleSocket, "console-socket", "", "with process.terminal: a unix socket that receives the pty's master")
	f.IntVar(&o.preserveFds, "preserve-fds", 0, "pass this many descriptors from 3 on to the command, at the same numbers")
	f.BoolVar(&o.noPivot, "no-pivot", false, "use MS_MOVE instead of pivot_root (refused: berth always pivots)")
	f.BoolVar(&o.noNewKeyring, "no-new-keyring", false, "keep the caller's session keyring (refused: berth always makes the container one of its own)")
}

func createCmd() *cobra.Command {
	var o createOpts
	cmd := &cobra.Command{
		Use:   "create [flags] ID",
		Short: "create a container from a bundle: its init waits for start",
		Args:  exactArgs(1, "ID"),
		RunE: func(_ *cobra.Command, args []string) error {
			p, _, err := create(args[0], o, true)
			if err != nil {
				return err
			}
			p.Release()
			return nil
		},
	}
	o.flags(cmd)
	return cmd
}

// create makes the container id of the bundle and leaves its init waiting
// on its exec FIFO. The state directory is made here first, exclusively:
// a second create of the same id fails before anything is touched.
func create(id string, o createOpts, detached bool) (*spine.Process, *spine.Container, error) {
	if o.noPivot {
		// MS_MOVE leaves the old root reachable; runc offers it for
		// ramdisks, where pivot_root fails. berth's 03 step always pivots.
		return nil, nil, errors.New("--no-pivot is not supported: berth always uses pivot_root")
	}
	if o.noNewKeyring {
		// The security step gives every container a session keyring of
		// its own (09-full/security: joinSessionKeyring); keeping the
		// caller's would share its keys with the container.
		return nil, nil, errors.New("--no-new-keyring is not supported: berth always gives the container a session keyring of its own")
	}
	dir, err := stateDir(id)
	if err != nil {
		return nil, nil, err
	}
	if o.preserveFds < 0 || o.preserveFds > 1024 {
		return nil, nil, fmt.Errorf("--preserve-fds %d: want 0 to 1024", o.preserveFds)
	}
	spec, bundle, err := loadBundle(o.bundle)
	if err != nil {
		return nil, nil, err
	}
	if err := checkHooks(spec.Hooks); err != nil {
		return nil, nil, err
	}
	hooks := spec.Hooks
	spec.Hooks = nil
	if spec.Process.Terminal && detached && o.consoleSocket == "" {
		return nil, nil, errors.New("process.terminal is set: give --console-socket, to which the pty's master is sent")
	}
	if spec.Linux.CgroupsPath == "" && os.Geteuid() == 0 {
		// runc's default: a group of the container's own, so that pause,
		// ps and kill --all have one to work on.
		spec.Linux.CgroupsPath = "/berth-oci/" + id
	}
	if p := spec.Linux.CgroupsPath; p != "" && !strings.Contains(p, ":") && os.Geteuid() == 0 {
		// Before anything is made: a group in use (a host service's,
		// another container's) is refused, and nothing of this container
		// exists whose cleanup could kill what is in it. The cgroup step
		// checks again (cgroup.Step.Prepare).
		mode, err := cgroup.DetectMode()
		if err != nil {
			return nil, nil, err
		}
		if err := cgroup.CheckUnused(mode, p); err != nil {
			return nil, nil, err
		}
	}
	noCapabilities(spec)
	allowDefaultDevices(spec)
	unsetZeroWeights(spec)
	cfg := &engine.Config{Spec: spec}
	steps, err := engine.Steps(cfg)
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(g.root, 0o711); err != nil {
		return nil, nil, fmt.Errorf("create the state root %s: %w", g.root, err)
	}
	if err := os.Mkdir(dir, 0o711); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, nil, fmt.Errorf("container with id exists: %s", id)
		}
		return nil, nil, fmt.Errorf("create the state of %s: %w", id, err)
	}
	fail := func(err error) (*spine.Process, *spine.Container, error) {
		// spine.Create removes what it made; what is left is ours.
		_ = os.RemoveAll(dir)
		return nil, nil, err
	}
	m := meta{Bundle: bundle, Created: time.Now().UTC(), Owner: owner(), Hooks: hooks}
	if err := writeJSON(filepath.Join(dir, metaName), m); err != nil {
		return fail(err)
	}
	c := engine.SpineContainer(id, cfg, g.root, g.root, steps)
	c.Prog, c.Verbose = "berth-oci", g.debug
	for i := 0; i < o.preserveFds; i++ {
		c.PreserveFds = append(c.PreserveFds, 3+i)
	}
	var console *os.File
	if o.consoleSocket != "" && spec.Process.Terminal {
		if console, err = dialConsole(o.consoleSocket); err != nil {
			return fail(err)
		}
		defer console.Close()
	}
	p, err := spine.Create(c, spine.CreateOptions{Detached: true, ConsoleSocket: console})
	if err != nil {
		return fail(err)
	}
	undo := func(err error) (*spine.Process, *spine.Container, error) {
		_ = p.Signal(os.Kill)
		_, _ = p.Wait()
		p.Close()
		_ = spine.Cleanup(c)
		return fail(err)
	}
	if o.pidFile != "" {
		if err := writePidFile(o.pidFile, p.Pid()); err != nil {
			return undo(err)
		}
	}
	if hooks != nil {
		st := State{OCIVersion: specs.Version, ID: id, Status: Created, Pid: p.Pid(), Bundle: bundle,
			Rootfs: spec.Root.Path, Created: m.Created, Owner: m.Owner, Annotations: spec.Annotations}
		//lint:ignore SA1019 prestart is deprecated, and still run (before createRuntime, as runc)
		if err := runHooks("prestart", hooks.Prestart, st); err != nil {
			return undo(err)
		}
		if err := runHooks("createRuntime", hooks.CreateRuntime, st); err != nil {
			return undo(err)
		}
	}
	debugf("created %s: init %d, bundle %s", id, p.Pid(), bundle)
	return p, c, nil
}

// allowDefaultDevices adds, after the spec's own device rules, the
// devices runc always allows (/dev/null, zero, full, random, urandom, tty,
// ptmx and the pts): runc spec's config denies every device and relies on
// it, and a terminal needs /dev/ptmx. The deny-all that starts stage 06's
// list is left out: it would undo the spec's own rules.
func allowDefaultDevices(spec *specs.Spec) {
	r := spec.Linux.Resources
	if r == nil || len(r.Devices) == 0 {
		return
	}
	// The spec's wildcards spelled out, as stage 06 needs them for v2's
	// eBPF program: no type is "a", no major or minor is every one (-1).
	all := int64(-1)
	for i := range r.Devices {
		d := &r.Devices[i]
		if d.Type == "" {
			d.Type = "a"
		}
		if d.Major == nil {
			d.Major = &all
		}
		if d.Minor == nil {
			d.Minor = &all
		}
	}
	for _, d := range cgroup.DefaultDevices() {
		if !d.Allow && (d.Type == "a" || d.Type == "") {
			continue
		}
		r.Devices = append(r.Devices, d)
	}
}

// unsetZeroWeights drops a block I/O weight of 0: the spec's range is 10
// to 1000, and dockerd writes 0 for "not set" (runc skips it). A real
// weight still needs the kernel's weight files, and stage 06 says so.
func unsetZeroWeights(spec *specs.Spec) {
	r := spec.Linux.Resources
	if r == nil || r.BlockIO == nil {
		return
	}
	if w := r.BlockIO.Weight; w != nil && *w == 0 {
		r.BlockIO.Weight = nil
	}
	if w := r.BlockIO.LeafWeight; w != nil && *w == 0 {
		r.BlockIO.LeafWeight = nil
	}
}

// dialConsole connects to the caller's console socket; the init sends the
// pty's master over it.
func dialConsole(path string) (*os.File, error) {
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("--console-socket %s: %w", path, err)
	}
	defer conn.Close()
	f, err := conn.File()
	if err != nil {
		return nil, fmt.Errorf("--console-socket %s: %w", path, err)
	}
	return f, nil
}

// writePidFile writes pid as containerd's shim and conmon read it: the
// number alone, the whole file at once (a temporary file renamed).
func writePidFile(path string, pid int) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	// A new file of a random name in the target's directory (O_EXCL:
	// never a file, or a symlink, someone put there), renamed over the
	// target: rename replaces a symlink at the target, never follows it.
	// A fixed temporary name followed a link planted at it, and berth-oci
	// (root) wrote the pid into whatever file it named.
	f, err := os.CreateTemp(filepath.Dir(abs), "."+filepath.Base(abs)+".*")
	if err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}
	tmp := f.Name()
	_, err = f.WriteString(strconv.Itoa(pid))
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, abs)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write pid file %s: %w", abs, err)
	}
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func owner() string {
	if os.Geteuid() == 0 {
		return ""
	}
	return strconv.Itoa(os.Geteuid())
}

func startCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "start ID",
		Short: "start a created container: its command runs",
		Args:  exactArgs(1, "ID"),
		RunE: func(_ *cobra.Command, args []string) error {
			c, err := load(args[0])
			if err != nil {
				return err
			}
			switch c.status {
			case Created:
			case Stopped:
				return fmt.Errorf("cannot start a container that has stopped")
			default:
				return fmt.Errorf("cannot start an already running container")
			}
			if err := spine.Start(c.dir, c.pid); err != nil {
				return fmt.Errorf("start %s: %w", c.id, err)
			}
			c.poststart()
			return nil
		},
	}
}

func runCmd() *cobra.Command {
	var o createOpts
	var detach bool
	cmd := &cobra.Command{
		Use:   "run [flags] ID",
		Short: "create and start a container, wait for it, delete it; exit with its code",
		Args:  exactArgs(1, "ID"),
		RunE: func(_ *cobra.Command, args []string) error {
			if detach {
				p, _, err := create(args[0], o, true)
				if err != nil {
					return err
				}
				p.Release()
				x, err := load(args[0])
				if err != nil {
					return err
				}
				if err := spine.Start(x.dir, x.pid); err != nil {
					return err
				}
				x.poststart()
				return nil
			}
			return run(args[0], o)
		},
	}
	o.flags(cmd)
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "start it and return (the caller owns the container)")
	return cmd
}

// run is create, start, wait and delete in the foreground: signals to
// berth-oci go to the container's init, and berth-oci exits with the
// init's code (128+N for a signal).
func run(id string, o createOpts) error {
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, spine.ForwardedSignals...)
	defer signal.Stop(sigs)
	p, c, err := create(id, o, false)
	if err != nil {
		return err
	}
	x, err := load(id)
	if err != nil {
		return err
	}
	if err := p.Start(); err != nil {
		_ = p.Signal(os.Kill)
		_, _ = p.Wait()
		p.Close()
		if cerr := spine.Cleanup(c); cerr != nil {
			logError(cerr)
		}
		return err
	}
	x.poststart()
	go func() {
		for s := range sigs {
			_ = p.Signal(s)
		}
	}()
	code, err := p.Wait()
	p.Close()
	if cerr := spine.Cleanup(c); cerr != nil && err == nil {
		err = cerr
	}
	x.status = Stopped
	x.poststop()
	if err != nil {
		return err
	}
	return silentExit{code}
}
