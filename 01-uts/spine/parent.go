//go:build linux

package spine

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// Run runs the container in the foreground and returns the exit code berth
// should end with: the command's, or 125/126/127 when it could not start.
// Whatever Prepare and Parent set up is cleaned up on every path.
func Run(c *Container) (code int, err error) {
	if err := ValidID(c.ID); err != nil {
		return ExitRuntime, err
	}
	flags, err := CloneFlags(c.Spec)
	if err != nil {
		return ExitRuntime, err
	}
	if err := checkPreserveFds(c.PreserveFds); err != nil {
		return ExitRuntime, err
	}
	// What this process inherited is not the container's (inherit.go); Main
	// has done this already, a caller of Run may not have.
	if err := CloseExecExcept(nil); err != nil {
		return ExitRuntime, err
	}
	Collect(c.State, c.Verbose)

	st, err := createState(c)
	if err != nil {
		return ExitRuntime, err
	}
	defer func() {
		// A cleanup that failed leaves the state: the next run's Collect
		// finds it (its lock is free once we exit) and tries again.
		if cerr := cleanup(c, c.Steps); cerr != nil {
			st.unlock()
			if err == nil {
				code, err = ExitRuntime, fmt.Errorf("%w (its state stays in %s: the next run tries again)", cerr, st.dir)
			}
			return
		}
		if rerr := st.remove(); rerr != nil && err == nil {
			code, err = ExitRuntime, rerr
		}
	}()

	for _, s := range c.Steps {
		if p, ok := s.(Preparer); ok {
			if err := p.Prepare(c); err != nil {
				return ExitCode(err), fmt.Errorf("%s: %w", s.Name(), err)
			}
		}
	}

	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return ExitRuntime, fmt.Errorf("socketpair: %w", err)
	}
	parentEnd := os.NewFile(uintptr(fds[0]), "sync-parent")
	childEnd := os.NewFile(uintptr(fds[1]), "sync-child")
	defer parentEnd.Close()
	// The preserved fds keep their numbers, from 3 on; the sync socket
	// comes after them.
	preserved, err := preservedFiles(c.PreserveFds)
	if err != nil {
		childEnd.Close()
		return ExitRuntime, err
	}
	defer closeFiles(preserved)

	cmd := &exec.Cmd{
		Path:       "/proc/self/exe",
		Args:       []string{initArg},
		Env:        initEnv(3 + len(preserved)),
		ExtraFiles: append(preserved, childEnd),
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: flags,
			// If the runtime dies, the container dies with it, and the
			// next run collects what was left (see Collect).
			Pdeathsig: unix.SIGKILL,
		},
	}
	// With -t these are the child's only until it has opened its console;
	// until then, whatever it reports goes straight to ours.
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	var term *console
	if c.Spec.Process.Terminal {
		term = newConsole(c)
		defer term.close()
	}
	for _, s := range c.Steps {
		if cs, ok := s.(CmdSetter); ok {
			if err := cs.SetupCmd(c, cmd); err != nil {
				childEnd.Close()
				return ExitCode(err), fmt.Errorf("%s: %w", s.Name(), err)
			}
		}
	}

	// Catch signals before the child exists so none is lost in between.
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, ForwardedSignals...)
	defer signal.Stop(sigs)

	if err := cmd.Start(); err != nil {
		childEnd.Close()
		return ExitRuntime, fmt.Errorf("start container init (clone flags %#x): %w", flags, err)
	}
	childEnd.Close()
	c.Pid = cmd.Process.Pid
	if err := st.setPid(c.Pid); err != nil {
		killAndWait(cmd)
		return ExitRuntime, err
	}
	if err := release(c, parentEnd, term); err != nil {
		// The child may have reported its own failure; prefer that.
		killAndWait(cmd)
		return ExitCode(err), err
	}

	go func() {
		for s := range sigs {
			// ESRCH only means it has exited meanwhile.
			_ = cmd.Process.Signal(s)
		}
	}()
	werr := cmd.Wait()
	if term != nil {
		term.wait()
	}
	return exitStatus(cmd, werr)
}

// initEnv is the environment of the re-executed init: the runtime's, and
// where the sync socket is. One P is plenty for the init, and keeps its
// thread count low: pids.max (stage 06) counts threads. And no cgroup-aware
// GOMAXPROCS (Go 1.25): it keeps two files of the runtime's cgroup open for
// the life of the process, and with --init that process is the container's
// PID 1, whose descriptors the command can reopen through /proc/1/fd.
func initEnv(syncAt int) []string {
	godebug := "containermaxprocs=0,updatemaxprocs=0"
	if v := os.Getenv("GODEBUG"); v != "" {
		godebug = v + "," + godebug
	}
	return append(os.Environ(), "GOMAXPROCS=1", "GODEBUG="+godebug, fmt.Sprintf("%s=%d", envSyncFd, syncAt))
}

// release sends the config, runs the parent-side steps and says go; then
// it waits until the command runs (EOF) or the child reports a failure. With
// a terminal, the child first sends the pty's master for term to copy.
func release(c *Container, sock *os.File, term *console) error {
	wire, err := encodeSteps(c.Steps)
	if err != nil {
		return err
	}
	ch := newChannel(sock)
	defer ch.close()
	if err := ch.send(message{Type: msgConfig, Container: c, Steps: wire}); err != nil {
		return err
	}
	for _, s := range c.Steps {
		if p, ok := s.(Parenter); ok {
			if err := p.Parent(c, c.Pid); err != nil {
				return fmt.Errorf("%s: %w", s.Name(), err)
			}
		}
	}
	if err := ch.send(message{Type: msgGo}); err != nil {
		return childFailed(ch, err)
	}
	for {
		m, err := ch.recv()
		switch {
		case errors.Is(err, io.EOF) && term != nil && term.master == nil:
			return errors.New("sync: the container's init closed the socket without sending its console")
		case errors.Is(err, io.EOF):
			return nil // execve closed the socket: the command runs
		case err != nil:
			return fmt.Errorf("sync: waiting for the command to start: %w", err)
		case m.Type == msgError:
			return &ExitError{Code: m.Code, Err: errors.New(m.Error)}
		case m.Type == msgConsole && term != nil && term.master == nil:
			master, err := ch.takeFile()
			if err != nil {
				return err
			}
			term.attach(master)
		default:
			return fmt.Errorf("sync: unexpected message %q", m.Type)
		}
	}
}

// childFailed prefers the child's own report over a broken pipe.
func childFailed(ch *channel, err error) error {
	if m, rerr := ch.recv(); rerr == nil && m.Type == msgError {
		return &ExitError{Code: m.Code, Err: errors.New(m.Error)}
	}
	return err
}

func killAndWait(cmd *exec.Cmd) {
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

// exitStatus maps how the init ended to a shell-style code: its exit code,
// or 128+N when signal N killed it.
func exitStatus(cmd *exec.Cmd, werr error) (int, error) {
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok {
		return ExitRuntime, fmt.Errorf("wait: %v", werr)
	}
	if ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return ws.ExitStatus(), nil
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
