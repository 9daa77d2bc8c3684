//go:build exercise && linux

package exercises

// The exercises of docs/09-exec.md, 09-12 to 09-15 (chapter 09's
// exercises are numbered on across its chapters).

import (
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// statusField reads one field of /proc/PID/status.
func statusField(t *testing.T, pid int, field string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^` + field + `:\s*(.*)$`).FindSubmatch(b)
	require.NotNil(t, m, "no %s in /proc/%d/status", field, pid)
	return strings.TrimSpace(string(m[1]))
}

// 09-12: a detached exec's command: the parent it sees in the container
// (none there: 0), and its parent on the host (the keeper, berth; stage 0
// is gone).
func TestExercise09_12(t *testing.T) {
	a := answer(t, "09-12", 2)
	b := newBerth(t)
	id := b.ok(b.on("-d", "--name", "app", "sleep", "1000")...)
	b.ok("exec", "-d", "app", "sleep", "999")
	init := b.statePid(id)
	initNS, err := os.Readlink("/proc/" + strconv.Itoa(init) + "/ns/pid")
	require.NoError(t, err)
	var pid int
	waitFor(t, "the exec'd sleep 999", func() bool {
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			p, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			cmd, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
			if l, _ := os.Readlink("/proc/" + e.Name() + "/ns/pid"); string(cmd) == "sleep\x00999\x00" && l == initNS {
				pid = p
				return true
			}
		}
		return false
	})
	seen := strings.TrimSpace(strings.TrimPrefix(b.ok("exec", "app", "grep", "PPid", "/proc/self/status"), "PPid:"))
	ppid, err := strconv.Atoi(statusField(t, pid, "PPid"))
	require.NoError(t, err)
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(ppid) + "/comm")
	require.NoError(t, err)
	assert.True(t, same(a[0], seen), "line 1: the PPid an exec'd command sees in the container: %s, not %q", seen, a[0])
	assert.True(t, same(a[1], strings.TrimSpace(string(comm))), "line 2: the name (comm) of the detached sleep's parent on the host: %s, not %q", strings.TrimSpace(string(comm)), a[1])
}

// 09-13: berth exec's exit codes for what is not the command's: not
// found, not executable, a paused container.
func TestExercise09_13(t *testing.T) {
	a := answer(t, "09-13", 3)
	b := newBerth(t)
	b.ok(b.on("-d", "--name", "app", "sleep", "1000")...)
	codes := []string{strconv.Itoa(b.run("exec", "app", "nosuch").Code), strconv.Itoa(b.run("exec", "app", "/etc/passwd").Code)}
	b.ok("pause", "app")
	codes = append(codes, strconv.Itoa(b.run("exec", "app", "true").Code))
	b.ok("unpause", "app")
	for i, what := range []string{"a command not found", "a file that is not executable", "a paused container"} {
		assert.True(t, same(a[i], codes[i]), "line %d: berth exec's exit code for %s: %s, not %q", i+1, what, codes[i], a[i])
	}
}

// 09-14: a health check that does not end in time: the exit code the log
// records for it, and the status after one such failure with retries 1.
func TestExercise09_14(t *testing.T) {
	a := answer(t, "09-14", 2)
	b := newBerth(t)
	b.ok(b.on("-d", "--name", "slow", "--health-cmd", "sleep 5", "--health-timeout", "1s", "--health-interval", "1s", "--health-retries", "1", "sleep", "1000")...)
	waitFor(t, "a first check's result", func() bool { return b.inspect("slow", "{{len .State.Health.Log}}") != "0" })
	code := b.inspect("slow", "{{(index .State.Health.Log 0).ExitCode}}")
	status := b.inspect("slow", "{{.State.Health.Status}}")
	assert.True(t, same(a[0], code), "line 1: the exit code recorded for a check killed at its timeout: %s, not %q", code, a[0])
	assert.True(t, same(a[1], status), "line 2: the container's health after it (--health-retries 1): %s, not %q", status, a[1])
}

// 09-15: berth exec keeps the container's restrictions, nsenter -a does
// not: is each one's CapEff the init's?
func TestExercise09_15(t *testing.T) {
	a := answer(t, "09-15", 2)
	if _, err := exec.LookPath("nsenter"); err != nil {
		t.Skip("no nsenter(1) on this machine (util-linux)")
	}
	b := newBerth(t)
	id := b.ok(b.on("-d", "--name", "app", "--cap-drop", "ALL", "--cap-add", "CHOWN", "sleep", "1000")...)
	init := b.statePid(id)
	want := statusField(t, init, "CapEff")
	capOf := func(out string) string {
		m := regexp.MustCompile(`CapEff:\s*(\S+)`).FindStringSubmatch(out)
		require.NotNil(t, m, out)
		return m[1]
	}
	viaBerth := capOf(b.ok("exec", "app", "grep", "CapEff", "/proc/self/status"))
	out, err := exec.Command("nsenter", "-a", "-t", strconv.Itoa(init), "grep", "CapEff", "/proc/self/status").CombinedOutput()
	require.NoError(t, err, string(out))
	viaNsenter := capOf(string(out))
	assert.True(t, same(a[0], yes(viaBerth == want)), "line 1: is berth exec's CapEff the init's (%s vs %s): %s, not %q", viaBerth, want, yes(viaBerth == want), a[0])
	assert.True(t, same(a[1], yes(viaNsenter == want)), "line 2: is nsenter -a's CapEff the init's (%s vs %s): %s, not %q", viaNsenter, want, yes(viaNsenter == want), a[1])
}
