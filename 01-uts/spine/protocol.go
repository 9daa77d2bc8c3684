//go:build linux

package spine

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// The parent and the child talk over a unix socketpair, one JSON object per
// message, never through argv. The conversation is short:
//
//	parent → child  config   the Container and its steps
//	parent → child  go       parent-side work is done, carry on
//	child  → parent console  with a terminal only: the pty master, as SCM_RIGHTS
//	child  → parent ready    set up, the command found: waiting on the exec FIFO
//	child  → parent error    setup failed; the child exits with Code
//	child  → parent (EOF)    the socket closed on execve: the command runs
//
// Ready is said explicitly: an init that dies during its setup also closes
// the socket, and the end of file alone must not read as success. Between
// ready and the command, the container is "created": the init waits until
// someone opens the FIFO (Start, fifo.go), which may be another process
// long after the creator has gone (stage 09's `berth start`).
//
// The child's end is close-on-exec, so a successful execve closes it and the
// parent reads EOF: that is how a parent still listening knows the command
// started. So the child must leave nothing unread: the kernel reports the close of a
// unix socket with unread data to the other end as ECONNRESET, not EOF.
// That is why a message is its JSON object and nothing else, without the
// newline json.Encoder would add after it: the decoder needs no delimiter
// after a closing brace, and would stop before the newline if its read
// happened to end there.
//
// A console message carries a file descriptor, which a unix socket passes
// as ancillary data (SCM_RIGHTS) beside the bytes of the message, exactly
// as runc's --console-socket does. A plain read() would drop it, and the
// JSON decoder reads ahead of the message it decodes; so the channel reads
// with recvmsg, keeps every descriptor that arrives, and the receiver of a
// console message takes it with takeFile.
type message struct {
	Type      string     `json:"type"`
	Container *Container `json:"container,omitempty"`
	Steps     []wireStep `json:"steps,omitempty"`
	Error     string     `json:"error,omitempty"`
	Code      int        `json:"code,omitempty"`
}

const (
	msgConfig  = "config"
	msgGo      = "go"
	msgConsole = "console"
	msgReady   = "ready"
	msgError   = "error"
)

type channel struct {
	sock  *os.File
	dec   *json.Decoder
	files []*os.File // descriptors received, oldest first, not yet taken
}

func newChannel(sock *os.File) *channel {
	ch := &channel{sock: sock}
	ch.dec = json.NewDecoder(rightsReader{ch})
	return ch
}

func (ch *channel) send(m message) error {
	b, err := json.Marshal(m)
	if err == nil {
		_, err = ch.sock.Write(b)
	}
	if err != nil {
		return fmt.Errorf("sync: send %s: %w", m.Type, err)
	}
	return nil
}

// sendFile sends m with f attached: one sendmsg, so the descriptor travels
// with the first byte of the message and cannot arrive before or after it.
func (ch *channel) sendFile(m message, f *os.File) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("sync: send %s: %w", m.Type, err)
	}
	rc, err := ch.sock.SyscallConn()
	if err != nil {
		return fmt.Errorf("sync: send %s: %w", m.Type, err)
	}
	var n int
	rights := unix.UnixRights(int(f.Fd()))
	werr := rc.Write(func(fd uintptr) bool {
		for {
			n, err = unix.SendmsgN(int(fd), b, rights, nil, 0)
			if err != unix.EINTR {
				return err != unix.EAGAIN
			}
		}
	})
	switch {
	case werr != nil:
		err = werr
	case err == nil && n < len(b):
		// The descriptor went with the first byte; the rest is plain data.
		_, err = ch.sock.Write(b[n:])
	}
	if err != nil {
		return fmt.Errorf("sync: send %s: %w", m.Type, err)
	}
	return nil
}

// recv reads one message; io.EOF means the other side closed its end.
func (ch *channel) recv() (message, error) {
	var m message
	err := ch.dec.Decode(&m)
	return m, err
}

// expect reads one message and checks its type.
func (ch *channel) expect(typ string) (message, error) {
	m, err := ch.recv()
	if err != nil {
		return m, fmt.Errorf("sync: waiting for %s: %w", typ, err)
	}
	if m.Type != typ {
		return m, fmt.Errorf("sync: got %q, want %q", m.Type, typ)
	}
	return m, nil
}

// takeFile hands over the oldest descriptor received. The decoder had to
// read a message's bytes to decode it, and its descriptor came with the
// first of them, so after a console message it is here.
func (ch *channel) takeFile() (*os.File, error) {
	if len(ch.files) == 0 {
		return nil, errors.New("sync: message without its file descriptor")
	}
	f := ch.files[0]
	ch.files = ch.files[1:]
	return f, nil
}

// close closes the descriptors nobody took.
func (ch *channel) close() {
	for _, f := range ch.files {
		f.Close()
	}
	ch.files = nil
}

// rightsReader reads the socket with recvmsg, keeping the descriptors.
type rightsReader struct{ ch *channel }

// Room for a few descriptors; more in one message is a protocol error.
var oobSize = unix.CmsgSpace(4 * 4)

func (r rightsReader) Read(p []byte) (int, error) {
	rc, err := r.ch.sock.SyscallConn()
	if err != nil {
		return 0, err
	}
	oob := make([]byte, oobSize)
	var n, oobn, flags int
	rerr := rc.Read(func(fd uintptr) bool {
		for {
			n, oobn, flags, _, err = unix.Recvmsg(int(fd), p, oob, unix.MSG_CMSG_CLOEXEC)
			if err != unix.EINTR {
				return err != unix.EAGAIN
			}
		}
	})
	if rerr != nil {
		return 0, rerr
	}
	if err != nil {
		return 0, err
	}
	if oobn > 0 {
		if err := r.ch.keepRights(oob[:oobn]); err != nil {
			return 0, err
		}
	}
	if flags&unix.MSG_CTRUNC != 0 {
		return 0, errors.New("sync: too many file descriptors in one message")
	}
	if n == 0 && len(p) > 0 {
		return 0, io.EOF
	}
	return n, nil
}

func (ch *channel) keepRights(oob []byte) error {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return fmt.Errorf("sync: parse control message: %w", err)
	}
	for _, m := range msgs {
		fds, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue // not SCM_RIGHTS (credentials, say): nothing to keep
		}
		for _, fd := range fds {
			ch.files = append(ch.files, os.NewFile(uintptr(fd), "received"))
		}
	}
	return nil
}
