//go:build linux

package spine

import (
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/creack/pty"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// The console of `run -t` is a pseudo-terminal that must belong to the
// container: with a root of its own (stage 03) the container has its own
// devpts instance, and a pty opened on the host's would be a stranger
// there (`tty` says "not a tty"). So, as runc does, the child opens
// /dev/ptmx itself at the very end of its setup, after every mount and
// pivot_root, makes the slave its stdin, stdout, stderr and controlling
// terminal, and sends the master to the runtime over the sync socket
// (SCM_RIGHTS: runc's --console-socket). The runtime copies between its
// own terminal, in raw mode, and the master, and passes on window sizes.
// github.com/creack/pty does the parts that are not this book's subject:
// opening a pty pair, reading and setting a window size.

// openConsole is the child's side: it runs after the last Childer step,
// just before the command is executed. send takes the master away: over
// the sync socket to a foreground runtime, or to a console socket.
func openConsole(c *Container, send func(master *os.File) error) error {
	master, slave, err := pty.Open() // /dev/ptmx and /dev/pts/N, the container's own
	if err != nil {
		return fmt.Errorf("open a pty in the container (/dev/ptmx): %w", err)
	}
	defer master.Close()
	defer slave.Close()
	// Set the size before the command can ask for it; the runtime keeps it
	// right afterwards.
	if b := c.Spec.Process.ConsoleSize; b != nil {
		if err := pty.Setsize(master, &pty.Winsize{Rows: uint16(b.Height), Cols: uint16(b.Width)}); err != nil {
			return fmt.Errorf("set pty size: %w", err)
		}
	}
	if c.Spec.Root != nil && c.Spec.Root.Path != "" {
		if err := mountConsole(slave.Name()); err != nil {
			return err
		}
	}
	if err := send(master); err != nil {
		return err
	}
	// A new session has no controlling terminal; TIOCSCTTY makes the
	// slave ours, so Ctrl-C on the runtime's side becomes SIGINT here.
	if _, err := unix.Setsid(); err != nil {
		return fmt.Errorf("setsid: %w", err)
	}
	fd := int(slave.Fd()) // Fd also makes it blocking again, as a command expects
	if err := unix.IoctlSetInt(fd, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("make %s the controlling terminal: %w", slave.Name(), err)
	}
	for _, to := range []int{0, 1, 2} {
		if err := unix.Dup3(fd, to, 0); err != nil {
			return fmt.Errorf("dup %s onto fd %d: %w", slave.Name(), to, err)
		}
	}
	c.Logf("console: %s is the command's terminal; its master went to the runtime", slave.Name())
	return nil
}

// mountConsole binds the slave onto /dev/console, as runc does: a program
// that writes to the console (an init, a logger) writes to our terminal,
// not to the host's. Stage 03's /dev is a tmpfs of the container's own.
func mountConsole(slave string) error {
	f, err := os.OpenFile("/dev/console", os.O_CREATE|os.O_RDONLY|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("create /dev/console: %w", err)
	}
	f.Close()
	if err := unix.Mount(slave, "/dev/console", "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s on /dev/console: %w", slave, err)
	}
	return nil
}

// A console is the runtime's side of the terminal.
type console struct {
	master  *os.File // nil until the child sends it
	restore func()
	winch   chan os.Signal
	done    chan struct{} // closed when the output has drained
}

// newConsole runs before the child starts. It watches SIGWINCH from now
// on, so that no resize is lost, and puts the terminal's size into the
// spec for the child to set on the pty before the command runs.
func newConsole(c *Container) *console {
	t := &console{restore: func() {}}
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		return t
	}
	t.winch = make(chan os.Signal, 1)
	signal.Notify(t.winch, unix.SIGWINCH)
	if ws, err := pty.GetsizeFull(os.Stdin); err == nil {
		c.Spec.Process.ConsoleSize = &specs.Box{Height: uint(ws.Rows), Width: uint(ws.Cols)}
	}
	return t
}

// attach takes the master from the child and starts copying: our stdin
// to it, its output to our stdout.
func (t *console) attach(master *os.File) {
	t.master = master
	t.done = make(chan struct{})
	if fd := int(os.Stdin.Fd()); term.IsTerminal(fd) {
		// The terminal may have changed size since the child set it.
		_ = pty.InheritSize(os.Stdin, master)
		if old, err := term.MakeRaw(fd); err == nil {
			t.restore = func() { _ = term.Restore(fd, old) }
		}
		go func() {
			for range t.winch {
				_ = pty.InheritSize(os.Stdin, master)
			}
		}()
	}
	go func() { _, _ = io.Copy(master, os.Stdin) }()
	go func() {
		// Ends with EIO once the last holder of the slave has exited.
		_, _ = io.Copy(os.Stdout, master)
		close(t.done)
	}()
}

// wait lets the output drain after the command exits.
func (t *console) wait() {
	if t.done != nil {
		<-t.done
	}
}

func (t *console) close() {
	if t.winch != nil {
		signal.Stop(t.winch)
		close(t.winch)
	}
	t.restore()
	if t.master != nil {
		t.master.Close()
	}
}
