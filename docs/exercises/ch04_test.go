//go:build exercise && linux

package exercises

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/internal/testenv"
)

// net is one check's stand-in host: its own state roots, bin/04-net (or a
// later stage), and `cleanup` when the check ends.
type net struct {
	t    *testing.T
	env  []string
	root string
	bin  string
}

func newNet(t *testing.T, stage string) *net {
	t.Helper()
	n := &net{t: t, env: testenv.StateEnv(t), bin: bin(t, stage)}
	n.root = testenv.StateRoot(n.env)
	t.Cleanup(func() { testenv.Run(t, n.env, n.bin, "cleanup") })
	return n
}

func (n *net) run(args ...string) testenv.Result {
	n.t.Helper()
	return testenv.Run(n.t, n.env, n.bin, append([]string{"run"}, args...)...)
}

// A container is a runtime started in the background; its stderr (the
// container's, and httpd -v's log) goes to the file log.
type container struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the runtime has exited
}

func (c *container) stderr() string {
	b, _ := os.ReadFile(c.log)
	return string(b)
}

// web starts busybox's httpd as container id, serving its /etc, with
// extra flags (-p 8080:80...); it returns the container's PID and the
// runtime, which the check's cleanup stops.
func (n *net) web(id string, flags ...string) (int, *container) {
	n.t.Helper()
	args := append([]string{"run", "--id", id, "--hostname", id, "--init"}, flags...)
	args = append(args, "httpd", "-f", "-v", "-p", "80", "-h", "/etc")
	c := &container{cmd: exec.Command(n.bin, args...), log: filepath.Join(n.t.TempDir(), "stderr")}
	f, err := os.Create(c.log)
	require.NoError(n.t, err)
	defer f.Close()
	c.cmd.Env = append(os.Environ(), n.env...)
	c.cmd.Stdout, c.cmd.Stderr = f, f
	require.NoError(n.t, c.cmd.Start())
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	n.t.Cleanup(func() {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = c.cmd.Process.Kill()
			<-done
		}
	})
	c.done = done
	pid := testenv.ContainerPid(n.t, n.root, id)
	return pid, c
}

// curl fetches url from this network namespace (or, with via, from the
// network namespace of process via), with a 2-second limit.
func curl(t *testing.T, via int, url string) (string, int) {
	t.Helper()
	args := []string{"curl", "-s", "-m", "2", url}
	if via != 0 {
		args = append([]string{"nsenter", "-t", fmt.Sprint(via), "-n"}, args...)
	}
	r := testenv.Run(t, nil, args[0], args[1:]...)
	return r.Stdout, r.Code
}

// until retries fn for 10 seconds.
func until(t *testing.T, what string, fn func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if fn() {
			return
		}
	}
	t.Fatalf("%s: not within 10 seconds", what)
}

// lan makes the machine of chapter 04's "What breaks without it": a
// network namespace at 192.0.2.2, joined to this one's lan0 (192.0.2.1)
// by a veth pair, that routes 10.88.0.0/16 via us. It returns a PID in it.
func lan(t *testing.T) int {
	t.Helper()
	c := testenv.Start(t, nil, "unshare", "--net", "sleep", "600")
	var pid int
	until(t, "the LAN peer's sleep", func() bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", c.Cmd.Process.Pid, c.Cmd.Process.Pid))
		if err == nil {
			fmt.Sscan(string(b), &pid)
		}
		if pid == 0 {
			// unshare may exec sleep itself
			if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", c.Cmd.Process.Pid)); strings.TrimSpace(string(comm)) == "sleep" {
				pid = c.Cmd.Process.Pid
			}
		}
		return pid != 0
	})
	for _, cmd := range []string{
		fmt.Sprintf("ip link add lan0 type veth peer name eth0 netns %d", pid),
		"ip addr add 192.0.2.1/24 dev lan0",
		"ip link set lan0 up",
		fmt.Sprintf("nsenter -t %d -n sh -c 'ip link set lo up; ip addr add 192.0.2.2/24 dev eth0; ip link set eth0 up; ip route add 10.88.0.0/16 via 192.0.2.1'", pid),
	} {
		r := testenv.Run(t, nil, "sh", "-c", cmd)
		require.Equal(t, 0, r.Code, "%s: %s", cmd, r)
	}
	t.Cleanup(func() { _ = c.Cmd.Process.Kill() }) // lan0 goes with the namespace
	return pid
}

// 04-1: conntrack shows both directions of a published port's connection,
// the reply one rewritten: from the container, to the bridge's address.
func TestExercise04_1(t *testing.T) {
	a := answer(t, "04-1", 2)
	if _, err := exec.LookPath("conntrack"); err != nil {
		t.Fatal("conntrack is not installed: sudo make setup (or apt-get install conntrack)")
	}
	n := newNet(t, "04-net")
	n.web("web", "-p", "8080:80")
	until(t, "web answers on 127.0.0.1:8080", func() bool { out, _ := curl(t, 0, "http://127.0.0.1:8080/hostname"); return out == "web\n" })
	r := testenv.Run(t, nil, "conntrack", "-L", "-p", "tcp", "--dport", "8080")
	m := regexp.MustCompile(`src=127\.0\.0\.1 dst=127\.0\.0\.1 sport=\d+ dport=8080 src=(\S+) dst=(\S+) sport=(\d+) `).FindStringSubmatch(r.Stdout)
	require.NotNil(t, m, "conntrack -L -p tcp --dport 8080:\n%s", r)
	assert.True(t, same(a[0], m[1]+":"+m[3]), "line 1: the reply direction's source, ADDRESS:PORT: %s:%s, not %q", m[1], m[3], a[0])
	assert.True(t, same(a[1], m[2]), "line 2: the reply direction's destination address: %s, not %q", m[2], a[1])
}

// 04-2: the first packet of the host's own connection to a published port
// passes the nat chains output and postrouting, and no other.
func TestExercise04_2(t *testing.T) {
	a := answer(t, "04-2", 1)
	n := newNet(t, "04-net")
	n.web("web", "-p", "8080:80")
	until(t, "web answers on 127.0.0.1:8080", func() bool { out, _ := curl(t, 0, "http://127.0.0.1:8080/hostname"); return out == "web\n" })
	chains := []string{"prerouting", "output", "postrouting", "forward"}
	for _, ch := range chains {
		r := testenv.Run(t, nil, "nft", "insert", "rule", "ip", "berth", ch, "counter", "comment", `"exercise 04-2"`)
		require.Equal(t, 0, r.Code, r.String())
	}
	out, _ := curl(t, 0, "http://127.0.0.1:8080/hostname")
	require.Equal(t, "web\n", out)
	passed := map[string]bool{}
	for _, ch := range chains {
		r := testenv.Run(t, nil, "nft", "list", "chain", "ip", "berth", ch)
		m := regexp.MustCompile(`counter packets (\d+) .*exercise 04-2`).FindStringSubmatch(r.Stdout)
		require.NotNil(t, m, r.String())
		if m[1] != "0" {
			passed[ch] = true
		}
	}
	require.Equal(t, map[string]bool{"output": true, "postrouting": true}, passed, "the chains the connection's first packet passed")
	assert.Equal(t, passed, words(a[0]), "line 1: the chains of table ip berth that curl 127.0.0.1:8080's first packet passes: not %q", a[0])
}

// 04-3: without hairpin mode a bridge never sends a frame back out of the
// port it came in by: a container cannot reach its own published port.
func TestExercise04_3(t *testing.T) {
	a := answer(t, "04-3", 1)
	n := newNet(t, "04-net")
	pid, _ := n.web("web", "-p", "8080:80")
	until(t, "web answers on 127.0.0.1:8080", func() bool { out, _ := curl(t, 0, "http://127.0.0.1:8080/hostname"); return out == "web\n" })
	self := func() testenv.Result {
		// --init: timeout's kill would not end wget as PID 1.
		return n.run("--init", "--net=container:"+fmt.Sprint(pid), "timeout", "2", "wget", "-qO-", "http://10.88.0.1:8080/hostname")
	}
	r := self()
	require.Equal(t, "web\n", r.Stdout, "with hairpin on, web reaches its own published port: %s", r)
	require.Equal(t, 0, testenv.Run(t, nil, "bridge", "link", "set", "dev", "bthweb", "hairpin", "off").Code)
	r = self()
	assert.NotEqual(t, 0, r.Code, "with hairpin off, it does not: %s", r)
	require.Equal(t, 0, testenv.Run(t, nil, "bridge", "link", "set", "dev", "bthweb", "hairpin", "on").Code)
	assert.True(t, same(a[0], "no"), "line 1: does web reach its own published port with hairpin off (yes or no)? not %q", a[0])
}

// httpdClients returns the client addresses web's httpd -v logged.
func httpdClients(c *container) []string {
	var out []string
	for _, m := range regexp.MustCompile(`\[(?:::ffff:)?([0-9.]+)\]:\d+: response:`).FindAllStringSubmatch(c.stderr(), -1) {
		out = append(out, m[1])
	}
	return out
}

// 04-4: a userland proxy works, but the container sees the proxy as its
// client; DNAT shows it the real one.
func TestExercise04_4(t *testing.T) {
	p := program(t, "04-4")
	n := newNet(t, "04-net")
	_, web := n.web("web", "-p", "8080:80")
	until(t, "web answers on 127.0.0.1:8080", func() bool { out, _ := curl(t, 0, "http://127.0.0.1:8080/hostname"); return out == "web\n" })
	before := len(httpdClients(web))
	proxy := testenv.Start(t, nil, p, "127.0.0.1:9090", "10.88.0.2:80")
	until(t, "answers/04-4 127.0.0.1:9090 10.88.0.2:80 answers", func() bool { out, _ := curl(t, 0, "http://127.0.0.1:9090/hostname"); return out == "web\n" })
	_ = proxy.Cmd.Process.Kill()
	until(t, "httpd logs the proxied request", func() bool { return len(httpdClients(web)) > before })
	viaProxy := httpdClients(web)[before]
	peer := lan(t)
	out, code := curl(t, peer, "http://192.0.2.1:8080/hostname")
	require.Equal(t, "web\n", out, "the LAN peer reaches the published port (curl exit %d)", code)
	until(t, "httpd logs the LAN peer's request", func() bool { return len(httpdClients(web)) > before+1 })
	clients := httpdClients(web)
	viaDNAT := clients[len(clients)-1]
	a := answer(t, "04-4", 2)
	assert.True(t, same(a[0], viaProxy), "line 1: the client address httpd logs for a request through your proxy: %s, not %q", viaProxy, a[0])
	assert.True(t, same(a[1], viaDNAT), "line 2: the one it logs for the LAN peer's request through the published port: %s, not %q", viaDNAT, a[1])
}

// 04-5: --ip asks the IPAM for one address.
func TestExercise04_5(t *testing.T) {
	n := newNet(t, "04-net")
	needFlag(t, "04-net", n.bin, "--ip")
	r := n.run("--ip", "10.88.0.77", "ip", "-4", "-o", "addr", "show", "eth0")
	require.Equal(t, 0, r.Code, r.String())
	assert.Contains(t, r.Stdout, "inet 10.88.0.77/16 ", "eth0 has the address asked for")

	holder := testenv.Start(t, n.env, n.bin, "run", "--id", "holder", "--ip", "10.88.0.77", "sleep", "600")
	testenv.ContainerPid(t, n.root, "holder")
	r = n.run("--ip", "10.88.0.77", "true")
	assert.Equal(t, 125, r.Code, "an address in use is refused: %s", r)
	assert.Equal(t, 1, strings.Count(r.Stderr, "\n"), "in one line: %q", r.Stderr)
	assert.Contains(t, r.Stderr, "10.88.0.77")
	r = n.run("true")
	assert.Equal(t, 0, r.Code, "without --ip, another address: %s", r)
	for _, bad := range []string{"10.99.0.5", "10.88.0.1", "10.88.255.255", "not-an-ip"} {
		r = n.run("--ip", bad, "true")
		assert.Equal(t, 125, r.Code, "--ip %s is refused (outside the subnet, the gateway, the broadcast address, not an address): %s", bad, r)
	}
	require.NoError(t, holder.Cmd.Process.Kill()) // sleep as PID 1 ignores SIGTERM
	holder.Wait(t)
	r = n.run("--ip", "10.88.0.77", "true")
	assert.Equal(t, 0, r.Code, "once its holder is gone, the address is free again: %s", r)
	b, _ := os.ReadFile(filepath.Join(n.root, ".network", "leases-10.88.0.0-16.json"))
	assert.NotContains(t, string(b), "10.88.0.77", "and its lease is released")
}

// 04-6: after kill -9 of a runtime, what the kernel owned is gone (the
// veth, with the container's namespace); what berth wrote stays until the
// next run collects it.
func TestExercise04_6(t *testing.T) {
	a := answer(t, "04-6", 2)
	n := newNet(t, "04-net")
	pid, web := n.web("web", "-p", "8080:80")
	require.NoError(t, web.cmd.Process.Kill())
	<-web.done
	testenv.WaitGone(t, pid)
	time.Sleep(time.Second) // the kernel deletes the veth pair with the namespace
	left := map[string]bool{}
	if testenv.Run(t, nil, "ip", "link", "show", "bthweb").Code == 0 {
		left["veth"] = true
	}
	if b, _ := os.ReadFile(filepath.Join(n.root, ".network", "leases-10.88.0.0-16.json")); bytes.Contains(b, []byte(`"web"`)) {
		left["lease"] = true
	}
	if strings.Contains(testenv.Run(t, nil, "nft", "list", "table", "ip", "berth").Stdout, "container web") {
		left["rules"] = true
	}
	if _, err := os.Stat(filepath.Join(n.root, "web")); err == nil {
		left["state"] = true
	}
	require.Equal(t, map[string]bool{"lease": true, "rules": true, "state": true}, left, "what a SIGKILLed runtime leaves")
	r := n.run("true")
	require.Equal(t, 0, r.Code, r.String())
	_, err := os.Stat(filepath.Join(n.root, "web"))
	assert.True(t, os.IsNotExist(err), "the next run collects the state")
	assert.NotContains(t, testenv.Run(t, nil, "nft", "list", "table", "ip", "berth").Stdout, "container web", "and the rules")
	assert.Equal(t, left, words(a[0]), "line 1: what is left after the kill, among veth, lease, rules, state: not %q", a[0])
	assert.True(t, same(a[1], "none"), "line 2: what is left after the next run (none, or what): not %q", a[1])
}

// 04-7: a chain of the user's own, jumped to first from forward and never
// flushed by berth.
func TestExercise04_7(t *testing.T) {
	n := newNet(t, "04-net")
	_, _ = n.web("web", "-p", "8080:80")
	until(t, "web answers on 127.0.0.1:8080", func() bool { out, _ := curl(t, 0, "http://127.0.0.1:8080/hostname"); return out == "web\n" })
	r := testenv.Run(t, nil, "nft", "list", "chain", "ip", "berth", "user")
	require.Equal(t, 0, r.Code, "ensureNAT makes the chain user in table ip berth: %s", r)
	firstRule := func() string {
		out := testenv.Run(t, nil, "nft", "list", "chain", "ip", "berth", "forward").Stdout
		for _, l := range strings.Split(out, "\n") {
			l = strings.TrimSpace(l)
			if l != "" && !strings.HasPrefix(l, "table") && !strings.HasPrefix(l, "chain") && !strings.HasPrefix(l, "type") && l != "}" {
				return l
			}
		}
		return ""
	}
	require.True(t, strings.HasPrefix(firstRule(), "jump user"), "forward's first rule jumps to user: %q", firstRule())
	require.Equal(t, 0, testenv.Run(t, nil, "nft", "add", "rule", "ip", "berth", "user", "ip", "saddr", "192.0.2.2", "tcp", "dport", "80", "drop").Code)
	for _, step := range []string{"run", "flush forward, run"} {
		if strings.HasPrefix(step, "flush") {
			require.Equal(t, 0, testenv.Run(t, nil, "nft", "flush", "chain", "ip", "berth", "forward").Code)
		}
		require.Equal(t, 0, n.run("true").Code)
		assert.True(t, strings.HasPrefix(firstRule(), "jump user"), "after %s, forward still starts with jump user: %q", step, firstRule())
		assert.Contains(t, testenv.Run(t, nil, "nft", "list", "chain", "ip", "berth", "user").Stdout, "ip saddr 192.0.2.2 tcp dport 80 drop",
			"after %s, the user's rule is still there", step)
	}
	peer := lan(t)
	_, code := curl(t, peer, "http://192.0.2.1:8080/hostname")
	assert.NotEqual(t, 0, code, "the user's rule refuses the LAN peer")
	out, _ := curl(t, 0, "http://127.0.0.1:8080/hostname")
	assert.Equal(t, "web\n", out, "the host still reaches the published port")
	r = n.run("--init", "--hostname", "client", "timeout", "2", "wget", "-qO-", "http://10.88.0.2/hostname")
	assert.Equal(t, "web\n", r.Stdout, "another container still reaches web: %s", r)
}
