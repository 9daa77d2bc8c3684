// Package attach is how a client reaches a container's standard streams
// through its monitor: a unix socket in the container's live directory
// (attach.sock), served by the monitor for as long as it lives. Frames on
// it have the 8-byte header of Docker's attach and logs streams (moby's
// stdcopy): the kind in the first byte, three zero bytes, the payload's
// length as a big-endian uint32; then the payload. Docker's kinds are
// stdin 0, stdout 1, stderr 2; berth adds the few a monitor and its client
// need besides: hello, exit, resize, close-stdin.
package attach

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Frame kinds.
const (
	Stdin      byte = 0  // client → monitor: to the container's stdin
	Stdout     byte = 1  // monitor → client: the container's stdout (or its terminal)
	Stderr     byte = 2  // monitor → client: the container's stderr
	Hello      byte = 8  // client → monitor, first: which streams (see Options)
	Exit       byte = 9  // monitor → client: the container exited; payload: its status
	Resize     byte = 10 // client → monitor: "ROWS COLS" of the terminal
	CloseStdin byte = 11 // client → monitor: its stdin ended (stdin-once closes the container's)
)

// MaxPayload bounds a frame: a larger length means a broken peer.
const MaxPayload = 1 << 20

// writeFrame writes one frame in one write, so that frames from several
// writers never interleave on a stream socket.
func writeFrame(w io.Writer, kind byte, p []byte) error {
	if len(p) > MaxPayload {
		return fmt.Errorf("attach: frame of %d bytes", len(p))
	}
	b := make([]byte, 8+len(p))
	b[0] = kind
	binary.BigEndian.PutUint32(b[4:8], uint32(len(p)))
	copy(b[8:], p)
	_, err := w.Write(b)
	return err
}

// readFrame reads one frame; buf is reused when large enough.
func readFrame(r io.Reader, buf []byte) (kind byte, p []byte, err error) {
	var h [8]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(h[4:8])
	if n > MaxPayload {
		return 0, nil, fmt.Errorf("attach: frame of %d bytes", n)
	}
	if int(n) > cap(buf) {
		buf = make([]byte, n)
	}
	p = buf[:n]
	if _, err := io.ReadFull(r, p); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return h[0], p, nil
}
