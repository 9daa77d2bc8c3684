//go:build linux

package daemon

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// DefaultHost is where docker and berth daemon meet unless -H says
// otherwise (Docker's is unix:///var/run/docker.sock; berth's own, so
// both can run on one host).
const DefaultHost = "unix:///run/berth/docker.sock"

// Listen opens the socket of -H. Only unix:// for now: whoever can
// connect to this API is root on the host (a bind mount of / is one
// create away), so the socket is root's, mode 0660, and TCP, which needs
// TLS client certificates to be anything but an open door, is refused.
func Listen(host string) (net.Listener, error) {
	scheme, path, ok := strings.Cut(host, "://")
	if !ok {
		return nil, fmt.Errorf("-H %q: want unix:///PATH", host)
	}
	switch scheme {
	case "unix":
	case "tcp":
		return nil, fmt.Errorf("-H %s: TCP needs TLS client certificates, which berth daemon does not have yet: use unix:///PATH", host)
	default:
		return nil, fmt.Errorf("-H %s: unsupported scheme %q: use unix:///PATH", host, scheme)
	}
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("-H %s: the socket's path must be absolute", host)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o711); err != nil {
		return nil, fmt.Errorf("make the socket's directory: %w", err)
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	// The umask makes bind(2) create the socket 0660 at once: a chmod
	// after it would leave a moment when anyone may connect. The daemon
	// makes no other file meanwhile (it has not started serving).
	old := syscall.Umask(0o117)
	l, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(true)
	return l, nil
}

// removeStale removes a socket a daemon that died left behind; a live
// daemon's socket, or anything that is not a socket, is an error.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("lstat %s: %w", path, err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket: refusing to remove it", path)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("%s: another daemon is listening there", path)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove the stale socket %s: %w", path, err)
	}
	return nil
}
