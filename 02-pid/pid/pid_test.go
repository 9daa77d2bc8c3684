//go:build linux

package pid_test

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/internal/testenv"
)

func TestCommandIsPID1(t *testing.T) {
	testenv.RequireRoot(t)
	r := testenv.Run(t, testenv.StateEnv(t), testenv.Binary(t, "02-pid"), "run", "sh", "-c", "echo $$; ps -e -o pid=,comm=")
	require.Equal(t, 0, r.Code, r.String())
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	assert.Equal(t, "1", lines[0], "echo $$ must print 1")
	// ps sees only the container: the shell as PID 1 and ps itself.
	require.Len(t, lines, 3, r.Stdout)
	assert.Regexp(t, `^\s*1 sh$`, lines[1])
	assert.Regexp(t, `^\s*\d+ ps$`, lines[2])
}

func TestInitIsPID1WithCommandAsChild(t *testing.T) {
	testenv.RequireRoot(t)
	r := testenv.Run(t, testenv.StateEnv(t), testenv.Binary(t, "02-pid"), "run", "--init", "ps", "-e", "-o", "pid=,ppid=,comm=")
	require.Equal(t, 0, r.Code, r.String())
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	require.Len(t, lines, 2, r.Stdout)
	assert.Regexp(t, `^\s*1\s+0 berth-init$`, lines[0])
	assert.Regexp(t, `^\s*\d+\s+1 ps$`, lines[1])
}

func TestNamespacesDiffer(t *testing.T) {
	testenv.RequireRoot(t)
	r := testenv.Run(t, testenv.StateEnv(t), testenv.Binary(t, "02-pid"), "run", "readlink", "/proc/self/ns/pid", "/proc/self/ns/ipc", "/proc/self/ns/mnt", "/proc/self/ns/uts", "/proc/self/ns/net")
	require.Equal(t, 0, r.Code, r.String())
	got := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	for i, ns := range []string{"pid", "ipc", "mnt", "uts", "net"} {
		host, err := os.Readlink("/proc/self/ns/" + ns)
		require.NoError(t, err)
		if ns == "net" {
			assert.Equal(t, host, got[i], "02-pid shares the host's network")
		} else {
			assert.NotEqual(t, host, got[i], "%s namespace must be new", ns)
		}
	}
}

// The host's /proc must be untouched: the container mounted its own.
func TestHostProcUntouched(t *testing.T) {
	testenv.RequireRoot(t)
	before, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	r := testenv.Run(t, testenv.StateEnv(t), testenv.Binary(t, "02-pid"), "run", "true")
	require.Equal(t, 0, r.Code, r.String())
	after, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	assert.Equal(t, string(before), string(after))
	// and the host's ps still sees PIDs other than 1
	out, err := exec.Command("ps", "-e", "-o", "pid=").Output()
	require.NoError(t, err)
	assert.Greater(t, len(strings.Fields(string(out))), 2)
}

// zombies counts the zombie processes in the PID namespace of pid.
func zombies(t *testing.T, pid int) int {
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	require.NoError(t, err)
	entries, err := os.ReadDir("/proc")
	require.NoError(t, err)
	n := 0
	for _, e := range entries {
		if l, err := os.Readlink("/proc/" + e.Name() + "/ns/pid"); err != nil || l != ns {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) STATE ...; comm may hold spaces, so cut at the last ')'
		s := string(stat)
		if i := strings.LastIndexByte(s, ')'); i > 0 && strings.HasPrefix(s[i+1:], " Z") {
			n++
		}
	}
	return n
}

// An orphan is re-parented to PID 1. A PID 1 that never waits (here
// `sleep`, which the shell became with exec) leaves it a zombie; the
// --init reaps it.
func TestOrphansReaped(t *testing.T) {
	testenv.RequireRoot(t)
	bin := testenv.Binary(t, "02-pid")
	script := "(sleep 0.2 &); exec sleep 30"
	for _, tc := range []struct {
		init    bool
		zombies int
	}{{false, 1}, {true, 0}} {
		t.Run(fmt.Sprintf("init=%v", tc.init), func(t *testing.T) {
			env := testenv.StateEnv(t)
			args := []string{"run", "--id", "z"}
			if tc.init {
				args = append(args, "--init")
			}
			bg := testenv.Start(t, env, bin, append(args, "sh", "-c", script)...)
			pid := testenv.ContainerPid(t, testenv.StateRoot(env), "z")
			// Wait until the orphan has exited: it is then either reaped or a zombie.
			deadline := time.Now().Add(10 * time.Second)
			for zombies(t, pid) < 1 && time.Now().Before(deadline) && !tc.init {
				time.Sleep(50 * time.Millisecond)
			}
			if tc.init {
				time.Sleep(time.Second)
			}
			assert.Equal(t, tc.zombies, zombies(t, pid))
			require.NoError(t, syscall.Kill(bg.Cmd.Process.Pid, syscall.SIGKILL))
			bg.Wait(t)
		})
	}
}

// SIGTERM sent to the runtime reaches the command. As PID 1 with no
// handler, sleep ignores it (the kernel protects a namespace's init);
// under --init it dies of it, and the exit status says so: 128+15.
func TestSignalForwarding(t *testing.T) {
	testenv.RequireRoot(t)
	bin := testenv.Binary(t, "02-pid")

	env := testenv.StateEnv(t)
	bg := testenv.Start(t, env, bin, "run", "--id", "s", "--init", "sleep", "60")
	testenv.ContainerPid(t, testenv.StateRoot(env), "s")
	require.NoError(t, bg.Cmd.Process.Signal(syscall.SIGTERM))
	r := bg.Wait(t)
	assert.Equal(t, 143, r.Code, r.String())

	// Without --init, the TERM is dropped: the container still runs.
	env = testenv.StateEnv(t)
	bg = testenv.Start(t, env, bin, "run", "--id", "p", "sleep", "60")
	pid := testenv.ContainerPid(t, testenv.StateRoot(env), "p")
	require.NoError(t, bg.Cmd.Process.Signal(syscall.SIGTERM))
	time.Sleep(500 * time.Millisecond)
	assert.NoError(t, syscall.Kill(pid, 0), "sleep as PID 1 must survive SIGTERM")
	require.NoError(t, bg.Cmd.Process.Signal(syscall.SIGKILL))
	bg.Wait(t)
}

// A SIGKILLed runtime takes its container with it (Pdeathsig), and the
// next run collects the state it left.
func TestKilledRuntimeIsCollected(t *testing.T) {
	testenv.RequireRoot(t)
	bin := testenv.Binary(t, "02-pid")
	env := testenv.StateEnv(t)
	root := testenv.StateRoot(env)
	bg := testenv.Start(t, env, bin, "run", "--id", "victim", "sleep", "60")
	pid := testenv.ContainerPid(t, root, "victim")
	require.NoError(t, bg.Cmd.Process.Signal(syscall.SIGKILL))
	bg.Wait(t)
	testenv.WaitGone(t, pid) // the container dies with its runtime
	assert.DirExists(t, root+"/victim", "a killed runtime leaves its state")

	r := testenv.Run(t, env, bin, "run", "true")
	require.Equal(t, 0, r.Code, r.String())
	assert.NoDirExists(t, root+"/victim", "the next run collects it")
}

// System V IPC objects are per IPC namespace.
func TestIPCIsolated(t *testing.T) {
	testenv.RequireRoot(t)
	if _, err := exec.LookPath("ipcmk"); err != nil {
		t.Skip("skipped: ipcmk (util-linux) is not installed; make setup installs it")
	}
	out, err := exec.Command("ipcmk", "-Q").Output()
	require.NoError(t, err)
	m := regexp.MustCompile(`id: (\d+)`).FindStringSubmatch(string(out))
	require.NotNil(t, m, string(out))
	t.Cleanup(func() { _ = exec.Command("ipcrm", "-q", m[1]).Run() })

	r := testenv.Run(t, testenv.StateEnv(t), testenv.Binary(t, "02-pid"), "run", "sh", "-c",
		"ipcmk -Q >/dev/null && tail -n +2 /proc/sysvipc/msg | wc -l && tail -n +2 /proc/sysvipc/msg")
	require.Equal(t, 0, r.Code, r.String())
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	assert.Equal(t, "1", lines[0], "inside sees only its own queue, not the host's")
	inside := strings.Fields(lines[1])
	require.GreaterOrEqual(t, len(inside), 2)

	host, err := os.ReadFile("/proc/sysvipc/msg")
	require.NoError(t, err)
	for _, l := range strings.Split(string(host), "\n")[1:] {
		f := strings.Fields(l)
		if len(f) > 1 {
			assert.NotEqual(t, inside[0], f[0], "the container's queue key must not be on the host")
		}
	}
}

// withFds runs argv from a shell that first opens the file secret on fd 7
// and the directory dir on fd 8, without close-on-exec, as a user's shell
// does with `exec 7<secret 8<dir`: the runtime inherits both.
func withFds(t *testing.T, env []string, secret, dir string, argv ...string) testenv.Result {
	t.Helper()
	return testenv.Run(t, env, "sh", append([]string{"-c", `exec 7<"$1" 8<"$2"; shift 2; exec "$@"`, "sh", secret, dir}, argv...)...)
}

// fdScript prints what the container can reach through the two inherited
// fds, its own fds, and what PID 1 (the command, or with --init the init)
// holds above 2.
const fdScript = `cat /proc/self/fd/7; ls /proc/self/fd/8/; cat /proc/1/fd/7; echo fds: $(ls /proc/self/fd); ` +
	`for f in /proc/1/fd/*; do echo "pid1: ${f##*/} $(readlink $f)"; done`

// checkFds asserts that nothing the runtime inherited reached the
// container: not the file's content, not the directory's listing, and
// PID 1 holds no file above 2, only kernel objects (a pidfd, a pipe).
func checkFds(t *testing.T, r testenv.Result) {
	t.Helper()
	assert.NotContains(t, r.Stdout, "host secret", "the inherited file must not be readable inside\n%s", r)
	assert.NotContains(t, r.Stdout, "secret\n", "the inherited directory must not be listable inside\n%s", r)
	assert.Contains(t, r.Stdout, "fds: 0 1 2 3\n", r.String())
	for _, l := range strings.Split(r.Stdout, "\n") {
		f := strings.Fields(l)
		if len(f) != 3 || f[0] != "pid1:" || f[1] == "0" || f[1] == "1" || f[1] == "2" {
			continue
		}
		assert.Regexp(t, `^(anon_inode|pipe|socket):`, f[2], "PID 1's fd %s leads to a file:\n%s", f[1], r)
	}
}

// Descriptors the runtime inherited reach neither the command nor, with
// --init, the init that stays PID 1 beside it (the CVE-2024-21626 class).
func TestInheritedFdsStayOutside(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	secret := dir + "/secret"
	require.NoError(t, os.WriteFile(secret, []byte("host secret\n"), 0o600))
	bin := testenv.Binary(t, "02-pid")
	for _, init := range []bool{false, true} {
		t.Run(fmt.Sprintf("init=%v", init), func(t *testing.T) {
			args := []string{bin, "run"}
			if init {
				args = append(args, "--init")
			}
			r := withFds(t, testenv.StateEnv(t), secret, dir, append(args, "sh", "-c", fdScript)...)
			require.Equal(t, 0, r.Code, r.String())
			checkFds(t, r)
		})
	}
}
