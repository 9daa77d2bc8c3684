//go:build linux

package monitor

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"berth/09-full/attach"
	"berth/09-full/logfile"
)

// The container's streams for one run. Without a terminal: a pipe per
// stream, whose read ends (and stdin's write end) the monitor keeps. With
// one: the init opens a pty inside the container and sends its master
// over the console socket; the pipes then carry only what the init says
// before it has its terminal.
type stdio struct {
	initStdin, initStdout, initStderr *os.File // the init's ends
	stdinW, stdoutR, stderrR          *os.File // ours
	consoleMine, consoleTheirs        *os.File
}

func newStdio(cfg Config) (*stdio, error) {
	s := &stdio{}
	var err error
	fail := func(e error) (*stdio, error) {
		s.closeTheirs()
		s.close()
		return nil, e
	}
	if cfg.Stdin && !cfg.Tty {
		if s.initStdin, s.stdinW, err = os.Pipe(); err != nil {
			return fail(err)
		}
	} else if s.initStdin, err = os.Open(os.DevNull); err != nil {
		return fail(err)
	}
	if s.stdoutR, s.initStdout, err = os.Pipe(); err != nil {
		return fail(err)
	}
	if s.stderrR, s.initStderr, err = os.Pipe(); err != nil {
		return fail(err)
	}
	if cfg.Tty {
		if s.consoleMine, s.consoleTheirs, err = socketPair("console"); err != nil {
			return fail(fmt.Errorf("socketpair: %w", err))
		}
	}
	return s, nil
}

// closeTheirs closes the init's ends once the helper that passes them on
// has them: an end left open here would keep a pipe from ever ending.
func (s *stdio) closeTheirs() {
	for _, f := range []**os.File{&s.initStdin, &s.initStdout, &s.initStderr, &s.consoleTheirs} {
		if *f != nil {
			(*f).Close()
			*f = nil
		}
	}
}

func (s *stdio) close() {
	for _, f := range []**os.File{&s.stdinW, &s.stdoutR, &s.stderrR, &s.consoleMine} {
		if *f != nil {
			(*f).Close()
			*f = nil
		}
	}
}

// takeConsole receives the pty master the init sent (it did, before it
// said it was ready: the message waits in the socket).
func (m *monitor) takeConsole(s *stdio) error {
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	for {
		_, oobn, _, err := recvmsg(s.consoleMine, buf, oob)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("receive the terminal: %w", err)
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			return errors.New("receive the terminal: no descriptor")
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			return errors.New("receive the terminal: want one descriptor")
		}
		m.mu.Lock()
		m.master = os.NewFile(uintptr(fds[0]), "pty master")
		m.stdin = m.master
		m.mu.Unlock()
		return nil
	}
}

// copyOutput copies the container's output to the log and to the attached
// clients; the channel closes when every stream has ended.
func (m *monitor) copyOutput(s *stdio) <-chan struct{} {
	m.mu.Lock()
	if m.master == nil {
		m.stdin = s.stdinW
	}
	master := m.master
	m.mu.Unlock()
	var wg sync.WaitGroup
	copyStream := func(r *os.File, stream string, kind byte) {
		defer wg.Done()
		lines := logfile.NewLines(stream, m.logw.Write)
		buf := make([]byte, 32*1024)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				m.idle.busy()
				m.srv.Output(kind, buf[:n])
				if _, werr := lines.Write(buf[:n]); werr != nil {
					fmt.Fprintf(m.log, "%s monitor: %v\n", time.Now().Format(time.RFC3339), werr)
				}
			}
			if err != nil {
				_ = lines.Flush()
				return
			}
		}
	}
	wg.Add(2)
	go copyStream(s.stdoutR, logfile.Stdout, attach.Stdout)
	go copyStream(s.stderrR, logfile.Stderr, attach.Stderr)
	if master != nil {
		wg.Add(1)
		// A terminal mixes both streams; Docker logs it as stdout. The read
		// ends with EIO once the last holder of the slave has exited.
		go copyStream(master, logfile.Stdout, attach.Stdout)
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		m.mu.Lock()
		if m.master != nil {
			m.master.Close()
			m.master = nil
		}
		m.stdin = nil
		m.mu.Unlock()
		close(done)
	}()
	return done
}

func (m *monitor) writeStdin(p []byte) {
	m.idle.busy()
	m.mu.Lock()
	w := m.stdin
	m.mu.Unlock()
	if w != nil {
		_, _ = w.Write(p)
	}
}

// closeStdin closes the container's stdin (a stdin-once client's input
// ended): the container reads end of file. A terminal gets Ctrl-D.
func (m *monitor) closeStdin() {
	if !m.cfg.StdinOnce {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.master != nil {
		_, _ = m.master.Write([]byte{4})
		return
	}
	if m.stdin != nil {
		m.stdin.Close()
		m.stdin = nil
	}
}

func (m *monitor) resize(rows, cols uint16) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.master != nil {
		_ = unix.IoctlSetWinsize(int(m.master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
	}
}
