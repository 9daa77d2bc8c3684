//go:build linux

// Package consolesock passes a terminal's master over a unix socket, as
// runc does to its --console-socket: the container's init opens its pty
// inside the container (01-uts/spine/tty.go) and sends the master out;
// the runtime, a monitor, or a caller written for runc (conmon,
// containerd's shim) receives it. Chapter 01 (the terminal).
package consolesock

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Send sends the master to the console socket as runc does
// to its --console-socket, so that a caller written for runc (conmon,
// containerd's shim) reads it the same way: one message whose bytes are
// the master's name and whose ancillary data is the descriptor.
func Send(sock int, master *os.File) error {
	defer unix.Close(sock)
	name := []byte(master.Name())
	if err := unix.Sendmsg(sock, name, unix.UnixRights(int(master.Fd())), nil, 0); err != nil {
		return fmt.Errorf("send the pty master to the console socket: %w", err)
	}
	return nil
}

// Recv is the other end of a console socket: it reads the message
// Send wrote and returns the master.
func Recv(sock *os.File) (*os.File, error) {
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	rc, err := sock.SyscallConn()
	if err != nil {
		return nil, err
	}
	var n, oobn int
	var rerr error
	if err := rc.Read(func(fd uintptr) bool {
		n, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_CMSG_CLOEXEC)
		return rerr != unix.EAGAIN
	}); err != nil {
		return nil, err
	}
	if rerr != nil {
		return nil, fmt.Errorf("receive the pty master: %w", rerr)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("receive the pty master: no descriptor in the message")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return nil, fmt.Errorf("receive the pty master: want one descriptor")
	}
	return os.NewFile(uintptr(fds[0]), string(buf[:n])), nil
}
