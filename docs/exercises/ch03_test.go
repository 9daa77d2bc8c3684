//go:build exercise && linux

package exercises

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"berth/internal/testenv"
)

// 03-1: a directory fd kept from outside a chroot leads back out; a
// runtime that leaked one would hand the container the way.
func TestExercise03_1(t *testing.T) {
	p := program(t, "03-1")
	b := bin(t, "03-mount")
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	require.NoError(t, os.WriteFile(secret, []byte("a secret on the host\n"), 0o644))
	jail := testenv.CopyRootfs(t)
	r := testenv.Run(t, nil, p, jail, secret)
	assert.Equal(t, 0, r.Code, "answers/03-1 JAIL FILE: %s", r)
	assert.Equal(t, "a secret on the host\n", r.Stdout, "answers/03-1 %s %s prints the file, read from the host's root after its escape", jail, secret)

	// Put back: berth closes what it inherited (chapter 01).
	r = testenv.Run(t, testenv.StateEnv(t), "sh", "-c", `exec 7<"$1"; exec "$2" run cat /proc/self/fd/7`, "sh", secret, b)
	assert.Equal(t, 1, r.Code, "with the CloseExecExcept calls back, fd 7 does not reach the container: %s", r)
	assert.Regexp(t, `/proc/self/fd/7.*No such file or directory`, r.Stderr, "put the CloseExecExcept calls back, and rebuild")
	a := answer(t, "03-1", 1)
	assert.True(t, same(a[0], "a secret on the host"), "line 1: what cat /proc/self/fd/7 printed in the block of What breaks without it, with the calls commented out: not %q", a[0])
}

// 03-2: the put_old form of pivot_root needs to write into the new root;
// pivot_root(".", ".") does not.
func TestExercise03_2(t *testing.T) {
	a := answer(t, "03-2", 2)
	b := bin(t, "03-mount")
	ro := testenv.CopyRootfs(t)
	r := testenv.Run(t, testenv.StateEnv(t), "unshare", "--mount", "--propagation", "private", "sh", "-c",
		`mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && "$2" run --rootfs "$1" sh -c 'touch /x 2>&1; echo ran'`, "sh", ro, b)
	require.Equal(t, 0, r.Code, "with pivot_root(\".\", \".\") back, a read-only rootfs works: %s", r)
	assert.Equal(t, "touch: /x: Read-only file system\nran\n", r.Stdout, "put pivotRoot back as it was, and rebuild")
	assert.True(t, same(a[0], "mkdir"), "line 1: the system call of the put_old form that fails on a read-only rootfs: not %q", a[0])
	assert.Regexp(t, `(?i)read-only|EROFS`, a[1], "line 2: its error")
}

// 03-3: without the detach, the host's root stays mounted on top of the
// container's: ls / cannot see it, but setns into the container's own
// mount namespace lands on it.
func TestExercise03_3(t *testing.T) {
	a := answer(t, "03-3", 1)
	b := bin(t, "03-mount")
	r := testenv.Run(t, testenv.StateEnv(t), b, "run", "nsenter", "-m", "-t", "1", "ls", "/")
	require.Equal(t, 0, r.Code, r.String())
	busybox, err := os.ReadDir(testenv.Rootfs(t))
	require.NoError(t, err)
	var names []string
	for _, e := range busybox {
		names = append(names, e.Name())
	}
	assert.Equal(t, strings.Join(names, "\n")+"\n", r.Stdout,
		"with the unmount back, nsenter -m -t 1 ls / inside lists the container's root: put it back, and rebuild")
	assert.True(t, same(a[0], "yes"), "line 1: with the unmount commented out, does nsenter -m -t 1 ls / inside list the host's root (yes or no)? not %q", a[0])
}

// 03-4: --bind HOST:CONTAINER[:ro], a bind mount in the spec.
func TestExercise03_4(t *testing.T) {
	b := bin(t, "03-mount")
	needFlag(t, "03-mount", b, "--bind")
	// A copy of the tree: a mount point made for a bind stays in it.
	env := append(testenv.StateEnv(t), "BERTH_ROOTFS="+testenv.CopyRootfs(t))
	before, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	d := t.TempDir()

	r := testenv.Run(t, env, b, "run", "--bind", d+":/data", "sh", "-c", "echo from-container > /data/f")
	require.Equal(t, 0, r.Code, r.String())
	f, err := os.ReadFile(filepath.Join(d, "f"))
	require.NoError(t, err, "a write to /data lands in the host directory")
	assert.Equal(t, "from-container\n", string(f))

	r = testenv.Run(t, env, b, "run", "--bind", d+":/data:ro", "sh", "-c", "cat /data/f; touch /data/g")
	assert.Equal(t, "from-container\n", r.Stdout, r.String())
	assert.Contains(t, r.Stderr, "Read-only file system", ":ro is enforced")
	assert.NoFileExists(t, filepath.Join(d, "g"))

	r = testenv.Run(t, env, b, "run", "--bind", d+":/x/../../../data", "cat", "/data/f")
	assert.Equal(t, "from-container\n", r.Stdout, "a destination that climbs with .. stays inside the root: %s", r)

	r = testenv.Run(t, env, b, "run", "--bind", "nocolon", "true")
	assert.Equal(t, 125, r.Code, "a --bind without HOST:CONTAINER is refused: %s", r)
	assert.Equal(t, 1, strings.Count(r.Stderr, "\n"), "in one line: %q", r.Stderr)

	after, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	assert.Equal(t, string(before), string(after), "nothing stays mounted on the host")
	a := answer(t, "03-4", 1)
	assert.True(t, same(strings.TrimSuffix(a[0], "/"), "/etc"), "line 1: where --bind /etc:/etc/../../etc is mounted, inside the container: not %q", a[0])
}

// 03-5: --tmp: a private tmpfs on /tmp, for --read-only.
func TestExercise03_5(t *testing.T) {
	b := bin(t, "03-mount")
	needFlag(t, "03-mount", b, "--tmp")
	r := testenv.Run(t, testenv.StateEnv(t), b, "run", "--read-only", "--tmp", "sh", "-c",
		`touch /tmp/x && touch /etc/x; grep " /tmp " /proc/mounts; stat -c %a /tmp`)
	assert.Contains(t, r.Stderr, "touch: /etc/x: Read-only file system", r.String())
	assert.Regexp(t, `(?m)^\S+ /tmp tmpfs rw,nosuid,nodev,.*size=65536k.*$`, r.Stdout, "a tmpfs on /tmp, nosuid, nodev, 64 MiB")
	assert.Regexp(t, `(?m)^1777$`, r.Stdout, "/tmp is mode 1777")
	host, err := os.ReadDir(filepath.Join(testenv.Rootfs(t), "tmp"))
	require.NoError(t, err)
	for _, e := range host {
		assert.NotEqual(t, "x", e.Name(), "the file went to the tmpfs, not the busybox tree")
	}
	a := answer(t, "03-5", 2)
	assert.Equal(t, words("nosuid nodev"), words(a[0]), "line 1: the options 03-mount/rootfs/mounts.go:parseOptions turns into mount flags: not %q", a[0])
	assert.Equal(t, words("mode=1777 size=65536k"), words(a[1]), "line 2: the options it passes to the filesystem as data: not %q", a[1])
}

// 03-6: a new devpts instance holds only the container's own terminals.
func TestExercise03_6(t *testing.T) {
	a := answer(t, "03-6", 2)
	b := bin(t, "03-mount")
	term := testenv.StartTerminal(t, testenv.StateEnv(t), 24, 80, b, "run", "-t", "ls", "/dev/pts")
	out, code := term.Wait()
	require.Equal(t, 0, code, out)
	require.Equal(t, words("0 ptmx"), words(strings.TrimSpace(out)), "ls /dev/pts in a container with -t: %q", out)
	assert.Equal(t, words("0 ptmx"), words(a[0]), "line 1: what ls /dev/pts lists inside: not %q", a[0])
	assert.True(t, same(a[1], "newinstance"), "line 2: the devpts mount option that makes the set of terminals the container's own (03-mount/rootfs/mounts.go:mountDev): not %q", a[1])
}

// 03-7: the master the runtime holds is a terminal of the container's
// devpts, another instance (another device) than the host's.
func TestExercise03_7(t *testing.T) {
	a := answer(t, "03-7", 2)
	b := bin(t, "03-mount")
	env := testenv.StateEnv(t)
	term := testenv.StartTerminal(t, env, 24, 80, b, "run", "--id", "ex037", "-t", "sleep", "600")
	init := testenv.ContainerPid(t, testenv.StateRoot(env), "ex037")
	runtime := parentOf(t, init)
	defer func() { _ = unix.Kill(runtime, unix.SIGKILL); term.Wait() }()
	var fdinfo string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && fdinfo == ""; time.Sleep(20 * time.Millisecond) {
		fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", runtime))
		for _, fd := range fds {
			if l, _ := os.Readlink(fd); l == "/dev/pts/ptmx" {
				b, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%s", runtime, filepath.Base(fd)))
				require.NoError(t, err)
				fdinfo = string(b)
			}
		}
	}
	require.NotEmpty(t, fdinfo, "the runtime holds no /dev/pts/ptmx")
	index := regexp.MustCompile(`(?m)^tty-index:\s*(\d+)$`).FindStringSubmatch(fdinfo)
	mnt := regexp.MustCompile(`(?m)^mnt_id:\s*(\d+)$`).FindStringSubmatch(fdinfo)
	require.NotNil(t, index, fdinfo)
	require.NotNil(t, mnt, fdinfo)
	mi, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", init))
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^` + mnt[1] + ` \d+ (\d+:\d+) \S+ (\S+) .* - devpts `).FindStringSubmatch(string(mi))
	require.NotNil(t, m, "mount %s in the container's mountinfo:\n%s", mnt[1], mi)
	var st unix.Stat_t
	require.NoError(t, unix.Stat("/dev/pts", &st))
	host := fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev))
	require.NotEqual(t, host, m[1], "the container's devpts is another instance")
	assert.True(t, same(a[0], index[1]), "line 1: the tty-index of the master, in the runtime's fdinfo: not %q", a[0])
	assert.True(t, same(a[1], "no"), "line 2: are the container's devpts and the host's the same device (yes or no)? not %q", a[1])
}

// parentOf returns the parent PID of pid.
func parentOf(t *testing.T, pid int) int {
	t.Helper()
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(t, err)
	// pid (comm) state ppid ...: comm may hold spaces and parens.
	f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+1:]))
	var ppid int
	_, err = fmt.Sscan(f[1], &ppid)
	require.NoError(t, err)
	return ppid
}
