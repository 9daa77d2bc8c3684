//go:build linux

package network

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// A Port publishes a container port on the host: traffic to
// HostIP:HostPort (any local address when HostIP is empty) goes to the
// container's address on CtrPort.
type Port struct {
	HostIP   string `json:"hostIP,omitempty"`
	HostPort uint16 `json:"hostPort"`
	CtrPort  uint16 `json:"containerPort"`
	Proto    string `json:"proto"` // tcp or udp
}

func (p Port) String() string {
	host := p.HostIP
	if host == "" {
		host = "0.0.0.0"
	}
	return fmt.Sprintf("%s:%d->%d/%s", host, p.HostPort, p.CtrPort, p.Proto)
}

const portUsage = "want [HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|udp], for example -p 8080:80 or -p 127.0.0.1:8080:80"

// ParsePort reads one -p value, as docker run takes it (without ranges).
func ParsePort(s string) (Port, error) {
	bad := func(format string, args ...any) (Port, error) {
		return Port{}, fmt.Errorf("invalid -p %q: %s", s, fmt.Sprintf(format, args...))
	}
	spec, proto, hasProto := strings.Cut(s, "/")
	p := Port{Proto: "tcp"}
	if hasProto {
		if proto != "tcp" && proto != "udp" {
			return bad("protocol %q: use tcp or udp", proto)
		}
		p.Proto = proto
	}
	parts := strings.Split(spec, ":")
	switch len(parts) {
	case 2:
	case 3:
		ip := net.ParseIP(parts[0])
		if ip == nil || ip.To4() == nil {
			return bad("host address %q is not an IPv4 address", parts[0])
		}
		if !ip.IsUnspecified() {
			p.HostIP = ip.To4().String()
		}
		parts = parts[1:]
	default:
		return bad(portUsage)
	}
	host, err := parsePortNumber(parts[0])
	if err != nil {
		return bad("host port: %v", err)
	}
	ctr, err := parsePortNumber(parts[1])
	if err != nil {
		return bad("container port: %v", err)
	}
	p.HostPort, p.CtrPort = host, ctr
	return p, nil
}

func parsePortNumber(s string) (uint16, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number (%s)", s, portUsage)
	}
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("%d is out of range 1-65535", n)
	}
	return uint16(n), nil
}

// ParsePorts reads every -p value and refuses the same host port twice.
func ParsePorts(values []string) ([]Port, error) {
	var ports []Port
	for _, v := range values {
		p, err := ParsePort(v)
		if err != nil {
			return nil, err
		}
		for _, q := range ports {
			if q.HostPort == p.HostPort && q.Proto == p.Proto && (q.HostIP == "" || p.HostIP == "" || q.HostIP == p.HostIP) {
				return nil, fmt.Errorf("invalid -p %q: host port %d/%s is published twice", v, p.HostPort, p.Proto)
			}
		}
		ports = append(ports, p)
	}
	return ports, nil
}

// reserve binds the host port, without listening, and keeps the socket
// open for as long as the container runs. The DNAT rule steers packets
// before they would reach it; the socket is there so that the kernel
// refuses the port to anyone else (a host program, another container), and
// so that a port already taken is found now, with a clear message, rather
// than as a rule that silently steals another program's traffic. The kernel
// closes it when the runtime dies, however it dies (or, for a detached
// container of stage 09, when its monitor does: see Step.Held).
func reserve(p Port) (*os.File, error) {
	typ := unix.SOCK_STREAM
	if p.Proto == "udp" {
		typ = unix.SOCK_DGRAM
	}
	fd, err := unix.Socket(unix.AF_INET, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket for port %s: %w", p, err)
	}
	sa := &unix.SockaddrInet4{Port: int(p.HostPort)}
	if p.HostIP != "" {
		copy(sa.Addr[:], net.ParseIP(p.HostIP).To4())
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		host := p.HostIP
		if host == "" {
			host = "0.0.0.0"
		}
		switch {
		case errors.Is(err, unix.EADDRINUSE):
			return nil, fmt.Errorf("host port %s:%d/%s is already in use (by a program or another container): choose another host port in -p", host, p.HostPort, p.Proto)
		case errors.Is(err, unix.EADDRNOTAVAIL):
			return nil, fmt.Errorf("host address %s in -p is not an address of this host", host)
		}
		return nil, fmt.Errorf("bind %s:%d/%s: %w", host, p.HostPort, p.Proto, err)
	}
	return os.NewFile(uintptr(fd), "port "+p.String()), nil
}
