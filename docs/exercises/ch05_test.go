//go:build exercise && linux

package exercises

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/internal/testenv"
)

// rootless is a check's unprivileged user, with the stage binary copied
// where the user may run it. Its live state is under its runtime directory.
type rootless struct {
	*testenv.Account
	bin   string
	state string
}

func newRootless(t *testing.T, stage string, subids bool) *rootless {
	t.Helper()
	bin(t, stage) // root, the rootfs
	a := testenv.NewAccount(t, "berthex", subids)
	return &rootless{Account: a, bin: a.Binary(t, stage), state: filepath.Join(a.Runtime, "berth")}
}

func (r *rootless) run(t *testing.T, args ...string) testenv.Result {
	t.Helper()
	return r.Run(t, nil, r.bin, append([]string{"run"}, args...)...)
}

func (r *rootless) start(t *testing.T, args ...string) *testenv.Background {
	t.Helper()
	argv := r.Argv(nil, append([]string{r.bin, "run"}, args...)...)
	return testenv.Start(t, nil, argv[0], argv[1:]...)
}

// 05-1: a map beyond the user's subordinate range is refused by newuidmap.
func TestExercise05_1(t *testing.T) {
	a := answer(t, "05-1", 1)
	u := newRootless(t, "05-user", true)
	own := fmt.Sprintf("0:%d:1", u.UID)
	r := u.run(t, "--uidmap", own, "--uidmap", fmt.Sprintf("1:%d:65535", u.SubUID+1), "cat", "/proc/self/uid_map")
	require.Equal(t, 0, r.Code, "the map of --map-subids, spelled out: %s", r)
	r = u.run(t, "--uidmap", own, "--uidmap", fmt.Sprintf("1:%d:10", u.SubUID+100000), "true")
	require.Equal(t, 125, r.Code, r.String())
	require.Contains(t, r.Stderr, "newuidmap: ", "newuidmap refuses it, and berth passes on what it said")
	assert.True(t, same(a[0], "newuidmap"), "line 1: the program that refuses a range outside /etc/subuid: not %q", a[0])
}

// 05-2: container uid 1000 is a subordinate id on the host; without it in
// the map, su cannot become it.
func TestExercise05_2(t *testing.T) {
	a := answer(t, "05-2", 2)
	u := newRootless(t, "05-user", true)
	rootfs := u.Rootfs(t)
	add := `echo 'web:x:1000:1000::/tmp:/bin/sh' >> /etc/passwd; echo 'web:x:1000:' >> /etc/group; `
	r := u.run(t, "--map-subids", "--rootfs", rootfs, "sh", "-c", add+`su web -c 'touch /tmp/by-web'`)
	require.Equal(t, 0, r.Code, r.String())
	var st syscall.Stat_t
	require.NoError(t, syscall.Stat(filepath.Join(rootfs, "tmp", "by-web"), &st))
	// The chapter's berthuser has the range from 200000: what would it be there?
	want := int64(st.Uid) - int64(u.SubUID) + 200000
	r = u.run(t, "--map-root-user", "--rootfs", rootfs, "su", "web", "-c", "id")
	require.NotEqual(t, 0, r.Code, r.String())
	msg := strings.TrimPrefix(strings.TrimSpace(r.Stderr), "su: ")
	assert.True(t, same(a[0], fmt.Sprint(want)), "line 1: web's uid on the host, for the chapter's berthuser (range 200000-265535): %d, not %q", want, a[0])
	assert.True(t, same(strings.TrimPrefix(a[1], "su: "), msg), "line 2: what su says with --map-root-user: %q, not %q", msg, a[1])
}

// 05-3: a uid map reads relative to the reader's user namespace.
func TestExercise05_3(t *testing.T) {
	a := answer(t, "05-3", 3)
	u := newRootless(t, "05-user", false)
	first := func(m string) string {
		f := strings.Fields(m)
		require.Len(t, f, 3, "one line of uid_map: %q", m)
		if f[1] == fmt.Sprint(u.UID) {
			return "UID"
		}
		return f[1]
	}
	one := u.start(t, "--id", "one", "sh", "-c", "cat /proc/self/uid_map; exec sleep 600")
	p1 := testenv.ContainerPid(t, u.state, "one")
	two := u.start(t, "--id", "two", "sleep", "600")
	p2 := testenv.ContainerPid(t, u.state, "two")
	defer func() { _ = one.Cmd.Process.Kill(); _ = two.Cmd.Process.Kill() }()
	host, err := os.ReadFile(fmt.Sprintf("/proc/%d/uid_map", p1))
	require.NoError(t, err)
	r := u.Run(t, nil, "nsenter", "-U", "-t", fmt.Sprint(p2), "--preserve-credentials", "cat", fmt.Sprintf("/proc/%d/uid_map", p1))
	require.Equal(t, 0, r.Code, r.String())
	from2 := first(r.Stdout)
	require.NoError(t, one.Cmd.Process.Kill())
	inside := first(one.Wait(t).Stdout)
	truth := []string{inside, first(string(host)), from2}
	for i, what := range []string{"read inside the container", "read on the host", "read from the second container's user namespace"} {
		assert.True(t, same(a[i], truth[i]), "line %d: the second field of uid_map %s (write UID for the user's uid): %s, not %q", i+1, what, truth[i], a[i])
	}
}

// 05-4: the kernel clears the parent-death signal at an execve that raises
// capabilities; without setting it again, a rootless container outlives
// its runtime.
func TestExercise05_4(t *testing.T) {
	a := answer(t, "05-4", 1)
	u := newRootless(t, "05-user", false)
	c := u.start(t, "--id", "ex054", "sleep", "600")
	pid := testenv.ContainerPid(t, u.state, "ex054")
	require.NoError(t, c.Cmd.Process.Kill())
	testenv.WaitGone(t, pid) // rearmDeathSignal must be back
	assert.True(t, same(a[0], "yes"), "line 1: without rearmDeathSignal, does the sleep outlive its killed runtime (yes or no)? not %q", a[0])
}

// 05-5: an owner outside the map is nobody inside, and the container's
// root is "other" to it.
func TestExercise05_5(t *testing.T) {
	a := answer(t, "05-5", 2)
	u := newRootless(t, "05-user", true)
	rootfs := u.Rootfs(t)
	out, err := exec.Command("chown", "-R", fmt.Sprintf("%d:%d", u.SubUID, u.SubGID), rootfs).CombinedOutput()
	require.NoError(t, err, string(out))
	r := u.run(t, "--map-subids", "--rootfs", rootfs, "stat", "-c", "%u", "/etc/passwd")
	require.Equal(t, 0, r.Code, r.String())
	owner := strings.TrimSpace(r.Stdout)
	r = u.run(t, "--map-root-user", "--rootfs", rootfs, "touch", "/etc/x")
	require.NotEqual(t, 0, r.Code, r.String())
	m := regexp.MustCompile(`touch: /etc/x: (.*)`).FindStringSubmatch(r.Stderr)
	require.NotNil(t, m, r.String())
	assert.True(t, same(a[0], owner) || owner == "65534" && same(a[0], "nobody"), "line 1: the owner of /etc/passwd inside, with --map-subids: %s, not %q", owner, a[0])
	assert.True(t, same(a[1], m[1]), "line 2: the error of touch /etc/x with --map-root-user: %q, not %q", m[1], a[1])
}

// 05-6: slirp4netns runs as the user, and its sockets are the user's.
func TestExercise05_6(t *testing.T) {
	a := answer(t, "05-6", 2)
	u := newRootless(t, "05-user", false)
	// /dev/net/tun may be 0600: a node of 0666 over it, in a mount
	// namespace of the check's own.
	tun := filepath.Join(t.TempDir(), "tun")
	argv := u.Argv(nil, u.bin, "run", "--id", "ex056", "--net=slirp4netns", "sleep", "600")
	script := fmt.Sprintf(`mknod -m 666 %s c 10 200 && mount --bind %s /dev/net/tun && exec "$@"`, tun, tun)
	c := testenv.Start(t, nil, "unshare", append([]string{"--mount", "--propagation", "private", "sh", "-c", script, "sh"}, argv...)...)
	testenv.ContainerPid(t, u.state, "ex056")
	defer func() { _ = c.Cmd.Process.Kill() }()
	var user string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && user == ""; time.Sleep(50 * time.Millisecond) {
		out, _ := exec.Command("ps", "-o", "uid=", "-C", "slirp4netns").Output()
		for _, f := range strings.Fields(string(out)) {
			if uid, _ := strconv.Atoi(f); uid == u.UID {
				user = u.Name
			}
		}
	}
	require.Equal(t, u.Name, user, "slirp4netns runs as the user who ran the container")
	assert.True(t, same(a[0], "berthuser"), "line 1: the user slirp4netns runs as, in the chapter's set-up: not %q", a[0])
	assert.True(t, same(a[1], "slirp4netns"), "line 2: the process ss -tnp names for the container's connection: not %q", a[1])
}
