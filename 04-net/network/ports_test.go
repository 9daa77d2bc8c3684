//go:build linux

package network

import (
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/01-uts/spine"
)

func TestParsePort(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Port
		err  string
	}{
		{in: "8080:80", want: Port{HostPort: 8080, CtrPort: 80, Proto: "tcp"}},
		{in: "127.0.0.1:8080:80", want: Port{HostIP: "127.0.0.1", HostPort: 8080, CtrPort: 80, Proto: "tcp"}},
		{in: "0.0.0.0:53:53/udp", want: Port{HostPort: 53, CtrPort: 53, Proto: "udp"}},
		{in: "1:65535/tcp", want: Port{HostPort: 1, CtrPort: 65535, Proto: "tcp"}},
		{in: "abc", err: `invalid -p "abc": want [HOSTIP:]HOSTPORT:CONTAINERPORT`},
		{in: "80", err: "want [HOSTIP:]HOSTPORT:CONTAINERPORT"},
		{in: "abc:80", err: `host port: "abc" is not a number`},
		{in: "0:80", err: "host port: 0 is out of range 1-65535"},
		{in: "70000:80", err: "host port: 70000 is out of range 1-65535"},
		{in: "8080:0", err: "container port: 0 is out of range"},
		{in: "8080:80/sctp", err: `protocol "sctp": use tcp or udp`},
		{in: "::1:8080:80", err: "want [HOSTIP:]HOSTPORT"},
		{in: "localhost:8080:80", err: `host address "localhost" is not an IPv4 address`},
		{in: "1.2.3.4:5:6:7", err: "want [HOSTIP:]HOSTPORT"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParsePort(tc.in)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestParsePortsRefusesTheSameHostPortTwice(t *testing.T) {
	_, err := ParsePorts([]string{"8080:80", "127.0.0.1:8080:81"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "published twice")

	ports, err := ParsePorts([]string{"8080:80", "8080:80/udp", "127.0.0.1:9090:90", "127.0.0.2:9090:90"})
	require.NoError(t, err)
	assert.Len(t, ports, 4)
}

func TestPortComment(t *testing.T) {
	p := Port{HostPort: 8080, CtrPort: 80, Proto: "tcp"}
	assert.Equal(t, "container web: *:8080 -> 10.88.0.2:80/tcp", portComment("web", p, net.IPv4(10, 88, 0, 2)))
	assert.Equal(t, "0.0.0.0:8080->80/tcp", p.String())
}

// A detached container's creator hands the reserved ports on (Held): they
// stay taken until whoever holds them closes them.
func TestHeldPortsOutliveTheStep(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := uint16(l.Addr().(*net.TCPAddr).Port)
	l.Close()

	s := &Step{}
	require.NoError(t, s.reserve(Port{HostIP: "127.0.0.1", HostPort: port, CtrPort: 80, Proto: "tcp"}))
	held := s.Held()
	require.Len(t, held, 1)
	assert.Empty(t, s.Held(), "handed on once")
	require.NoError(t, s.Cleanup(&spine.Container{ID: "x"}), "the step's cleanup no longer owns it")
	_, err = reserve(Port{HostIP: "127.0.0.1", HostPort: port, CtrPort: 80, Proto: "tcp"})
	assert.ErrorContains(t, err, "already in use")
	held[0].Close()
	f, err := reserve(Port{HostIP: "127.0.0.1", HostPort: port, CtrPort: 80, Proto: "tcp"})
	require.NoError(t, err)
	f.Close()
}
