//go:build linux

package cli_test

import (
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/internal/testenv"
)

// A command that ends cleanly on SIGTERM, as a well-behaved server does
// (as PID 1, sh would ignore it: the kernel protects a namespace's init).
const server = `trap "echo bye; exit 0" TERM; echo started; echo oops >&2; while true; do sleep 0.1; done`

// run -d, ps, logs, stop, rm: the container outlives the command, ps shows
// it, its logs keep stdout and stderr apart, stop ends it with its own
// exit code, rm removes it and everything it made.
func TestLifecycle(t *testing.T) {
	h := newHost(t)
	id := h.runD("--name", "web", "-l", "tier=front", "sh", "-c", server)
	assert.Regexp(t, `^[0-9a-f]{64}$`, id)
	h.waitLog("web", "started")

	ps := h.ok("ps")
	lines := strings.Split(ps, "\n")
	require.Len(t, lines, 2, ps)
	assert.Regexp(t, `^CONTAINER ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+NAMES$`, lines[0])
	assert.Regexp(t, `^`+id[:12]+`\s+\S+\s+"sh -c trap \\"echo by…"\s+.* ago\s+Up .*\s+web$`, lines[1])

	r := h.run("logs", "web")
	assert.Equal(t, "started\n", r.Stdout)
	assert.Equal(t, "oops\n", r.Stderr)
	assert.Equal(t, "running", h.inspect("web", "{{.State.Status}}"))
	assert.Equal(t, "front", h.inspect(id[:5], `{{index .Config.Labels "tier"}}`))

	assert.Equal(t, "web", h.ok("stop", "web"))
	assert.Equal(t, "exited 0 false", h.inspect("web", "{{.State.Status}} {{.State.ExitCode}} {{.State.Running}}"))
	assert.Empty(t, h.ok("ps", "-q"))
	assert.Equal(t, id[:12], h.ok("ps", "-aq"))
	assert.Regexp(t, `^web Exited \(0\) .* ago$`, h.ok("ps", "-a", "--format", "{{.Names}} {{.Status}}"))
	assert.Contains(t, h.run("logs", "web").Stdout, "bye\n", "the trap ran")

	assert.Equal(t, "web", h.ok("rm", "web"))
	r = h.run("inspect", "web")
	assert.Equal(t, 1, r.Code)
	assert.Contains(t, r.Stderr, "No such object: web", "neither a container nor an image, as docker inspect says")
	h.assertNothingLeft([]string{id})
}

// Docker's exit codes: the command's own, 125 for berth, 126 and 127.
func TestExitCodes(t *testing.T) {
	h := newHost(t)
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"sh", "-c", "exit 7"}, 7, ""},
		{[]string{"nosuchcommand"}, 127, `exec: "nosuchcommand": executable file not found in $PATH`},
		{[]string{"/etc/passwd"}, 126, "exec /etc/passwd"},
		{[]string{"--bogus-flag", "true"}, 125, "unknown flag: --bogus-flag"},
		{[]string{"--restart", "sometimes", "true"}, 125, "invalid restart policy"},
	} {
		r := h.run(h.runArgs("--rm", tc.args...)...)
		assert.Equal(t, tc.code, r.Code, "%v: %s", tc.args, r)
		if tc.err != "" {
			assert.Contains(t, r.Stderr, tc.err, tc.args)
		}
	}
	r := h.run("run", "--network", "none", "--pull", "never", "nosuchimage")
	assert.Equal(t, 125, r.Code)
	assert.Equal(t, "berth: No such image: nosuchimage:latest\n", r.Stderr)
	r = h.run("stop", "nosuch")
	assert.Equal(t, 1, r.Code)
	assert.Equal(t, "berth: No such container: nosuch\n", r.Stderr)
	assert.Empty(t, h.ids(), "--rm removed every one, failed or not")
}

// A container made with -d does not belong to the command that made it:
// killing that command (SIGKILL, no chance to clean up) leaves it running,
// under its monitor, and stop works.
func TestDetachedSurvivesItsCommand(t *testing.T) {
	h := newHost(t)
	bg := testenv.Start(t, h.env, h.bin, h.runArgs("-d", "--name", "d", "sh", "-c", server)...)
	h.waitFor("d", "{{.State.Status}}", "running", 30*time.Second)
	_ = bg.Cmd.Process.Kill()
	bg.Wait(t)
	id := h.inspect("d", "{{.Id}}")
	st := h.stored(id)
	require.True(t, alive(st.MonitorPid) && alive(st.Pid), "monitor and init run")
	assert.Regexp(t, `\sd$`, h.ok("ps"), "ps shows it")
	assert.Equal(t, "d", h.ok("stop", "d"))
	assert.Equal(t, "0", h.inspect("d", "{{.State.ExitCode}}"))
	waitGone(t, st.MonitorPid)
}

// A foreground run killed with SIGKILL leaves its container running, as
// docker run's does: the container's parent is its monitor.
func TestForegroundRunKilledLeavesContainerRunning(t *testing.T) {
	h := newHost(t)
	bg := testenv.Start(t, h.env, h.bin, h.runArgs("", "--name", "fg", "sh", "-c", server)...)
	h.waitLog("fg", "started")
	require.NoError(t, bg.Cmd.Process.Signal(syscall.SIGKILL))
	r := bg.Wait(t)
	assert.Equal(t, 137, r.Code)
	assert.Equal(t, "running", h.inspect("fg", "{{.State.Status}}"))
	assert.Equal(t, "fg", h.ok("stop", "fg"))
	assert.Equal(t, "exited 0", h.inspect("fg", "{{.State.Status}} {{.State.ExitCode}}"))
}

// The monitor killed with SIGKILL: the container is marked, its init keeps
// running (nothing told it), stop still works, and rm leaves nothing.
func TestMonitorKilled(t *testing.T) {
	h := newHost(t)
	id := h.runD("--name", "m", "sleep", "1000")
	h.waitFor("m", "{{.State.Status}}", "running", 30*time.Second)
	st := h.stored(id)
	require.NoError(t, syscall.Kill(st.MonitorPid, syscall.SIGKILL))
	waitGone(t, st.MonitorPid)
	assert.Equal(t, "running", h.inspect("m", "{{.State.Status}}"))
	assert.Contains(t, h.inspect("m", "{{.State.Error}}"), "monitor died")
	assert.Regexp(t, `Up `, h.ok("ps", "--format", "{{.Status}}"))

	assert.Equal(t, "m", h.ok("stop", "-t", "1", "m"))
	waitGone(t, st.Pid)
	assert.Equal(t, "exited", h.inspect("m", "{{.State.Status}}"))
	assert.Equal(t, "m", h.ok("rm", "m"))
	h.assertNothingLeft([]string{id})
}

// --rm: the container goes when its command ends, foreground or detached.
func TestAutoRemove(t *testing.T) {
	h := newHost(t)
	r := h.run(h.runArgs("--rm", "--name", "gone", "sh", "-c", "echo bye; exit 3")...)
	assert.Equal(t, 3, r.Code, r.String())
	assert.Equal(t, "bye\n", r.Stdout)
	assert.Empty(t, h.ids())

	id := h.runD("--rm", "sh", "-c", "sleep 0.3")
	for deadline := time.Now().Add(30 * time.Second); len(h.ids()) > 0 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	assert.Empty(t, h.ids(), "a detached --rm container goes too")
	h.assertNothingLeft([]string{id})
}

// create sets everything up and leaves the command waiting; start runs it.
func TestCreateThenStart(t *testing.T) {
	h := newHost(t)
	args := h.runArgs("", "--name", "c", "sh", "-c", "echo ran; exit 4")
	args[0] = "create"
	id := h.ok(args...)
	assert.Equal(t, "created", h.inspect("c", "{{.State.Status}}"))
	assert.Empty(t, h.run("logs", "c").Stdout, "nothing ran yet")
	r := h.run("start", "-a", "c")
	assert.Equal(t, 4, r.Code, r.String())
	assert.Equal(t, "ran\n", r.Stdout)
	// Started again: a new run, under a new monitor.
	assert.Equal(t, "c", h.ok("start", "c"))
	assert.Equal(t, "4", h.ok("wait", "c"))
	assert.Equal(t, "ran\nran\n", h.run("logs", "c").Stdout)
	assert.Equal(t, "c", h.ok("rm", "c"))
	h.assertNothingLeft([]string{id})
}

// A name is taken once; rename frees the old one.
func TestNames(t *testing.T) {
	h := newHost(t)
	h.runD("--name", "a", "sleep", "100")
	r := h.run(h.runArgs("-d", "--name", "a", "true")...)
	assert.Equal(t, 125, r.Code)
	assert.Regexp(t, regexp.MustCompile(`Conflict. The container name "/a" is already in use by container "[0-9a-f]{64}"`), r.Stderr)
	h.ok("rename", "a", "b")
	assert.Equal(t, "b", h.ok("ps", "--format", "{{.Names}}"))
	h.runD("--name", "a", "true")
	r = h.run("rm", "b")
	assert.Equal(t, 1, r.Code)
	assert.Contains(t, r.Stderr, `cannot remove container "b": container is running`)
	assert.Equal(t, "b", h.ok("rm", "-f", "b"))
}
