//go:build linux

package spine

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"

	"berth/01-uts/spine/sealexe"
)

// A container comes to life in two halves, as with runc: Create does all
// the setup and leaves the init waiting, inside its namespaces, on the
// exec FIFO of its state directory; Start opens that FIFO and the command
// runs. Run (run.go) is the two back to back, in the foreground; stage 09
// creates detached containers that outlive the process that made them.

// CreateOptions say how the init is started and who talks to it.
type CreateOptions struct {
	// Detached: the init must outlive the process that creates it (stage
	// 09's monitor, an OCI caller). No parent-death signal, no collection
	// of other containers' leftovers, and the steps are told (c.Detached).
	Detached bool
	// ConsoleSocket, with a terminal (Spec.Process.Terminal), is a connected
	// unix socket to which the init sends the pty's master, as runc's
	// --console-socket: the caller of Create holds nothing of the terminal.
	// Nil sends it over the sync socket to Create's caller (Run copies it).
	ConsoleSocket *os.File
	// Stdin, Stdout, Stderr of the init; nil means the caller's own.
	Stdin, Stdout, Stderr *os.File
}

// A Process is a created container as its creator holds it: the init,
// waiting to be started, and what the creator must keep or hand on.
type Process struct {
	c    *Container
	cmd  *exec.Cmd
	st   *state
	ch   *channel
	sock *os.File
	term *console
}

// Pid is the init's pid on the host.
func (p *Process) Pid() int { return p.c.Pid }

// Create runs the Prepare steps, starts the init in its namespaces, runs
// the Parent steps, and returns once the init has said READY: every Child
// step ran, the command was found, and the init waits on its exec FIFO for
// Start. On any failure everything is undone (Cleanup) and the error, with
// the exit code the init reported (126, 127, 125), is returned.
func Create(c *Container, o CreateOptions) (p *Process, err error) {
	if err := ValidID(c.ID); err != nil {
		return nil, err
	}
	flags, err := CloneFlags(c.Spec)
	if err != nil {
		return nil, err
	}
	if err := checkPreserveFds(c.PreserveFds); err != nil {
		return nil, err
	}
	// What this process inherited is not the container's (inherit.go); Main
	// has done this already, a caller of Create may not have.
	if err := CloseExecExcept(nil); err != nil {
		return nil, err
	}
	c.Detached = o.Detached
	if !o.Detached {
		// A foreground run collects what killed runs left; a detached
		// container's caller collects one container when it touches it.
		Collect(c.State, c.Verbose)
	}
	st, err := createState(c)
	if err != nil {
		return nil, err
	}
	p = &Process{c: c, st: st}
	defer func() {
		if err != nil {
			p.abort()
			p = nil
		}
	}()

	for _, s := range c.Steps {
		if pr, ok := s.(Preparer); ok {
			if err := pr.Prepare(c); err != nil {
				return p, &ExitError{Code: ExitCode(err), Err: fmt.Errorf("%s: %w", s.Name(), err)}
			}
		}
	}
	fifo, err := makeExecFifo(c)
	if err != nil {
		return p, err
	}
	defer fifo.Close()

	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return p, fmt.Errorf("socketpair: %w", err)
	}
	p.sock = os.NewFile(uintptr(fds[0]), "sync-parent")
	childEnd := os.NewFile(uintptr(fds[1]), "sync-child")
	defer childEnd.Close()

	// The preserved fds keep their numbers, from 3 on; the sync socket
	// comes after them, then the exec FIFO, then the console socket.
	preserved, err := preservedFiles(c.PreserveFds)
	if err != nil {
		return p, err
	}
	defer closeFiles(preserved)
	extra := append(preserved, childEnd, fifo)
	if o.ConsoleSocket != nil && c.Spec.Process.Terminal {
		extra = append(extra, o.ConsoleSocket)
		c.ConsoleSocket = true
	}
	// The init runs a sealed copy of this binary, never the host's file,
	// which root in the container could reach through /proc/1/exe and
	// write (sealexe says how). A copy of its own, not SealedSelf's,
	// which would stay in memory for as long as this process lives (a
	// foreground run: the container's whole life); the init's holds the
	// memory only until its execve (with stage 02's --init, for the
	// container's life).
	sealed, err := sealexe.Seal("/proc/self/exe")
	if err != nil {
		return p, fmt.Errorf("container init: %w", err)
	}
	defer sealed.Close()
	cmd := &exec.Cmd{
		Args:        []string{initArg},
		Env:         initEnv(3 + len(preserved)),
		ExtraFiles:  extra,
		SysProcAttr: &syscall.SysProcAttr{Cloneflags: flags},
	}
	if !o.Detached {
		// If the runtime dies, the container dies with it, and the next
		// run collects what was left (see Collect).
		cmd.SysProcAttr.Pdeathsig = unix.SIGKILL
	}
	// With -t these are the child's only until it has opened its console;
	// until then, whatever it reports goes straight to ours.
	cmd.Stdin, cmd.Stdout, cmd.Stderr = orStd(o.Stdin, os.Stdin), orStd(o.Stdout, os.Stdout), orStd(o.Stderr, os.Stderr)
	if c.Spec.Process.Terminal && !c.ConsoleSocket {
		p.term = newConsole(c)
	}
	for _, s := range c.Steps {
		if cs, ok := s.(CmdSetter); ok {
			if err := cs.SetupCmd(c, cmd); err != nil {
				return p, &ExitError{Code: ExitCode(err), Err: fmt.Errorf("%s: %w", s.Name(), err)}
			}
		}
	}
	// Last: after every step's ExtraFiles. The init closes its copy of
	// the descriptor at once (closeExeFd).
	exeFd := sealexe.StartFrom(cmd, sealed)
	cmd.Env = append(cmd.Env, fmt.Sprintf("%s=%d", envExeFd, exeFd))
	if err := startInPidns(c, cmd); err != nil {
		return p, fmt.Errorf("start container init (clone flags %#x): %w", flags, err)
	}
	p.cmd = cmd
	childEnd.Close()
	c.Pid = cmd.Process.Pid
	if err := st.setPid(c.Pid); err != nil {
		return p, err
	}
	p.ch = newChannel(p.sock)
	if err := p.release(); err != nil {
		return p, err
	}
	return p, nil
}

// initEnv is the environment of the re-executed init: where the sync
// socket is, and the Go runtime's settings; nothing of the runtime's own
// environment. The init is the container's process: its environment is
// readable in there (/proc/1/environ, with --init for the container's
// whole life), and the runtime's holds the user's secrets, HOME, the
// host's PATH. The command gets the spec's environment, not this one;
// the init reads nothing else from its own. One P is plenty for the init, and keeps its
// thread count low: pids.max (stage 06) counts threads. And no cgroup-aware
// GOMAXPROCS (Go 1.25): it keeps two files of the runtime's cgroup open for
// the life of the process, and with --init that process is the container's
// PID 1, whose descriptors the command can reopen through /proc/1/fd.
func initEnv(syncAt int) []string {
	godebug := "containermaxprocs=0,updatemaxprocs=0"
	if v := os.Getenv("GODEBUG"); v != "" {
		godebug = v + "," + godebug
	}
	env := []string{"GOMAXPROCS=1", "GODEBUG=" + godebug, fmt.Sprintf("%s=%d", envSyncFd, syncAt)}
	if os.Geteuid() == 0 {
		// A root runtime writes the init's maps and opens its /proc
		// files as root: the init may be non-dumpable (setNotDumpable).
		env = append(env, envNoDump+"=1")
	}
	return env
}

func orStd(f, std *os.File) *os.File {
	if f != nil {
		return f
	}
	return std
}

// release sends the config, runs the parent-side steps and says go; then
// it waits until the init says READY or reports a failure. With a terminal
// on the sync socket, the child sends the pty's master first.
func (p *Process) release() error {
	c := p.c
	wire, err := encodeSteps(c.Steps)
	if err != nil {
		return err
	}
	ch := p.ch
	if err := ch.send(message{Type: msgConfig, Container: c, Steps: wire}); err != nil {
		return err
	}
	for _, s := range c.Steps {
		if pa, ok := s.(Parenter); ok {
			if err := pa.Parent(c, c.Pid); err != nil {
				return &ExitError{Code: ExitCode(err), Err: fmt.Errorf("%s: %w", s.Name(), err)}
			}
		}
	}
	if err := ch.send(message{Type: msgGo}); err != nil {
		return childFailed(ch, err)
	}
	for {
		m, err := ch.recv()
		switch {
		case errors.Is(err, io.EOF):
			return errors.New("sync: the container's init ended before it was ready")
		case err != nil:
			return fmt.Errorf("sync: waiting for the container's init: %w", err)
		case m.Type == msgError:
			return &ExitError{Code: m.Code, Err: errors.New(m.Error)}
		case m.Type == msgReady:
			if p.term != nil && p.term.master == nil {
				return errors.New("sync: the container's init is ready without having sent its console")
			}
			return nil
		case m.Type == msgConsole && p.term != nil && p.term.master == nil:
			master, err := ch.takeFile()
			if err != nil {
				return err
			}
			p.term.attach(master)
		default:
			return fmt.Errorf("sync: unexpected message %q", m.Type)
		}
	}
}

// Start lets the created command run, and waits until it does: the
// execve closed the sync socket (EOF), or the init reported why it could
// not (an error message, with its exit code).
func (p *Process) Start() error {
	if err := Start(p.st.dir, p.c.Pid); err != nil {
		return err
	}
	for {
		m, err := p.ch.recv()
		switch {
		case errors.Is(err, io.EOF):
			return nil // execve closed the socket: the command runs
		case err != nil:
			return fmt.Errorf("sync: waiting for the command to start: %w", err)
		case m.Type == msgError:
			return &ExitError{Code: m.Code, Err: errors.New(m.Error)}
		default:
			return fmt.Errorf("sync: unexpected message %q", m.Type)
		}
	}
}

// Wait waits for the init to exit and returns its status as a shell
// reports it: the exit code, or 128+N when signal N killed it.
func (p *Process) Wait() (int, error) {
	werr := p.cmd.Wait()
	if p.term != nil {
		p.term.wait()
	}
	return exitStatus(p.cmd, werr)
}

// Signal sends sig to the init; ESRCH (it has just exited) is no error.
func (p *Process) Signal(sig os.Signal) error {
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	return nil
}

// Held collects the files steps keep open for as long as the container
// lives (see Holder). A detached container's creator hands them to the
// process that outlives it, before it calls Release.
func (p *Process) Held() []*os.File {
	var out []*os.File
	for _, s := range p.c.Steps {
		if h, ok := s.(Holder); ok {
			out = append(out, h.Held()...)
		}
	}
	return out
}

// Release lets a detached container go: the creator closes its ends (the
// sync socket, the state lock) without waiting for, or killing, the init.
// The init is reparented (to a subreaper: stage 09's monitor) when the
// creator exits.
func (p *Process) Release() {
	if p.ch != nil {
		p.ch.close()
	}
	if p.sock != nil {
		p.sock.Close()
	}
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Release()
	}
	p.st.unlock()
}

// Close ends the foreground handle after Wait: the terminal, the socket.
// Cleanup is separate: it may run in another process.
func (p *Process) Close() {
	if p.term != nil {
		p.term.close()
	}
	if p.ch != nil {
		p.ch.close()
	}
	if p.sock != nil {
		p.sock.Close()
	}
}

// abort undoes a Create that failed: the init is killed, the steps are
// cleaned up, the state is removed.
func (p *Process) abort() {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	}
	p.Close()
	if err := cleanup(p.c, p.c.Steps); err != nil {
		// Keep the state: the next collection retries the cleanup.
		fmt.Fprintf(os.Stderr, "%s: %v\n", p.c.Prog, err)
		p.st.unlock()
		return
	}
	if err := p.st.remove(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", p.c.Prog, err)
	}
}

// Cleanup runs the Cleanup steps of a container that has exited, in
// reverse order, and removes its state. It runs in the process that
// waited for it (Run), or in any other once the init is gone (stage 09's
// monitor has its exit command do it), from the state directory alone.
// When a step's cleanup fails the state stays, so that a later Cleanup
// (or a collection) can finish the job.
func Cleanup(c *Container) error {
	if err := cleanup(c, c.Steps); err != nil {
		return err
	}
	if err := os.RemoveAll(c.StateDir()); err != nil {
		return fmt.Errorf("remove state dir %s: %w", c.StateDir(), err)
	}
	return nil
}

// childFailed prefers the child's own report over a broken pipe.
func childFailed(ch *channel, err error) error {
	if m, rerr := ch.recv(); rerr == nil && m.Type == msgError {
		return &ExitError{Code: m.Code, Err: errors.New(m.Error)}
	}
	return err
}

// exitStatus maps how the init ended to a shell-style code: its exit code,
// or 128+N when signal N killed it.
func exitStatus(cmd *exec.Cmd, werr error) (int, error) {
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok {
		return ExitRuntime, fmt.Errorf("wait: %v", werr)
	}
	return WaitStatusCode(ws), nil
}

// WaitStatusCode is a wait status as a shell reports it.
func WaitStatusCode(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// cleanup runs every Cleaner in reverse order and reports the first error.
func cleanup(c *Container, steps []Step) error {
	var first error
	for i := len(steps) - 1; i >= 0; i-- {
		if cl, ok := steps[i].(Cleaner); ok {
			if err := cl.Cleanup(c); err != nil && first == nil {
				first = fmt.Errorf("cleanup %s: %w", steps[i].Name(), err)
			}
		}
	}
	return first
}
