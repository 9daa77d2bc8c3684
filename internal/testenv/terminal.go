package testenv

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
)

// A Terminal is a command running on a pseudo-terminal of the test's, as
// when a learner types it in a shell: its stdin, stdout and stderr are the
// pty's slave, it leads a session whose controlling terminal that is, and
// the test reads and types on the master (github.com/creack/pty).
type Terminal struct {
	t    testing.TB
	cmd  *exec.Cmd
	pty  *os.File
	mu   sync.Mutex
	out  bytes.Buffer
	more chan struct{} // a token when output arrives
	done chan struct{} // closed when the output has ended
}

// StartTerminal starts a command on a new pty of rows x cols. The test's
// cleanup kills it (by its PID) if the test has not waited for it.
func StartTerminal(t testing.TB, env []string, rows, cols uint16, name string, args ...string) *Terminal {
	t.Helper()
	tm := &Terminal{t: t, cmd: exec.Command(name, args...), more: make(chan struct{}, 1), done: make(chan struct{})}
	tm.cmd.Env = append(os.Environ(), env...)
	f, err := pty.StartWithSize(tm.cmd, &pty.Winsize{Rows: rows, Cols: cols})
	if err != nil {
		t.Fatalf("start %s %v on a pty: %v", name, args, err)
	}
	tm.pty = f
	t.Cleanup(func() {
		if tm.cmd.ProcessState == nil {
			_ = tm.cmd.Process.Kill()
			_ = tm.cmd.Wait()
		}
		f.Close()
	})
	go func() {
		// Ends with EIO once the command and everything it started have
		// closed the slave.
		buf := make([]byte, 4096)
		for {
			n, err := f.Read(buf)
			tm.mu.Lock()
			tm.out.Write(buf[:n])
			tm.mu.Unlock()
			select {
			case tm.more <- struct{}{}:
			default:
			}
			if err != nil {
				close(tm.done)
				return
			}
		}
	}()
	return tm
}

// Output is what the terminal showed so far, with the pty's \r\n as \n.
func (tm *Terminal) Output() string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return strings.ReplaceAll(tm.out.String(), "\r\n", "\n")
}

// WaitFor waits until the output contains s. It fails the test if the
// output ends without it, or after a 2-minute safety limit.
func (tm *Terminal) WaitFor(s string) {
	tm.t.Helper()
	limit := time.After(2 * time.Minute)
	for !strings.Contains(tm.Output(), s) {
		select {
		case <-tm.more:
		case <-tm.done:
			if !strings.Contains(tm.Output(), s) {
				tm.t.Fatalf("%v: output ended without %q:\n%s", tm.cmd.Args, s, tm.Output())
			}
		case <-limit:
			tm.t.Fatalf("%v: no %q after 2 minutes:\n%s", tm.cmd.Args, s, tm.Output())
		}
	}
}

// Type writes s to the terminal as if typed ("\x03" is Ctrl-C).
func (tm *Terminal) Type(s string) {
	tm.t.Helper()
	if _, err := tm.pty.WriteString(s); err != nil {
		tm.t.Fatalf("type on the pty of %v: %v", tm.cmd.Args, err)
	}
}

// Resize changes the terminal's size; the kernel sends SIGWINCH to the
// command.
func (tm *Terminal) Resize(rows, cols uint16) {
	tm.t.Helper()
	if err := pty.Setsize(tm.pty, &pty.Winsize{Rows: rows, Cols: cols}); err != nil {
		tm.t.Fatalf("resize the pty of %v: %v", tm.cmd.Args, err)
	}
}

// Wait waits (at most 2 minutes) for the command to exit and its output to
// end, and returns the output and the exit code (128+N for signal N).
func (tm *Terminal) Wait() (string, int) {
	tm.t.Helper()
	exited := make(chan error, 1)
	go func() { exited <- tm.cmd.Wait() }()
	var err error
	select {
	case err = <-exited:
	case <-time.After(2 * time.Minute):
		_ = tm.cmd.Process.Kill()
		<-exited
		tm.t.Fatalf("%v: still running after 2 minutes:\n%s", tm.cmd.Args, tm.Output())
	}
	select {
	case <-tm.done:
	case <-time.After(2 * time.Minute):
		tm.t.Fatalf("%v: exited, but something still holds its terminal after 2 minutes:\n%s", tm.cmd.Args, tm.Output())
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
	} else if err != nil {
		tm.t.Fatalf("wait %v: %v", tm.cmd.Args, err)
	}
	return tm.Output(), code
}
