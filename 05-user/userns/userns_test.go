//go:build linux

package userns_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/01-uts/spine"
	"berth/05-user/userns"
	"berth/internal/testenv"
)

func run(t *testing.T, args ...string) testenv.Result {
	t.Helper()
	return testenv.Run(t, testenv.StateEnv(t), testenv.Binary(t, "05-user"), noNet(args)...)
}

// noNet runs with --net none unless the test picks a network: these tests
// are about users, and as root stage 04's default bridge would change the
// host's network.
func noNet(args []string) []string {
	for _, a := range args {
		if a == "--net" || strings.HasPrefix(a, "--net=") {
			return append([]string{"run"}, args...)
		}
	}
	return append([]string{"run", "--net", "none"}, args...)
}

// As root, --uidmap puts the container's root anywhere: here on host uid
// 100000, so that nothing it does is done by the host's root.
func TestExplicitMapAsRoot(t *testing.T) {
	testenv.RequireRoot(t)
	rootfs := testenv.CopyRootfs(t)
	r := run(t, "--rootfs", rootfs, "--uidmap", "0:100000:65536", "true")
	assert.Equal(t, 125, r.Code, r.String())
	assert.Contains(t, r.Stderr, "the container's root (host uid 100000) may not enter "+filepath.Dir(filepath.Dir(rootfs))+" (owner 0, mode 0700) on the way to the rootfs")

	for d := filepath.Dir(rootfs); d != os.TempDir(); d = filepath.Dir(d) {
		require.NoError(t, os.Chmod(d, 0o711)) // let host uid 100000 through
	}
	// and through the state directory, where /etc/hosts comes from
	run := func(t *testing.T, args ...string) testenv.Result {
		env := testenv.StateEnv(t)
		for d := testenv.StateRoot(env); d != os.TempDir(); d = filepath.Dir(d) {
			require.NoError(t, os.MkdirAll(d, 0o711))
			require.NoError(t, os.Chmod(d, 0o711))
		}
		return testenv.Run(t, env, testenv.Binary(t, "05-user"), noNet(args)...)
	}
	r = run(t, "--rootfs", rootfs, "--uidmap", "0:100000:65536", "--gidmap", "0:200000:65536", "sh", "-c",
		"id; cat /proc/self/uid_map /proc/self/gid_map; grep CapEff /proc/self/status; touch /tmp/f && chown 1000:1000 /tmp/f; ls -ld /")
	require.Equal(t, 0, r.Code, r.String())
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	require.Len(t, lines, 5, r.String())
	assert.Equal(t, "uid=0(root) gid=0(root)", lines[0], "no supplementary group of the host's root")
	assert.Equal(t, []string{"0", "100000", "65536"}, strings.Fields(lines[1]))
	assert.Equal(t, []string{"0", "200000", "65536"}, strings.Fields(lines[2]))
	assert.Equal(t, "CapEff:\t"+fullCapSet(t), lines[3])
	assert.Regexp(t, `^d\S+ +\d+ nobody +nogroup `, lines[4], "the copy is the host root's: unmapped")
	assertOwner(t, filepath.Join(rootfs, "tmp", "f"), 101000, 201000)

	// Only --uidmap: the gid map is the same, as with podman.
	r = run(t, "--rootfs", rootfs, "--uidmap", "0:100000:65536", "cat", "/proc/self/gid_map")
	require.Equal(t, 0, r.Code, r.String())
	assert.Equal(t, []string{"0", "100000", "65536"}, strings.Fields(r.Stdout))
}

// Without a user flag, root gets no user namespace (as docker run).
func TestNoUserNamespaceByDefaultAsRoot(t *testing.T) {
	testenv.RequireRoot(t)
	host, err := os.Readlink("/proc/self/ns/user")
	require.NoError(t, err)
	r := run(t, "sh", "-c", "readlink /proc/self/ns/user; cat /proc/self/uid_map")
	require.Equal(t, 0, r.Code, r.String())
	f := strings.Fields(r.Stdout)
	require.Len(t, f, 4, r.String())
	assert.Equal(t, host, f[0])
	assert.Equal(t, []string{"0", "0", "4294967295"}, f[1:])

	r = run(t, "--map-root-user", "readlink", "/proc/self/ns/user")
	require.Equal(t, 0, r.Code, r.String())
	assert.NotEqual(t, host+"\n", r.Stdout)
}

func TestBadMapsAsRoot(t *testing.T) {
	testenv.RequireRoot(t)
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"--uidmap", "0:100000:1000", "--uidmap", "500:300000:10"}, "uid maps 0:100000:1000 and 500:300000:10 overlap inside the container"},
		{[]string{"--uidmap", "0:100000:1000", "--uidmap", "2000:100500:10"}, "overlap on the host"},
		{[]string{"--uidmap", "0:100000:65536", "--gidmap", "1:100000:65536"}, "the gid map must map container id 0"},
		{[]string{"--uidmap", "0:100000:0"}, "size 0 maps nothing"},
		{[]string{"--uidmap", "0:4294967000:65536"}, "runs past the last id"},
		{[]string{"--gidmap", "0:100000:65536"}, "--gidmap needs --uidmap too"},
		{[]string{"--uidmap", "x"}, `invalid --uidmap: "x" is not CONTAINER:HOST:SIZE`},
	} {
		r := run(t, append(tc.args, "true")...)
		assert.Equal(t, 125, r.Code, r.String())
		assert.Contains(t, r.Stderr, tc.err, tc.args)
		assert.Equal(t, 1, strings.Count(r.Stderr, "\n"), "one line: %q", r.Stderr)
	}
}

// A rootless container asking for a cgroup limit is refused, not run
// without it. (Stage 06 adds the flags; the rule is on the spec.)
func TestRootlessRefusesLimits(t *testing.T) {
	c := spine.NewContainer("05-user", []string{"true"})
	limit := int64(64 << 20)
	c.Spec.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}
	err := (&userns.Step{Rootless: true}).Prepare(c)
	require.Error(t, err)
	assert.Equal(t, "resource limits (memory) need root: a rootless container has no cgroup of its own; run with sudo, or drop the limit", err.Error())
	assert.NoError(t, (&userns.Step{Rootless: false}).Prepare(c), "with root, stage 06 applies it")
}

// --net=slirp4netns: a rootless container reaches a server outside
// through a user-space TCP/IP stack. The test's own network namespace
// stands in for the host (no uplink: nothing can leave the machine), with
// a web server on 192.0.2.1 (a documentation address, on its lo) and one
// on its 127.0.0.1, which the container must not reach.
func TestSlirp4netns(t *testing.T) {
	testenv.RequireRoot(t)
	for _, tool := range []string{"slirp4netns", "unshare", "ip", "ss"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipped: %s not found (Debian packages slirp4netns, util-linux, iproute2)", tool)
		}
	}
	a := newAccount(t, "berth05c", false)
	rootfs := a.Rootfs(t)
	www := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(www, "hello"), []byte("hello from the stand-in host\n"), 0o644))
	tun := filepath.Join(t.TempDir(), "tun")

	// /dev/net/tun is 0600 on some machines (udev makes it 0666): the
	// user's slirp4netns must open it, so the stand-in host gets a 0666
	// node of its own, in its private mount namespace.
	script := `set -e
ip link set lo up
ip addr add 192.0.2.1/32 dev lo
mknod -m 666 "$1" c 10 200
mount --bind "$1" /dev/net/tun
busybox httpd -f -p 192.0.2.1:8080 -h "$2" & h1=$!
busybox httpd -f -p 127.0.0.1:8081 -h "$2" & h2=$!
trap 'kill $h1 $h2' EXIT
until ss -ltn | grep -q 192.0.2.1:8080 && ss -ltn | grep -q 127.0.0.1:8081; do sleep 0.05; done
shift 2
"$@"`
	inside := "ip -o link | cut -d: -f2 | tr -d ' \\n'; echo; ip -4 -o addr show tap0 | grep -o 'inet [0-9./]*'; ip route | grep default; " +
		"cat /etc/resolv.conf; wget -qO- http://192.0.2.1:8080/hello; wget -qO- http://10.0.2.2:8081/hello 2>&1 || echo no host loopback"
	argv := append([]string{"unshare", "-m", "-n", "--", "sh", "-c", script, "sh", tun, www},
		a.Argv(nil, a.Bin, "run", "--rootfs", rootfs, "--net=slirp4netns", "sh", "-c", inside)...)
	r := testenv.Run(t, nil, argv[0], argv[1:]...)
	require.Equal(t, 0, r.Code, r.String())
	assert.Equal(t, "lotap0\n"+
		"inet 10.0.2.100/24\n"+
		"default via 10.0.2.2 dev tap0 \n"+
		"nameserver 10.0.2.3\n"+
		"hello from the stand-in host\n", r.Stdout[:strings.Index(r.Stdout, "hello from the stand-in host\n")+len("hello from the stand-in host\n")])
	assert.Contains(t, r.Stdout, "no host loopback", "--disable-host-loopback: 10.0.2.2 does not lead to the host's 127.0.0.1")
	assert.NotContains(t, r.Stdout, "hello from the stand-in host\nhello from the stand-in host")

	// Without --net, a rootless container has lo only.
	argv = append([]string{"unshare", "-n", "--"}, a.Argv(nil, a.Bin, "run", "--rootfs", rootfs, "sh", "-c", "ip -o link | cut -d: -f2; ip -o addr show lo | grep -c 'inet 127.0.0.1'")...)
	r = testenv.Run(t, nil, argv[0], argv[1:]...)
	require.Equal(t, 0, r.Code, r.String())
	assert.Equal(t, " lo\n1\n", r.Stdout, "lo only, and up")
}

// The slirp4netns process ends with a SIGKILLed runtime: its exit pipe is
// the runtime's, and closes with it.
func TestSlirp4netnsEndsWithKilledRuntime(t *testing.T) {
	testenv.RequireRoot(t)
	if _, err := exec.LookPath("slirp4netns"); err != nil {
		t.Skip("skipped: slirp4netns not found (Debian package slirp4netns)")
	}
	a := newAccount(t, "berth05d", false)
	rootfs := a.Rootfs(t)
	tun := filepath.Join(t.TempDir(), "tun")
	// Start the runtime, find its slirp4netns child, SIGKILL the runtime,
	// and wait (at most 30 s) for slirp4netns to be gone.
	script := `set -e
mknod -m 666 "$1" c 10 200
mount --bind "$1" /dev/net/tun
shift
"$@" >/dev/null 2>&1 & r=$!
i=0; until s=$(pgrep -P $r -x slirp4netns); do sleep 0.05; i=$((i+1)); [ $i -lt 600 ]; done
kill -9 $r
i=0
while [ -e /proc/$s ] && ! grep -q '^State:.*Z' /proc/$s/status 2>/dev/null; do
	sleep 0.05; i=$((i+1))
	if [ $i -ge 600 ]; then kill -9 $s; echo slirp4netns survived; exit 1; fi
done
echo slirp4netns gone`
	argv := append([]string{"unshare", "-m", "-n", "--", "sh", "-c", script, "sh", tun},
		a.Argv(nil, a.Bin, "run", "--rootfs", rootfs, "--net=slirp4netns", "sleep", "1000")...)
	r := testenv.Run(t, nil, argv[0], argv[1:]...)
	require.Equal(t, 0, r.Code, r.String())
	assert.Equal(t, "slirp4netns gone\n", r.Stdout)
}
