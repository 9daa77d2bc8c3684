//go:build linux

package specgen

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"berth/04-net/network"
)

// publish reads every form of -p that docker run takes for IPv4 —
// CTR, HOST:CTR, IP:HOST:CTR, IP::CTR, ranges (8000-8010:8000-8010,
// or a container range alone), /udp — and -P (every port the image
// EXPOSEs), into stage 04's ports, each with its host port decided: a
// port given, or one the kernel says is free now. Stage 04 then
// reserves each (a bound socket the monitor holds) and DNATs it.
//
// A free port is chosen here, when the container is created, and stays
// the container's across restarts (Docker picks again at each start):
// `port` and `ps` read it from the record. Between create and start
// another program may take it; the start then fails in one line.
func publish(values []string, all bool, exposed []string) ([]network.Port, error) {
	var specs []string // [IP:]HOST:CTR/PROTO, HOST possibly 0
	for _, v := range values {
		got, err := expand(v)
		if err != nil {
			return nil, err
		}
		specs = append(specs, got...)
	}
	if all {
		given := map[string]bool{}
		for _, s := range specs {
			given[ctrOf(s)] = true
		}
		sorted := append([]string(nil), exposed...)
		sort.Strings(sorted)
		for _, e := range sorted {
			port, proto, _ := strings.Cut(e, "/")
			if proto == "" {
				proto = "tcp"
			}
			if proto != "tcp" && proto != "udp" {
				continue // sctp: berth's stage 04 publishes tcp and udp
			}
			if !given[port+"/"+proto] {
				specs = append(specs, "0:"+port+"/"+proto)
			}
		}
	}
	taken := map[string]bool{}
	for i, s := range specs {
		rest, proto, _ := strings.Cut(s, "/")
		parts := strings.Split(rest, ":")
		if parts[len(parts)-2] != "0" {
			continue
		}
		ip := ""
		if len(parts) == 3 {
			ip = parts[0]
		}
		n, err := freePort(ip, proto, taken)
		if err != nil {
			return nil, fmt.Errorf("-p %s: no free host port: %w", s, err)
		}
		parts[len(parts)-2] = strconv.Itoa(n)
		specs[i] = strings.Join(parts, ":") + "/" + proto
	}
	return network.ParsePorts(specs)
}

func ctrOf(spec string) string {
	rest, proto, _ := strings.Cut(spec, "/")
	parts := strings.Split(rest, ":")
	return parts[len(parts)-1] + "/" + proto
}

// expand turns one -p into one [IP:]HOST:CTR/PROTO per port, HOST 0 where
// the host port is to be chosen.
func expand(v string) ([]string, error) {
	bad := func(format string, args ...any) ([]string, error) {
		return nil, fmt.Errorf("invalid -p %q: %s", v, fmt.Sprintf(format, args...))
	}
	spec, proto, hasProto := strings.Cut(v, "/")
	if !hasProto {
		proto = "tcp"
	}
	if proto != "tcp" && proto != "udp" {
		return bad("protocol %q: use tcp or udp", proto)
	}
	parts := strings.Split(spec, ":")
	ip, host, ctr := "", "", ""
	switch len(parts) {
	case 1:
		ctr = parts[0]
	case 2:
		host, ctr = parts[0], parts[1]
	case 3:
		ip, host, ctr = parts[0], parts[1], parts[2]
		if a := net.ParseIP(ip); a == nil || a.To4() == nil {
			return bad("host address %q is not an IPv4 address", ip)
		}
	default:
		return bad("want [[HOSTIP:]HOSTPORT:]CONTAINERPORT[/tcp|udp], with ranges as 8000-8010:8000-8010")
	}
	cLo, cHi, err := portRange(ctr)
	if err != nil {
		return bad("container port: %v", err)
	}
	hLo, hHi := 0, 0
	if host != "" {
		if hLo, hHi, err = portRange(host); err != nil {
			return bad("host port: %v", err)
		}
		if hHi-hLo != cHi-cLo {
			return bad("the host range %s and the container range %s differ in length", host, ctr)
		}
	}
	var out []string
	for i := 0; i <= cHi-cLo; i++ {
		h := 0
		if host != "" {
			h = hLo + i
		}
		s := strconv.Itoa(h) + ":" + strconv.Itoa(cLo+i) + "/" + proto
		if ip != "" {
			s = ip + ":" + s
		}
		out = append(out, s)
	}
	return out, nil
}

// maxRange bounds one -p range: each port is a socket the container's
// monitor holds (engine/launch.go refuses more than it can pass on).
const maxRange = 100

func portRange(s string) (lo, hi int, err error) {
	a, b, isRange := strings.Cut(s, "-")
	if lo, err = portNumber(a); err != nil {
		return 0, 0, err
	}
	hi = lo
	if isRange {
		if hi, err = portNumber(b); err != nil {
			return 0, 0, err
		}
		if hi < lo {
			return 0, 0, fmt.Errorf("range %s ends before it starts", s)
		}
		if hi-lo >= maxRange {
			return 0, 0, fmt.Errorf("range %s has %d ports: at most %d in one -p", s, hi-lo+1, maxRange)
		}
	}
	return lo, hi, nil
}

func portNumber(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%q is not a port number (1-65535)", s)
	}
	return n, nil
}

// freePort asks the kernel for a free port (bind to port 0 takes one of
// net.ipv4.ip_local_port_range, as Docker's allocator picks from the same
// range) and lets it go again.
func freePort(ip, proto string, taken map[string]bool) (int, error) {
	typ := unix.SOCK_STREAM
	if proto == "udp" {
		typ = unix.SOCK_DGRAM
	}
	for tries := 0; tries < 20; tries++ {
		fd, err := unix.Socket(unix.AF_INET, typ|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return 0, fmt.Errorf("socket: %w", err)
		}
		sa := &unix.SockaddrInet4{}
		if ip != "" {
			copy(sa.Addr[:], net.ParseIP(ip).To4())
		}
		err = unix.Bind(fd, sa)
		var got unix.Sockaddr
		if err == nil {
			got, err = unix.Getsockname(fd)
		}
		unix.Close(fd)
		if err != nil {
			return 0, fmt.Errorf("bind %s:0/%s: %w", ip, proto, err)
		}
		n := got.(*unix.SockaddrInet4).Port
		if key := strconv.Itoa(n) + "/" + proto; !taken[key] {
			taken[key] = true
			return n, nil
		}
	}
	return 0, fmt.Errorf("the kernel gave taken ports 20 times")
}
