//go:build linux

package network_test

// Integration tests: they build bin/04-net and run it as root, as a learner
// would, against the busybox rootfs. Every one of them runs inside a
// network namespace that this test binary makes for itself (TestMain
// re-executes it with CLONE_NEWNET): a stand-in host whose only links are
// lo and an empty bridge. berth0, its NAT rules and every container live there, so
// no packet can leave the machine, even from a wrong test or a bridge torn
// down halfway. Traffic goes only to loopback and to berth0's subnet.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"berth/04-net/network"
	"berth/internal/testenv"
)

const standinEnv = "BERTH_TEST_STANDIN_NETNS"

// standinLink is a link of the stand-in host: --net=host must show it.
const standinLink = "standin0"

func TestMain(m *testing.M) {
	if os.Geteuid() == 0 && os.Getenv(standinEnv) == "" {
		cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
		cmd.Env = append(os.Environ(), standinEnv+"=1")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			os.Exit(ee.ExitCode())
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "re-run the tests in a new network namespace: %v\n", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	if os.Getenv(standinEnv) != "" {
		if err := setUpStandin(); err != nil {
			fmt.Fprintf(os.Stderr, "set up the stand-in host: %v\n", err)
			os.Exit(2)
		}
	}
	os.Exit(m.Run())
}

func setUpStandin() error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return err
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return err
	}
	// A bridge with no ports: a link of the "host" that leads nowhere.
	return netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: standinLink}})
}

// host is one test's view: its own state roots, the binary, and on
// cleanup the `cleanup` verb, after checking that nothing was left behind.
type host struct {
	t    *testing.T
	env  []string
	root string
	bin  string
}

func newHost(t *testing.T) *host {
	t.Helper()
	testenv.RequireRoot(t)
	if os.Getenv(standinEnv) == "" {
		t.Fatal("network tests must run inside the stand-in network namespace (TestMain)")
	}
	testenv.Rootfs(t)
	env := testenv.StateEnv(t)
	h := &host{t: t, env: env, root: testenv.StateRoot(env), bin: testenv.Binary(t, "04-net")}
	t.Cleanup(func() {
		r := testenv.Run(t, h.env, h.bin, "cleanup")
		assert.Equal(t, 0, r.Code, "cleanup: %s", r)
		_, err := netlink.LinkByName(network.DefaultBridge)
		assert.Error(t, err, "cleanup removes the bridge")
		assert.NotContains(t, nft(t), "table ip berth", "cleanup removes the table")
	})
	return h
}

func (h *host) run(args ...string) testenv.Result {
	h.t.Helper()
	return testenv.Run(h.t, h.env, h.bin, append([]string{"run"}, args...)...)
}

func (h *host) start(args ...string) *testenv.Background {
	h.t.Helper()
	return testenv.Start(h.t, h.env, h.bin, append([]string{"run"}, args...)...)
}

// lease is the address the IPAM gave container id, from its lease file.
func (h *host) lease(id string) string {
	h.t.Helper()
	for addr, holder := range h.leases() {
		if holder == id {
			return addr
		}
	}
	h.t.Fatalf("no lease for %s in %s", id, network.Dir(h.root))
	return ""
}

func (h *host) leases() map[string]string {
	h.t.Helper()
	out := map[string]string{}
	files, err := filepath.Glob(filepath.Join(network.Dir(h.root), "leases-*.json"))
	require.NoError(h.t, err)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(h.t, err)
		var lf struct{ Leases map[string]string }
		require.NoError(h.t, json.Unmarshal(b, &lf), f)
		for k, v := range lf.Leases {
			out[k] = v
		}
	}
	return out
}

// assertNothingLeft checks what a learner would list after every
// container exited: no berth veth, no lease, no port rule, no state.
func (h *host) assertNothingLeft() {
	h.t.Helper()
	assert.Empty(h.t, vethLinks(h.t), "no berth veth may remain")
	assert.Empty(h.t, h.leases(), "no lease may remain")
	assert.NotContains(h.t, nft(h.t), `comment "container `, "no port rule may remain")
	entries, _ := os.ReadDir(h.root)
	for _, e := range entries {
		assert.Equal(h.t, ".network", e.Name(), "state of container %s remains", e.Name())
	}
}

func vethLinks(t *testing.T) []string {
	links, err := netlink.LinkList()
	require.NoError(t, err)
	var out []string
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Name, "bth") {
			out = append(out, l.Attrs().Name)
		}
	}
	return out
}

// nft lists berth's table as `nft list table ip berth` shows it ("" when
// there is none).
func nft(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("nft", "list", "table", "ip", network.TableName).CombinedOutput()
	if err != nil {
		require.Contains(t, string(out), "No such file or directory", "nft: %s", out)
		return ""
	}
	return string(out)
}

// waitTCP waits until addr accepts connections (a server started).
func waitTCP(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s after 30s", addr)
}

func get(t *testing.T, url string) string {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	require.NoError(t, err, url)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode, "%s: %s", url, b)
	return string(b)
}

// stop ends a container started with --init by SIGTERM to its runtime,
// which forwards it to the command.
func stop(t *testing.T, b *testenv.Background) testenv.Result {
	t.Helper()
	require.NoError(t, b.Cmd.Process.Signal(syscall.SIGTERM))
	r := b.Wait(t)
	assert.Equal(t, 128+int(syscall.SIGTERM), r.Code, r.String())
	return r
}

// httpd serves the container's /etc, so /hostname answers with the name
// of the container that served it.
func httpdArgs(id string, extra ...string) []string {
	args := append([]string{"--id", id, "--hostname", id, "--init"}, extra...)
	return append(args, "httpd", "-f", "-p", "80", "-h", "/etc")
}

func TestBridgeGivesEth0AnAddressAndARoute(t *testing.T) {
	h := newHost(t)
	r := h.run("sh", "-c", "ls /sys/class/net; ip -o -4 addr show dev eth0; ip route; ping -c1 -W5 10.88.0.1 >/dev/null && echo gateway answers")
	require.Equal(t, 0, r.Code, r.String())
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	require.Len(t, lines, 6, r.Stdout)
	assert.Equal(t, []string{"eth0", "lo"}, lines[:2])
	assert.Regexp(t, `^\d+: eth0\s+inet 10\.88\.\d+\.\d+/16 `, lines[2])
	assert.Equal(t, "default via 10.88.0.1 dev eth0 ", lines[3])
	assert.Regexp(t, `^10\.88\.0\.0/16 dev eth0 .*src 10\.88\.`, lines[4])
	assert.Equal(t, "gateway answers", lines[5])
	h.assertNothingLeft()

	// The bridge and the outbound NAT rule are shared, and stay.
	br, err := netlink.LinkByName(network.DefaultBridge)
	require.NoError(t, err)
	addrs, err := netlink.AddrList(br, netlink.FAMILY_V4)
	require.NoError(t, err)
	require.Len(t, addrs, 1)
	assert.Equal(t, "10.88.0.1/16", addrs[0].IPNet.String())
	assert.Contains(t, nft(t), `ip saddr 10.88.0.0/16 oifname != "berth0" masquerade`)
	fwd, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	require.NoError(t, err)
	assert.Equal(t, "1\n", string(fwd))
}

func TestEtcFilesAreTheContainersOwn(t *testing.T) {
	h := newHost(t)
	rootfsHosts, err := os.ReadFile(filepath.Join(testenv.Rootfs(t), "etc/hosts"))
	require.NoError(t, err)

	// An id too long for an interface name: the veth's name is hashed.
	r := h.run("--id", "files-with-a-long-id", "--hostname", "files", "--dns", "192.0.2.53", "sh", "-c",
		"cat /etc/hostname; grep files /etc/hosts; cat /etc/resolv.conf; hostname -i; echo changed >/etc/hosts")
	require.Equal(t, 0, r.Code, r.String())
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	require.Len(t, lines, 4, r.Stdout)
	assert.Equal(t, "files", lines[0])
	assert.Regexp(t, `^10\.88\.\d+\.\d+\tfiles$`, lines[1])
	assert.Equal(t, "nameserver 192.0.2.53", lines[2])
	assert.Equal(t, strings.Fields(lines[1])[0], lines[3], "hostname -i resolves through /etc/hosts")

	after, err := os.ReadFile(filepath.Join(testenv.Rootfs(t), "etc/hosts"))
	require.NoError(t, err)
	assert.Equal(t, rootfsHosts, after, "the rootfs's own /etc/hosts is never written")
	h.assertNothingLeft()
}

func TestContainersTalkAndPublishedPorts(t *testing.T) {
	h := newHost(t)
	a := h.start(httpdArgs("a", "-p", "8080:80", "-p", "127.0.0.1:8081:80", "-p", "5353:53/udp")...)
	pidA := testenv.ContainerPid(t, h.root, "a")
	ipA := h.lease("a")
	waitTCP(t, ipA+":80")
	b := h.start(httpdArgs("b")...)
	pidB := testenv.ContainerPid(t, h.root, "b")
	ipB := h.lease("b")
	waitTCP(t, ipB+":80")
	require.NotEqual(t, ipA, ipB)

	// From each one's network namespace (container:PID), ping the other
	// and fetch its page: the page names who served it.
	for _, tc := range []struct {
		from int
		to   string
		want string
	}{{pidA, ipB, "b"}, {pidB, ipA, "a"}} {
		r := h.run("--net=container:"+strconv.Itoa(tc.from), "sh", "-c",
			fmt.Sprintf("ping -c1 -W5 %s >/dev/null && wget -qO- http://%s/hostname", tc.to, tc.to))
		require.Equal(t, 0, r.Code, r.String())
		assert.Equal(t, tc.want+"\n", r.Stdout)
	}

	// The host reaches a's httpd through its published port, on loopback
	// and on the bridge's address; 127.0.0.1:8081 only on loopback.
	assert.Equal(t, "a\n", get(t, "http://127.0.0.1:8080/hostname"))
	assert.Equal(t, "a\n", get(t, "http://10.88.0.1:8080/hostname"))
	assert.Equal(t, "a\n", get(t, "http://127.0.0.1:8081/hostname"))
	_, err := net.DialTimeout("tcp", "10.88.0.1:8081", 5*time.Second)
	assert.Error(t, err, "a port published on 127.0.0.1 is not published on other addresses")

	// A peer on the bridge reaches it too, through the gateway, and so
	// does a itself (both need the hairpin masquerade; a itself also the
	// bridge port's hairpin mode).
	for _, from := range []int{pidB, pidA} {
		r := h.run("--net=container:"+strconv.Itoa(from), "wget", "-qO-", "http://10.88.0.1:8080/hostname")
		require.Equal(t, 0, r.Code, r.String())
		assert.Equal(t, "a\n", r.Stdout)
	}
	// And a new container as well.
	r := h.run("wget", "-qO-", "http://10.88.0.1:8080/hostname")
	require.Equal(t, 0, r.Code, r.String())
	assert.Equal(t, "a\n", r.Stdout)

	rules := nft(t)
	assert.Contains(t, rules, fmt.Sprintf(`fib daddr type local tcp dport 8080 dnat to %s:80 comment "container a: *:8080 -> %s:80/tcp"`, ipA, ipA))
	assert.Contains(t, rules, fmt.Sprintf(`ip daddr 127.0.0.1 tcp dport 8081 dnat to %s:80`, ipA))
	assert.Contains(t, rules, fmt.Sprintf(`fib daddr type local udp dport 5353 dnat to %s:53`, ipA))
	assert.Equal(t, 3, strings.Count(rules, "chain prerouting")+strings.Count(rules, "chain output")+strings.Count(rules, "chain postrouting"))

	// The published host port is taken while a runs.
	_, err = net.Listen("tcp", "127.0.0.1:8080")
	assert.Error(t, err, "the runtime holds the published port")
	_, err = net.ListenPacket("udp", "0.0.0.0:5353")
	assert.Error(t, err, "and the published UDP port")

	stop(t, a)
	stop(t, b)
	h.assertNothingLeft()
	l, err := net.Listen("tcp", "127.0.0.1:8080")
	require.NoError(t, err, "the port is free again")
	l.Close()
}

func TestNetNone(t *testing.T) {
	h := newHost(t)
	r := h.run("--net=none", "sh", "-c", "ls /sys/class/net; ip -o link show lo | grep -o 'state [A-Z]*\\|LOOPBACK,UP'")
	require.Equal(t, 0, r.Code, r.String())
	assert.Equal(t, "lo\nLOOPBACK,UP\n", r.Stdout)
	h.assertNothingLeft()
	_, err := netlink.LinkByName(network.DefaultBridge)
	assert.Error(t, err, "--net=none creates no bridge")
}

func TestNetHost(t *testing.T) {
	h := newHost(t)
	hostNS, err := os.Readlink("/proc/self/ns/net")
	require.NoError(t, err)
	r := h.run("--net=host", "sh", "-c", "readlink /proc/self/ns/net; ls /sys/class/net")
	require.Equal(t, 0, r.Code, r.String())
	lines := strings.Fields(r.Stdout)
	require.NotEmpty(t, lines)
	assert.Equal(t, hostNS, lines[0], "the host's own network namespace")
	assert.Contains(t, lines[1:], standinLink, "the host's links")

	r = h.run("readlink", "/proc/self/ns/net")
	require.Equal(t, 0, r.Code, r.String())
	assert.NotEqual(t, hostNS+"\n", r.Stdout, "bridge mode: a namespace of its own")
	h.assertNothingLeft()
}

func TestNetContainerSharesLocalhost(t *testing.T) {
	h := newHost(t)
	a := h.start("--id", "pod", "--hostname", "pod", "--init", "httpd", "-f", "-p", "127.0.0.1:8081", "-h", "/etc")
	pid := testenv.ContainerPid(t, h.root, "pod")
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
	require.NoError(t, err)

	// Poll from inside until httpd listens on the shared loopback.
	r := h.run("--net=container:"+strconv.Itoa(pid), "sh", "-c",
		"readlink /proc/self/ns/net; i=0; until wget -qO- http://127.0.0.1:8081/hostname; do i=$((i+1)); [ $i -gt 300 ] && exit 1; usleep 100000; done; ip -o -4 addr show dev eth0 | grep -c inet")
	require.Equal(t, 0, r.Code, r.String())
	assert.Equal(t, ns+"\npod\n1\n", r.Stdout, "same namespace, same lo, same eth0")
	_, err = net.DialTimeout("tcp", "127.0.0.1:8081", 5*time.Second)
	assert.Error(t, err, "the pod's loopback is not the host's")

	stop(t, a)
	h.assertNothingLeft()
}

func TestConcurrentRunsGetDistinctAddresses(t *testing.T) {
	h := newHost(t)
	const n = 20
	results := make([]testenv.Result, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			// sleep keeps each lease held while the others start.
			results[i] = testenv.Run(t, h.env, h.bin, "run", "sh", "-c", "ip -o -4 addr show dev eth0; sleep 1")
		}(i)
	}
	wg.Wait()
	var addrs []string
	for _, r := range results {
		require.Equal(t, 0, r.Code, r.String())
		f := strings.Fields(r.Stdout)
		require.GreaterOrEqual(t, len(f), 4, r.Stdout)
		addrs = append(addrs, f[3])
	}
	sort.Strings(addrs)
	for i := 1; i < n; i++ {
		assert.NotEqual(t, addrs[i-1], addrs[i], "address handed out twice")
	}
	h.assertNothingLeft()
}

func TestBadInputLeavesNothing(t *testing.T) {
	h := newHost(t)
	busy, err := net.Listen("tcp", "0.0.0.0:18080")
	require.NoError(t, err)
	defer busy.Close()
	dead := exec.Command("true")
	require.NoError(t, dead.Run())

	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"--rootfs", "/nonexistent"}, "04-net: rootfs: /nonexistent does not exist"},
		{[]string{"-p", "abc"}, `04-net: invalid -p "abc": want [HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|udp]`},
		{[]string{"-p", "0:80"}, `04-net: invalid -p "0:80": host port: 0 is out of range 1-65535`},
		{[]string{"-p", "70000:80"}, `04-net: invalid -p "70000:80": host port: 70000 is out of range 1-65535`},
		{[]string{"-p", "18080:80"}, "04-net: network: host port 0.0.0.0:18080/tcp is already in use"},
		{[]string{"-p", "8080:80", "-p", "18080:80"}, "04-net: network: host port 0.0.0.0:18080/tcp is already in use"},
		{[]string{"-p", "192.0.2.1:8080:80"}, "04-net: network: host address 192.0.2.1 in -p is not an address of this host"},
		{[]string{"--net=overlay"}, `04-net: unknown network mode --net "overlay": use bridge, none, host or container:PID`},
		{[]string{"--net=container:" + strconv.Itoa(dead.Process.Pid)}, fmt.Sprintf("04-net: --net container:%d: no process %d", dead.Process.Pid, dead.Process.Pid)},
		{[]string{"--subnet", "10.88.0.0/33"}, `04-net: invalid --subnet "10.88.0.0/33"`},
		{[]string{"--net=host", "-p", "8080:80"}, "04-net: -p publishes ports through the bridge: it needs --net=bridge"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := h.run(append(tc.args, "true")...)
			assert.Equal(t, 125, r.Code, r.String())
			assert.True(t, strings.HasPrefix(r.Stderr, tc.err), "stderr %q, want it to start with %q", r.Stderr, tc.err)
			assert.Equal(t, 1, strings.Count(r.Stderr, "\n"), "one line: %q", r.Stderr)
			assert.Empty(t, r.Stdout)
			h.assertNothingLeft()
		})
	}
}

// standinAddress gives the stand-in host's link an address, up, for the
// length of the test: the host then routes that network through it.
func standinAddress(t *testing.T, cidr string) netlink.Link {
	t.Helper()
	link, err := netlink.LinkByName(standinLink)
	require.NoError(t, err)
	addr, err := netlink.ParseAddr(cidr)
	require.NoError(t, err)
	require.NoError(t, netlink.AddrAdd(link, addr))
	require.NoError(t, netlink.LinkSetUp(link))
	t.Cleanup(func() {
		assert.NoError(t, netlink.AddrDel(link, addr))
		assert.NoError(t, netlink.LinkSetDown(link))
	})
	return link
}

// A subnet the host already routes elsewhere is refused before any
// bridge exists.
func TestOverlappingSubnetIsRefused(t *testing.T) {
	h := newHost(t)
	standinAddress(t, "10.88.5.1/24")

	r := h.run("true")
	assert.Equal(t, 125, r.Code, r.String())
	assert.Equal(t, "04-net: network: subnet 10.88.0.0/16 overlaps the host's route to 10.88.5.0/24 dev standin0: choose another --subnet\n", r.Stderr)
	h.assertNothingLeft()
	_, err := netlink.LinkByName(network.DefaultBridge)
	assert.Error(t, err, "no bridge was made")

	r = h.run("--subnet", "10.89.0.0/16", "true")
	assert.Equal(t, 0, r.Code, r.String())
	h.assertNothingLeft()
}

// A real host has a default route, and it covers every address: it must
// not count as a network the subnet would shadow. (The stand-in host has an
// uplink-less stand-in link; its default route leads nowhere.)
func TestDefaultRouteIsNoOverlap(t *testing.T) {
	h := newHost(t)
	link := standinAddress(t, "192.0.2.1/24")
	route := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: net.ParseIP("192.0.2.254")}
	require.NoError(t, netlink.RouteAdd(route))
	t.Cleanup(func() { assert.NoError(t, netlink.RouteDel(route)) })

	r := h.run("sh", "-c", "ip route | head -n 1")
	assert.Equal(t, 0, r.Code, r.String())
	assert.Equal(t, "default via 10.88.0.1 dev eth0 \n", r.Stdout)
	h.assertNothingLeft()
}

func TestExhaustedSubnet(t *testing.T) {
	h := newHost(t)
	// A /30 holds the gateway and one container.
	holder := h.start("--id", "holder", "--subnet", "10.99.0.0/30", "--init", "sleep", "600")
	testenv.ContainerPid(t, h.root, "holder")
	assert.Equal(t, "10.99.0.2", h.lease("holder"))

	r := h.run("--subnet", "10.99.0.0/30", "true")
	assert.Equal(t, 125, r.Code, r.String())
	assert.True(t, strings.HasPrefix(r.Stderr, "04-net: network: no free address in 10.99.0.0/30: all 1 addresses are leased"), r.Stderr)
	assert.Equal(t, 1, strings.Count(r.Stderr, "\n"), r.Stderr)
	assert.Equal(t, map[string]string{"10.99.0.2": "holder"}, h.leases())
	assert.Equal(t, []string{network.VethName("holder")}, vethLinks(t), "only the holder's veth")

	// A different subnet while the bridge carries this one: refused.
	r = h.run("true")
	assert.Equal(t, 125, r.Code, r.String())
	assert.Contains(t, r.Stderr, "bridge berth0 has address 10.99.0.1/30, not 10.88.0.1/16")

	// cleanup refuses while a container holds an address.
	r = testenv.Run(t, h.env, h.bin, "cleanup")
	assert.Equal(t, 125, r.Code, r.String())
	assert.Contains(t, r.Stderr, "containers still use the network: holder (10.99.0.2): stop them first")

	stop(t, holder)
	h.assertNothingLeft()
}

func TestSigkilledRuntimeIsCollectedByTheNextRun(t *testing.T) {
	h := newHost(t)
	a := h.start(httpdArgs("killed", "-p", "8080:80")...)
	testenv.ContainerPid(t, h.root, "killed")
	ip := h.lease("killed")
	waitTCP(t, "127.0.0.1:8080")

	require.NoError(t, a.Cmd.Process.Kill())
	r := a.Wait(t)
	require.Equal(t, 128+int(syscall.SIGKILL), r.Code)
	// The runtime had no chance to clean up: its lease and rules remain.
	assert.Equal(t, map[string]string{ip: "killed"}, h.leases())
	assert.Contains(t, nft(t), `comment "container killed: `)

	// The next run collects them, and the port is free for it.
	r = h.run("-p", "8080:80", "true")
	require.Equal(t, 0, r.Code, r.String())
	h.assertNothingLeft()
}

func TestCleanupVerb(t *testing.T) {
	h := newHost(t)
	require.NoError(t, os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("0"), 0o644))
	r := h.run("true")
	require.Equal(t, 0, r.Code, r.String())
	r = testenv.Run(t, h.env, h.bin, "cleanup")
	require.Equal(t, 0, r.Code, r.String())
	assert.Equal(t, "removed nftables table ip berth\nremoved bridge berth0\n", r.Stdout)
	fwd, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	require.NoError(t, err)
	assert.Equal(t, "0\n", string(fwd), "forwarding is off again, as it was before berth")
	_, err = os.Stat(network.Dir(h.root))
	assert.ErrorIs(t, err, os.ErrNotExist)

	r = testenv.Run(t, h.env, h.bin, "cleanup")
	require.Equal(t, 0, r.Code, "cleanup twice: %s", r)
	assert.Empty(t, r.Stdout)

	// A berth veth whose container is gone (its state lost) is swept too;
	// a link that is not berth's is left alone.
	for _, v := range []*netlink.Veth{
		{LinkAttrs: netlink.LinkAttrs{Name: network.VethName("ghost"), Alias: "berth:ghost"}, PeerName: "ghostpeer"},
		{LinkAttrs: netlink.LinkAttrs{Name: "bthmine"}, PeerName: "minepeer"},
	} {
		require.NoError(t, netlink.LinkAdd(v))
		l, err := netlink.LinkByName(v.Name)
		require.NoError(t, err)
		if v.Alias != "" {
			require.NoError(t, netlink.LinkSetAlias(l, v.Alias))
		}
	}
	r = testenv.Run(t, h.env, h.bin, "cleanup")
	require.Equal(t, 0, r.Code, r.String())
	assert.Equal(t, "removed veth bthghost\n", r.Stdout)
	assert.Equal(t, []string{"bthmine"}, vethLinks(t))
	mine, err := netlink.LinkByName("bthmine")
	require.NoError(t, err)
	require.NoError(t, netlink.LinkDel(mine))

	// A bridge of that name that berth did not make (it has no alias of
	// berth's: the host's own, say) is neither taken over nor removed.
	require.NoError(t, netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: network.DefaultBridge}}))
	foreign, err := netlink.LinkByName(network.DefaultBridge)
	require.NoError(t, err)
	defer func() { _ = netlink.LinkDel(foreign) }()
	r = h.run("true")
	assert.NotEqual(t, 0, r.Code, "%s", r)
	assert.Contains(t, r.Stderr, "bridge berth0 exists and is not berth's")
	r = testenv.Run(t, h.env, h.bin, "cleanup")
	require.Equal(t, 0, r.Code, r.String())
	assert.NotContains(t, r.Stdout, "bridge")
	_, err = netlink.LinkByName(network.DefaultBridge)
	assert.NoError(t, err, "cleanup removed a bridge berth did not make")
	addrs, err := netlink.AddrList(foreign, netlink.FAMILY_V4)
	require.NoError(t, err)
	assert.Empty(t, addrs, "berth gave the host's bridge an address")
	require.NoError(t, netlink.LinkDel(foreign))
}

// lanPeer is another machine on the stand-in host's LAN: a network
// namespace joined to the host by a veth pair (lan0 on the host,
// 192.0.2.1/24; eth0 in the peer, 192.0.2.2/24) that routes the container
// subnet via the host, as any machine on a LAN whose router knows the
// subnet would.
type lanPeer struct{ ns netns.NsHandle }

func newLANPeer(t *testing.T) *lanPeer {
	t.Helper()
	ns := func() netns.NsHandle {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		orig, err := netns.Get()
		require.NoError(t, err)
		defer orig.Close()
		ns, err := netns.New() // and moves this thread into it
		if err != nil {
			require.NoError(t, netns.Set(orig))
			require.NoError(t, err)
		}
		require.NoError(t, netns.Set(orig))
		return ns
	}()
	t.Cleanup(func() { ns.Close() })

	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "lan0"}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(ns))}
	require.NoError(t, netlink.LinkAdd(veth))
	t.Cleanup(func() {
		if l, err := netlink.LinkByName("lan0"); assert.NoError(t, err) {
			assert.NoError(t, netlink.LinkDel(l))
		}
	})
	lan, err := netlink.LinkByName("lan0")
	require.NoError(t, err)
	addr, err := netlink.ParseAddr("192.0.2.1/24")
	require.NoError(t, err)
	require.NoError(t, netlink.AddrAdd(lan, addr))
	require.NoError(t, netlink.LinkSetUp(lan))

	nh, err := netlink.NewHandleAt(ns, syscall.NETLINK_ROUTE) // only route: the VM kernel has no xfrm_user
	require.NoError(t, err)
	defer nh.Close()
	for _, name := range []string{"lo", "eth0"} {
		l, err := nh.LinkByName(name)
		require.NoError(t, err)
		require.NoError(t, nh.LinkSetUp(l))
	}
	eth0, err := nh.LinkByName("eth0")
	require.NoError(t, err)
	addr, err = netlink.ParseAddr("192.0.2.2/24")
	require.NoError(t, err)
	require.NoError(t, nh.AddrAdd(eth0, addr))
	_, subnet, err := net.ParseCIDR(network.DefaultSubnet)
	require.NoError(t, err)
	require.NoError(t, nh.RouteAdd(&netlink.Route{Dst: subnet, Gw: net.ParseIP("192.0.2.1")}))
	return &lanPeer{ns: ns}
}

// inNS runs f on a thread moved into the peer's namespace: the sockets f
// opens belong to the peer.
func (p *lanPeer) inNS(f func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	if err := netns.Set(p.ns); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	ferr := f()
	if err := netns.Set(orig); err != nil {
		// Leave the thread locked: Go ends it with the goroutine.
		return fmt.Errorf("back to the stand-in host's namespace: %w", err)
	}
	runtime.UnlockOSThread()
	return ferr
}

// dial connects from the peer, giving up after 2s: a filtered port's
// packets are dropped, not refused.
func (p *lanPeer) dial(addr string) (c net.Conn, err error) {
	err = p.inNS(func() error {
		c, err = net.DialTimeout("tcp", addr, 2*time.Second)
		return err
	})
	return c, err
}

func (p *lanPeer) get(t *testing.T, url string) string {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(_ context.Context, _, addr string) (net.Conn, error) { return p.dial(addr) },
	}}
	resp, err := client.Get(url)
	require.NoError(t, err, url)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode, "%s: %s", url, b)
	return string(b)
}

// serve answers every request, in the peer, with the client's address.
func (p *lanPeer) serve(t *testing.T, addr string) {
	t.Helper()
	var l net.Listener
	require.NoError(t, p.inNS(func() (err error) {
		l, err = net.Listen("tcp", addr)
		return err
	}))
	t.Cleanup(func() { l.Close() })
	go http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		fmt.Fprintln(w, host)
	}))
}

// The forward filter: a machine that routes the container subnet via the
// host reaches a published port, but not a port nobody published, even
// though the container listens on it; containers still reach that machine
// (outbound NAT), and the replies come back through the filter.
func TestLANPeerReachesOnlyPublishedPorts(t *testing.T) {
	h := newHost(t)
	peer := newLANPeer(t)
	a := h.start(httpdArgs("web", "-p", "8080:80")...)
	testenv.ContainerPid(t, h.root, "web")
	ip := h.lease("web")
	waitTCP(t, ip+":80") // the host itself reaches port 80: it is open

	assert.Equal(t, "web\n", peer.get(t, "http://192.0.2.1:8080/hostname"), "published port, host's LAN address")
	assert.Equal(t, "web\n", peer.get(t, "http://10.88.0.1:8080/hostname"), "published port, bridge address")
	c, err := peer.dial(ip + ":80")
	if err == nil {
		c.Close()
	}
	assert.Error(t, err, "the container's unpublished port 80 is not reachable from the LAN")

	peer.serve(t, "192.0.2.2:8000")
	r := h.run("wget", "-qO-", "http://192.0.2.2:8000/")
	require.Equal(t, 0, r.Code, r.String())
	assert.Equal(t, "192.0.2.1\n", r.Stdout, "the peer sees the host's address (masquerade)")

	rules := nft(t)
	assert.Contains(t, rules, "type filter hook forward priority filter; policy accept;")
	assert.Contains(t, rules, `oifname "berth0" drop comment "berth: nothing else reaches a container"`)

	stop(t, a)
	h.assertNothingLeft()
}
