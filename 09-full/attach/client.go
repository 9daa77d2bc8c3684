package attach

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Options say which streams a client wants.
type Options struct {
	Stdin, Stdout, Stderr bool
	// StdinOnce: when this client's input ends, the container's stdin is
	// closed (docker run -i: `echo hi | docker run -i busybox cat` ends).
	StdinOnce bool
}

func (o Options) hello() string {
	var w []string
	for _, f := range []struct {
		on   bool
		name string
	}{{o.Stdin, "stdin"}, {o.Stdout, "stdout"}, {o.Stderr, "stderr"}, {o.StdinOnce, "stdin-once"}} {
		if f.on {
			w = append(w, f.name)
		}
	}
	return strings.Join(w, " ")
}

// A Client is one attachment to a container.
type Client struct {
	conn *net.UnixConn
	opt  Options
	wmu  sync.Mutex
}

// Dial attaches to the monitor listening at path.
func Dial(path string, o Options) (*Client, error) {
	var conn *net.UnixConn
	err := shortPath(path, func(p string) (err error) {
		conn, err = net.DialUnix("unix", nil, &net.UnixAddr{Name: p, Net: "unix"})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("attach to %s: %w", path, err)
	}
	c := &Client{conn: conn, opt: o}
	if err := c.send(Hello, []byte(o.hello())); err != nil {
		conn.Close()
		return nil, err
	}
	// The monitor's hello says it has us: what the container writes from
	// now on reaches us.
	kind, _, err := readFrame(conn, nil)
	if err != nil || kind != Hello {
		conn.Close()
		if err == nil {
			err = fmt.Errorf("frame %d", kind)
		}
		return nil, fmt.Errorf("attach to %s: no answer from the monitor: %w", path, err)
	}
	return c, nil
}

func (c *Client) send(kind byte, p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return writeFrame(c.conn, kind, p)
}

// Resize tells the container's terminal its new size.
func (c *Client) Resize(rows, cols uint16) error {
	return c.send(Resize, []byte(fmt.Sprintf("%d %d", rows, cols)))
}

// Close ends the attachment; the container goes on.
func (c *Client) Close() error { return c.conn.Close() }

// A Result is how an attachment ended.
type Result struct {
	Exited   bool // the container exited, with Code
	Code     int
	Detached bool // the detach keys were typed
}

// DefaultDetachKeys are Docker's: Ctrl-P Ctrl-Q.
var DefaultDetachKeys = []byte{0x10, 0x11}

// ParseDetachKeys reads Docker's --detach-keys: "ctrl-p,ctrl-q", "a,b".
func ParseDetachKeys(s string) ([]byte, error) {
	var out []byte
	for _, k := range strings.Split(s, ",") {
		k = strings.TrimSpace(k)
		switch {
		case len(k) == 1:
			out = append(out, k[0])
		case strings.HasPrefix(k, "ctrl-") && len(k) == 6:
			ch := k[5]
			switch {
			case ch >= 'a' && ch <= 'z':
				out = append(out, ch-'a'+1)
			case ch == '@':
				out = append(out, 0)
			case ch >= '[' && ch <= '_':
				out = append(out, ch-'@')
			default:
				return nil, fmt.Errorf("invalid detach key %q", k)
			}
		default:
			return nil, fmt.Errorf("invalid detach key %q: use a letter or ctrl-<value>, comma-separated", k)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("empty detach keys")
	}
	return out, nil
}

// Stream copies until the container exits (Result.Exited), the user types
// the detach keys (Result.Detached, when detach is not empty and stdin is
// attached), or the monitor goes away (an error). stdin may be nil.
func (c *Client) Stream(stdin io.Reader, stdout, stderr io.Writer, detach []byte) (Result, error) {
	detached := make(chan struct{})
	if stdin != nil && c.opt.Stdin {
		go func() {
			if c.copyStdin(stdin, detach) {
				close(detached)
				c.conn.Close() // ends the loop below, and the attachment
			}
		}()
	}
	buf := make([]byte, 32*1024)
	for {
		kind, p, err := readFrame(c.conn, buf)
		if err != nil {
			select {
			case <-detached:
				return Result{Detached: true}, nil
			default:
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return Result{}, ErrClosed
			}
			return Result{}, fmt.Errorf("attach: %w", err)
		}
		switch kind {
		case Stdout:
			if stdout != nil {
				_, _ = stdout.Write(p)
			}
		case Stderr:
			if stderr != nil {
				_, _ = stderr.Write(p)
			}
		case Exit:
			code, err := strconv.Atoi(string(p))
			if err != nil {
				return Result{}, fmt.Errorf("attach: bad exit status %q", p)
			}
			return Result{Exited: true, Code: code}, nil
		}
	}
}

// copyStdin sends stdin; it reports whether the detach keys ended it.
func (c *Client) copyStdin(stdin io.Reader, detach []byte) bool {
	buf := make([]byte, 32*1024)
	var held []byte // a prefix of the detach keys, not yet sent
	for {
		n, err := stdin.Read(buf)
		if n > 0 {
			out := make([]byte, 0, n+len(held))
			for _, b := range buf[:n] {
				if len(detach) > 0 && b == detach[len(held)] {
					held = append(held, b)
					if len(held) == len(detach) {
						_ = c.send(Stdin, out)
						return true
					}
					continue
				}
				out = append(out, held...)
				held = held[:0]
				if len(detach) > 0 && b == detach[0] {
					held = append(held, b)
					continue
				}
				out = append(out, b)
			}
			if len(out) > 0 {
				if c.send(Stdin, out) != nil {
					return false
				}
			}
		}
		if err != nil {
			if len(held) > 0 {
				_ = c.send(Stdin, held)
			}
			_ = c.send(CloseStdin, nil)
			return false
		}
	}
}

// ErrClosed is returned by a client whose monitor is gone.
var ErrClosed = errors.New("attach: the container's monitor closed the connection")

// shortPath calls fn with a name for path that fits a unix socket address
// (108 bytes): path itself, or, when longer, /proc/self/fd/N/NAME through a
// descriptor of its directory, as conmon does (and the monitor, for its
// end: 09-full/berth-monitor/attach.c). A live directory under
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
