//go:build linux

package security_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/09-full/security"
	"berth/internal/testenv"
)

// The integration tests run containers through internal/secrun (stages
// 01-06 and this package) on a copy of the busybox tree holding the
// static internal/breakcheck program, and read what a learner would:
// /proc/self/status, and breakcheck's "allowed"/"refused" lines.

var tools struct {
	once               sync.Once
	dir                string
	secrun, breakcheck string
	err                error
}

// build compiles the harness and the breakcheck program once per test
// process, into a directory any user may read (the rootless tests run
// them as an unprivileged user). In the VM, where there is no go, the
// harness passes them prebuilt ($BERTH_SECRUN, $BERTH_BREAKCHECK); they
// are copied into that directory all the same.
func build(t *testing.T) (secrun, breakcheck string) {
	t.Helper()
	tools.once.Do(func() {
		dir, err := os.MkdirTemp("", "berth-security-tools-")
		if err != nil {
			tools.err = err
			return
		}
		tools.dir = dir
		if err = os.Chmod(dir, 0o755); err != nil {
			tools.err = err
			return
		}
		tools.secrun, tools.breakcheck = filepath.Join(dir, "secrun"), filepath.Join(dir, "breakcheck")
		for _, b := range []struct{ out, pkg, env string }{
			{tools.secrun, "./09-full/security/internal/secrun", "BERTH_SECRUN"},
			{tools.breakcheck, "./09-full/security/internal/breakcheck", "BERTH_BREAKCHECK"},
		} {
			var cmd *exec.Cmd
			if p := os.Getenv(b.env); p != "" {
				cmd = exec.Command("cp", p, b.out)
			} else {
				cmd = exec.Command("go", "build", "-o", b.out, b.pkg)
				cmd.Dir = testenv.RepoRoot()
				cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			}
			if out, err := cmd.CombinedOutput(); err != nil {
				tools.err = fmt.Errorf("%v: %v\n%s", cmd.Args, err, out)
				return
			}
		}
	})
	if tools.err != nil {
		t.Fatal(tools.err)
	}
	return tools.secrun, tools.breakcheck
}

func TestMain(m *testing.M) {
	if os.Getenv(finalizeEnv) != "" {
		os.Exit(finalizeHelper())
	}
	code := m.Run()
	if tools.dir != "" {
		os.RemoveAll(tools.dir)
	}
	os.Exit(code)
}

// rootfs is a private copy of the busybox tree with breakcheck in /bin.
func rootfs(t *testing.T) string {
	t.Helper()
	_, breakcheck := build(t)
	r := testenv.CopyRootfs(t)
	copyFile(t, breakcheck, filepath.Join(r, "bin", "breakcheck"), 0o755)
	return r
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(src)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(dst, b, mode))
	require.NoError(t, os.Chmod(dst, mode))
}

// run runs secrun as root with --net none (no bridge on the host).
func run(t *testing.T, root string, args ...string) testenv.Result {
	t.Helper()
	secrun, _ := build(t)
	argv := append([]string{"run", "--net", "none", "--rootfs", root}, args...)
	return testenv.Run(t, testenv.StateEnv(t), secrun, argv...)
}

// verdicts parses breakcheck -k: check name -> "allowed" or "refused" or
// "n/a", and the whole lines for messages.
func verdicts(t *testing.T, r testenv.Result) map[string]string {
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

// status reads the capability, no_new_privs and seccomp lines of
// /proc/self/status, as the command in the container sees them.
func status(t *testing.T, r testenv.Result) map[string]string {
	t.Helper()
	require.Equal(t, 0, r.Code, r.String())
	out := map[string]string{}
	for _, l := range strings.Split(r.Stdout, "\n") {
		k, v, ok := strings.Cut(l, ":")
		switch {
		case ok:
			out[k] = strings.TrimSpace(v)
		case l != "":
			out["uid"] = l // id -u
		}
	}
	return out
}

const statusCmd = "grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status; id -u"

// dockerCaps is Docker's default set as /proc/self/status shows it.
const dockerCaps = "00000000a80425fb"

// mustBeRefused are the breakcheck checks the defaults stop, each by the
// defence named.
var mustBeRefused = map[string]string{
	"sysctl":       "read-only /proc/sys",
	"core_pattern": "read-only /proc/sys",
	"timer_list":   "masked path",
	"mount_tmpfs":  "no CAP_SYS_ADMIN, seccomp",
	"mount_proc":   "no CAP_SYS_ADMIN, seccomp",
	"userns_mount": "seccomp (clone/unshare of a user namespace)",
	"tun":          "device cgroup",
	"kmsg":         "device cgroup, no CAP_SYSLOG",
	"syslog":       "no CAP_SYSLOG, seccomp",
	"adjtimex":     "no CAP_SYS_TIME",
	"module":       "no CAP_SYS_MODULE, seccomp",
	"keyctl":       "seccomp",
	"shocker":      "no CAP_DAC_READ_SEARCH, seccomp",
	"personality":  "seccomp (argument filter)",
}

func TestDefaults(t *testing.T) {
	testenv.RequireRoot(t)
	root := rootfs(t)

	t.Run("status", func(t *testing.T) {
		st := status(t, run(t, root, "sh", "-c", statusCmd))
		assert.Equal(t, dockerCaps, st["CapEff"], "effective: Docker's 14 capabilities")
		assert.Equal(t, dockerCaps, st["CapPrm"], "permitted")
		assert.Equal(t, dockerCaps, st["CapBnd"], "bounding")
		assert.Equal(t, "0000000000000000", st["CapInh"], "inheritable")
		assert.Equal(t, "0000000000000000", st["CapAmb"], "ambient")
		assert.Equal(t, "0", st["NoNewPrivs"], "no_new_privs is off by default, as in Docker")
		assert.Equal(t, "2", st["Seccomp"], "a seccomp filter (mode 2)")
	})

	t.Run("breakcheck", func(t *testing.T) {
		v := verdicts(t, run(t, root, "breakcheck", "-k"))
		for check, why := range mustBeRefused {
			if v[check] == "n/a" {
				t.Logf("%s: not applicable on this machine", check)
				continue
			}
			assert.Equal(t, "refused", v[check], "%s must be refused (%s)", check, why)
		}
		assert.Equal(t, "refused", v["nosys"])
	})

	t.Run("/proc/sys is a read-only mount", func(t *testing.T) {
		r := run(t, root, "breakcheck", "-k", "sysctl")
		assert.Equal(t, "sysctl refused: read-only file system (EROFS)\n", r.Stdout)
	})

	t.Run("unknown call ENOSYS, filtered EPERM", func(t *testing.T) {
		r := run(t, root, "breakcheck", "-k", "nosys", "keyctl")
		assert.Contains(t, r.Stdout, "nosys refused: function not implemented (ENOSYS)")
		assert.Contains(t, r.Stdout, "keyctl refused: operation not permitted (EPERM)")
	})
}

// TestFlagsReopen: each check comes back only with the flag that should
// allow it, and --privileged allows them all.
func TestFlagsReopen(t *testing.T) {
	testenv.RequireRoot(t)
	root := rootfs(t)
	all := make([]string, 0, len(mustBeRefused))
	for c := range mustBeRefused {
		all = append(all, c)
	}
	for _, tc := range []struct {
		flags   []string
		reopens []string
		either  []string // allowed or refused, as the kernel decides
	}{
		{[]string{"--privileged"}, all, nil},
		// Docker's profile lets syslog(2) through for CAP_SYS_ADMIN too;
		// whether the kernel then hands out its log depends on
		// kernel.dmesg_restrict and the kernel (the VM's 6.1 does, the
		// host's 6.18 with dmesg_restrict=1 does not).
		{[]string{"--cap-add", "SYS_ADMIN"}, []string{"mount_tmpfs", "mount_proc", "userns_mount"}, []string{"syslog"}},
		{[]string{"--cap-add", "sys_time"}, []string{"adjtimex"}, nil},
		{[]string{"--cap-add", "CAP_SYSLOG"}, []string{"syslog"}, nil},
		{[]string{"--cap-add", "SYS_MODULE"}, []string{"module"}, nil},
		{[]string{"--cap-add", "DAC_READ_SEARCH"}, []string{"shocker"}, nil},
		// Without the filter, any process may make a user namespace and
		// be root in it, with a mount namespace of its own to mount in.
		{[]string{"--security-opt", "seccomp=unconfined"}, []string{"keyctl", "personality", "userns_mount"}, nil},
		{[]string{"--security-opt", "systempaths=unconfined"}, []string{"sysctl", "core_pattern", "timer_list"}, nil},
		{[]string{"--device", "/dev/net/tun"}, []string{"tun"}, nil},
		{[]string{"--device", "/dev/kmsg", "--cap-add", "SYSLOG"}, []string{"kmsg", "syslog"}, nil},
	} {
		t.Run(strings.Join(tc.flags, " "), func(t *testing.T) {
			v := verdicts(t, run(t, root, append(tc.flags, "breakcheck", "-k")...))
			for check := range mustBeRefused {
				if v[check] == "n/a" || slices.Contains(tc.either, check) {
					continue
				}
				want := "refused"
				for _, c := range tc.reopens {
					if c == check {
						want = "allowed"
					}
				}
				assert.Equal(t, want, v[check], check)
			}
		})
	}
}

func TestUsers(t *testing.T) {
	testenv.RequireRoot(t)
	root := rootfs(t)
	for _, tc := range []struct {
		flags         []string
		uid           string
		eff, prm, bnd string
		nnp           string
	}{
		// Docker: a non-root user keeps the set only in the bounding set;
		// its effective and permitted sets are empty, as after an execve.
		{[]string{"--user", "1000"}, "1000", "0000000000000000", "0000000000000000", dockerCaps, "0"},
		{[]string{"--user", "1000", "--cap-drop", "ALL"}, "1000", "0000000000000000", "0000000000000000", "0000000000000000", "0"},
		{[]string{"--cap-drop", "ALL"}, "0", "0000000000000000", "0000000000000000", "0000000000000000", "0"},
		{[]string{"--cap-drop", "all", "--cap-add", "net_bind_service"}, "0", "0000000000000400", "0000000000000400", "0000000000000400", "0"},
		{[]string{"--user", "1000:1000", "--security-opt", "no-new-privileges"}, "1000", "0000000000000000", "0000000000000000", dockerCaps, "1"},
		{[]string{"--security-opt", "no-new-privileges=true"}, "0", dockerCaps, dockerCaps, dockerCaps, "1"},
	} {
		t.Run(strings.Join(tc.flags, " "), func(t *testing.T) {
			st := status(t, run(t, root, append(tc.flags, "sh", "-c", statusCmd)...))
			assert.Equal(t, tc.eff, st["CapEff"], "CapEff")
			assert.Equal(t, tc.prm, st["CapPrm"], "CapPrm")
			assert.Equal(t, tc.bnd, st["CapBnd"], "CapBnd")
			assert.Equal(t, "0000000000000000", st["CapInh"], "CapInh")
			assert.Equal(t, "0000000000000000", st["CapAmb"], "CapAmb")
			assert.Equal(t, tc.nnp, st["NoNewPrivs"], "NoNewPrivs")
			assert.Equal(t, "2", st["Seccomp"], "Seccomp")
			assert.Equal(t, tc.uid, st["uid"], "id -u")
		})
	}
}

// no_new_privs is off by default, as in Docker, so that setuid programs
// of an image work; --security-opt no-new-privileges stops them.
func TestSetuidAndNoNewPrivs(t *testing.T) {
	testenv.RequireRoot(t)
	root := rootfs(t)
	suid := filepath.Join(root, "bin", "suid-breakcheck")
	copyFile(t, filepath.Join(root, "bin", "breakcheck"), suid, 0o755)
	require.NoError(t, os.Chown(suid, 0, 0))
	require.NoError(t, os.Chmod(suid, os.ModeSetuid|0o755))

	r := run(t, root, "--user", "1000", "suid-breakcheck", "-k", "caps")
	require.Equal(t, 0, r.Code, r.String())
	assert.Equal(t, "caps allowed: "+dockerCaps+"\n", r.Stdout, "a setuid-root program gains the bounding set")

	r = run(t, root, "--user", "1000", "--security-opt", "no-new-privileges", "suid-breakcheck", "-k", "caps")
	require.Equal(t, 0, r.Code, r.String())
	assert.Equal(t, "caps refused: none\n", r.Stdout, "with no_new_privs the setuid bit gives nothing")

	r = run(t, root, "--user", "1000", "--cap-drop", "ALL", "suid-breakcheck", "-k", "caps")
	require.Equal(t, 0, r.Code, r.String())
	assert.Equal(t, "caps refused: none\n", r.Stdout, "nothing beyond an empty bounding set")
}

// The container sees its own cgroup, read-only: it can read its limits
// but not change them, nor write a release_agent.
func TestCgroupView(t *testing.T) {
	testenv.RequireRoot(t)
	root := rootfs(t)
	script := `cat /proc/self/cgroup | grep -c ':/$'
if [ -e /sys/fs/cgroup/memory.max ]; then f=/sys/fs/cgroup/memory.max; else f=/sys/fs/cgroup/memory/memory.limit_in_bytes; fi
cat $f
echo 1 > $f && echo wrote limit
if [ -e /sys/fs/cgroup/memory/release_agent ] || [ -d /sys/fs/cgroup/memory ]; then echo /x > /sys/fs/cgroup/memory/release_agent && echo wrote release_agent; fi
mount | grep -c ' /sys/fs/cgroup.* (ro,'`
	r := run(t, root, "--memory", "64m", "sh", "-c", script)
	require.Equal(t, 0, r.Code, r.String())
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	require.GreaterOrEqual(t, len(lines), 3, r.String())
	assert.NotEqual(t, "0", lines[0], "the container's cgroups are / in its namespace")
	assert.Equal(t, "67108864", lines[1], "its own memory limit")
	assert.NotContains(t, r.Stdout, "wrote", "the view is read-only")
	assert.Contains(t, r.Stderr, "Read-only file system")

	r = run(t, root, "--privileged", "--memory", "64m", "sh", "-c", "mount | grep ' /sys/fs/cgroup' | grep -c '(rw,'")
	require.Equal(t, 0, r.Code, r.String())
	assert.NotEqual(t, "0\n", r.Stdout, "--privileged: read-write, as in Docker")
}

func TestMaskedAndReadonlyPaths(t *testing.T) {
	testenv.RequireRoot(t)
	root := rootfs(t)
	// Each path this kernel has: masked ones read as empty, read-only
	// ones are mounts of their own with "ro" (checked in mountinfo, so
	// that a path the kernel lacks does not pass for refused).
	script := `for p in /proc/asound /proc/acpi /proc/interrupts /proc/kcore /proc/keys /proc/latency_stats /proc/timer_list /proc/timer_stats /proc/sched_debug /proc/scsi /sys/firmware /sys/devices/virtual/powercap; do
	if [ -d $p ]; then echo "masked $p $(ls -A $p | wc -l)"; elif [ -e $p ]; then echo "masked $p $(wc -c < $p)"; fi
done
for p in /proc/bus /proc/fs /proc/irq /proc/sys /proc/sysrq-trigger; do
	[ -e $p ] && echo "ro $p $(awk -v p=$p '$5 == p {print $6}' /proc/self/mountinfo | tail -1)"
done
echo 500 > /proc/self/oom_score_adj && echo rest of /proc writable`
	r := run(t, root, "sh", "-c", script)
	require.Equal(t, 0, r.Code, r.String())
	seen := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		f := strings.Fields(l)
		switch f[0] {
		case "masked":
			seen["masked"]++
			assert.Equal(t, "0", f[2], "%s must be empty", f[1])
		case "ro":
			seen["ro"]++
			require.Len(t, f, 3, "%s must be a mount of its own", f[1])
			assert.Regexp(t, `^ro,`, f[2], "%s must be read-only", f[1])
		}
	}
	assert.Contains(t, r.Stdout, "masked /proc/timer_list 0\n")
	assert.Contains(t, r.Stdout, "ro /proc/sys ro,")
	assert.GreaterOrEqual(t, seen["ro"], 3)
	assert.Contains(t, r.Stdout, "rest of /proc writable\n", "only the listed paths are read-only, not all of /proc")
	t.Logf("%d masked and %d read-only paths on this kernel", seen["masked"], seen["ro"])
}

// A path of linux.maskedPaths or readonlyPaths comes from a bundle, the
// file it names from the image: a symlink there must not be followed.
// The image here links /etc/alink to /etc/passwd; masking /etc/alink must
// be refused, and /etc/passwd stay visible.
func TestMaskedPathSymlinkRefused(t *testing.T) {
	testenv.RequireRoot(t)
	root := rootfs(t)
	require.NoError(t, os.Symlink("/etc/passwd", filepath.Join(root, "etc", "alink")))
	require.NoError(t, os.Symlink("/etc", filepath.Join(root, "linkdir")))
	for _, flag := range []string{"--masked-path", "--readonly-path"} {
		for _, p := range []string{"/etc/alink", "/linkdir/passwd"} {
			r := run(t, root, flag, p, "sh", "-c", "wc -c < /etc/passwd; touch /etc/passwd && echo writable")
			assert.Equal(t, 125, r.Code, "%s %s: %s", flag, p, r)
			assert.Contains(t, r.Stderr, "symbolic link", "%s %s", flag, p)
			assert.Empty(t, r.Stdout, "%s %s: the command must not run", flag, p)
		}
	}
	r := run(t, root, "--masked-path", "/etc/passwd", "sh", "-c", "wc -c < /etc/passwd")
	require.Equal(t, 0, r.Code, r.String())
	assert.Equal(t, "0\n", r.Stdout, "a plain path is masked")
}

// --docker-init: tini, bound read-only at /dev/init, is PID 1; berth's
// own binary is not in the container.
func TestDockerInit(t *testing.T) {
	testenv.RequireRoot(t)
	if _, err := os.Stat("/usr/bin/tini-static"); err != nil {
		t.Skip("skipped: /usr/bin/tini-static is missing: apt-get install tini (make setup installs it)")
	}
	root := rootfs(t)
	r := run(t, root, "--docker-init", "sh", "-c", "readlink /proc/1/exe; ps -o pid,comm | grep ' 1 '; echo x > /dev/init || echo ro")
	require.Equal(t, 0, r.Code, r.String())
	assert.Contains(t, r.Stdout, "/dev/init\n")
	assert.Regexp(t, `(?m)^ +1 +init$`, r.Stdout, "tini, executed as /dev/init")
	assert.Contains(t, r.Stdout, "ro\n")
	// And the exit code is the command's.
	r = run(t, root, "--docker-init", "sh", "-c", "exit 7")
	assert.Equal(t, 7, r.Code, r.String())
}

func TestProcessSettings(t *testing.T) {
	testenv.RequireRoot(t)
	root := rootfs(t)
	r := run(t, root, "--ulimit", "nofile=100:200", "--oom-score-adj", "321",
		"--sysctl", "net.ipv4.ip_forward=1", "--sysctl", "kernel.shmmax=123456789",
		"--shm-size", "32m", "--tmpfs", "/run:size=8m,mode=1770",
		"sh", "-c", "ulimit -n; ulimit -Hn; cat /proc/self/oom_score_adj /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax; "+
			"df -k /dev/shm | tail -1 | awk '{print $2}'; mount | grep ' /run '")
	require.Equal(t, 0, r.Code, r.String())
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	require.Len(t, lines, 7, r.String())
	assert.Equal(t, []string{"100", "200", "321", "1", "123456789", "32768"}, lines[:6])
	assert.Regexp(t, `tmpfs on /run type tmpfs \(rw,nosuid,nodev,noexec,.*size=8192k,mode=1770`, lines[6])
	// The host's settings are untouched.
	b, err := os.ReadFile("/proc/sys/kernel/shmmax")
	require.NoError(t, err)
	assert.NotEqual(t, "123456789\n", string(b))
}

// Bad input: one line, exit 125, nothing run.
func TestRefused(t *testing.T) {
	testenv.RequireRoot(t)
	root := rootfs(t)
	for _, tc := range []struct {
		flags []string
		msg   string
	}{
		{[]string{"--cap-add", "SYS_WIZARD"}, `unknown capability: "SYS_WIZARD"`},
		{[]string{"--cap-drop", "bogus"}, `unknown capability: "bogus"`},
		{[]string{"--sysctl", "kernel.core_pattern=|/tmp/x"}, "not namespaced"},
		{[]string{"--sysctl", "net/../../kernel/core_pattern=x"}, "invalid sysctl name"},
		{[]string{"--net", "host", "--sysctl", "net.ipv4.ip_forward=1"}, "private network namespace"},
		{[]string{"--security-opt", "seccomp=/nonexistent.json"}, "no such file"},
		{[]string{"--security-opt", "apparmor"}, "needs a profile"},
		{[]string{"--ulimit", "nofile=10:5"}, "soft limit must be less"},
		{[]string{"--oom-score-adj", "5000"}, "out of range"},
		{[]string{"--device", "/dev/null:/etc/null"}, "under /dev"},
		{[]string{"--tmpfs", "/run:exec,bogus"}, `unknown option "bogus"`},
	} {
		t.Run(strings.Join(tc.flags, " "), func(t *testing.T) {
			args := tc.flags
			if tc.flags[0] != "--net" {
				args = append([]string{"--net", "none"}, args...)
			}
			secrun, _ := build(t)
			r := testenv.Run(t, testenv.StateEnv(t), secrun, append(append([]string{"run", "--rootfs", root}, args...), "echo", "ran")...)
			assert.Equal(t, 125, r.Code, r.String())
			assert.Contains(t, r.Stderr, tc.msg)
			assert.Equal(t, 1, strings.Count(strings.TrimSpace(r.Stderr), "\n")+1, "one line: %q", r.Stderr)
			assert.Empty(t, r.Stdout)
		})
	}
}

// The container gets a session keyring of its own: where keyctl is let
// through, the keys of whoever ran berth are not there.
func TestOwnKeyring(t *testing.T) {
	testenv.RequireRoot(t)
	root := rootfs(t)
	secrun, _ := build(t)
	r := testenv.Run(t, testenv.StateEnv(t), secrun, "run", "--id", "keys", "--net", "none", "--rootfs", root,
		"--security-opt", "seccomp=unconfined", "breakcheck", "-k", "keyctl")
	require.Equal(t, 0, r.Code, r.String())
	assert.Regexp(t, `^keyctl allowed: keyring \d+ "_ses\.berth\.keys"\n$`, r.Stdout)
}

// finalizeEnv makes the test binary the helper of TestFinalizeForExec.
const finalizeEnv = "BERTH_SECURITY_FINALIZE_SPEC"

// finalizeHelper is what berth exec will do in the process it starts in
// a running container, once inside: security.Finalize with the
// container's spec and the new process, then execve.
func finalizeHelper() int {
	runtime.LockOSThread()
	var spec specs.Spec
	if err := json.Unmarshal([]byte(os.Getenv(finalizeEnv)), &spec); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := security.Finalize(&spec, spec.Process); err != nil {
		fmt.Fprintln(os.Stderr, "finalize:", err)
		return 125
	}
	err := syscall.Exec(spec.Process.Args[0], spec.Process.Args, []string{"PATH=/usr/bin:/bin"})
	fmt.Fprintln(os.Stderr, "exec:", err)
	return 127
}

// TestFinalizeForExec runs Finalize outside the spine, as the exec path
// will: the same user, capabilities, no_new_privs and seccomp filter as
// the container's init.
func TestFinalizeForExec(t *testing.T) {
	testenv.RequireRoot(t)
	h, err := security.ThisHost()
	require.NoError(t, err)
	spec := &specs.Spec{Process: &specs.Process{User: specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000, 5}},
		Args: []string{"/bin/sh", "-c", "grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status; id -u; id -G; ulimit -n"}},
		Linux: &specs.Linux{}}
	require.NoError(t, security.Apply(spec, security.Options{CapAdd: []string{"NET_ADMIN"}, Ulimits: []string{"nofile=64"},
		SecurityOpt: []string{"no-new-privileges"}}, h))
	b, err := json.Marshal(spec)
	require.NoError(t, err)
	self, err := os.Executable()
	require.NoError(t, err)
	r := testenv.Run(t, []string{finalizeEnv + "=" + string(b)}, self)
	require.Equal(t, 0, r.Code, r.String())
	st := status(t, r)
	assert.Equal(t, "0000000000000000", st["CapEff"])
	assert.Equal(t, "00000000a80435fb", st["CapBnd"], "Docker's set and NET_ADMIN")
	assert.Equal(t, "1", st["NoNewPrivs"])
	assert.Contains(t, r.Stdout, "Seccomp:\t2\n")
	assert.Contains(t, r.Stdout, "\n1000\n1000 5\n64\n", "uid, groups (additionalGids), nofile")
}
