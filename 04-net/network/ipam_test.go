//go:build linux

package network

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func pool(t *testing.T, cidr string, alive func(string) bool) *IPAM {
	t.Helper()
	subnet, err := ParseSubnet(cidr)
	require.NoError(t, err)
	return &IPAM{Dir: t.TempDir(), Subnet: subnet, Alive: alive}
}

func everyoneAlive(string) bool { return true }

func TestIPAMHandsOutAddressesInOrder(t *testing.T) {
	p := pool(t, "10.88.0.0/16", everyoneAlive)
	for i, want := range []string{"10.88.0.2", "10.88.0.3", "10.88.0.4"} {
		ip, err := p.Allocate("c" + strconv.Itoa(i))
		require.NoError(t, err)
		assert.Equal(t, want, ip.String())
	}
	// A released address is not handed out again at once: the search
	// goes on after the last one.
	require.NoError(t, p.Release("c0"))
	ip, err := p.Allocate("c3")
	require.NoError(t, err)
	assert.Equal(t, "10.88.0.5", ip.String())
	leases, err := p.Leases()
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"10.88.0.3": "c1", "10.88.0.4": "c2", "10.88.0.5": "c3"}, leases)
}

func TestIPAMExhaustedAndWrapsAround(t *testing.T) {
	// /29: .0 network, .1 gateway, .7 broadcast: .2 to .6 for containers.
	p := pool(t, "192.168.77.0/29", everyoneAlive)
	for i := 0; i < 5; i++ {
		_, err := p.Allocate("c" + strconv.Itoa(i))
		require.NoError(t, err)
	}
	_, err := p.Allocate("c5")
	require.ErrorIs(t, err, ErrExhausted)
	assert.Contains(t, err.Error(), "no free address in 192.168.77.0/29: all 5 addresses are leased")

	require.NoError(t, p.Release("c1"))
	ip, err := p.Allocate("c5")
	require.NoError(t, err)
	assert.Equal(t, "192.168.77.3", ip.String(), "wraps around to the freed address")
}

func TestIPAMSlash30HasOneAddress(t *testing.T) {
	p := pool(t, "10.99.0.0/30", everyoneAlive)
	ip, err := p.Allocate("a")
	require.NoError(t, err)
	assert.Equal(t, "10.99.0.2", ip.String())
	_, err = p.Allocate("b")
	require.ErrorIs(t, err, ErrExhausted)
}

func TestIPAMReclaimsLeasesOfDeadHolders(t *testing.T) {
	dead := map[string]bool{}
	p := pool(t, "10.88.0.0/30", func(id string) bool { return !dead[id] })
	_, err := p.Allocate("killed")
	require.NoError(t, err)
	_, err = p.Allocate("next")
	require.ErrorIs(t, err, ErrExhausted)

	dead["killed"] = true
	ip, err := p.Allocate("next")
	require.NoError(t, err, "the dead holder's lease is taken back")
	assert.Equal(t, "10.88.0.2", ip.String())
}

func TestIPAMSameIDGetsOneLease(t *testing.T) {
	p := pool(t, "10.88.0.0/16", everyoneAlive)
	_, err := p.Allocate("x")
	require.NoError(t, err)
	_, err = p.Allocate("x")
	require.NoError(t, err)
	leases, err := p.Leases()
	require.NoError(t, err)
	assert.Len(t, leases, 1)
}

func TestIPAMReleaseIsIdempotentAndLeavesNoFile(t *testing.T) {
	p := pool(t, "10.88.0.0/16", everyoneAlive)
	require.NoError(t, p.Release("nobody"))
	_, err := p.Allocate("x")
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(p.Dir, "leases-10.88.0.0-16.json"))
	require.NoError(t, err)
	require.NoError(t, p.Release("x"))
	require.NoError(t, p.Release("x"))
	_, err = os.Stat(filepath.Join(p.Dir, "leases-10.88.0.0-16.json"))
	assert.ErrorIs(t, err, os.ErrNotExist, "no lease, no file")
}

// Many allocators at once (goroutines here; processes behave the same,
// since flock belongs to each open file) never get the same address.
func TestIPAMConcurrentAllocationsAreDistinct(t *testing.T) {
	p := pool(t, "10.88.0.0/16", everyoneAlive)
	const n = 50
	ips := make([]net.IP, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			q := *p // a separate IPAM value, as another process would have
			ips[i], errs[i] = q.Allocate("c" + strconv.Itoa(i))
		}(i)
	}
	wg.Wait()
	seen := map[string]bool{}
	for i := 0; i < n; i++ {
		require.NoError(t, errs[i])
		assert.False(t, seen[ips[i].String()], "address %s handed out twice", ips[i])
		seen[ips[i].String()] = true
	}
	leases, err := p.Leases()
	require.NoError(t, err)
	assert.Len(t, leases, n)
}

func TestParseSubnet(t *testing.T) {
	for in, want := range map[string]string{
		"10.88.0.0/16":   "",
		"192.168.5.0/24": "",
		"10.99.0.0/30":   "",
		"10.88.0.1/16":   "host bits are set; did you mean 10.88.0.0/16?",
		"10.88.0.0/31":   "between /8 and /30",
		"10.0.0.0/7":     "between /8 and /30",
		"fd00::/64":      "want an IPv4 network",
		"banana":         "want an IPv4 network",
		"127.0.0.0/8":    "not a usable private network",
	} {
		t.Run(in, func(t *testing.T) {
			n, err := ParseSubnet(in)
			if want == "" {
				require.NoError(t, err)
				assert.Equal(t, in, n.String())
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), want)
		})
	}
	n, _ := ParseSubnet("10.88.0.0/16")
	assert.Equal(t, "10.88.0.1", Gateway(n).String())
	first, last := hostRange(n)
	assert.Equal(t, "10.88.0.2", first.String())
	assert.Equal(t, "10.88.255.254", last.String())
}

// An --ip-range with no container address in it (a /32 on the network's
// own address, below the first container address) gives none, and never
// one outside the range or the subnet.
func TestIPAMRangeWithoutHostAddress(t *testing.T) {
	p := pool(t, "10.97.0.0/24", everyoneAlive)
	for _, r := range []string{"10.97.0.0/32", "10.97.0.1/32", "10.97.0.255/32", "10.97.0.0/31"} {
		_, p.Range, _ = net.ParseCIDR(r)
		assert.False(t, RangeHasHosts(p.Subnet, p.Range), r)
		ip, err := p.Allocate("c")
		assert.ErrorIs(t, err, ErrExhausted, "--ip-range %s handed out %s", r, ip)
	}
	_, p.Range, _ = net.ParseCIDR("10.97.0.0/30")
	assert.True(t, RangeHasHosts(p.Subnet, p.Range))
	ip, err := p.Allocate("c")
	require.NoError(t, err)
	assert.Equal(t, "10.97.0.2", ip.String())
	ip, err = p.Allocate("d")
	require.NoError(t, err)
	assert.Equal(t, "10.97.0.3", ip.String())
	_, err = p.Allocate("e")
	assert.ErrorIs(t, err, ErrExhausted)
}
