//go:build linux

package network

import (
	"net"
	"os"
	"strconv"
	"testing"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/01-uts/spine"
)

func TestHostsFile(t *testing.T) {
	h := string(HostsFile("web", net.IPv4(10, 88, 0, 2)))
	assert.Contains(t, h, "127.0.0.1\tlocalhost\n")
	assert.Contains(t, h, "10.88.0.2\tweb\n")
	assert.Contains(t, string(HostsFile("lonely", nil)), "127.0.1.1\tlonely\n")
}

func TestResolvConf(t *testing.T) {
	host := []byte("# generated\nsearch example.org\nnameserver 127.0.0.53\nnameserver 192.0.2.1\noptions edns0\n")
	assert.Equal(t, "# generated\nsearch example.org\noptions edns0\nnameserver 192.0.2.1\n",
		string(ResolvConf(host, nil, false)), "a resolver on the host's loopback is out of reach")
	assert.Equal(t, "# generated\nsearch example.org\noptions edns0\nnameserver 127.0.0.53\nnameserver 192.0.2.1\n",
		string(ResolvConf(host, nil, true)), "host mode shares the host's loopback")
	assert.Equal(t, "# generated\nsearch example.org\noptions edns0\nnameserver 198.51.100.7\n",
		string(ResolvConf(host, []string{"198.51.100.7"}, false)), "--dns replaces the nameservers")
	assert.Contains(t, string(ResolvConf([]byte("nameserver 127.0.0.53\n"), nil, false)), "nameserver 8.8.8.8\nnameserver 8.8.4.4\n")
}

func TestVethName(t *testing.T) {
	assert.Equal(t, "bth3f2a9c1d7e00", VethName("3f2a9c1d7e00"))
	assert.Equal(t, "bthweb", VethName("web"))
	long := VethName("a-rather-long-container-name")
	assert.Len(t, long, 15, "IFNAMSIZ-1")
	assert.Equal(t, long, VethName("a-rather-long-container-name"), "derived from the id alone")
	assert.NotEqual(t, long, VethName("a-rather-long-container-name2"))
	assert.Equal(t, "02:42:0a:58:00:02", macFor(net.IPv4(10, 88, 0, 2)).String())
}

func configure(t *testing.T, args ...string) (*spine.Container, *Step, error) {
	t.Helper()
	o := &Options{}
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	o.AddFlags(fs)
	require.NoError(t, fs.Parse(args))
	c := spine.NewContainer("04-net", []string{"true"})
	c.ID = "abc"
	steps, err := o.Configure(c)
	if err != nil {
		return c, nil, err
	}
	require.Len(t, steps, 1)
	return c, steps[0].(*Step), nil
}

func TestConfigureModes(t *testing.T) {
	c, s, err := configure(t)
	require.NoError(t, err)
	assert.Equal(t, ModeBridge, s.Mode)
	assert.Equal(t, DefaultSubnet, s.Subnet)
	path, ok := c.Namespace("network")
	assert.True(t, ok)
	assert.Empty(t, path, "a new network namespace")
	assert.Empty(t, c.Spec.Mounts, "the /etc files are mounted from the state dir, known only at Prepare")
	m := etcMounts(c.StateDir())
	require.Len(t, m, 3)
	assert.Equal(t, "/etc/hosts", m[0].Destination)
	assert.Equal(t, c.StateDir()+"/hosts", m[0].Source)

	c, s, err = configure(t, "--net=none")
	require.NoError(t, err)
	assert.Equal(t, ModeNone, s.Mode)
	_, ok = c.Namespace("network")
	assert.True(t, ok)

	c, s, err = configure(t, "--net=host")
	require.NoError(t, err)
	assert.Equal(t, ModeHost, s.Mode)
	_, ok = c.Namespace("network")
	assert.False(t, ok, "host mode: no network namespace of its own")

	me := os.Getpid()
	c, s, err = configure(t, "--net=container:"+strconv.Itoa(me))
	require.NoError(t, err)
	assert.Equal(t, ModeContainer, s.Mode)
	path, _ = c.Namespace("network")
	assert.Equal(t, "/proc/"+strconv.Itoa(me)+"/ns/net", path)
}

func TestConfigureRefusesBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"--net=bridged"}, `unknown network mode --net "bridged"`},
		{[]string{"--net=container:"}, "want container:PID"},
		{[]string{"--net=container:abc"}, "want container:PID"},
		{[]string{"--net=container:999999999"}, "no process 999999999"},
		{[]string{"--subnet=10.88.0.0/31"}, "between /8 and /30"},
		{[]string{"-p", "abc"}, `invalid -p "abc"`},
		{[]string{"-p", "0:80"}, "out of range"},
		{[]string{"-p", "70000:80"}, "out of range"},
		{[]string{"--net=none", "-p", "8080:80"}, "it needs --net=bridge"},
		{[]string{"--dns", "one.one.one.one"}, `invalid --dns "one.one.one.one"`},
	} {
		t.Run(tc.err, func(t *testing.T) {
			_, _, err := configure(t, tc.args...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.err)
		})
	}
}
