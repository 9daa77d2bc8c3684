//go:build linux

package nsenter

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"syscall"
)

// A frame is one message between the caller and the constructor: a header
// of two native-endian uint32 (type, payload length) and the payload.
// nsenter.h describes every type.
type frame struct {
	typ     uint32
	payload []byte
}

func writeFrame(w io.Writer, typ uint32, payload []byte) error {
	if len(payload) > maxPayload {
		return fmt.Errorf("message of %d bytes is longer than %d", len(payload), maxPayload)
	}
	buf := make([]byte, 8, 8+len(payload))
	binary.NativeEndian.PutUint32(buf[0:], typ)
	binary.NativeEndian.PutUint32(buf[4:], uint32(len(payload)))
	_, err := w.Write(append(buf, payload...))
	return err
}

// readFrame reads one frame; io.EOF only when the stream ends before one.
func readFrame(r io.Reader) (frame, error) {
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return frame{}, err
	}
	f := frame{typ: binary.NativeEndian.Uint32(hdr[0:])}
	n := binary.NativeEndian.Uint32(hdr[4:])
	if n > maxPayload {
		return frame{}, fmt.Errorf("message of %d bytes is longer than %d", n, maxPayload)
	}
	f.payload = make([]byte, n)
	if _, err := io.ReadFull(r, f.payload); err != nil {
		return frame{}, io.ErrUnexpectedEOF
	}
	return f, nil
}

// joinPayload is a JOIN's payload: the clone flag, then the path.
func joinPayload(flag uint32, path string) ([]byte, error) {
	if path == "" || len(path) > maxPath {
		return nil, fmt.Errorf("namespace path %q: empty or longer than %d bytes", path, maxPath)
	}
	for i := 0; i < len(path); i++ {
		if path[i] == 0 {
			return nil, fmt.Errorf("namespace path %q holds a NUL byte", path)
		}
	}
	p := binary.NativeEndian.AppendUint32(nil, flag)
	return append(p, path...), nil
}

// frameError turns an ERROR frame into an error: the text, and the errno
// wrapped so that errors.Is(err, unix.EPERM) works for the caller.
func frameError(payload []byte) error {
	if len(payload) < 4 {
		return errors.New("nsenter: malformed error report")
	}
	errno := syscall.Errno(binary.NativeEndian.Uint32(payload))
	text := string(payload[4:])
	if errno == 0 {
		return errors.New("nsenter: " + text)
	}
	return fmt.Errorf("nsenter: %s: %w", text, errno)
}
