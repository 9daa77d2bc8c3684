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

	"berth/02-pid/pid"
	"berth/09-full/engine"
	"berth/09-full/security"
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
	o.Security.AddFlags(fs)
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
	assert.Equal(t, security.DefaultMounts(), s.Mounts)
	// Docker's security defaults (issue 14): its 14 capabilities, its
	// seccomp profile, masked and read-only paths, the device rules.
	assert.Equal(t, security.DefaultCapabilities(), s.Process.Capabilities.Bounding)
	assert.Equal(t, security.DefaultCapabilities(), s.Process.Capabilities.Effective)
	assert.Empty(t, s.Process.Capabilities.Ambient)
	require.NotNil(t, s.Linux.Seccomp)
	assert.Equal(t, specs.ActErrno, s.Linux.Seccomp.DefaultAction)
	assert.Equal(t, security.MaskedPaths(), s.Linux.MaskedPaths)
	assert.Equal(t, security.ReadonlyPaths(), s.Linux.ReadonlyPaths)
	assert.Equal(t, security.DeviceRules(), s.Linux.Resources.Devices)
	assert.False(t, s.Process.NoNewPrivileges)
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
	assert.Equal(t, []string{"uts", "pid", "cgroup", "network", "rootfs", "layer", "user", "security"}, names)
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
		{func(o *Options) { o.Volumes = []string{"rel/x:/x"} }, []string{"true"}, "invalid characters for a local volume name"},
		{func(o *Options) { o.Volumes = []string{"../x:/x"} }, []string{"true"}, "invalid characters for a local volume name"},
		{func(o *Options) { o.Volumes = []string{"vv:x"} }, []string{"true"}, "the container path must be absolute"},
		{func(o *Options) { o.Volumes = []string{"vv:/x:ro,exec"} }, []string{"true"}, `mode "exec"`},
		{func(o *Options) { o.Volumes = []string{"vv:/x", "ww:/x"} }, []string{"true"}, "duplicate mount point: /x"},
		{func(o *Options) { o.Mounts = []string{"type=bind,src=rel,dst=/x"} }, []string{"true"}, "the host path must be absolute"},
		{func(o *Options) { o.Mounts = []string{"type=nfs,dst=/x"} }, []string{"true"}, `type "nfs"`},
		{func(o *Options) { o.Mounts = []string{"type=tmpfs,dst=/x,bogus=1"} }, []string{"true"}, `unknown key "bogus"`},
		{func(o *Options) { o.Mounts = []string{"type=tmpfs,dst=/x,tmpfs-size=huge"} }, []string{"true"}, "positive size"},
		{func(o *Options) { o.VolumesFrom = []string{"nosuch"} }, []string{"true"}, "--volumes-from"},
		{func(o *Options) { o.DNS = []string{"not-an-ip"} }, []string{"true"}, "invalid --dns"},
		{func(o *Options) { o.Hostname = "bad_host" }, []string{"true"}, "invalid --hostname"},
		{func(o *Options) { o.Security.CapAdd = []string{"SYS_WIZARD"} }, []string{"true"}, `unknown capability: "SYS_WIZARD"`},
		{func(o *Options) { o.Security.SecurityOpt = []string{"seccomp=/nonexistent.json"} }, []string{"true"}, "no such file"},
		{func(o *Options) { o.Security.Sysctls = []string{"kernel.core_pattern=|/x"} }, []string{"true"}, "not namespaced"},
		{func(o *Options) { o.Network = "host"; o.Security.Sysctls = []string{"net.ipv4.ip_forward=1"} }, []string{"true"}, "private network namespace"},
		{func(o *Options) { o.Security.DeviceRules = []string{"c 1:3"} }, []string{"true"}, "--device-cgroup-rule"},
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

// The security flags reach the spec: the capabilities, the filter,
// no_new_privs, devices and their rules, and --privileged's everything.
func TestSecurityFlags(t *testing.T) {
	testenv.RequireRoot(t)
	o := options(t)
	o.Rootfs = testenv.Rootfs(t)
	o.Security.CapAdd, o.Security.CapDrop = []string{"SYS_TIME"}, []string{"CHOWN"}
	o.Security.SecurityOpt = []string{"no-new-privileges", "apparmor=unconfined", "label=disable"}
	o.Security.Devices = []string{"/dev/null:/dev/mynull"}
	o.Security.DeviceRules = []string{"c 10:200 rwm"}
	o.Security.Ulimits = []string{"nofile=100:200"}
	o.Security.Sysctls = []string{"net.ipv4.ip_forward=1"}
	cfg, err := generate(t, o, "true")
	require.NoError(t, err)
	s := cfg.Spec
	assert.Contains(t, s.Process.Capabilities.Effective, "CAP_SYS_TIME")
	assert.NotContains(t, s.Process.Capabilities.Bounding, "CAP_CHOWN")
	assert.True(t, s.Process.NoNewPrivileges)
	assert.Empty(t, s.Process.ApparmorProfile, "nothing to apply, as Docker")
	assert.Equal(t, []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 100, Hard: 200}}, s.Process.Rlimits)
	assert.Equal(t, map[string]string{"net.ipv4.ip_forward": "1"}, s.Linux.Sysctl)
	require.Len(t, s.Linux.Devices, 1)
	assert.Equal(t, "/dev/mynull", s.Linux.Devices[0].Path)
	rules := s.Linux.Resources.Devices
	assert.Equal(t, int64(200), *rules[len(rules)-1].Minor)
	assert.Equal(t, int64(3), *rules[len(rules)-2].Minor, "--device's rule")

	o = options(t)
	o.Rootfs = testenv.Rootfs(t)
	o.Security.Privileged = true
	cfg, err = generate(t, o, "true")
	require.NoError(t, err)
	s = cfg.Spec
	assert.Nil(t, s.Linux.Seccomp)
	assert.Empty(t, s.Linux.MaskedPaths)
	assert.Empty(t, s.Linux.ReadonlyPaths)
	assert.Contains(t, s.Process.Capabilities.Effective, "CAP_SYS_ADMIN")
	assert.Equal(t, "a", s.Linux.Resources.Devices[0].Type)

	if init, err := security.FindInit(); err == nil {
		o = options(t)
		o.Rootfs, o.Init = testenv.Rootfs(t), true
		cfg, err = generate(t, o, "sleep", "1")
		require.NoError(t, err)
		assert.Equal(t, init, cfg.Settings.InitPath, "--init: the host's tini")
		assert.Equal(t, []string{"/dev/init", "--", "sleep", "1"}, cfg.Spec.Process.Args)
		assert.Equal(t, []string{"sleep", "1"}, cfg.Command(), "the user's command, for inspect and ps")
		steps, err := engine.Steps(cfg)
		require.NoError(t, err)
		assert.Equal(t, "pid", steps[1].Name())
		assert.False(t, steps[1].(*pid.Step).Init, "not stage 02's init as well")
	}

	o = options(t)
	o.Rootfs = testenv.Rootfs(t)
	o.Security.SecurityOpt = []string{"seccomp=unconfined"}
	cfg, err = generate(t, o, "true")
	require.NoError(t, err)
	assert.Nil(t, cfg.Spec.Linux.Seccomp)
	assert.Equal(t, security.DefaultCapabilities(), cfg.Spec.Process.Capabilities.Effective, "only the filter goes")
}
