//go:build linux

package cli_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/internal/testenv"
)

// top: the container's processes, its execs too, and no other, as the
// host's ps prints them, with the ps options given.
func TestTop(t *testing.T) {
	h := newHost(t)
	h.runD("--name", "c", "sh", "-c", "sleep 1001 & sleep 1002")
	h.ok("exec", "-d", "c", "sleep", "1003")
	var out string
	for i := 0; i < 100 && !strings.Contains(out, "sleep 1003"); i++ {
		out = h.ok("top", "c")
	}
	lines := strings.Split(out, "\n")
	assert.Regexp(t, `^UID\s+PID\s+PPID\s+C\s+STIME\s+TTY\s+TIME\s+CMD$`, lines[0])
	require.Len(t, lines, 4, out)
	for _, cmd := range []string{"sleep 1001", "sleep 1002", "sleep 1003"} {
		assert.Contains(t, out, cmd)
	}
	out = h.ok("top", "c", "-o", "pid,comm")
	assert.Regexp(t, `^PID\s+COMMAND\n\d+\s+sleep\n\d+\s+sleep\n\d+\s+sleep$`, out)
	r := h.run("top", "c", "-o", "comm")
	assert.Equal(t, 1, r.Code)
	assert.Contains(t, r.Stderr, "couldn't find PID field in ps output")
	h.ok("stop", "-t", "1", "c")
	r = h.run("top", "c")
	assert.Equal(t, 1, r.Code)
	assert.Contains(t, r.Stderr, "is not running")
}

// port: the published ports, all or one.
func TestPort(t *testing.T) {
	h := newHost(t)
	h.runD("--name", "c", "--network", "bridge", "-p", "18080:80", "-p", "127.0.0.1:15353:53/udp", "sleep", "1000")
	assert.Equal(t, "80/tcp -> 0.0.0.0:18080\n53/udp -> 127.0.0.1:15353", h.ok("port", "c"))
	assert.Equal(t, "0.0.0.0:18080", h.ok("port", "c", "80"))
	assert.Equal(t, "127.0.0.1:15353", h.ok("port", "c", "53/udp"))
	r := h.run("port", "c", "81")
	assert.Equal(t, 1, r.Code)
	assert.Contains(t, r.Stderr, "no public port '81/tcp' published for c")
	r = h.run("port", "c", "http")
	assert.Equal(t, 125, r.Code)
	h.runD("--name", "none", "sleep", "1000")
	assert.Empty(t, h.ok("port", "none"))
}

// diff: what the container changed, running and stopped, as docker diff.
func TestDiff(t *testing.T) {
	h := newHost(t)
	h.runD("--name", "c", "sh", "-c", "echo x >/tmp/new; rm /bin/vi; touch /etc/passwd; echo ready; sleep 1000")
	h.waitLog("c", "ready")
	want := "C /bin\nD /bin/vi\nC /etc\nC /etc/passwd\nC /tmp\nA /tmp/new"
	assert.Equal(t, want, h.ok("diff", "c"))
	h.ok("stop", "-t", "0", "c")
	assert.Equal(t, want, h.ok("diff", "c"), "the layer outlives the run")
}

// stats: a memory hog of 48 MiB shows about 48 MiB of its 256 MiB limit,
// a busy loop some CPU; a stopped container (-a) shows "--".
func TestStats(t *testing.T) {
	h := newHost(t)
	// 48 MiB in the container's tmpfs /dev/shm: its memory, charged to
	// its cgroup (and quick to make, even in the VM's emulated CPU).
	h.runD("--name", "hog", "-m", "256m", "sh", "-c", "head -c 48m /dev/zero >/dev/shm/hog; echo ready; sleep 1000")
	h.runD("--name", "busy", "sh", "-c", "while :; do :; done")
	h.ok("create", "--name", "off", "--rootfs", h.rootf, "--network", "none", "true")
	h.waitLog("hog", "ready")
	out := h.ok("stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}} {{.PIDs}} {{.NetIO}}", "hog")
	m := regexp.MustCompile(`^hog ([0-9.]+)MiB / 256MiB 1 0B / 0B$`).FindStringSubmatch(out)
	require.NotNil(t, m, "hog's stats: one process, 256 MiB: %s", out)
	used, err := strconv.ParseFloat(m[1], 64)
	require.NoError(t, err)
	assert.InDelta(t, 50, used, 6, "a 48 MiB hog: %s", out)

	out = h.ok("stats", "--no-stream", "--format", "{{.CPUPerc}}", "busy")
	cpu, err := strconv.ParseFloat(strings.TrimSuffix(out, "%"), 64)
	require.NoError(t, err, out)
	assert.Greater(t, cpu, 5.0, "a busy loop uses CPU: %s", out)

	out = h.ok("stats", "--no-stream", "-a", "--format", "{{.Name}} {{.CPUPerc}} {{.MemUsage}}")
	assert.Contains(t, out, "off -- --")
	lines := strings.Split(h.ok("stats", "--no-stream"), "\n")
	assert.Regexp(t, `^CONTAINER ID\s+NAME\s+CPU %\s+MEM USAGE / LIMIT\s+MEM %\s+NET I/O\s+BLOCK I/O\s+PIDS$`, lines[0])
	assert.Len(t, lines, 3, "the running two, without -a")
}

// commit: the container's image plus its changes, its configuration with
// --change over it; the container runs on (paused only meanwhile).
func TestCommit(t *testing.T) {
	h := newHost(t)
	h.importBusybox()
	h.ok("run", "-d", "--name", "c", "--network", "none", "-e", "A=1", "busybox", "sh", "-c", "echo hello >/greeting; rm /bin/vi; echo ready; sleep 1000")
	h.waitLog("c", "ready")
	id := h.ok("commit", "-m", "a greeting", "-a", "me", "-c", `CMD ["cat", "/greeting"]`, "c", "greeted:v1")
	assert.Regexp(t, `^sha256:[0-9a-f]{64}$`, id)
	assert.Equal(t, "running", h.inspect("c", "{{.State.Status}}"))
	assert.Equal(t, "hello", h.ok("run", "--rm", "--network", "none", "greeted:v1"))
	r := h.run("run", "--rm", "--network", "none", "greeted:v1", "sh", "-c", "echo $A; test -e /bin/vi || echo no vi")
	assert.Equal(t, "1\nno vi\n", r.Stdout, r.String())
	assert.Contains(t, h.ok("history", "greeted:v1"), "a greeting")

	h.runD("--name", "dir", "sleep", "1000")
	r = h.run("commit", "dir")
	assert.Equal(t, 1, r.Code)
	assert.Contains(t, r.Stderr, "runs on a directory (--rootfs), not an image")
	r = h.run("commit", "c", "Bad:Name")
	assert.Equal(t, 125, r.Code)
	h.ok("rm", "-f", "c")
	h.ok("rmi", "greeted:v1")
}

// update: live limits, read back from the cgroup (stats) and the record
// (inspect); a 48 MiB hog that 32 MiB kills lives under 256 MiB; a new
// restart policy applies at the next exit.
func TestUpdate(t *testing.T) {
	h := newHost(t)
	h.runD("--name", "c", "-m", "32m", "sleep", "1000")
	hog := `x=$(head -c 48m /dev/zero | tr "\0" a); echo survived`
	assert.Equal(t, 137, h.run("exec", "c", "sh", "-c", hog).Code)
	assert.Equal(t, "c", h.ok("update", "--memory", "256m", "--cpus", "0.5", "--pids-limit", "20", "c"))
	assert.Equal(t, "256MiB", strings.TrimSpace(strings.SplitAfter(h.ok("stats", "--no-stream", "--format", "{{.MemUsage}}", "c"), "/ ")[1]))
	assert.Equal(t, "268435456 500000000 20", h.inspect("c", "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}}"))
	assert.Equal(t, "survived", h.ok("exec", "c", "sh", "-c", hog))
	h.ok("update", "--memory", "16m", "c") // a cut: the limit first, then memory+swap
	assert.Equal(t, "16777216", h.inspect("c", "{{.HostConfig.Memory}}"))
	assert.Equal(t, 137, h.run("exec", "c", "sh", "-c", hog).Code)

	h.runD("--name", "flaky", "sh", "-c", "sleep 1; exit 3")
	h.ok("update", "--restart", "on-failure:2", "flaky")
	h.waitFor("flaky", "{{.State.Status}} {{.RestartCount}}", "exited 2", 60*time.Second)

	r := h.run("update", "c")
	assert.Equal(t, 125, r.Code)
	r = h.run("update", "--memory", "1k", "c")
	assert.Equal(t, 125, r.Code)
	assert.Contains(t, r.Stderr, "at least 6MB")
}

// events: what happened to a container, in order, as docker events names
// it; followed live until Ctrl-C.
func TestEvents(t *testing.T) {
	h := newHost(t)
	follow := testenv.Start(t, h.env, h.bin, "events", "--filter", "event=start", "--format", "{{.Action}} {{.Actor.Attributes.name}}")
	h.runD("--name", "ev", "sleep", "1000")
	h.run("exec", "ev", "sh", "-c", "exit 3")
	h.ok("pause", "ev")
	h.ok("unpause", "ev")
	h.ok("stop", "-t", "1", "ev")
	h.ok("rm", "ev")
	got := h.ok("events", "--since", "1h", "--until", "0s", "--filter", "container=ev", "--format", "{{.Action}}{{with .Actor.Attributes.exitCode}} {{.}}{{end}}")
	assert.Equal(t, "create\nstart\nexec_create: sh -c exit 3\nexec_start: sh -c exit 3\nexec_die 3\npause\nunpause\nkill\nkill\ndie 137\nstop\ndestroy", got)

	require.NoError(t, follow.Cmd.Process.Signal(syscall.SIGINT))
	r := follow.Wait(t)
	assert.Equal(t, 0, r.Code, r.String())
	assert.Equal(t, "start ev\n", r.Stdout, "followed live")
	r = h.run("events", "--since", "yesterday")
	assert.Equal(t, 125, r.Code)
}

// The rest of Docker's container events that a verb makes: rename (with
// oldName), restart after stop's and start's own, top, update, cp's
// archive-path and extract-to-dir, export, commit, and a health check's
// change of status.
func TestEventsOfTheVerbs(t *testing.T) {
	h := newHost(t)
	h.importBusybox()
	id := h.ok("run", "-d", "--network", "none", "--name", "ev", "--health-cmd", "true", "--health-interval", "100ms", "busybox", "sleep", "1000")
	h.waitFor("ev", "{{.State.Health.Status}}", "healthy", 30*time.Second)
	h.ok("rename", "ev", "ev2")
	h.ok("top", "ev2")
	h.ok("update", "--cpus", "0.5", "ev2")
	in := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(in, []byte("x"), 0o644))
	h.ok("cp", in, "ev2:/tmp/")
	h.ok("cp", "ev2:/tmp/f", filepath.Join(t.TempDir(), "g"))
	require.Equal(t, 0, h.run("export", "-o", filepath.Join(t.TempDir(), "x.tar"), "ev2").Code)
	h.ok("commit", "-m", "a note", "ev2", "evimage")
	h.ok("restart", "-t", "0", "ev2")
	got := h.ok("events", "--since", "1h", "--until", "0s", "--filter", "container="+id, "--format",
		"{{.Action}}{{with .Actor.Attributes.oldName}} {{.}}{{end}}{{with .Actor.Attributes.comment}} {{.}}{{end}} {{.Actor.Attributes.name}}")
	// The restarted run's checks may have begun: its own healthy is not
	// this test's.
	lines := strings.Split(got, "\n")
	require.Greater(t, len(lines), 3)
	assert.Equal(t, []string{"create ev", "start ev", "health_status: healthy ev"}, lines[:3])
	lines = slices.DeleteFunc(lines[3:], func(l string) bool { return strings.HasPrefix(l, "health_status") })
	assert.Equal(t, []string{"rename /ev ev2", "top ev2", "update ev2",
		"extract-to-dir ev2", "archive-path ev2", "export ev2", "pause ev2", "unpause ev2", "commit a note ev2",
		"kill ev2", "kill ev2", "die ev2", "stop ev2", "start ev2", "restart ev2"}, lines)
	h.ok("rm", "-f", "ev2")
	h.ok("rmi", "evimage", "busybox")
}
