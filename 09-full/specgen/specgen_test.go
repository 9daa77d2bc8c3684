//go:build linux

package specgen

import (
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/09-full/engine"
	"berth/internal/testenv"
)

// options as the CLI makes them: the flags of stages 05 and 06 registered,
// so that their defaults are set.
func options(t *testing.T) *Options {
	t.Helper()
	o := &Options{}
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	o.Cgroup.AddFlags(fs)
	o.UserNS.AddFlags(fs)
	return o
}

func generate(t *testing.T, o *Options, args ...string) (*engine.Config, error) {
	t.Helper()
	rec, err := Generate(o, "", args, Roots{Data: t.TempDir(), State: t.TempDir()})
	if err != nil {
		return nil, err
	}
	return engine.ConfigOf(rec)
}

func namespaces(s *specs.Spec) map[specs.LinuxNamespaceType]string {
	out := map[specs.LinuxNamespaceType]string{}
	for _, n := range s.Linux.Namespaces {
		out[n.Type] = n.Path
	}
	return out
}

// Docker's defaults: every namespace but the user's, the hostname from the
// id, PATH and HOSTNAME, its mounts, /berth/<id>, the bridge.
func TestDefaults(t *testing.T) {
	testenv.RequireRoot(t) // the limits' checks read the host's cgroups
	o := options(t)
	o.Rootfs = testenv.Rootfs(t)
	cfg, err := generate(t, o, "sh")
	require.NoError(t, err)
	s := cfg.Spec
	ns := namespaces(s)
	for _, typ := range []specs.LinuxNamespaceType{specs.PIDNamespace, specs.IPCNamespace, specs.UTSNamespace, specs.MountNamespace, specs.NetworkNamespace, specs.CgroupNamespace} {
		path, ok := ns[typ]
		assert.True(t, ok, typ)
		assert.Empty(t, path, typ)
	}
	assert.NotContains(t, ns, specs.UserNamespace)
	assert.Len(t, s.Hostname, 12)
	assert.Contains(t, s.Process.Env, "HOSTNAME="+s.Hostname)
	assert.Contains(t, s.Process.Env, "HOME=/root")
	assert.Equal(t, "/", s.Process.Cwd)
	assert.Equal(t, DefaultMounts(), s.Mounts)
	assert.Regexp(t, `^/berth/[0-9a-f]{64}$`, s.Linux.CgroupsPath)
	assert.Equal(t, "bridge", cfg.Settings.Network.Mode)
	assert.Equal(t, []string{o.Rootfs}, cfg.Settings.Layers)
	assert.Equal(t, "no", cfg.Settings.Restart.Name)
	assert.Equal(t, engine.LogConfig{Type: "json-file", MaxFile: 1}, cfg.Settings.Log)
	steps, err := engine.Steps(cfg)
	require.NoError(t, err)
	var names []string
	for _, st := range steps {
		names = append(names, st.Name())
	}
	assert.Equal(t, []string{"uts", "pid", "cgroup", "network", "rootfs", "layer", "user"}, names)
}

func TestFlags(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	envFile := filepath.Join(dir, "env")
	require.NoError(t, os.WriteFile(envFile, []byte("# a comment\nFROM_FILE=1\nB=file\n"), 0o600))
	t.Setenv("FROM_HOST", "host")
	o := options(t)
	o.Rootfs = testenv.Rootfs(t)
	o.Env = []string{"B=flag", "FROM_HOST", "UNSET_ON_HOST"}
	o.EnvFiles = []string{envFile}
	o.Workdir, o.Tty, o.Interactive, o.Hostname, o.ReadOnly = "/srv", true, true, "web", true
	o.Network, o.Publish, o.DNS = "bridge", []string{"8080:80"}, []string{"1.1.1.1"}
	o.Restart, o.StopSignal, o.LogOpts = "on-failure:3", "SIGQUIT", []string{"max-size=10m", "max-file=3"}
	o.Volumes = []string{dir + ":/data:ro", "/anon"}
	cfg, err := generate(t, o, "sh")
	require.NoError(t, err)
	s, set := cfg.Spec, cfg.Settings
	assert.Subset(t, s.Process.Env, []string{"FROM_FILE=1", "B=flag", "FROM_HOST=host", "TERM=xterm", "HOSTNAME=web"})
	for _, kv := range s.Process.Env {
		assert.NotContains(t, kv, "UNSET_ON_HOST")
	}
	assert.Equal(t, "/srv", s.Process.Cwd)
	assert.True(t, s.Process.Terminal)
	assert.True(t, s.Root.Readonly)
	assert.Equal(t, "web", s.Hostname)
	assert.True(t, set.OpenStdin && set.StdinOnce)
	assert.Len(t, set.Network.Ports, 1)
	assert.Equal(t, engine.RestartPolicy{Name: "on-failure", MaximumRetryCount: 3}, set.Restart)
	assert.Equal(t, "SIGQUIT", set.StopSignal)
	assert.Equal(t, engine.LogConfig{Type: "json-file", MaxSize: 10 << 20, MaxFile: 3}, set.Log)
	require.Len(t, set.Volumes, 2)
	assert.True(t, set.Volumes[1].Anonymous)
	assert.Regexp(t, `/volumes/[0-9a-f]{64}/_data$`, set.Volumes[1].Source)
	assert.Equal(t, "/data", s.Mounts[len(s.Mounts)-2].Destination)

	o = options(t)
	o.Rootfs, o.Network = testenv.Rootfs(t), "host"
	cfg, err = generate(t, o, "true")
	require.NoError(t, err)
	assert.NotContains(t, namespaces(cfg.Spec), specs.NetworkNamespace, "--network host: the host's")
	o.Network = "container:other"
	cfg, err = generate(t, o, "true")
	require.NoError(t, err)
	assert.NotContains(t, namespaces(cfg.Spec), specs.NetworkNamespace, "joined when created")
}

// Bad input: one line, nothing made.
func TestRefusals(t *testing.T) {
	testenv.RequireRoot(t)
	for _, tc := range []struct {
		set  func(*Options)
		args []string
		want string
	}{
		{func(o *Options) {}, nil, "--rootfs needs a command"},
		{func(o *Options) { o.Restart = "always"; o.AutoRemove = true }, []string{"true"}, "Conflicting options: --restart and --rm"},
		{func(o *Options) { o.Network = "mynet" }, []string{"true"}, "network mynet not found"},
		{func(o *Options) { o.Network = "none"; o.Publish = []string{"80:80"} }, []string{"true"}, "-p publishes ports through the bridge"},
		{func(o *Options) { o.Workdir = "rel" }, []string{"true"}, "needs to be an absolute path"},
		{func(o *Options) { o.LogOpts = []string{"max-file=2"} }, []string{"true"}, "max-file cannot be set without max-size"},
		{func(o *Options) { o.LogOpts = []string{"max-size=1k", "max-file=2147483647"} }, []string{"true"}, "want a number of files, 1 to 100"},
		{func(o *Options) { o.LogOpts = []string{"mode=non-blocking"} }, []string{"true"}, "unknown log opt 'mode'"},
		{func(o *Options) { o.LogDriver = "syslog" }, []string{"true"}, `log driver "syslog" is not supported`},
		{func(o *Options) { o.StopSignal = "SIGNOPE" }, []string{"true"}, "--stop-signal: invalid signal"},
		{func(o *Options) { o.Volumes = []string{"rel:/x"} }, []string{"true"}, "the host path must be absolute"},
		{func(o *Options) { o.DNS = []string{"not-an-ip"} }, []string{"true"}, "invalid --dns"},
		{func(o *Options) { o.Hostname = "bad_host" }, []string{"true"}, "invalid --hostname"},
	} {
		o := options(t)
		o.Rootfs = testenv.Rootfs(t)
		tc.set(o)
		_, err := generate(t, o, tc.args...)
		assert.ErrorContains(t, err, tc.want)
	}
	o := options(t)
	_, err := Generate(o, "nosuch", nil, Roots{Data: t.TempDir(), State: t.TempDir()})
	assert.ErrorContains(t, err, "Unable to find image 'nosuch' locally")
}
