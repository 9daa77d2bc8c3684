//go:build linux

package cli_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/internal/testenv"
)

// Issue 14: `berth run` with no flags is not host root. The checks run
// 09-full/security's breakcheck program (a static binary copied into a
// copy of the busybox tree) and read /proc/self/status, as a learner
// would. None of them changes the host, even where it is allowed (under
// --privileged): breakcheck writes only the container's own domainname
// back unchanged, opens core_pattern for writing without writing, asks
// adjtimex for an invalid tick, offers the kernel an empty file as a
// module, opens /dev/net/tun without making an interface, and only reads
// the kernel log.

var breakcheckBuild struct {
	once sync.Once
	path string
	err  error
}

// breakcheck builds the program once ($BERTH_BREAKCHECK in the VM, where
// there is no go) into a directory any user may read.
func breakcheck(t *testing.T) string {
	t.Helper()
	b := &breakcheckBuild
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "berth-breakcheck-")
		if err == nil {
			err = os.Chmod(dir, 0o755)
		}
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, "breakcheck")
		var cmd *exec.Cmd
		if p := os.Getenv("BERTH_BREAKCHECK"); p != "" {
			cmd = exec.Command("cp", p, b.path)
		} else {
			cmd = exec.Command("go", "build", "-o", b.path, "./09-full/security/internal/breakcheck")
			cmd.Dir = testenv.RepoRoot()
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("%v: %v\n%s", cmd.Args, err, out)
		}
	})
	require.NoError(t, b.err)
	return b.path
}

// withBreakcheck puts breakcheck into /bin of root, owned by uid:gid.
func withBreakcheck(t *testing.T, root string, uid, gid int) {
	t.Helper()
	body, err := os.ReadFile(breakcheck(t))
	require.NoError(t, err)
	dst := filepath.Join(root, "bin", "breakcheck")
	require.NoError(t, os.WriteFile(dst, body, 0o755))
	require.NoError(t, os.Chown(dst, uid, gid))
}

// dockerCaps is Docker's default set (CHOWN DAC_OVERRIDE FSETID FOWNER
// MKNOD NET_RAW SETGID SETUID SETFCAP SETPCAP NET_BIND_SERVICE SYS_CHROOT
// KILL AUDIT_WRITE) as /proc/self/status prints it.
const dockerCaps = "00000000a80425fb"

const statusCmd = "grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status; id -u"

// statusOf reads the Cap*, NoNewPrivs and Seccomp lines (and id -u as
// "uid") of statusCmd's output.
func statusOf(t *testing.T, r testenv.Result) map[string]string {
	t.Helper()
	require.Equal(t, 0, r.Code, r.String())
	out := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			out[k] = strings.TrimSpace(v)
		} else {
			out["uid"] = l
		}
	}
	return out
}

// verdictsOf reads breakcheck -k: check -> allowed, refused or n/a.
func verdictsOf(t *testing.T, r testenv.Result) map[string]string {
	t.Helper()
	require.Equal(t, 0, r.Code, r.String())
	out := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		f := strings.Fields(l)
		require.GreaterOrEqual(t, len(f), 2, "odd breakcheck line %q", l)
		out[f[0]] = strings.TrimSuffix(f[1], ":")
	}
	return out
}

// refusedByDefault are breakcheck's checks a default container must
// fail, each with the defence that stops it.
var refusedByDefault = map[string]string{
	"sysctl":       "read-only /proc/sys",
	"core_pattern": "read-only /proc/sys",
	"timer_list":   "masked path",
	"mount_tmpfs":  "no CAP_SYS_ADMIN, seccomp",
	"mount_proc":   "no CAP_SYS_ADMIN, seccomp",
	"userns_mount": "seccomp (unshare of a user namespace)",
	"tun":          "device cgroup",
	"kmsg":         "device cgroup, no CAP_SYSLOG",
	"syslog":       "no CAP_SYSLOG, seccomp",
	"adjtimex":     "no CAP_SYS_TIME",
	"module":       "no CAP_SYS_MODULE, seccomp",
	"keyctl":       "seccomp",
	"shocker":      "no CAP_DAC_READ_SEARCH, seccomp",
	"personality":  "seccomp (argument filter)",
}

// hostCaps is what berth itself may give (--privileged, --cap-add ALL):
// the test's bounding set, cut at the kernel's last capability.
func hostCaps(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	require.NoError(t, err)
	last, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	st, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	m := regexp.MustCompile(`CapBnd:\s+([0-9a-f]+)`).FindSubmatch(st)
	require.NotNil(t, m)
	bnd, err := strconv.ParseUint(string(m[1]), 16, 64)
	require.NoError(t, err)
	return fmt.Sprintf("%016x", bnd&(uint64(1)<<(last+1)-1))
}

func TestSecurityDefaults(t *testing.T) {
	h := newHost(t)
	root := testenv.CopyRootfs(t)
	withBreakcheck(t, root, 0, 0)
	run := func(t *testing.T, args ...string) testenv.Result {
		t.Helper()
		return h.run(append([]string{"run", "--rm", "--rootfs", root, "--network", "none"}, args...)...)
	}

	t.Run("status", func(t *testing.T) {
		st := statusOf(t, run(t, "sh", "-c", statusCmd))
		assert.Equal(t, dockerCaps, st["CapEff"], "effective: Docker's 14 capabilities")
		assert.Equal(t, dockerCaps, st["CapPrm"], "permitted")
		assert.Equal(t, dockerCaps, st["CapBnd"], "bounding: no execve gets more")
		assert.Equal(t, "0000000000000000", st["CapInh"])
		assert.Equal(t, "0000000000000000", st["CapAmb"])
		assert.Equal(t, "0", st["NoNewPrivs"], "off by default, as in Docker: setuid programs work")
		assert.Equal(t, "2", st["Seccomp"], "a seccomp filter")
		assert.Equal(t, "0", st["uid"])
	})

	t.Run("breakcheck", func(t *testing.T) {
		r := run(t, "breakcheck", "-k")
		v := verdictsOf(t, r)
		for check, why := range refusedByDefault {
			if v[check] == "n/a" {
				t.Logf("%s: not applicable on this machine", check)
				continue
			}
			assert.Equal(t, "refused", v[check], "%s must be refused (%s)", check, why)
		}
		assert.Contains(t, r.Stdout, "nosys refused: function not implemented (ENOSYS)", "an unknown call: ENOSYS, so a C library falls back")
		assert.Contains(t, r.Stdout, "keyctl refused: operation not permitted (EPERM)", "a filtered call: EPERM")
	})

	t.Run("the keyring is the container's own", func(t *testing.T) {
		// With the filter off, keyctl answers: the session keyring is one
		// berth made for the container, not the caller's.
		r := h.run("run", "--name", "keys", "--rootfs", root, "--network", "none",
			"--security-opt", "seccomp=unconfined", "breakcheck", "-k", "keyctl")
		require.Equal(t, 0, r.Code, r.String())
		id := h.inspect("keys", "{{.Id}}")
		assert.Regexp(t, `^keyctl allowed: keyring \d+ "_ses\.berth\.`+id+`"\n$`, r.Stdout)
		h.ok("rm", "keys")
	})

	t.Run("cap-add and cap-drop", func(t *testing.T) {
		for _, tc := range []struct {
			flags     []string
			eff, bnd  string
			uid       string
			permitted string
		}{
			{[]string{"--cap-add", "NET_ADMIN"}, "00000000a80435fb", "00000000a80435fb", "0", ""},
			{[]string{"--cap-add", "cap_sys_time", "--cap-drop", "CHOWN"}, "00000000aa0425fa", "00000000aa0425fa", "0", ""},
			{[]string{"--cap-drop", "ALL"}, "0000000000000000", "0000000000000000", "0", ""},
			{[]string{"--cap-drop", "ALL", "--cap-add", "NET_BIND_SERVICE"}, "0000000000000400", "0000000000000400", "0", ""},
			{[]string{"--user", "1000"}, "0000000000000000", dockerCaps, "1000", "0000000000000000"},
			{[]string{"--cap-drop", "ALL", "--user", "1000:1000"}, "0000000000000000", "0000000000000000", "1000", "0000000000000000"},
			{[]string{"--cap-add", "ALL"}, hostCaps(t), hostCaps(t), "0", ""},
		} {
			t.Run(strings.Join(tc.flags, " "), func(t *testing.T) {
				st := statusOf(t, run(t, append(tc.flags, "sh", "-c", statusCmd)...))
				assert.Equal(t, tc.eff, st["CapEff"])
				assert.Equal(t, tc.bnd, st["CapBnd"])
				assert.Equal(t, tc.uid, st["uid"])
				if tc.permitted != "" {
					assert.Equal(t, tc.permitted, st["CapPrm"])
				}
				assert.Equal(t, "2", st["Seccomp"])
			})
		}
	})

	t.Run("one flag reopens what it guards", func(t *testing.T) {
		// Each flag gives back one defence, checked by doing what it
		// guards (breakcheck's acts; each is harmless: see its comments),
		// and what another defence still holds stays refused.
		for _, tc := range []struct {
			flags            []string
			allowed, refused []string
		}{
			{[]string{"--security-opt", "systempaths=unconfined"}, []string{"sysctl", "core_pattern", "timer_list"}, []string{"mount_tmpfs", "keyctl"}},
			{[]string{"--cap-add", "SYS_ADMIN"}, []string{"mount_tmpfs", "mount_proc", "userns_mount"}, []string{"core_pattern", "keyctl", "adjtimex"}},
			{[]string{"--security-opt", "seccomp=unconfined"}, []string{"keyctl", "personality", "userns_mount"}, []string{"mount_tmpfs", "adjtimex", "syslog"}},
			{[]string{"--cap-add", "SYS_TIME"}, []string{"adjtimex"}, []string{"mount_tmpfs", "syslog"}},
			{[]string{"--cap-add", "SYSLOG"}, []string{"syslog"}, []string{"kmsg", "adjtimex"}},
			{[]string{"--cap-add", "SYSLOG", "--device-cgroup-rule", "c 1:11 r"}, []string{"kmsg", "syslog"}, []string{"tun"}},
			{[]string{"--cap-add", "SYS_MODULE"}, []string{"module"}, []string{"adjtimex"}},
			{[]string{"--cap-add", "DAC_READ_SEARCH"}, []string{"shocker"}, []string{"adjtimex"}},
		} {
			t.Run(strings.Join(tc.flags, " "), func(t *testing.T) {
				args := append(append(tc.flags, "breakcheck", "-k"), tc.allowed...)
				v := verdictsOf(t, run(t, append(args, tc.refused...)...))
				for _, c := range tc.allowed {
					if v[c] == "n/a" {
						t.Logf("%s: not applicable on this machine", c)
						continue
					}
					assert.Equal(t, "allowed", v[c], "%v reopens %s", tc.flags, c)
				}
				for _, c := range tc.refused {
					assert.Equal(t, "refused", v[c], "%v leaves %s refused (%s)", tc.flags, c, refusedByDefault[c])
				}
			})
		}
	})

	t.Run("seccomp=unconfined", func(t *testing.T) {
		st := statusOf(t, run(t, "--security-opt", "seccomp=unconfined", "sh", "-c", statusCmd))
		assert.Equal(t, "0", st["Seccomp"], "no filter")
		assert.Equal(t, dockerCaps, st["CapEff"], "the capabilities stay")
		v := verdictsOf(t, run(t, "--security-opt", "seccomp=unconfined", "breakcheck", "-k", "keyctl", "personality", "adjtimex", "nosys"))
		assert.Equal(t, "allowed", v["keyctl"])
		assert.Equal(t, "allowed", v["personality"])
		assert.Equal(t, "refused", v["adjtimex"], "no CAP_SYS_TIME still")
	})

	t.Run("seccomp=PROFILE.json", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "nomkdir.json")
		require.NoError(t, os.WriteFile(p, []byte(`{"defaultAction": "SCMP_ACT_ALLOW",
			"syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}`), 0o644))
		r := run(t, "--security-opt", "seccomp="+p, "sh", "-c", "mkdir /tmp/d; echo $?; touch /tmp/f && echo touched")
		require.Equal(t, 0, r.Code, r.String())
		assert.Equal(t, "1\ntouched\n", r.Stdout)
		assert.Contains(t, r.Stderr, "Operation not permitted")
	})

	t.Run("no-new-privileges", func(t *testing.T) {
		st := statusOf(t, run(t, "--security-opt", "no-new-privileges", "sh", "-c", statusCmd))
		assert.Equal(t, "1", st["NoNewPrivs"])
		assert.Equal(t, "2", st["Seccomp"])
	})

	t.Run("apparmor and label as Docker", func(t *testing.T) {
		// As Docker's daemon: on a host without AppArmor (or SELinux) the
		// option is taken and nothing applied. Where AppArmor is on (the
		// VM's Debian kernel), berth cannot confine as asked: refused.
		r := run(t, "--security-opt", "apparmor=docker-default", "--security-opt", "label=disable", "echo", "ran")
		if b, _ := os.ReadFile("/sys/module/apparmor/parameters/enabled"); strings.HasPrefix(string(b), "Y") {
			assert.Equal(t, 125, r.Code, r.String())
			assert.Contains(t, r.Stderr, "this host runs AppArmor and berth cannot load profiles")
			r = run(t, "--security-opt", "apparmor=unconfined", "--security-opt", "label=disable", "echo", "ran")
		}
		require.Equal(t, 0, r.Code, r.String())
		assert.Equal(t, "ran\n", r.Stdout)
	})

	t.Run("privileged", func(t *testing.T) {
		st := statusOf(t, run(t, "--privileged", "sh", "-c", statusCmd))
		assert.Equal(t, hostCaps(t), st["CapEff"], "every capability berth has")
		assert.Equal(t, "0", st["Seccomp"])
		// Every act a default container is refused, done: each succeeds.
		// None changes the host (breakcheck writes only the container's
		// own domainname back unchanged, opens core_pattern without
		// writing, asks adjtimex for an invalid tick, offers an empty file
		// as a module, reads the kernel log without clearing it).
		v := verdictsOf(t, run(t, "--privileged", "breakcheck", "-k"))
		for check := range refusedByDefault {
			if v[check] == "n/a" {
				t.Logf("%s: not applicable on this machine", check)
				continue
			}
			assert.Equal(t, "allowed", v[check], "--privileged allows %s", check)
		}
		r := run(t, "--privileged", "sh", "-c", "grep -E ' /(proc/sys|sys) ' /proc/self/mountinfo | awk '{print $5, $6}'")
		require.Equal(t, 0, r.Code, r.String())
		assert.NotContains(t, r.Stdout, "/proc/sys", "no read-only /proc/sys")
		assert.Regexp(t, `(?m)^/sys rw,`, r.Stdout, "/sys read-write (not written: it is the host's)")
	})

	t.Run("read-only system paths", func(t *testing.T) {
		r := run(t, "sh", "-c", "grep -E ' /(proc/sys|proc/sysrq-trigger|sys|sys/fs/cgroup) ' /proc/self/mountinfo | awk '{print $5, $6}'")
		require.Equal(t, 0, r.Code, r.String())
		for _, p := range []string{"/proc/sys", "/sys", "/sys/fs/cgroup"} {
			assert.Regexp(t, `(?m)^`+p+` ro,`, r.Stdout, "%s is read-only", p)
		}
	})

	t.Run("devices", func(t *testing.T) {
		if _, err := os.Stat("/dev/net/tun"); err != nil {
			t.Skip("this machine has no /dev/net/tun to give")
		}
		v := verdictsOf(t, run(t, "--device", "/dev/net/tun", "breakcheck", "-k", "tun", "kmsg"))
		assert.Equal(t, "allowed", v["tun"], "--device adds the node and its rule")
		assert.Equal(t, "refused", v["kmsg"], "and nothing else")
		r := run(t, "--device", "/dev/net/tun:/dev/mytun:r", "sh", "-c", "ls -l /dev/mytun; cat /dev/mytun")
		assert.Contains(t, r.Stdout, "10,")
		assert.Contains(t, r.Stderr, "File descriptor in bad state", "opened for reading (EBADFD: no interface attached)")
		v = verdictsOf(t, run(t, "--device-cgroup-rule", "c 10:200 rwm", "breakcheck", "-k", "tun", "kmsg"))
		assert.Equal(t, "allowed", v["tun"], "the rule lets a node made with mknod open")
		assert.Equal(t, "refused", v["kmsg"])
	})

	t.Run("--init is tini, not berth's binary", func(t *testing.T) {
		if _, err := os.Stat("/usr/bin/tini-static"); err != nil {
			t.Skip("this host has no /usr/bin/tini-static (Debian's tini): --init is refused (TestInitWithoutTini)")
		}
		r := run(t, "--init", "breakcheck", "-k", "pid1")
		require.Equal(t, 0, r.Code, r.String())
		assert.Regexp(t, `^pid1 allowed: /dev/init, \d+ bytes\n$`, r.Stdout, "PID 1 is the bound tini")
		// Never write to it: it is the host's file.
		r = run(t, "--init", "sh", "-c", "awk '$5 == \"/dev/init\" {print $6}' /proc/self/mountinfo")
		require.Equal(t, 0, r.Code, r.String())
		assert.Regexp(t, `^ro(,|\n)`, r.Stdout, "bound read-only")
		id := h.ok(h.runArgs("-d", "--init", "sleep", "30")...)
		assert.Equal(t, "sleep [30] true", h.inspect(id, "{{.Path}} {{.Args}} {{.HostConfig.Init}}"), "the user's command, as Docker shows it")
		h.ok("rm", "-f", id)
	})

	t.Run("sysctl, ulimit, read-only", func(t *testing.T) {
		r := run(t, "--sysctl", "net.ipv4.ip_forward=1", "--ulimit", "nofile=100:200", "--read-only",
			"sh", "-c", "cat /proc/sys/net/ipv4/ip_forward; ulimit -n; ulimit -Hn; touch /x 2>/dev/null || echo ro; touch /dev/shm/x && echo shm")
		require.Equal(t, 0, r.Code, r.String())
		assert.Equal(t, "1\n100\n200\nro\nshm\n", r.Stdout)
	})
}

// Bad input: one line, exit 125, no container made.
func TestSecurityRefusals(t *testing.T) {
	h := newHost(t)
	notify := filepath.Join(t.TempDir(), "notify.json")
	require.NoError(t, os.WriteFile(notify, []byte(`{"defaultAction": "SCMP_ACT_NOTIFY"}`), 0o644))
	for _, tc := range []struct {
		flags []string
		msg   string
	}{
		{[]string{"--cap-add", "SYS_WIZARD"}, `unknown capability: "SYS_WIZARD"`},
		{[]string{"--cap-drop", "bogus"}, `unknown capability: "bogus"`},
		{[]string{"--sysctl", "kernel.core_pattern=|/tmp/x"}, "not namespaced"},
		{[]string{"--sysctl", "net/../../kernel/core_pattern=x"}, "invalid sysctl name"},
		{[]string{"--network", "host", "--sysctl", "net.ipv4.ip_forward=1"}, "private network namespace"},
		{[]string{"--security-opt", "seccomp=/nonexistent.json"}, "no such file"},
		{[]string{"--security-opt", "seccomp=" + notify}, "SCMP_ACT_NOTIFY"},
		{[]string{"--security-opt", "apparmor"}, "needs a profile"},
		{[]string{"--security-opt", "label=dsable"}, "want disable"},
		{[]string{"--security-opt", "frobnicate=1"}, "berth knows seccomp="},
		{[]string{"--ulimit", "nofile=10:5"}, "soft limit must be less"},
		{[]string{"--oom-score-adj", "5000"}, "out of range"},
		{[]string{"--device", "/dev/null:/etc/null"}, "under /dev"},
		{[]string{"--device", "/etc/passwd:/dev/passwd"}, "not a device node"},
		{[]string{"--device-cgroup-rule", "c 1:3"}, "--device-cgroup-rule"},
		{[]string{"--tmpfs", "/run:exec,bogus"}, `unknown option "bogus"`},
	} {
		t.Run(strings.Join(tc.flags, " "), func(t *testing.T) {
			r := h.run(h.runArgs("", append(tc.flags, "echo", "ran")...)...)
			assert.Equal(t, 125, r.Code, r.String())
			assert.Contains(t, r.Stderr, tc.msg)
			assert.Equal(t, 1, strings.Count(strings.TrimSpace(r.Stderr), "\n")+1, "one line: %q", r.Stderr)
			assert.Empty(t, r.Stdout)
			assert.Empty(t, h.ids(), "no container is made")
		})
	}
}

// Rootless: the container's root is root of a user namespace and holds
// every capability there; the defaults bring it down to Docker's set and
// load the same filter. --privileged stays inside the user namespace.
func TestRootlessSecurity(t *testing.T) {
	a := testenv.NewAccount(t, "berth09x", false)
	bin := a.Berth(t)
	root := a.Rootfs(t)
	withBreakcheck(t, root, a.UID, a.GID)
	run := func(t *testing.T, args ...string) testenv.Result {
		t.Helper()
		return a.Run(t, nil, bin, append([]string{"run", "--rm", "--rootfs", root, "--network", "none"}, args...)...)
	}

	t.Run("status", func(t *testing.T) {
		st := statusOf(t, run(t, "sh", "-c", statusCmd))
		assert.Equal(t, dockerCaps, st["CapEff"])
		assert.Equal(t, dockerCaps, st["CapBnd"])
		assert.Equal(t, "0000000000000000", st["CapAmb"])
		assert.Equal(t, "2", st["Seccomp"])
		assert.Equal(t, "0", st["uid"], "root inside")
	})

	t.Run("breakcheck", func(t *testing.T) {
		v := verdictsOf(t, run(t, "breakcheck", "-k"))
		for check, why := range refusedByDefault {
			if v[check] == "n/a" {
				continue
			}
			assert.Equal(t, "refused", v[check], "%s must be refused (%s)", check, why)
		}
	})

	t.Run("cap-drop ALL", func(t *testing.T) {
		st := statusOf(t, run(t, "--cap-drop", "ALL", "sh", "-c", statusCmd))
		assert.Equal(t, "0000000000000000", st["CapEff"])
		assert.Equal(t, "0000000000000000", st["CapBnd"])
	})

	t.Run("privileged is still a user namespace", func(t *testing.T) {
		r := run(t, "--privileged", "breakcheck", "-k")
		t.Logf("rootless --privileged:\n%s", r.Stdout)
		v := verdictsOf(t, r)
		// What its own namespaces let it do, done (all harmless: see
		// breakcheck's comments).
		for _, c := range []string{"mount_tmpfs", "mount_proc", "userns_mount", "keyctl", "personality"} {
			assert.Equal(t, "allowed", v[c], "%s: its own namespaces, or no filter", c)
		}
		assert.Equal(t, "refused", v["adjtimex"], "the clock belongs to the host's user namespace")
		assert.Equal(t, "refused", v["core_pattern"], "so does /proc/sys")
		assert.Equal(t, "refused", v["sysctl"], "even its own UTS namespace's domainname: the file is the host root's")
		assert.Equal(t, "refused", v["tun"], "no device nodes in a user namespace")
		assert.Equal(t, "refused", v["kmsg"], "no device nodes in a user namespace")
		assert.Equal(t, "refused", v["syslog"])
	})

	t.Run("one flag reopens what it guards", func(t *testing.T) {
		v := verdictsOf(t, run(t, "--security-opt", "seccomp=unconfined", "breakcheck", "-k", "keyctl", "personality", "mount_tmpfs"))
		assert.Equal(t, "allowed", v["keyctl"], "no filter")
		assert.Equal(t, "allowed", v["personality"], "no filter")
		assert.Equal(t, "refused", v["mount_tmpfs"], "no CAP_SYS_ADMIN")
		v = verdictsOf(t, run(t, "--cap-add", "SYS_ADMIN", "breakcheck", "-k", "mount_tmpfs", "mount_proc", "keyctl"))
		assert.Equal(t, "allowed", v["mount_tmpfs"], "CAP_SYS_ADMIN in its own user namespace")
		assert.Equal(t, "allowed", v["mount_proc"], "of its own PID namespace")
		assert.Equal(t, "refused", v["keyctl"], "the filter still holds")
	})

	t.Run("device-cgroup-rule needs root", func(t *testing.T) {
		r := run(t, "--device-cgroup-rule", "c 10:200 rwm", "true")
		assert.Equal(t, 125, r.Code, r.String())
		assert.Contains(t, r.Stderr, "needs root")
	})
}
