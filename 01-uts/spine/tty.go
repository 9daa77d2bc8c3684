//go:build linux

package spine

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// A console is the pseudo-terminal of `run -t`: the child gets the pty's
// slave as stdin, stdout, stderr and controlling terminal; the runtime
// copies between its own terminal (in raw mode) and the master. The pty
// itself comes from github.com/creack/pty: opening /dev/ptmx and finding
// the slave is not what this book is about.
type console struct {
	master, slave *os.File
	restore       func()
	done          chan struct{}
	winch         chan os.Signal
}

func newConsole(cmd *exec.Cmd) (*console, error) {
	master, slave, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("open pty: %w", err)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr.Setsid = true
	cmd.SysProcAttr.Setctty = true
	cmd.SysProcAttr.Ctty = 0 // fd 0 in the child
	if term.IsTerminal(int(os.Stdin.Fd())) {
		if err := pty.InheritSize(os.Stdin, master); err != nil {
			master.Close()
			slave.Close()
			return nil, fmt.Errorf("copy terminal size: %w", err)
		}
	}
	return &console{master: master, slave: slave, restore: func() {}, done: make(chan struct{})}, nil
}

// started closes our copy of the slave and starts copying.
func (t *console) started() {
	t.slave.Close()
	t.slave = nil
	if fd := int(os.Stdin.Fd()); term.IsTerminal(fd) {
		if old, err := term.MakeRaw(fd); err == nil {
			t.restore = func() { _ = term.Restore(fd, old) }
		}
		t.winch = make(chan os.Signal, 1)
		signal.Notify(t.winch, unix.SIGWINCH)
		go func() {
			for range t.winch {
				_ = pty.InheritSize(os.Stdin, t.master)
			}
		}()
	}
	go func() { _, _ = io.Copy(t.master, os.Stdin) }()
	go func() {
		// Ends with EIO once the last holder of the slave has exited.
		_, _ = io.Copy(os.Stdout, t.master)
		close(t.done)
	}()
}

// wait lets the output drain after the command exits.
func (t *console) wait() { <-t.done }

func (t *console) close() {
	if t.winch != nil {
		signal.Stop(t.winch)
		close(t.winch)
	}
	t.restore()
	if t.slave != nil {
		t.slave.Close()
	}
	t.master.Close()
}
