package attach

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// A Server is the monitor's end: it sends what the container writes to
// every client attached to it, and takes what they type. It never blocks
// on a client: one that cannot keep up is dropped, and the container goes
// on writing (its log has everything).
type Server struct {
	ln      *net.UnixListener
	path    string
	dev     uint64 // the socket file this server made: Close removes
	ino     uint64 // it only if the path still names it
	mu      sync.Mutex
	clients map[*client]struct{}
	closed  bool
	writers sync.WaitGroup // each client's writer, until its queue is sent

	// Called from the clients' goroutines; set them before Serve.
	OnStdin      func(p []byte) // what a client typed
	OnCloseStdin func()         // a stdin-once client's input ended
	OnResize     func(rows, cols uint16)
}

type client struct {
	conn   *net.UnixConn
	opt    Options
	out    chan []byte // whole frames, ready to write
	queued int         // bytes in out (under Server.mu)
	once   sync.Once
}

// queue is how many frames a client may be behind before it is dropped;
// maxQueued how many bytes: 1024 full frames would be 32 MiB of the
// monitor's memory per slow client.
const (
	queue     = 1024
	maxQueued = 1 << 20
)

// Listen creates the socket at path, for its owner only.
func Listen(path string) (*Server, error) {
	_ = os.Remove(path) // a monitor that died left it
	var ln *net.UnixListener
	err := shortPath(path, func(p string) (err error) {
		ln, err = net.ListenUnix("unix", &net.UnixAddr{Name: p, Net: "unix"})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	// Go unlinks the socket by name when the listener closes; by then the
	// name may be another server's (the container's next run, another
	// monitor, listening on the same path): Close removes it itself, if
	// it is still ours.
	ln.SetUnlinkOnClose(false)
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chmod %s: %w", path, err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		ln.Close()
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	return &Server{ln: ln, path: path, dev: st.Dev, ino: st.Ino, clients: map[*client]struct{}{}}, nil
}

// Serve accepts clients until Close.
func (s *Server) Serve() {
	for {
		conn, err := s.ln.AcceptUnix()
		if err != nil {
			return
		}
		go s.serve(conn)
	}
}

func (s *Server) serve(conn *net.UnixConn) {
	kind, p, err := readFrame(conn, nil)
	if err != nil || kind != Hello {
		conn.Close()
		return
	}
	c := &client{conn: conn, opt: parseHello(string(p)), out: make(chan []byte, queue)}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		conn.Close()
		return
	}
	s.clients[c] = struct{}{}
	// Attached: the answer comes first in the client's queue, and nothing
	// the container writes from now on is missed.
	hello := frame(Hello, nil)
	c.out <- hello
	c.queued += len(hello)
	s.writers.Add(1)
	s.mu.Unlock()
	go c.write(s)
	buf := make([]byte, 32*1024)
	for {
		kind, p, err := readFrame(conn, buf)
		if err != nil {
			break
		}
		switch kind {
		case Stdin:
			if c.opt.Stdin && s.OnStdin != nil {
				s.OnStdin(p)
			}
		case CloseStdin:
			if c.opt.Stdin && c.opt.StdinOnce && s.OnCloseStdin != nil {
				s.OnCloseStdin()
			}
		case Resize:
			f := strings.Fields(string(p))
			if len(f) == 2 && s.OnResize != nil {
				rows, err1 := strconv.ParseUint(f[0], 10, 16)
				cols, err2 := strconv.ParseUint(f[1], 10, 16)
				if err1 == nil && err2 == nil {
					s.OnResize(uint16(rows), uint16(cols))
				}
			}
		}
	}
	// The client went away (or detached): it holds nothing of the
	// container's. Output already queued for it is dropped.
	s.drop(c)
}

// write sends the client's queue; it ends when the queue is closed.
func (c *client) write(s *Server) {
	defer s.writers.Done()
	for b := range c.out {
		s.mu.Lock()
		c.queued -= len(b)
		s.mu.Unlock()
		if _, err := c.conn.Write(b); err != nil {
			s.drop(c)
			for range c.out {
			}
			return
		}
	}
	c.conn.Close()
}

func (s *Server) drop(c *client) {
	s.mu.Lock()
	_, ok := s.clients[c]
	delete(s.clients, c)
	s.mu.Unlock()
	if ok {
		c.once.Do(func() { close(c.out) })
	}
	c.conn.Close()
}

// Output sends what the container wrote on stream (Stdout, Stderr) to the
// clients that asked for it.
func (s *Server) Output(stream byte, p []byte) {
	if len(p) == 0 {
		return
	}
	var frames [][]byte
	for len(p) > 0 {
		n := min(len(p), 32*1024)
		frames = append(frames, frame(stream, p[:n]))
		p = p[n:]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.clients {
		if (stream == Stdout && !c.opt.Stdout) || (stream == Stderr && !c.opt.Stderr) {
			continue
		}
		for _, f := range frames {
			if c.queued+len(f) <= maxQueued {
				select {
				case c.out <- f:
					c.queued += len(f)
					continue
				default:
				}
			}
			// Too slow: dropped, the container must not wait.
			delete(s.clients, c)
			c.once.Do(func() { close(c.out) })
			break
		}
	}
}

// Exit tells every client the container's status and lets them go. Later
// clients (a container that restarts) attach to the next run.
func (s *Server) Exit(code int) {
	f := frame(Exit, []byte(strconv.Itoa(code)))
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.clients {
		select {
		case c.out <- f:
			c.queued += len(f)
		default:
		}
		delete(s.clients, c)
		c.once.Do(func() { close(c.out) })
	}
}

// Close stops accepting and lets every client go, once what was queued
// for them (the exit status above all) is sent, or a few seconds passed.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for c := range s.clients {
		delete(s.clients, c)
		c.once.Do(func() { close(c.out) })
	}
	s.mu.Unlock()
	err := s.ln.Close()
	done := make(chan struct{})
	go func() { s.writers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	var st unix.Stat_t
	if unix.Lstat(s.path, &st) == nil && st.Dev == s.dev && st.Ino == s.ino {
		_ = os.Remove(s.path)
	}
	return err
}

func frame(kind byte, p []byte) []byte {
	var b sliceWriter
	_ = writeFrame(&b, kind, p)
	return b
}

type sliceWriter []byte

func (w *sliceWriter) Write(p []byte) (int, error) {
	*w = append(*w, p...)
	return len(p), nil
}

// ErrClosed is returned by a client whose monitor is gone.
var ErrClosed = errors.New("attach: the container's monitor closed the connection")

// shortPath calls fn with a name for path that fits a unix socket address
// (108 bytes): path itself, or, when longer, /proc/self/fd/N/NAME through a
// descriptor of its directory, as conmon does. A live directory under
// $XDG_RUNTIME_DIR with a 64-digit id in it is longer.
func shortPath(path string, fn func(string) error) error {
	if len(path) < 100 {
		return fn(path)
	}
	dir, err := os.OpenFile(filepath.Dir(path), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer dir.Close()
	return fn(fmt.Sprintf("/proc/self/fd/%d/%s", dir.Fd(), filepath.Base(path)))
}
