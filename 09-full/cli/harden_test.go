//go:build linux

package cli_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"berth/internal/testenv"
)

// Regression tests of the stage-09 security review (REVIEW-09).

// The runtime's environment (a secret the user exported, its HOME, the
// runtime's own variables) does not reach the container's init (PID 1
// with --init: /proc/1/environ is readable in there); the secret does not
// reach the monitor beside it either (which keeps HOME and the XDG roots
// to find a rootless user's roots).
func TestInitGetsNoneOfTheRuntimesEnvironment(t *testing.T) {
	h := newHost(t)
	// The runtime's HOME is one the container's own HOME=/root cannot be
	// taken for (PID 1 is tini, whose environment is the command's).
	env := append(slices.Clone(h.env), "MY_SECRET=hunter2", "HOME=/tmp/the-runtimes-home")
	r := testenv.Run(t, env, h.bin, h.runArgs("--rm", "--init", "cat", "/proc/1/environ")...)
	require.Equal(t, 0, r.Code, r)
	init := strings.ReplaceAll(r.Stdout, "\x00", " ")
	assert.NotContains(t, init, "hunter2")
	assert.NotContains(t, init, "BERTH_ROOT")
	assert.NotContains(t, init, "the-runtimes-home")
	assert.NotContains(t, init, "_BERTH")

	r = testenv.Run(t, env, h.bin, h.runArgs("-d", "--init", "sleep", "100")...)
	require.Equal(t, 0, r.Code, r)
	st := h.stored(strings.TrimSpace(r.Stdout))
	for _, pid := range []int{st.MonitorPid, st.Pid} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		require.NoError(t, err)
		assert.NotContains(t, string(b), "hunter2", "pid %d", pid)
	}
}

// -v HOST:CTR:ro is read-only all the way down: a mount under the host
// directory (here a tmpfs) is part of the rbind and was left writable,
// so the container's write landed on the host.
func TestReadOnlyVolumeIsReadOnlyBelow(t *testing.T) {
	h := newHost(t)
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub")
	require.NoError(t, os.Mkdir(sub, 0o755))
	require.NoError(t, unix.Mount("tmpfs", sub, "tmpfs", 0, "size=1m"))
	defer func() { require.NoError(t, unix.Unmount(sub, unix.MNT_DETACH)) }()
	r := h.run(h.runArgs("--rm", "-v", dir+":/r:ro", "sh", "-c", "echo x > /r/sub/written")...)
	assert.NotEqual(t, 0, r.Code, "the write under the read-only volume must fail: %s", r)
	assert.Contains(t, r.Stderr, "Read-only file system")
	assert.NoFileExists(t, filepath.Join(sub, "written"))
}

// More published ports than one message to the monitor can carry (the
// kernel's SCM_MAX_FD, 253) are refused in one line, before anything is
// made: past it, the ports' sockets could not all reach the monitor.
func TestTooManyPublishedPorts(t *testing.T) {
	h := newHost(t)
	args := []string{"run", "--rm", "--rootfs", h.rootf}
	for i := range 253 {
		args = append(args, "-p", fmt.Sprintf("%d:%d", 30000+i, 1000+i))
	}
	r := h.run(append(args, "true")...)
	assert.Equal(t, 125, r.Code, "%s", r)
	assert.Contains(t, r.Stderr, "253 published ports: at most 252")
}

// The monitor runs in /, not in the directory berth was started from
// (which it would keep busy for the container's life: a umount of it
// fails).
func TestMonitorRunsInRoot(t *testing.T) {
	h := newHost(t)
	id := h.runD("sleep", "100")
	cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", h.stored(id).MonitorPid))
	require.NoError(t, err)
	assert.Equal(t, "/", cwd)
}
