//go:build linux

package nsenter_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"berth/06-cgroups/cgroup"
	"berth/internal/testenv"
)

// kinds are the namespace links a learner compares; the *_for_children
// ones say which PID and time namespaces the process's children get.
var kinds = []string{"cgroup", "ipc", "mnt", "net", "pid", "pid_for_children", "time", "time_for_children", "user", "uts"}

// inside is a shell script that prints what a learner checks in the
// joined process, one "key value" line each.
func inside(tg *target) string {
	s := "echo hostname $(hostname); echo marker $(cat " + tg.Mnt + "/marker); echo self $$; " +
		"echo init $(tr '\\0' ' ' </proc/1/cmdline); echo initcgroup $(cat /proc/1/cgroup); echo ps $(ps -e -o pid=,comm=); "
	for _, k := range kinds {
		s += "echo ns-" + k + " $(readlink /proc/self/ns/" + k + "); "
	}
	return s
}

// newGroup makes a cgroup for a target, removed at the end.
func newGroup(t *testing.T) (path string, g *cgroup.Group) {
	t.Helper()
	mode, err := cgroup.DetectMode()
	require.NoError(t, err)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	path = cgroup.GroupPath("nsenter-test-" + hex.EncodeToString(b))
	g, err = cgroup.Create(mode, path, nil)
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = g.Kill(context.Background())
		assert.NoError(t, g.Delete())
	})
	return path, g
}

// TestJoinEveryNamespace joins a target in new namespaces of every kind
// and checks from inside what `nsenter -t PID -a` would show.
func TestJoinEveryNamespace(t *testing.T) {
	testenv.RequireRoot(t)
	path, g := newGroup(t)
	tg := startTarget(t, targetOpts{cgroup: func(pid int) { require.NoError(t, g.Add(pid)) }})

	r := join(t, "-probe", "-cgroup", path, "-t", fmt.Sprint(tg.Pid), "--", "sh", "-c", inside(tg))
	require.Equal(t, 0, r.Code, r.String())
	got := fields(r.Stdout)
	for _, k := range kinds {
		want := strings.TrimSuffix(k, "_for_children")
		assert.Equal(t, tg.ns(t, want), got["ns-"+k], "/proc/self/ns/%s", k)
	}
	assert.Equal(t, tg.Hostname, got["hostname"])
	assert.Equal(t, "marker", got["marker"], "the target's mount namespace: its tmpfs at %s", tg.Mnt)
	assert.Equal(t, "sleep 1000", got["init"], "PID 1 is the target's init")
	assert.Contains(t, " "+got["ps"]+" ", " 1 sleep ", "ps shows the target's PID namespace")
	assert.Contains(t, " "+got["ps"]+" ", " "+got["self"]+" sh ", "ps shows the joined shell")
	assert.NotEqual(t, "1", got["self"])

	// The cgroup, read before the Go runtime did anything else: the
	// target's, as the target itself sees it in its cgroup namespace
	// ("/" everywhere). The caller moved the process there before
	// letting it run.
	p := probes(r.Stdout)
	require.NotEmpty(t, p["cgroup"], r.String())
	assert.Equal(t, got["initcgroup"], p["cgroup"], "the first read of /proc/self/cgroup")
	assert.NotContains(t, p["cgroup"], "..")

	// Without -cgroup the process stays in the caller's group, which the
	// target's cgroup namespace shows as a path above its root.
	r = join(t, "-probe", "-t", fmt.Sprint(tg.Pid), "--", "true")
	require.Equal(t, 0, r.Code, r.String())
	assert.Contains(t, probes(r.Stdout)["cgroup"], "/..", "not moved, the process is outside the target's cgroup")
}

// TestJoinUserNamespace joins a target that has a user namespace too, as
// root: the user namespace is joined and we become its root.
func TestJoinUserNamespace(t *testing.T) {
	testenv.RequireRoot(t)
	tg := startTarget(t, targetOpts{user: true})
	r := join(t, "-t", fmt.Sprint(tg.Pid), "--", "sh", "-c", "echo id $(id -u):$(id -g); "+inside(tg))
	require.Equal(t, 0, r.Code, r.String())
	got := fields(r.Stdout)
	for _, k := range kinds {
		assert.Equal(t, tg.ns(t, strings.TrimSuffix(k, "_for_children")), got["ns-"+k], "/proc/self/ns/%s", k)
	}
	assert.Equal(t, "0:0", got["id"])
	assert.Equal(t, "marker", got["marker"])
	assert.Equal(t, tg.Hostname, got["hostname"])
}

func TestExitCodes(t *testing.T) {
	testenv.RequireRoot(t)
	tg := startTarget(t, targetOpts{})
	pid := fmt.Sprint(tg.Pid)
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"true"}, 0},
		{[]string{"false"}, 1},
		{[]string{"sh", "-c", "exit 42"}, 42},
		{[]string{"sh", "-c", "kill -KILL $$"}, 137},
		{[]string{"/no/such/command"}, 127},
		{[]string{"no-such-command"}, 127},
		{[]string{"/etc/hostname"}, 126},
	} {
		r := join(t, append([]string{"-t", pid, "--"}, tc.args...)...)
		assert.Equal(t, tc.code, r.Code, "%v: %s", tc.args, r)
	}
}

// TestErrors: whatever is wrong with the target comes back as one line
// naming it, and exit status 125; never a hang, never silence.
func TestErrors(t *testing.T) {
	testenv.RequireRoot(t)
	tg := startTarget(t, targetOpts{})
	dead := exec.Command("sleep", "1000")
	require.NoError(t, dead.Start())
	deadPid := dead.Process.Pid
	require.NoError(t, dead.Process.Kill())
	_ = dead.Wait()

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"bad pid", []string{"-t", "2147483647"}, "target process 2147483647: no such process"},
		{"dead target", []string{"-t", fmt.Sprint(deadPid)}, fmt.Sprintf("target process %d: no such process", deadPid)},
		{"dead target's file", []string{"-path", fmt.Sprintf("mnt=/proc/%d/ns/mnt", deadPid)},
			fmt.Sprintf("open mnt namespace /proc/%d/ns/mnt: no such file or directory", deadPid)},
		{"no such file", []string{"-t", fmt.Sprint(tg.Pid), "-path", "net=/run/netns/berth-no-such"},
			"open net namespace /run/netns/berth-no-such: no such file or directory"},
		{"not a namespace", []string{"-path", "net=/etc/hostname"}, "open net namespace /etc/hostname: not a namespace file"},
		{"wrong kind", []string{"-path", fmt.Sprintf("net=/proc/%d/ns/uts", tg.Pid)},
			fmt.Sprintf("open net namespace /proc/%d/ns/uts: it is a uts namespace", tg.Pid)},
		{"unknown kind", []string{"-t", fmt.Sprint(tg.Pid), "-ns", "mnt,bogus"}, `unknown namespace kind "bogus"`},
		{"nothing to join", []string{}, "no namespace to join"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := join(t, append(tc.args, "--", "true")...)
			oneLine(t, r, tc.want)
		})
	}
}

// TestRootless: an unprivileged user joins a container it owns (its user
// namespace, and what that owns), and is refused root's.
func TestRootless(t *testing.T) {
	testenv.RequireRoot(t)
	a := testenv.NewAccount(t, "berthns", false)
	dir, err := os.MkdirTemp("", "berth-nsenter-rootless-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	bin := dir + "/nsjoin"
	copyFile(t, helper(t), bin)

	tg := startTarget(t, targetOpts{user: true, account: a})
	r := a.Run(t, nil, bin, "-t", fmt.Sprint(tg.Pid), "--", "sh", "-c", "echo id $(id -u); "+inside(tg))
	require.Equal(t, 0, r.Code, r.String())
	got := fields(r.Stdout)
	for _, k := range kinds {
		assert.Equal(t, tg.ns(t, strings.TrimSuffix(k, "_for_children")), got["ns-"+k], "/proc/self/ns/%s", k)
	}
	assert.Equal(t, "0", got["id"], "root in the user namespace")
	assert.Equal(t, "marker", got["marker"])
	assert.Equal(t, tg.Hostname, got["hostname"])
	assert.Contains(t, " "+got["ps"]+" ", " 1 sleep ")

	// The same user may not join root's container.
	root := startTarget(t, targetOpts{})
	r = a.Run(t, nil, bin, "-t", fmt.Sprint(root.Pid), "--", "true")
	oneLine(t, r, fmt.Sprintf("/proc/%d/ns/", root.Pid))
	assert.Contains(t, r.Stderr, "permission denied")
}

// TestConcurrentJoins: 20 joins into one target at once all succeed.
func TestConcurrentJoins(t *testing.T) {
	testenv.RequireRoot(t)
	tg := startTarget(t, targetOpts{})
	var wg sync.WaitGroup
	results := make([]testenv.Result, 20)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = join(t, "-t", fmt.Sprint(tg.Pid), "--", "sh", "-c",
				"echo $(hostname) $(cat "+tg.Mnt+"/marker) $(readlink /proc/self/ns/pid)")
		}()
	}
	wg.Wait()
	want := fmt.Sprintf("%s marker %s\n", tg.Hostname, tg.ns(t, "pid"))
	for i, r := range results {
		assert.Equal(t, 0, r.Code, "join %d: %s", i, r)
		assert.Equal(t, want, r.Stdout, "join %d", i)
	}
}

// TestGoCannotSetns is why the package exists. A Go program, however it
// pins its goroutine to a thread, is refused the mount namespace of
// another process (EINVAL: its threads share one fs_struct) and its user
// namespace (EINVAL: the process has more than one thread). A thread that
// first unshares its fs_struct (CLONE_FS, as 07-unionfs's inDir does)
// may join the mount namespace, alone; nothing lets it join the user
// namespace, which is what a rootless container has.
func TestGoCannotSetns(t *testing.T) {
	testenv.RequireRoot(t)
	tg := startTarget(t, targetOpts{user: true})
	try := func(name string, flag int, unshareFS bool) error {
		fd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/%s", tg.Pid, name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		require.NoError(t, err)
		defer unix.Close(fd)
		errc := make(chan error)
		go func() {
			// Never unlocked: once changed, this thread must end with the
			// goroutine, not run other goroutines.
			runtime.LockOSThread()
			if unshareFS {
				if err := unix.Unshare(unix.CLONE_FS); err != nil {
					errc <- fmt.Errorf("unshare(CLONE_FS): %w", err)
					return
				}
			}
			errc <- unix.Setns(fd, flag)
		}()
		return <-errc
	}
	assert.ErrorIs(t, try("mnt", unix.CLONE_NEWNS, false), syscall.EINVAL, "setns mnt from Go")
	assert.ErrorIs(t, try("user", unix.CLONE_NEWUSER, false), syscall.EINVAL, "setns user from Go")
	assert.NoError(t, try("mnt", unix.CLONE_NEWNS, true), "setns mnt from a thread with its own fs_struct")
	assert.ErrorIs(t, try("user", unix.CLONE_NEWUSER, true), syscall.EINVAL, "setns user, even so")
}
