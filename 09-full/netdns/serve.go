//go:build linux

package netdns

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ServeTCP answers TCP clients on l until it is closed: each message is
// two bytes of length, then the message (RFC 1035 4.2.2). A client that
// says nothing for Timeout is dropped; at most maxTCPConn are served at
// once (the others wait in the kernel's backlog).
func (s *Server) ServeTCP(l net.Listener) error {
	s.init()
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		s.tcpSlots <- struct{}{}
		go func() {
			defer func() { <-s.tcpSlots }()
			defer c.Close()
			s.serveConn(c)
		}()
	}
}

func (s *Server) serveConn(c net.Conn) {
	r := bufio.NewReader(c)
	for {
		_ = c.SetDeadline(time.Now().Add(s.Timeout))
		var n uint16
		if err := binary.Read(r, binary.BigEndian, &n); err != nil {
			return
		}
		q := make([]byte, n)
		if _, err := io.ReadFull(r, q); err != nil {
			return
		}
		out := s.Answer(q, c.RemoteAddr(), false)
		if out == nil {
			return
		}
		if _, err := c.Write(binary.BigEndian.AppendUint16(nil, uint16(len(out)))); err != nil {
			return
		}
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

// forward relays the query to each upstream in turn and returns the
// first reply with the query's id (nil if none answers). Over UDP the
// reply is the upstream's own, whose size the client's EDNS already bounds.
func (s *Server) forward(q []byte, id uint16, udp bool) []byte {
	for _, up := range s.Upstream {
		out, err := exchange(q, up, udp, s.Timeout)
		if err != nil {
			s.Logf("dns: upstream %s: %v", up, err)
			continue
		}
		if len(out) < 2 || binary.BigEndian.Uint16(out) != id {
			s.Logf("dns: upstream %s: a reply to another query", up)
			continue
		}
		return out
	}
	return nil
}

func exchange(q []byte, up string, udp bool, timeout time.Duration) ([]byte, error) {
	proto := "udp"
	if !udp {
		proto = "tcp"
	}
	c, err := net.DialTimeout(proto, up, timeout)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if udp {
		// A connected UDP socket takes datagrams from up alone.
		if _, err := c.Write(q); err != nil {
			return nil, err
		}
		buf := make([]byte, maxUDP)
		n, err := c.Read(buf)
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
	if _, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(q))), q...)); err != nil {
		return nil, err
	}
	var n uint16
	if err := binary.Read(c, binary.BigEndian, &n); err != nil {
		return nil, err
	}
	out := make([]byte, n)
	if _, err := io.ReadFull(c, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Listen opens UDP and TCP port 53 on addr. IP_FREEBIND lets it bind the
// gateway's address before the bridge carries it (the first container's
// start makes the bridge after the server is up, so that its command never
// runs before its names are served).
func Listen(addr string) (net.PacketConn, net.Listener, error) {
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_FREEBIND, 1)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	hp := net.JoinHostPort(addr, "53")
	pc, err := lc.ListenPacket(context.Background(), "udp4", hp)
	if err != nil {
		return nil, nil, fmt.Errorf("listen on udp %s: %w", hp, err)
	}
	l, err := lc.Listen(context.Background(), "tcp4", hp)
	if err != nil {
		pc.Close()
		return nil, nil, fmt.Errorf("listen on tcp %s: %w", hp, err)
	}
	return pc, l, nil
}

// HostUpstream are the nameservers of a resolv.conf, as ip:53 (the
// server runs in the host's namespace, so a resolver on the host's
// loopback, systemd-resolved's 127.0.0.53, is reachable and kept). A
// host without a resolv.conf has no resolvers (glibc then asks 127.0.0.1,
// where, on such a host, nobody answers): no upstream, so the network's
// own names are still answered and others get SERVFAIL.
func HostUpstream(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" {
			if ip := net.ParseIP(f[1]); ip != nil {
				out = append(out, net.JoinHostPort(ip.String(), "53"))
			}
		}
	}
	return out, nil
}

// LogTo returns a Logf that writes its lines to f until f holds limit bytes,
// then one line saying so, then nothing. The log lives under /run, in
// memory, and what it says (an upstream that does not answer, queries
// dropped) is for a container's queries to multiply.
func LogTo(f *os.File, limit int64) func(format string, args ...any) {
	var mu sync.Mutex
	size := int64(0)
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		size = fi.Size()
	}
	return func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if size >= limit {
			return
		}
		line := fmt.Sprintf(format+"\n", args...)
		if size+int64(len(line)) > limit {
			line = fmt.Sprintf("dns: the log holds %d bytes: nothing more is written\n", limit)
			size = limit
		} else {
			size += int64(len(line))
		}
		_, _ = f.WriteString(line)
	}
}
