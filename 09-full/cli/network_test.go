//go:build linux

package cli_test

// User-defined networks (issue 15), as a user checks them: their verbs,
// names resolved by the network's name server, isolation between networks,
// an internal network with no way out, and nothing left after network rm.
// Run inside the stand-in host namespace (scripts/standin-host.sh): every
// bridge and table here is named net15*, the fake upstream name server
// listens on the stand-in's 127.0.0.1.

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"golang.org/x/net/dns/dnsmessage"
)

// newNet creates a network whose bridge (and table ip berth-BRIDGE) is
// named bridge, removed at the end of the test.
func (h *host) newNet(name, bridge string, flags ...string) {
	h.t.Helper()
	args := append([]string{"network", "create", "-o", "com.docker.network.bridge.name=" + bridge}, flags...)
	h.ok(append(args, name)...)
	h.t.Cleanup(func() {
		if h.t.Failed() {
			b, _ := os.ReadFile(filepath.Join(h.state, ".network", "dns-"+bridge+".log"))
			h.t.Logf("the name server's log of %s:\n%s", name, b)
		}
		h.cleanup() // the containers first: rm refuses while one runs
		if r := h.run("network", "rm", name); r.Code != 0 && !strings.Contains(r.Stderr, "not found") {
			h.t.Errorf("network rm %s: %s", name, r)
		}
		h.assertNetworkGone(bridge)
	})
}

// assertNetworkGone: no bridge, no table, no lease file, no name server.
func (h *host) assertNetworkGone(bridge string) {
	t := h.t
	t.Helper()
	_, err := netlink.LinkByName(bridge)
	assert.Error(t, err, "bridge %s is left", bridge)
	out, _ := exec.Command("nft", "list", "tables").CombinedOutput()
	assert.NotContains(t, string(out), "berth-"+bridge+"\n", "table ip berth-%s is left", bridge)
	left, _ := filepath.Glob(filepath.Join(h.state, ".network", "*"+bridge+"*"))
	assert.Empty(t, left, "files of %s are left", bridge)
	deadline := time.Now().Add(10 * time.Second)
	for len(dnsServers(h.state)) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	assert.Empty(t, dnsServers(h.state), "a name server is left")
}

// dnsServers are the `berth internal dns` processes of a state root.
func dnsServers(state string) []string {
	var out []string
	for _, p := range processesOf(state) {
		if strings.Contains(p, "internal dns") {
			out = append(out, p)
		}
	}
	return out
}

// fakeUpstream answers upstream.test. with 192.0.2.7 and any other name
// with NXDOMAIN, on 127.0.0.1 (the stand-in host's), and returns its
// address for BERTH_DNS_UPSTREAM.
func fakeUpstream(t *testing.T) string {
	addr, _ := countingUpstream(t)
	return addr
}

// countingUpstream is fakeUpstream that also tells how many queries it
// received.
func countingUpstream(t *testing.T) (string, *atomic.Int32) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { pc.Close() })
	var asked atomic.Int32
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			asked.Add(1)
			var m dnsmessage.Message
			if m.Unpack(buf[:n]) != nil || len(m.Questions) != 1 {
				continue
			}
			m.Response, m.RCode = true, dnsmessage.RCodeNameError
			if q := m.Questions[0]; q.Name.String() == "upstream.test." {
				m.RCode = dnsmessage.RCodeSuccess
			}
			if q := m.Questions[0]; q.Name.String() == "upstream.test." && q.Type == dnsmessage.TypeA {
				m.Answers = []dnsmessage.Resource{{Header: dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60},
					Body: &dnsmessage.AResource{A: [4]byte{192, 0, 2, 7}}}}
			}
			m.Additionals = nil
			if b, err := m.Pack(); err == nil {
				_, _ = pc.WriteTo(b, from)
			}
		}
	}()
	return pc.LocalAddr().String(), &asked
}

func TestNetworkVerbs(t *testing.T) {
	h := newHost(t)
	h.env = append(h.env, "BERTH_DNS_UPSTREAM="+fakeUpstream(t)) // nothing asked of the host's resolvers
	h.newNet("net15v", "net15v", "--subnet", "10.91.0.0/24", "--label", "team=a")
	// Bad input: one line, 125, nothing created.
	for _, tc := range []struct{ args []string }{
		{[]string{"--subnet", "10.91.0.128/25", "over"}},
		{[]string{"--subnet", "10.91.0.0/33", "bad"}},
		{[]string{"--subnet", "10.92.0.0/24", "--gateway", "10.92.0.9", "gw"}},
		{[]string{"--subnet", "10.92.0.0/24", "--ip-range", "10.92.0.0/32", "norange"}},
		{[]string{"net15v"}},
		{[]string{"-d", "overlay", "drv"}},
		{[]string{"bad/name"}},
	} {
		r := h.run(append([]string{"network", "create"}, tc.args...)...)
		assert.Equal(t, 125, r.Code, "%v: %s", tc.args, r)
		assert.Equal(t, 1, strings.Count(r.Stderr, "\n"), "one line: %s", r.Stderr)
	}
	assert.Contains(t, h.run("network", "create", "--subnet", "10.91.0.128/25", "over").Stderr, "overlaps network net15v's 10.91.0.0/24")
	ls := h.ok("network", "ls", "--format", "{{.Name}} {{.Driver}}")
	assert.Equal(t, "bridge bridge\nhost host\nnone null\nnet15v bridge", ls, "the predefined and ours, nothing of the bad ones")
	assert.Equal(t, "10.91.0.0/24 10.91.0.1 a net15v", h.ok("network", "inspect", "-f",
		`{{(index .IPAM.Config 0).Subnet}} {{(index .IPAM.Config 0).Gateway}} {{.Labels.team}} {{index .Options "com.docker.network.bridge.name"}}`, "net15v"))
	_, err := netlink.LinkByName("net15v")
	assert.Error(t, err, "no bridge until a container needs it")

	id := h.runD("--network", "net15v", "--name", "user1", "--ip", "10.91.0.77", "sleep", "1000")
	assert.Equal(t, "10.91.0.77", h.inspect(id, `{{(index .NetworkSettings.Networks "net15v").IPAddress}}`))
	assert.Equal(t, "user1 10.91.0.77/24", h.ok("network", "inspect", "-f", `{{range .Containers}}{{.Name}} {{.IPv4Address}}{{end}}`, "net15v"))
	r := h.run("network", "rm", "net15v")
	assert.Equal(t, 1, r.Code, "%s", r)
	assert.Equal(t, "berth: error while removing network: network net15v has active endpoints (user1)\n", r.Stderr)
	assert.Equal(t, "", h.ok("network", "prune", "-f"), "prune leaves a network in use")
	r = h.run("run", "--rootfs", h.rootf, "--network", "net15v", "--ip", "10.91.0.77", "true")
	assert.Equal(t, 125, r.Code, "an address in use: %s", r)
	assert.Contains(t, r.Stderr, "address 10.91.0.77 is already in use")
	r = h.run("run", "--rootfs", h.rootf, "--network", "nosuch", "true")
	assert.Equal(t, 125, r.Code, "%s", r)
	assert.Equal(t, "berth: network nosuch not found\n", r.Stderr)
	h.ok("rm", "-f", id)
	assert.Equal(t, "Deleted Networks:\nnet15v", h.ok("network", "prune", "-f"))
	assert.Equal(t, 1, h.run("network", "rm", "bridge").Code, "the predefined stay")
}

// Two containers on one network reach each other by name and alias; a
// third on another network can neither resolve nor reach them; other
// names go upstream; a stopped container disappears from the answers.
func TestNetworkNames(t *testing.T) {
	h := newHost(t)
	h.env = append(h.env, "BERTH_DNS_UPSTREAM="+fakeUpstream(t))
	h.newNet("net15a", "net15a", "--subnet", "10.93.0.0/24")
	h.newNet("net15b", "net15b", "--subnet", "10.94.0.0/24")
	h.runD("--network", "net15a", "--name", "alpha", "sleep", "1000")
	h.runD("--network", "net15a", "--name", "beta", "--network-alias", "web", "sleep", "1000")
	h.runD("--network", "net15b", "--name", "gamma", "sleep", "1000")

	assert.Equal(t, "nameserver 10.93.0.1", h.ok("exec", "alpha", "cat", "/etc/resolv.conf"))
	for _, name := range []string{"beta", "web", "BETA"} {
		out := h.ok("exec", "alpha", "nslookup", name)
		assert.Contains(t, out, "Address: 10.93.0.3", name)
	}
	h.ok("exec", "beta", "ping", "-c1", "-W2", "alpha")
	h.ok("exec", "alpha", "ping", "-c1", "-W2", "web")
	assert.Contains(t, h.ok("exec", "alpha", "nslookup", "upstream.test"), "Address: 192.0.2.7", "forwarded upstream")
	r := h.run("exec", "alpha", "nslookup", "nosuch.test")
	assert.Contains(t, r.Stdout+r.Stderr, "NXDOMAIN", "the upstream's NXDOMAIN, relayed")

	// The other network: its server does not know them, and asking
	// net15a's server from there is refused; the address is unreachable.
	r = h.run("exec", "gamma", "nslookup", "beta")
	assert.Contains(t, r.Stdout+r.Stderr, "NXDOMAIN", "%s", r)
	r = h.run("exec", "gamma", "nslookup", "beta", "10.93.0.1")
	assert.Contains(t, r.Stdout+r.Stderr, "REFUSED", "%s", r)
	r = h.run("exec", "gamma", "ping", "-c1", "-W1", "10.93.0.3")
	assert.NotEqual(t, 0, r.Code, "another network is unreachable: %s", r)
	r = h.run("exec", "gamma", "nc", "-w", "1", "10.93.0.2", "80")
	assert.NotEqual(t, 0, r.Code, "%s", r)

	h.ok("stop", "-t", "0", "beta")
	r = h.run("exec", "alpha", "nslookup", "web")
	assert.Contains(t, r.Stdout+r.Stderr, "NXDOMAIN", "a stopped container is gone from the answers: %s", r)
	assert.Len(t, dnsServers(h.state), 2, "one server per network")
}

// An internal network has no way out: a host beyond the stand-in (a
// namespace behind a veth, routed) is reached from a normal network and
// not from an internal one; and its name server, which answers its own
// names, relays nothing to the upstream (a way out through DNS, Docker's
// CVE-2024-29018), which the normal network's does.
func TestNetworkInternal(t *testing.T) {
	h := newHost(t)
	up, asked := countingUpstream(t)
	h.env = append(h.env, "BERTH_DNS_UPSTREAM="+up)
	outside := outsideHost(t)
	h.newNet("net15n", "net15n", "--subnet", "10.95.0.0/24")
	h.newNet("net15i", "net15i", "--subnet", "10.96.0.0/24", "--internal")
	h.runD("--network", "net15n", "--name", "open", "sleep", "1000")
	h.runD("--network", "net15i", "--name", "closed", "sleep", "1000")
	h.ok("exec", "open", "ping", "-c1", "-W2", outside)
	r := h.run("exec", "closed", "ping", "-c1", "-W2", outside)
	assert.NotEqual(t, 0, r.Code, "internal: %s", r)
	nft, _ := exec.Command("nft", "list", "table", "ip", "berth-net15i").CombinedOutput()
	assert.Contains(t, string(nft), `iifname "net15i" oifname != "net15i" drop`)
	assert.NotContains(t, string(nft), "masquerade comment \"berth: outbound NAT")

	assert.Regexp(t, `Address: 10\.96\.0\.\d+`, h.ok("exec", "closed", "nslookup", "closed"), "its own names are answered")
	r = h.run("exec", "closed", "nslookup", "secret-data.upstream.test")
	assert.Contains(t, r.Stdout+r.Stderr, "SERVFAIL", "%s", r)
	assert.Zero(t, asked.Load(), "the internal network's name server asked the upstream")
	assert.Contains(t, h.ok("exec", "open", "nslookup", "upstream.test"), "Address: 192.0.2.7")
	assert.NotZero(t, asked.Load(), "the normal network's name server asks the upstream")
}

// A bridge of the host's own (an admin's, say, which carries the LAN and
// has no address) is never berth's: network create refuses its name, and
// one made under a network's bridge name after the network was created is
// neither taken over by a container nor deleted by network rm.
func TestNetworkForeignBridge(t *testing.T) {
	h := newHost(t)
	h.env = append(h.env, "BERTH_DNS_UPSTREAM="+fakeUpstream(t)) // nothing asked of the host's resolvers
	adminBridge(t, "net15f")
	r := h.run("network", "create", "-o", "com.docker.network.bridge.name=net15f", "foreign")
	assert.Equal(t, 125, r.Code, "%s", r)
	assert.Equal(t, "berth: bridge name net15f is taken: the host has a link of that name, and berth uses only bridges it makes\n", r.Stderr)
	assert.NotContains(t, h.ok("network", "ls", "--format", "{{.Name}}"), "foreign")

	h.ok("network", "create", "--subnet", "10.97.0.0/24", "-o", "com.docker.network.bridge.name=net15g", "late")
	adminBridge(t, "net15g")
	r = h.run("run", "--rm", "--rootfs", h.rootf, "--network", "late", "true")
	assert.NotEqual(t, 0, r.Code, "%s", r)
	assert.Contains(t, r.Stderr, "bridge net15g exists and is not berth's")
	h.ok("network", "rm", "late")
	for _, name := range []string{"net15f", "net15g"} {
		l, err := netlink.LinkByName(name)
		if !assert.NoError(t, err, "berth removed the host's bridge %s", name) {
			continue
		}
		addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
		require.NoError(t, err)
		assert.Empty(t, addrs, "berth gave the host's bridge %s an address", name)
		out, _ := exec.Command("nft", "list", "tables").CombinedOutput()
		assert.NotContains(t, string(out), "berth-"+name+"\n")
	}
}

// adminBridge makes a bridge as an admin would, removed at the end.
func adminBridge(t *testing.T, name string) {
	t.Helper()
	out, err := exec.Command("ip", "link", "add", name, "type", "bridge").CombinedOutput()
	require.NoError(t, err, "%s", out)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", name).Run() })
}

// outsideHost makes a namespace "beyond" the stand-in host: a veth
// net15o0 (192.0.2.1/30) whose peer (192.0.2.2) is in it, with a route
// back. It returns the address to ping.
func outsideHost(t *testing.T) string {
	const ns = "net15out"
	run := func(args ...string) {
		t.Helper()
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		require.NoError(t, err, "%v: %s", args, out)
	}
	run("ip", "netns", "add", ns)
	t.Cleanup(func() {
		_ = exec.Command("ip", "link", "del", "net15o0").Run()
		_ = exec.Command("ip", "netns", "del", ns).Run()
	})
	run("ip", "link", "add", "net15o0", "type", "veth", "peer", "name", "net15o1", "netns", ns)
	run("ip", "addr", "add", "192.0.2.1/30", "dev", "net15o0")
	run("ip", "link", "set", "net15o0", "up")
	run("ip", "-n", ns, "addr", "add", "192.0.2.2/30", "dev", "net15o1")
	run("ip", "-n", ns, "link", "set", "net15o1", "up")
	run("ip", "-n", ns, "link", "set", "lo", "up")
	run("ip", "-n", ns, "route", "add", "default", "via", "192.0.2.1")
	return "192.0.2.2"
}

// 30 containers on 3 networks started at once, each resolving its own
// neighbours and none of the others'.
func TestNetworkParallel(t *testing.T) {
	h := newHost(t)
	h.env = append(h.env, "BERTH_DNS_UPSTREAM="+fakeUpstream(t))
	const nets, per = 3, 10
	for n := 0; n < nets; n++ {
		h.newNet(fmt.Sprintf("net15p%d", n), fmt.Sprintf("net15p%d", n), "--subnet", fmt.Sprintf("10.97.%d.0/24", n))
	}
	name := func(n, i int) string { return fmt.Sprintf("p%d-%d", n, i) }
	var wg sync.WaitGroup
	errs := make(chan string, nets*per)
	for n := 0; n < nets; n++ {
		for i := 0; i < per; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := h.run(h.runArgs("-d", "--network", fmt.Sprintf("net15p%d", n), "--name", name(n, i), "sleep", "1000")...)
				if r.Code != 0 {
					errs <- r.String()
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	require.False(t, t.Failed())
	errs = make(chan string, nets*per)
	for n := 0; n < nets; n++ {
		for i := 0; i < per; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var script strings.Builder
				for j := 0; j < per; j++ {
					fmt.Fprintf(&script, "nslookup %s >/dev/null || echo MISSING %s; ", name(n, j), name(n, j))
				}
				fmt.Fprintf(&script, "nslookup %s >/dev/null && echo LEAKED %s; true", name((n+1)%nets, i), name((n+1)%nets, i))
				r := h.run("exec", name(n, i), "sh", "-c", script.String())
				if r.Code != 0 || strings.TrimSpace(r.Stdout) != "" {
					errs <- name(n, i) + ": " + r.String()
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// --dns-search, --dns-option and --add-host write the container's
// resolv.conf and hosts as docker run does; bad ones are refused.
func TestNetworkResolvFlags(t *testing.T) {
	h := newHost(t)
	out := h.ok(h.runArgs("--rm", "--dns", "192.0.2.53", "--dns-search", "a.test", "--dns-search", "b.test",
		"--dns-option", "ndots:2", "--add-host", "db:10.1.2.3", "--add-host", "v6:fd00::1",
		"cat", "/etc/resolv.conf", "/etc/hosts")...)
	assert.Contains(t, out, "nameserver 192.0.2.53\nsearch a.test b.test\noptions ndots:2\n")
	assert.Equal(t, 1, strings.Count(out, "search "), "the host's search line replaced: %s", out)
	assert.Contains(t, out, "10.1.2.3\tdb\nfd00::1\tv6")
	for _, bad := range [][]string{{"--add-host", "db"}, {"--add-host", "db:nope"}, {"--dns-search", "a b"}, {"--dns-option", ""}} {
		r := h.run(h.runArgs("--rm", append(bad, "true")...)...)
		assert.Equal(t, 125, r.Code, "%v: %s", bad, r)
	}
}
