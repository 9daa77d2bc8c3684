//go:build linux

package netdns

import (
	"crypto/rand"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/dns/dnsmessage"
)

func testServer() *Server {
	_, sn, _ := net.ParseCIDR("10.93.0.0/24")
	many := make([]net.IP, 200)
	for i := range many {
		many[i] = net.IPv4(10, 93, 0, byte(i+2))
	}
	return &Server{Subnet: sn, Names: func() map[string][]net.IP {
		return map[string][]net.IP{"web": {net.IPv4(10, 93, 0, 3)}, "many": many}
	}}
}

func query(t *testing.T, name string, typ dnsmessage.Type) []byte {
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: 4242, RecursionDesired: true})
	require.NoError(t, b.StartQuestions())
	require.NoError(t, b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(name), Type: typ, Class: dnsmessage.ClassINET}))
	out, err := b.Finish()
	require.NoError(t, err)
	return out
}

var local = &net.UDPAddr{IP: net.IPv4(10, 93, 0, 2), Port: 5353}

func answer(t *testing.T, s *Server, q []byte, from net.Addr, udp bool) dnsmessage.Message {
	t.Helper()
	out := s.Answer(q, from, udp)
	require.NotNil(t, out)
	var m dnsmessage.Message
	require.NoError(t, m.Unpack(out))
	assert.Equal(t, uint16(4242), m.ID)
	assert.True(t, m.Response)
	return m
}

func TestAnswers(t *testing.T) {
	s := testServer()
	m := answer(t, s, query(t, "Web.", dnsmessage.TypeA), local, true)
	assert.Equal(t, dnsmessage.RCodeSuccess, m.RCode)
	require.Len(t, m.Answers, 1)
	assert.Equal(t, [4]byte{10, 93, 0, 3}, m.Answers[0].Body.(*dnsmessage.AResource).A)

	m = answer(t, s, query(t, "web.", dnsmessage.TypeAAAA), local, true)
	assert.Equal(t, dnsmessage.RCodeSuccess, m.RCode, "a name of the network without IPv6: NODATA, not NXDOMAIN")
	assert.Empty(t, m.Answers)

	// No upstream answers: SERVFAIL, never a made-up NXDOMAIN.
	m = answer(t, s, query(t, "elsewhere.test.", dnsmessage.TypeA), local, true)
	assert.Equal(t, dnsmessage.RCodeServerFailure, m.RCode)

	// From outside the network: refused, the names not told.
	m = answer(t, s, query(t, "web.", dnsmessage.TypeA), &net.UDPAddr{IP: net.IPv4(10, 94, 0, 2), Port: 53}, true)
	assert.Equal(t, dnsmessage.RCodeRefused, m.RCode)
	assert.Empty(t, m.Answers)
}

func TestTruncated(t *testing.T) {
	s := testServer()
	out := s.Answer(query(t, "many.", dnsmessage.TypeA), local, true)
	assert.LessOrEqual(t, len(out), 512, "a UDP answer without EDNS fits in 512 bytes")
	var m dnsmessage.Message
	require.NoError(t, m.Unpack(out))
	assert.True(t, m.Truncated, "TC set: ask again over TCP")
	m = answer(t, s, query(t, "many.", dnsmessage.TypeA), &net.TCPAddr{IP: local.IP, Port: 1}, false)
	assert.Len(t, m.Answers, 200, "over TCP all of them")
}

// Hostile queries: short, garbage, several questions, an answer, a
// pointer loop; none crashes, none gets an answer it should not.
func TestHostile(t *testing.T) {
	s := testServer()
	assert.Nil(t, s.Answer(nil, local, true))
	assert.Nil(t, s.Answer([]byte{1, 2, 3}, local, true))
	two := query(t, "web.", dnsmessage.TypeA)
	two[5] = 2 // QDCOUNT 2, one question there
	m := answer(t, s, two, local, true)
	assert.Equal(t, dnsmessage.RCodeFormatError, m.RCode)
	resp := query(t, "web.", dnsmessage.TypeA)
	resp[2] |= 0x80 // QR: an answer
	assert.Nil(t, s.Answer(resp, local, true), "an answer is never answered")
	// A name that is a compression pointer to itself.
	loop := append(query(t, "web.", dnsmessage.TypeA)[:12], 0xc0, 12, 0, 1, 0, 1)
	m = answer(t, s, loop, local, true)
	assert.Equal(t, dnsmessage.RCodeFormatError, m.RCode)
	for i := 0; i < 2000; i++ {
		b := make([]byte, 12+i%600)
		_, _ = rand.Read(b)
		b[0], b[1] = 0x10, 0x92 // id 4242
		b[2] &^= 0x80
		_ = s.Answer(b, local, true)
	}
}

// A host without /etc/resolv.conf (the VM's guest has none) has no
// resolvers: the name server starts with no upstream rather than fail,
// and still answers its network's names.
func TestHostUpstreamWithoutResolvConf(t *testing.T) {
	up, err := HostUpstream(filepath.Join(t.TempDir(), "resolv.conf"))
	if err != nil || len(up) != 0 {
		t.Fatalf("HostUpstream of a missing file = %v, %v; want none, nil", up, err)
	}
}

// A client that sends faster than the upstream answers holds at most
// udpLimit queries in flight (each a goroutine and a socket); the rest
// are dropped, not queued.
func TestInFlightBounded(t *testing.T) {
	up, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer up.Close()
	var asked atomic.Int32
	go func() { // an upstream that never answers
		buf := make([]byte, 1500)
		for {
			if _, _, err := up.ReadFrom(buf); err != nil {
				return
			}
			asked.Add(1)
		}
	}()
	_, lo, _ := net.ParseCIDR("127.0.0.0/8")
	s := &Server{Subnet: lo, Names: func() map[string][]net.IP { return nil },
		Upstream: []string{up.LocalAddr().String()}, Timeout: 10 * time.Second, udpLimit: 4}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	go func() { _ = s.ServeUDP(pc) }()

	c, err := net.Dial("udp4", pc.LocalAddr().String())
	require.NoError(t, err)
	defer c.Close()
	for i := 0; i < 10; i++ {
		_, err := c.Write(query(t, "elsewhere.test.", dnsmessage.TypeA))
		require.NoError(t, err)
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if s.dropped.Load() == 6 && asked.Load() == 4 {
			break
		}
	}
	assert.Equal(t, int64(6), s.dropped.Load(), "queries dropped beyond the bound")
	assert.Equal(t, int32(4), asked.Load(), "queries in flight upstream")
}

// The log stops at its bound, and says so once.
func TestLogCapped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dns.log")
	require.NoError(t, os.WriteFile(path, []byte("an earlier server's line\n"), 0o600))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	defer f.Close()
	logf := LogTo(f, 1000)
	for i := 0; i < 100; i++ {
		logf("dns: upstream 192.0.2.53:53: read udp: i/o timeout (%d)", i)
	}
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.LessOrEqual(t, len(b), 1000+60)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	assert.Equal(t, "an earlier server's line", lines[0])
	assert.Equal(t, "dns: the log holds 1000 bytes: nothing more is written", lines[len(lines)-1])
}
