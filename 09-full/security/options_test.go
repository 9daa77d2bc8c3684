//go:build linux

package security

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// every is the mask of capabilities 0-40, a kernel's whole set.
const every = uint64(1)<<41 - 1

func TestTweakCapabilities(t *testing.T) {
	def := DefaultCapabilities()
	without := func(list []string, drop ...string) []string {
		return slices.DeleteFunc(slices.Clone(list), func(c string) bool { return slices.Contains(drop, c) })
	}
	for _, tc := range []struct {
		name      string
		add, drop []string
		avail     uint64
		want      []string
		err       string
	}{
		{"nothing", nil, nil, every, def, ""},
		{"add, any spelling", []string{"net_admin", "CAP_SYS_TIME", "Sys_Ptrace"}, nil, every,
			append(slices.Clone(def), "CAP_NET_ADMIN", "CAP_SYS_TIME", "CAP_SYS_PTRACE"), ""},
		{"drop", nil, []string{"chown", "CAP_NET_RAW"}, every, without(def, "CAP_CHOWN", "CAP_NET_RAW"), ""},
		{"drop ALL, add one", []string{"NET_BIND_SERVICE"}, []string{"all"}, every, []string{"CAP_NET_BIND_SERVICE"}, ""},
		{"drop ALL", nil, []string{"ALL"}, every, []string{}, ""},
		{"add ALL, drop one", []string{"ALL"}, []string{"SYS_ADMIN"}, every, without(capNames, "CAP_SYS_ADMIN"), ""},
		{"add and drop the same: added", []string{"CHOWN"}, []string{"CHOWN"}, every, append(without(def, "CAP_CHOWN"), "CAP_CHOWN"), ""},
		{"no duplicates", []string{"CHOWN", "chown"}, nil, every, def, ""},
		{"unknown", []string{"SYS_WIZARD"}, nil, every, nil, `unknown capability: "SYS_WIZARD"`},
		{"unknown drop", nil, []string{"CAP_FOO"}, every, nil, `unknown capability: "CAP_FOO"`},
		{"empty", []string{""}, nil, every, nil, "unknown capability"},
		{"not available", []string{"CHECKPOINT_RESTORE"}, nil, every >> 1, nil, "CAP_CHECKPOINT_RESTORE is not available"},
		{"ALL is what is available", []string{"ALL"}, nil, 1<<0 | 1<<21, []string{"CAP_CHOWN", "CAP_SYS_ADMIN"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := TweakCapabilities(def, tc.add, tc.drop, tc.avail)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				assert.NotContains(t, err.Error(), "\n", "one line")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestMasks(t *testing.T) {
	m, err := Mask(DefaultCapabilities())
	require.NoError(t, err)
	assert.Equal(t, uint64(0xa80425fb), m, "Docker's set, as CapEff shows it")
	assert.Equal(t, []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
		"CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SYS_CHROOT", "CAP_MKNOD",
		"CAP_AUDIT_WRITE", "CAP_SETFCAP"}, Names(m), "capsh --decode order: by number")
	assert.Equal(t, uint64(0x1ffffffffff), Available(40, ^uint64(0)))
	assert.Equal(t, uint64(0x1fffeffffff), Available(40, 0x1fffeffffff), "berth itself without CAP_SYS_RESOURCE")
	assert.Equal(t, uint64(0xffffffffff), Available(39, ^uint64(0)), "an older kernel")
	for i, n := range capNames {
		c, ok := CapNumber(n)
		assert.True(t, ok)
		assert.Equal(t, i, c)
	}
}

func TestSetCapabilities(t *testing.T) {
	spec := newSpec()
	SetCapabilities(spec, []string{"CAP_CHOWN"})
	assert.Equal(t, &specs.LinuxCapabilities{Bounding: []string{"CAP_CHOWN"}, Permitted: []string{"CAP_CHOWN"}, Effective: []string{"CAP_CHOWN"}},
		spec.Process.Capabilities, "root: bounding, permitted, effective")
	spec.Process.User.UID = 1000
	SetCapabilities(spec, []string{"CAP_CHOWN"})
	assert.Equal(t, &specs.LinuxCapabilities{Bounding: []string{"CAP_CHOWN"}}, spec.Process.Capabilities,
		"another user: bounding only, as after an execve")
}

func newSpec() *specs.Spec {
	return &specs.Spec{
		Process: &specs.Process{Args: []string{"sh"}},
		Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{
			{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
			{Type: specs.MountNamespace}, {Type: specs.NetworkNamespace},
		}},
		Mounts: DefaultMounts(),
	}
}

// fakeHost has a few device nodes and a profile file.
func fakeHost() Host {
	nodes := map[string]DeviceInfo{
		"/dev/sda":        {Type: "b", Major: 8, Minor: 0, Mode: 0o660, GID: 6},
		"/dev/kmsg":       {Type: "c", Major: 1, Minor: 11, Mode: 0o644},
		"/dev/net":        {Dir: true},
		"/dev/net/tun":    {Type: "c", Major: 10, Minor: 200, Mode: 0o666},
		"/dev/null":       {Type: "c", Major: 1, Minor: 3, Mode: 0o666},
		"/etc/passwd":     {Mode: 0o644},
		"/dev/dri":        {Dir: true},
		"/dev/dri/card0":  {Type: "c", Major: 226, Minor: 0, Mode: 0o660},
		"/dev/dri/render": {Type: "c", Major: 226, Minor: 128, Mode: 0o666},
	}
	return Host{
		Caps: every,
		Stat: func(p string) (DeviceInfo, error) {
			d, ok := nodes[p]
			if !ok {
				return d, os.ErrNotExist
			}
			return d, nil
		},
		Walk: func(dir string) ([]string, error) {
			var out []string
			for p, d := range nodes {
				if strings.HasPrefix(p, dir+"/") && d.Type != "" {
					out = append(out, p)
				}
			}
			slices.Sort(out)
			return out, nil
		},
		ReadFile: func(p string) ([]byte, error) {
			if p == "/profiles/nomkdir.json" {
				return []byte(`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}`), nil
			}
			if p == "/profiles/broken.json" {
				return []byte(`{"defaultAction": `), nil
			}
			return nil, os.ErrNotExist
		},
	}
}

func apply(t *testing.T, o Options) (*specs.Spec, error) {
	t.Helper()
	spec := newSpec()
	return spec, Apply(spec, o, fakeHost())
}

func mount(spec *specs.Spec, dst string) *specs.Mount {
	for i := range spec.Mounts {
		if spec.Mounts[i].Destination == dst {
			return &spec.Mounts[i]
		}
	}
	return nil
}

func TestApplyDefaults(t *testing.T) {
	spec, err := apply(t, Options{})
	require.NoError(t, err)
	assert.Equal(t, DefaultCapabilities(), spec.Process.Capabilities.Effective)
	assert.Empty(t, spec.Process.Capabilities.Inheritable)
	assert.Empty(t, spec.Process.Capabilities.Ambient)
	assert.False(t, spec.Process.NoNewPrivileges)
	assert.Contains(t, spec.Linux.MaskedPaths, "/proc/kcore")
	assert.Contains(t, spec.Linux.ReadonlyPaths, "/proc/sys")
	require.NotEmpty(t, spec.Linux.Resources.Devices)
	first := spec.Linux.Resources.Devices[0]
	assert.False(t, first.Allow, "deny all first")
	assert.Equal(t, "a", first.Type)
	require.NotNil(t, spec.Linux.Seccomp)
	assert.Equal(t, specs.ActErrno, spec.Linux.Seccomp.DefaultAction)
	assert.Contains(t, mount(spec, "/sys").Options, "ro")
	assert.Contains(t, mount(spec, "/sys/fs/cgroup").Options, "ro")
	assert.Nil(t, spec.Process.Rlimits)
	assert.Nil(t, spec.Process.OOMScoreAdj)
	assert.Equal(t, []string{"sh"}, spec.Process.Args)
}

func seccompNames(s *specs.LinuxSeccomp, act specs.LinuxSeccompAction) []string {
	var out []string
	for _, sc := range s.Syscalls {
		if sc.Action == act {
			out = append(out, sc.Names...)
		}
	}
	return out
}

func TestApplyFlags(t *testing.T) {
	t.Run("privileged", func(t *testing.T) {
		spec, err := apply(t, Options{Privileged: true, CapDrop: []string{"CHOWN"}})
		require.NoError(t, err)
		assert.Equal(t, capNames, spec.Process.Capabilities.Effective, "every capability; --cap-drop is ignored, as in Docker")
		assert.Nil(t, spec.Linux.Seccomp)
		assert.Empty(t, spec.Linux.MaskedPaths)
		assert.Empty(t, spec.Linux.ReadonlyPaths)
		require.Len(t, spec.Linux.Resources.Devices, 1)
		assert.True(t, spec.Linux.Resources.Devices[0].Allow)
		assert.Equal(t, "a", spec.Linux.Resources.Devices[0].Type)
		var paths []string
		for _, d := range spec.Linux.Devices {
			paths = append(paths, d.Path)
		}
		assert.Contains(t, paths, "/dev/sda")
		assert.Contains(t, paths, "/dev/net/tun")
		assert.Contains(t, mount(spec, "/sys").Options, "rw")
		assert.NotContains(t, mount(spec, "/sys").Options, "ro")
		assert.Contains(t, mount(spec, "/sys/fs/cgroup").Options, "rw")
	})
	t.Run("cap-add SYS_ADMIN widens the default profile", func(t *testing.T) {
		plain, err := apply(t, Options{})
		require.NoError(t, err)
		admin, err := apply(t, Options{CapAdd: []string{"SYS_ADMIN"}})
		require.NoError(t, err)
		assert.NotContains(t, seccompNames(plain.Linux.Seccomp, specs.ActAllow), "mount")
		assert.Contains(t, seccompNames(admin.Linux.Seccomp, specs.ActAllow), "mount")
	})
	t.Run("seccomp=unconfined", func(t *testing.T) {
		spec, err := apply(t, Options{SecurityOpt: []string{"seccomp=unconfined"}})
		require.NoError(t, err)
		assert.Nil(t, spec.Linux.Seccomp)
		assert.Equal(t, DefaultCapabilities(), spec.Process.Capabilities.Bounding, "capabilities unchanged")
	})
	t.Run("seccomp=PROFILE", func(t *testing.T) {
		spec, err := apply(t, Options{SecurityOpt: []string{"seccomp:/profiles/nomkdir.json"}})
		require.NoError(t, err)
		assert.Equal(t, specs.ActAllow, spec.Linux.Seccomp.DefaultAction)
		assert.Equal(t, []string{"mkdir", "mkdirat"}, seccompNames(spec.Linux.Seccomp, specs.ActErrno))
	})
	for _, tc := range []struct {
		opt string
		nnp bool
	}{{"no-new-privileges", true}, {"no-new-privileges=true", true}, {"no-new-privileges:true", true}, {"no-new-privileges=false", false}} {
		t.Run(tc.opt, func(t *testing.T) {
			spec, err := apply(t, Options{SecurityOpt: []string{tc.opt}})
			require.NoError(t, err)
			assert.Equal(t, tc.nnp, spec.Process.NoNewPrivileges)
		})
	}
	t.Run("systempaths=unconfined", func(t *testing.T) {
		spec, err := apply(t, Options{SecurityOpt: []string{"systempaths=unconfined"}})
		require.NoError(t, err)
		assert.Empty(t, spec.Linux.MaskedPaths)
		assert.Empty(t, spec.Linux.ReadonlyPaths)
		assert.NotNil(t, spec.Linux.Seccomp)
	})
	t.Run("the rest", func(t *testing.T) {
		adj := -500
		spec, err := apply(t, Options{Ulimits: []string{"nofile=1024:2048", "core=-1", "nofile=10"}, OOMScoreAdj: &adj,
			Sysctls: []string{"net.ipv4.ip_forward=1", "kernel.shmmax=1000", "fs.mqueue.msg_max=20"},
			ShmSize: "1g", Tmpfs: []string{"/run", "/scratch:exec,size=64m,mode=1770,uid=1000"}})
		require.NoError(t, err)
		assert.Equal(t, []specs.POSIXRlimit{{Type: "RLIMIT_CORE", Hard: ^uint64(0), Soft: ^uint64(0)}, {Type: "RLIMIT_NOFILE", Hard: 10, Soft: 10}},
			spec.Process.Rlimits, "-1 is unlimited; a second nofile replaces the first")
		assert.Equal(t, -500, *spec.Process.OOMScoreAdj)
		assert.Equal(t, map[string]string{"net.ipv4.ip_forward": "1", "kernel.shmmax": "1000", "fs.mqueue.msg_max": "20"}, spec.Linux.Sysctl)
		assert.Contains(t, mount(spec, "/dev/shm").Options, "size=1073741824")
		assert.NotContains(t, mount(spec, "/dev/shm").Options, "size=65536k")
		assert.Equal(t, []string{"noexec", "nosuid", "nodev"}, mount(spec, "/run").Options)
		assert.Equal(t, []string{"nosuid", "nodev", "exec", "size=67108864", "mode=1770", "uid=1000"}, mount(spec, "/scratch").Options)
	})
}

func TestDevices(t *testing.T) {
	for _, tc := range []struct {
		arg   string
		paths []string
		rules []string
		err   string
	}{
		{"/dev/sda", []string{"/dev/sda"}, []string{"b 8:0 rwm"}, ""},
		{"/dev/sda:/dev/xvda", []string{"/dev/xvda"}, []string{"b 8:0 rwm"}, ""},
		{"/dev/sda:r", []string{"/dev/sda"}, []string{"b 8:0 r"}, ""},
		{"/dev/sda:/dev/xvda:rw", []string{"/dev/xvda"}, []string{"b 8:0 rw"}, ""},
		{"/dev/dri", []string{"/dev/dri/card0", "/dev/dri/render"}, []string{"c 226:0 rwm", "c 226:128 rwm"}, ""},
		{"/dev/dri:/dev/gpu", []string{"/dev/gpu/card0", "/dev/gpu/render"}, []string{"c 226:0 rwm", "c 226:128 rwm"}, ""},
		{"/dev/sda:/dev/xvda:rwx", nil, nil, `permissions "rwx"`},
		{"/dev/sda:/dev/xvda:rr", nil, nil, `permissions "rr"`},
		{"/dev/sda:/etc/shadow", nil, nil, "under /dev"},
		{"/dev/sda:/dev/../etc/shadow", nil, nil, "under /dev"},
		{"sda", nil, nil, "absolute"},
		{"/dev/nope", nil, nil, "/dev/nope"},
		{"/etc/passwd:/dev/passwd", nil, nil, "not a device node"},
		{"/a:/dev/b:r:x", nil, nil, "HOST[:CONTAINER[:PERMS]]"},
	} {
		t.Run(tc.arg, func(t *testing.T) {
			spec, err := apply(t, Options{Devices: []string{tc.arg}})
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			var paths, rules []string
			for _, d := range spec.Linux.Devices {
				paths = append(paths, d.Path)
			}
			n := len(DeviceRules())
			for _, r := range spec.Linux.Resources.Devices[n:] {
				rules = append(rules, r.Type+" "+itoa(*r.Major)+":"+itoa(*r.Minor)+" "+r.Access)
			}
			assert.Equal(t, tc.paths, paths)
			assert.Equal(t, tc.rules, rules)
		})
	}
	spec, err := apply(t, Options{Devices: []string{"/dev/sda"}})
	require.NoError(t, err)
	d := spec.Linux.Devices[0]
	assert.Equal(t, os.FileMode(0o660), *d.FileMode, "the host node's mode and owner")
	assert.Equal(t, uint32(6), *d.GID)
}

func itoa(n int64) string {
	if n < 0 {
		return "*"
	}
	return strconv.FormatInt(n, 10)
}

func TestSysctlRules(t *testing.T) {
	spec := newSpec()
	hostNet := newSpec()
	hostNet.Linux.Namespaces = slices.DeleteFunc(hostNet.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.NetworkNamespace })
	for _, tc := range []struct {
		key  string
		spec *specs.Spec
		err  string
	}{
		{"net.ipv4.ip_forward", spec, ""},
		{"net.core.somaxconn", spec, ""},
		{"kernel.shmmax", spec, ""},
		{"kernel.msgmnb", spec, ""},
		{"kernel.sem", spec, ""},
		{"fs.mqueue.queues_max", spec, ""},
		{"kernel.domainname", spec, ""},
		{"net.ipv4.ip_forward", hostNet, "private network namespace"},
		{"kernel.core_pattern", spec, "not namespaced"},
		{"vm.swappiness", spec, "not namespaced"},
		{"kernel.hostname", spec, "--hostname"},
		{"kernel.shmmaxx", spec, "not namespaced"},
		{"net..ipv4", spec, "invalid sysctl name"},
		{"net/ipv4/ip_forward", spec, "invalid sysctl name"},
		{"net.ipv4.conf.../../../kernel.core_pattern", spec, "invalid sysctl name"},
		{"net.ipv4.ip_forward\n", spec, "invalid sysctl name"},
		{"", spec, "invalid sysctl name"},
	} {
		err := CheckSysctl(tc.spec, tc.key)
		if tc.err == "" {
			assert.NoError(t, err, tc.key)
			continue
		}
		if assert.Error(t, err, tc.key) {
			assert.Contains(t, err.Error(), tc.err, tc.key)
		}
	}
}

func TestRefusals(t *testing.T) {
	for _, tc := range []struct {
		o   Options
		err string
	}{
		{Options{SecurityOpt: []string{"seccomp"}}, "needs a value"},
		{Options{SecurityOpt: []string{"seccomp=/profiles/missing.json"}}, "does not exist"},
		{Options{SecurityOpt: []string{"seccomp=/profiles/broken.json"}}, "seccomp=/profiles/broken.json"},
		{Options{SecurityOpt: []string{"no-new-privileges=maybe"}}, "use true or false"},
		{Options{SecurityOpt: []string{"label=dsable"}}, "want disable, nested"},
		{Options{SecurityOpt: []string{"apparmor="}}, "needs a profile"},
		{Options{DeviceRules: []string{"c 10:200"}}, "three fields"},
		{Options{DeviceRules: []string{"x 10:200 rwm"}}, "type is a, b or c"},
		{Options{DeviceRules: []string{"c 10 rwm"}}, "MAJOR:MINOR"},
		{Options{DeviceRules: []string{"c -1:200 rwm"}}, "not a number or *"},
		{Options{DeviceRules: []string{"c 10:200 rwx"}}, "combination of r, w and m"},
		{Options{SecurityOpt: []string{"systempaths=confined"}}, "only value is unconfined"},
		{Options{SecurityOpt: []string{"frobnicate"}}, `"frobnicate"`},
		{Options{Ulimits: []string{"nofile"}}, "invalid ulimit argument"},
		{Options{Ulimits: []string{"bogus=1"}}, "invalid ulimit type"},
		{Options{Ulimits: []string{"nofile=-5"}}, "a limit is a number"},
		{Options{Sysctls: []string{"net.ipv4.ip_forward"}}, "KEY=VALUE"},
		{Options{ShmSize: "-1"}, "positive size"},
		{Options{ShmSize: "lots"}, "positive size"},
		{Options{Tmpfs: []string{"run"}}, "absolute"},
		{Options{Tmpfs: []string{"/"}}, "absolute and not /"},
		{Options{Tmpfs: []string{"/run", "/run/"}}, "given twice"},
		{Options{Tmpfs: []string{"/run:mode=999"}}, "octal"},
		{Options{Tmpfs: []string{"/run:size=0"}}, "positive size"},
	} {
		_, err := apply(t, tc.o)
		if assert.Error(t, err, "%+v", tc.o) {
			assert.Contains(t, err.Error(), tc.err)
			assert.NotContains(t, err.Error(), "\n")
		}
	}
}

func TestWithInit(t *testing.T) {
	spec := newSpec()
	spec.Process.Args = []string{"nginx", "-g", "daemon off;"}
	WithInit(spec, "/usr/bin/tini-static")
	WithInit(spec, "/usr/bin/tini-static") // twice changes nothing more
	assert.Equal(t, []string{"/dev/init", "--", "nginx", "-g", "daemon off;"}, spec.Process.Args)
	m := mount(spec, "/dev/init")
	require.NotNil(t, m)
	assert.Equal(t, "/usr/bin/tini-static", m.Source)
	assert.Contains(t, m.Options, "ro")
	n := 0
	for _, m := range spec.Mounts {
		if m.Destination == InitPath {
			n++
		}
	}
	assert.Equal(t, 1, n)
}

// --device-cgroup-rule adds a rule after the defaults, wildcards as -1.
func TestDeviceCgroupRule(t *testing.T) {
	spec, err := apply(t, Options{DeviceRules: []string{"c 10:200 rwm", "b 8:* r"}})
	require.NoError(t, err)
	rules := spec.Linux.Resources.Devices
	n := len(DeviceRules())
	require.Len(t, rules, n+2)
	r := rules[n]
	assert.True(t, r.Allow)
	assert.Equal(t, "c", r.Type)
	assert.Equal(t, int64(10), *r.Major)
	assert.Equal(t, int64(200), *r.Minor)
	assert.Equal(t, "rwm", r.Access)
	assert.Equal(t, int64(-1), *rules[n+1].Minor)
	assert.Equal(t, "r", rules[n+1].Access)
}

// apparmor= and label= do what Docker's daemon does where the module is
// off (nothing); where it is on, berth cannot confine as asked: refused.
func TestLSMOptions(t *testing.T) {
	for _, opt := range []string{"apparmor=docker-default", "apparmor=unconfined", "label=disable", "label=type:svirt_lxc_net_t", "label:level:s0:c100,c200"} {
		spec, err := apply(t, Options{SecurityOpt: []string{opt}})
		require.NoError(t, err, opt)
		assert.Empty(t, spec.Process.ApparmorProfile, opt)
		assert.Empty(t, spec.Process.SelinuxLabel, opt)
	}
	h := fakeHost()
	h.AppArmor, h.SELinux = true, true
	for opt, want := range map[string]string{
		"apparmor=docker-default": "this host runs AppArmor",
		"label=type:container_t":  "this host runs SELinux",
	} {
		err := Apply(newSpec(), Options{SecurityOpt: []string{opt}}, h)
		assert.ErrorContains(t, err, want, opt)
	}
	assert.NoError(t, Apply(newSpec(), Options{SecurityOpt: []string{"apparmor=unconfined", "label=disable"}}, h))
}
