//go:build linux

package pid

import (
	"fmt"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"golang.org/x/sys/unix"

	"berth/01-uts/spine"
)

// forwarded are the signals the init passes on to the command: the
// runtime's (spine.ForwardedSignals), and a terminal's resize.
var forwarded = append(slices.Clone(spine.ForwardedSignals), unix.SIGWINCH)

// runInit is the PID 1 problem's answer. The kernel treats a namespace's
// init specially: a signal whose action is the default is dropped unless
// the init installed a handler (so `kill -TERM` does nothing to a shell
// that is PID 1), and every orphan in the namespace is re-parented to it
// (so a PID 1 that never calls wait leaves zombies). This init installs
// handlers for the usual signals and passes them on, starts the command as
// its child, reaps every child that exits, and exits with the command's
// status once the command is gone: the kernel then kills whatever is left
// in the namespace.
func runInit(c *spine.Container, path string, argv, env []string) error {
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs, append([]os.Signal{unix.SIGCHLD}, forwarded...)...)

	// The command gets stdio and the fds the container was given to pass
	// on (c.PreserveFds), nothing else: the spine has marked every other
	// descriptor close-on-exec, and os.StartProcess passes only Files.
	files := c.CommandFiles()
	attr := &os.ProcAttr{
		Env:   env,
		Files: files,
		Sys:   &syscall.SysProcAttr{},
	}
	if c.Spec.Process.Terminal {
		// Give the terminal's foreground to the command, so that job
		// control and Ctrl-C reach it as they would in a login shell.
		attr.Sys.Setpgid = true
		attr.Sys.Foreground = true
		attr.Sys.Ctty = 0
	}
	proc, err := os.StartProcess(path, argv, attr)
	// PID 1 stays for the command's whole life, and the command may open
	// its descriptors through /proc/1/fd: keep none it does not need. (The
	// write end of a pipe passed on and kept here would also keep the
	// pipe's reader from ever seeing its end.)
	for _, f := range files[3:] {
		if f != nil {
			f.Close()
		}
	}
	if err != nil {
		return spine.ExecError(path, err)
	}
	c.Logf("pid: init is PID %d, the command is PID %d", os.Getpid(), proc.Pid)
	if err := c.Started(); err != nil {
		return fmt.Errorf("tell the runtime the command started: %w", err)
	}

	for sig := range sigs {
		if sig != unix.SIGCHLD {
			// ESRCH: it has just exited; the SIGCHLD is on its way.
			_ = unix.Kill(proc.Pid, sig.(syscall.Signal))
			continue
		}
		// SIGCHLDs merge: one may stand for many exits, so reap until
		// there is nothing left to reap.
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if err == unix.EINTR {
				continue
			}
			if err != nil || pid <= 0 {
				break
			}
			if pid != proc.Pid {
				c.Logf("pid: init reaped orphan %d", pid)
				continue
			}
			if ws.Signaled() {
				os.Exit(128 + int(ws.Signal()))
			}
			os.Exit(ws.ExitStatus())
		}
	}
	return fmt.Errorf("init: signal channel closed")
}
