//go:build linux

// Package netdns is the embedded name server of a user-defined network, as
// Docker's 127.0.0.11 and podman's aardvark-dns are: one small process per
// network (`berth internal dns NETWORK`), in the host's namespace, on the
// network's gateway address, port 53, UDP and TCP. It answers the names and
// aliases of the containers on that network, and only to clients on it;
// every other name goes to the host's upstream servers, the bytes relayed
// as they are (none for an internal network: Server.Upstream empty, every
// other name gets SERVFAIL).
//
// Messages are parsed and built with golang.org/x/net/dns/dnsmessage: a
// bounds-checked parser and builder already among berth's dependencies
// (golang.org/x/net), with no server loop or client of its own, which is
// what a resolver this small wants (miekg/dns would bring both, and its
// own). Every message is hostile input: sizes are bounded (512 bytes of
// answer over UDP unless EDNS asks for more, 64 KiB over TCP), anything but
// one standard query is answered with an error code, and a bad message
// never ends the process.
package netdns

import (
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// Names is the source of the answers: each name (lower case, no trailing
// dot) of a container on the network, with its addresses. It is called for
// each question and may cache.
type Names func() map[string][]net.IP

// Server answers on one network.
type Server struct {
	// Subnet: only clients whose source address is in it learn the names
	// (a query that reaches the gateway from another network is refused).
	Subnet *net.IPNet
	Names  Names
	// Upstream are the servers other names go to, as ip:port.
	Upstream []string
	// Timeout bounds one upstream exchange, and a TCP client's silence.
	Timeout time.Duration
	Logf    func(format string, args ...any)

	tcpSlots chan struct{}
	// udpSlots bound the UDP queries in flight: each one waiting on an
	// upstream holds a goroutine and a socket, and a container can send
	// datagrams faster than an upstream answers. Beyond the bound a
	// query is dropped (the client asks again), as a busy server does.
	udpSlots chan struct{}
	udpLimit int // 0: maxUDPInFlight (the tests set a smaller one)
	dropped  atomic.Int64
	once     sync.Once
}

const (
	maxUDP     = 4096  // the largest UDP message read or relayed
	plainUDP   = 512   // the largest UDP answer without EDNS (RFC 1035)
	maxTCP     = 65535 // a TCP message's length is 16 bits
	maxTCPConn = 64    // TCP clients served at once
	// UDP queries answered at once: 256 upstream exchanges of 2 seconds
	// at most is over a hundred queries a second, far more than a
	// network of containers asks.
	maxUDPInFlight = 256
	ttl            = 0 // containers come and go: no caching of their names
)

func (s *Server) init() {
	s.once.Do(func() {
		s.tcpSlots = make(chan struct{}, maxTCPConn)
		if s.udpLimit == 0 {
			s.udpLimit = maxUDPInFlight
		}
		s.udpSlots = make(chan struct{}, s.udpLimit)
		if s.Timeout == 0 {
			s.Timeout = 2 * time.Second
		}
		if s.Logf == nil {
			s.Logf = func(string, ...any) {}
		}
	})
}

// ServeUDP answers datagrams on pc until it is closed.
func (s *Server) ServeUDP(pc net.PacketConn) error {
	s.init()
	buf := make([]byte, maxUDP)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		select {
		case s.udpSlots <- struct{}{}:
		default:
			if d := s.dropped.Add(1); d == 1 || d%10000 == 0 {
				s.Logf("dns: %d queries in flight: dropping (%d so far)", s.udpLimit, d)
			}
			continue
		}
		q := append([]byte(nil), buf[:n]...)
		go func() {
			defer func() { <-s.udpSlots }()
			if out := s.Answer(q, from, true); out != nil {
				_, _ = pc.WriteTo(out, from)
			}
		}()
	}
}

// Answer is the reply to one query from a client (nil: none, the query
// could not even be read). udp bounds the reply's size.
func (s *Server) Answer(q []byte, from net.Addr, udp bool) []byte {
	s.init()
	var p dnsmessage.Parser
	h, err := p.Start(q)
	if err != nil {
		return nil // not even a header: no id to answer to
	}
	if h.Response {
		return nil // never answer an answer (a loop between two servers)
	}
	reply := func(rcode dnsmessage.RCode, qs []dnsmessage.Question, answers []net.IP) []byte {
		return build(h, rcode, qs, answers, udp, ednsSize(&p))
	}
	if !s.local(from) {
		return reply(dnsmessage.RCodeRefused, nil, nil)
	}
	if h.OpCode != 0 {
		return reply(dnsmessage.RCodeNotImplemented, nil, nil)
	}
	qs, err := p.AllQuestions()
	if err != nil || len(qs) != 1 {
		return reply(dnsmessage.RCodeFormatError, nil, nil)
	}
	question := qs[0]
	name := strings.ToLower(strings.TrimSuffix(question.Name.String(), "."))
	if ips, ok := s.Names()[name]; ok && question.Class == dnsmessage.ClassINET {
		var answers []net.IP
		for _, ip := range ips {
			if question.Type == dnsmessage.TypeA && ip.To4() != nil ||
				question.Type == dnsmessage.TypeAAAA && ip.To4() == nil {
				answers = append(answers, ip)
			}
		}
		// A name of the network with no record of the type asked:
		// NOERROR and no answer (NODATA), never NXDOMAIN, which would
		// tell the resolver the name has no record of any type.
		return reply(dnsmessage.RCodeSuccess, qs, answers)
	}
	if out := s.forward(q, h.ID, udp); out != nil {
		return out
	}
	return reply(dnsmessage.RCodeServerFailure, qs, nil)
}

// local: the client is on the network.
func (s *Server) local(from net.Addr) bool {
	var ip net.IP
	switch a := from.(type) {
	case *net.UDPAddr:
		ip = a.IP
	case *net.TCPAddr:
		ip = a.IP
	}
	return ip != nil && s.Subnet != nil && s.Subnet.Contains(ip)
}

// ednsSize is the UDP size the query's OPT record allows (0: none).
func ednsSize(p *dnsmessage.Parser) int {
	if err := p.SkipAllAnswers(); err != nil {
		return 0
	}
	if err := p.SkipAllAuthorities(); err != nil {
		return 0
	}
	for {
		rh, err := p.AdditionalHeader()
		if err != nil {
			return 0
		}
		if rh.Type == dnsmessage.TypeOPT {
			return int(rh.Class) // an OPT record's class is its UDP size
		}
		if err := p.SkipAdditional(); err != nil {
			return 0
		}
	}
}

// build writes a reply. Over UDP the answers are cut to what fits (512
// bytes, or the EDNS size up to maxUDP) and the TC bit set, so that the
// client asks again over TCP.
func build(h dnsmessage.Header, rcode dnsmessage.RCode, qs []dnsmessage.Question, answers []net.IP, udp bool, edns int) []byte {
	limit := maxTCP
	if udp {
		limit = plainUDP
		if edns > plainUDP {
			limit = min(edns, maxUDP)
		}
	}
	for n := len(answers); ; n = n / 2 {
		out := buildN(h, rcode, qs, answers[:n], n < len(answers))
		if len(out) <= limit || n == 0 {
			return out
		}
	}
}

func buildN(h dnsmessage.Header, rcode dnsmessage.RCode, qs []dnsmessage.Question, answers []net.IP, truncated bool) []byte {
	rh := dnsmessage.Header{ID: h.ID, Response: true, OpCode: h.OpCode, RecursionDesired: h.RecursionDesired,
		RecursionAvailable: true, Authoritative: len(qs) == 1 && rcode == dnsmessage.RCodeSuccess, RCode: rcode, Truncated: truncated}
	b := dnsmessage.NewBuilder(make([]byte, 0, 512), rh)
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil
	}
	for _, q := range qs {
		if err := b.Question(q); err != nil {
			return nil
		}
	}
	if err := b.StartAnswers(); err != nil {
		return nil
	}
	for _, ip := range answers {
		hdr := dnsmessage.ResourceHeader{Name: qs[0].Name, Class: dnsmessage.ClassINET, TTL: ttl}
		var err error
		if v4 := ip.To4(); v4 != nil {
			err = b.AResource(hdr, dnsmessage.AResource{A: [4]byte(v4)})
		} else {
			err = b.AAAAResource(hdr, dnsmessage.AAAAResource{AAAA: [16]byte(ip.To16())})
		}
		if err != nil {
			return nil
		}
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
}
