//go:build linux

package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ps: -a, -q, -n, --no-trunc, the filters and Go templates, as docker ps.
func TestPs(t *testing.T) {
	h := newHost(t)
	h.importBusybox()
	a := h.ok("run", "-d", "--network", "none", "--name", "alpha", "-l", "app=web", "-l", "tier=front", "busybox", "sleep", "100")
	b := h.ok("run", "-d", "--network", "none", "--name", "beta", "-l", "app=db", "busybox", "true")
	h.waitFor("beta", "{{.State.Status}}", "exited", 30*time.Second)
	c := h.ok(h.runArgs("-d", "--name", "gamma", "sleep", "100")...)

	assert.Equal(t, []string{c[:12], a[:12]}, strings.Fields(h.ok("ps", "-q")), "running only, newest first")
	assert.Equal(t, []string{c[:12], b[:12], a[:12]}, strings.Fields(h.ok("ps", "-aq")))
	assert.Equal(t, []string{c[:12], b[:12]}, strings.Fields(h.ok("ps", "-q", "-n", "2")))
	assert.Equal(t, []string{c}, strings.Fields(h.ok("ps", "-q", "-l", "--no-trunc")))
	assert.Equal(t, "beta", h.ok("ps", "--filter", "status=exited", "--format", "{{.Names}}"))
	assert.Equal(t, "beta\nalpha", h.ok("ps", "-a", "--filter", "label=app", "--format", "{{.Names}}"))
	assert.Equal(t, "alpha", h.ok("ps", "-a", "--filter", "label=app=web", "--format", "{{.Names}}"))
	assert.Equal(t, "beta\nalpha", h.ok("ps", "-a", "--filter", "ancestor=busybox", "--format", "{{.Names}}"))
	assert.Equal(t, "gamma\nalpha", h.ok("ps", "-a", "--filter", "name=^(alpha|gamma)$", "--format", "{{.Names}}"))
	assert.Equal(t, "alpha web front", h.ok("ps", "--filter", "name=alpha", "--format", `{{.Names}} {{.Label "app"}} {{.Label "tier"}}`))
	table := h.ok("ps", "-a", "--filter", "name=beta", "--format", "table {{.Names}}\t{{.State}}\t{{.Image}}")
	assert.Regexp(t, `^NAMES\s+STATE\s+IMAGE\nbeta\s+exited\s+busybox$`, table)
	r := h.run("ps", "--filter", "colour=red")
	assert.Equal(t, 125, r.Code)
	assert.Contains(t, r.Stderr, "invalid filter 'colour'")
}

// inspect: Docker's JSON shape, and --format over it.
func TestInspect(t *testing.T) {
	h := newHost(t)
	dir := t.TempDir()
	id := h.ok(h.runArgs("-d", "--name", "i", "-e", "A=1", "-w", "/tmp", "-v", dir+":/data:ro", "-v", "/anon",
		"--restart", "unless-stopped", "--log-opt", "max-size=1m", "--log-opt", "max-file=2", "--cpus", "0.5", "--pids-limit", "50",
		"sleep", "100")...)
	var out []map[string]any
	require.NoError(t, json.Unmarshal([]byte(h.ok("inspect", "i")), &out))
	require.Len(t, out, 1)
	got := out[0]
	for _, k := range []string{"Id", "Created", "Path", "Args", "State", "Image", "LogPath", "Name", "RestartCount", "HostConfig", "Mounts", "Config", "NetworkSettings"} {
		assert.Contains(t, got, k)
	}
	assert.Equal(t, id, got["Id"])
	assert.Equal(t, "/i", got["Name"])
	assert.Equal(t, "sleep", got["Path"])
	assert.Equal(t, "running true", h.inspect("i", "{{.State.Status}} {{.State.Running}}"))
	assert.Equal(t, "/tmp", h.inspect("i", "{{.Config.WorkingDir}}"))
	assert.Contains(t, h.inspect("i", "{{json .Config.Env}}"), `"A=1"`)
	assert.Equal(t, "unless-stopped 1048576 2", h.inspect("i", `{{.HostConfig.RestartPolicy.Name}} {{index .HostConfig.LogConfig.Config "max-size"}} {{index .HostConfig.LogConfig.Config "max-file"}}`))
	assert.Equal(t, "500000000 50", h.inspect("i", "{{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}}"))
	assert.Equal(t, `["`+dir+`:/data:ro"]`, h.inspect("i", "{{json .HostConfig.Binds}}"))
	mounts := h.inspect("i", `{{range .Mounts}}{{.Type}} {{.Destination}} {{.RW}};{{end}}`)
	assert.Equal(t, "bind /data false;volume /anon true;", mounts)
	assert.Equal(t, "none", h.inspect("i", "{{.HostConfig.NetworkMode}}"))
	r := h.run("inspect", "i", "nosuch")
	assert.Equal(t, 1, r.Code)
	assert.Contains(t, r.Stderr, "No such object: nosuch", "neither a container nor an image, as docker inspect says")
	assert.Contains(t, r.Stdout, id, "what was found is printed")
}

// logs: --tail, -t, --since/--until, -f until the container ends, and
// max-size/max-file rotation, read back whole by logs.
func TestLogs(t *testing.T) {
	h := newHost(t)
	h.ok(h.runArgs("", "--name", "l", "sh", "-c", "for i in 1 2 3 4 5; do echo line $i; done")...)
	assert.Equal(t, "line 3\nline 4\nline 5\n", h.run("logs", "--tail", "3", "l").Stdout)
	h.ok(h.runArgs("", "--name", "e", "sh", "-c", "echo out; echo err >&2")...)
	r := h.run("logs", "-t", "e")
	assert.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z out\n$`, r.Stdout)
	assert.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z err\n$`, r.Stderr)
	assert.Empty(t, h.run("logs", "--since", "1m", "--until", "30s", "l").Stdout)
	assert.Equal(t, "line 1\n", strings.SplitAfter(h.run("logs", "--since", "1m", "l").Stdout, "\n")[0])

	// -f follows until the container exits.
	h.runD("--name", "f", "sh", "-c", "echo a; sleep 1; echo b")
	done := make(chan string)
	go func() { done <- h.run("logs", "-f", "f").Stdout }()
	select {
	case out := <-done:
		assert.Equal(t, "a\nb\n", out)
	case <-time.After(30 * time.Second):
		t.Fatal("logs -f did not end with the container")
	}

	// Rotation: files of at most 1 KiB, three kept; logs reads them in order.
	id := h.ok(h.runArgs("", "--name", "rot", "--log-opt", "max-size=1k", "--log-opt", "max-file=3",
		"sh", "-c", "i=0; while [ $i -lt 100 ]; do i=$((i+1)); echo line $i; done")...)
	_ = id
	logs, err := filepath.Glob(filepath.Join(h.data, "containers", "*", "*-json.log*"))
	require.NoError(t, err)
	n := 0
	for _, p := range logs {
		st, err := os.Stat(p)
		require.NoError(t, err)
		if strings.Contains(p, h.inspect("rot", "{{.Id}}")) {
			n++
			assert.LessOrEqual(t, st.Size(), int64(1024), p)
		}
	}
	assert.Equal(t, 3, n, "max-file=3")
	lines := strings.Split(strings.TrimSpace(h.run("logs", "rot").Stdout), "\n")
	assert.Equal(t, "line 100", lines[len(lines)-1])
	assert.Less(t, len(lines), 100, "the oldest went")
}

// kill -s, wait, restart, pause/unpause, container prune.
func TestVerbs(t *testing.T) {
	h := newHost(t)
	h.runD("--name", "k", "--init", "sleep", "100")
	assert.Equal(t, "k", h.ok("kill", "-s", "TERM", "k"))
	assert.Equal(t, "143", h.ok("wait", "k"))
	r := h.run("kill", "k")
	assert.Equal(t, 1, r.Code)
	assert.Contains(t, r.Stderr, "is not running")

	h.runD("--name", "p", "sh", "-c", "while true; do echo tick; sleep 0.1; done")
	h.waitLog("p", "tick")
	assert.Equal(t, "p", h.ok("pause", "p"))
	assert.Equal(t, "paused", h.inspect("p", "{{.State.Status}}"))
	assert.Regexp(t, `\(Paused\)$`, h.ok("ps", "--filter", "name=p", "--format", "{{.Status}}"))
	n := len(h.run("logs", "p").Stdout)
	time.Sleep(500 * time.Millisecond)
	assert.Equal(t, n, len(h.run("logs", "p").Stdout), "frozen: nothing written")
	assert.Equal(t, "p", h.ok("unpause", "p"))
	assert.Equal(t, "running", h.inspect("p", "{{.State.Status}}"))

	first := h.inspect("p", "{{.State.StartedAt}}")
	assert.Equal(t, "p", h.ok("restart", "-t", "1", "p"))
	assert.Equal(t, "running", h.inspect("p", "{{.State.Status}}"))
	assert.NotEqual(t, first, h.inspect("p", "{{.State.StartedAt}}"))

	r = h.runIn("y\n", "container", "prune")
	assert.Equal(t, 0, r.Code, r.String())
	assert.Regexp(t, `Deleted Containers:\n[0-9a-f]{64}\n\nTotal reclaimed space: 0B`, r.Stdout)
	assert.Equal(t, "p", h.ok("ps", "-a", "--format", "{{.Names}}"), "the running one stays")
}

// A container from an image: ENTRYPOINT and CMD, ENV, WORKDIR, USER and
// -u, --entrypoint, as docker run takes them; Docker's mounts of /proc,
// /dev, /sys and the devices in /dev.
func TestFromImage(t *testing.T) {
	h := newHost(t)
	h.ok("import", "--change", `ENTRYPOINT ["echo", "entry"]`, "--change", "CMD [\"cmd\"]", "--change", "ENV GREETING=hi",
		"--change", "WORKDIR /srv", "--change", "USER nobody", h.rootf, "img")
	assert.Equal(t, "entry cmd", h.ok("run", "--rm", "--network", "none", "img"))
	assert.Equal(t, "entry other", h.ok("run", "--rm", "--network", "none", "img", "other"))
	assert.Equal(t, "hi /srv 65534", h.ok("run", "--rm", "--network", "none", "--entrypoint", "sh", "img", "-c", `echo $GREETING $(pwd) $(id -u)`))
	assert.Equal(t, "1000:1000", h.ok("run", "--rm", "--network", "none", "-u", "1000:1000", "--entrypoint", "sh", "img", "-c", "echo $(id -u):$(id -g)"))
	mounts := h.ok("run", "--rm", "--network", "none", "--entrypoint", "sh", "img", "-c",
		`awk '{for (i = 7; i < NF; i++) if ($i == "-") print $5, $(i+1)}' /proc/self/mountinfo | sort | tr '\n' ' '; ls /dev | tr '\n' ' '`)
	for _, m := range []string{"/proc proc", "/dev tmpfs", "/dev/pts devpts", "/sys sysfs", "/dev/mqueue mqueue", "/dev/shm tmpfs",
		"/etc/hosts", "/etc/hostname", "/etc/resolv.conf"} {
		assert.Contains(t, mounts, m)
	}
	for _, d := range []string{"null", "zero", "full", "random", "urandom", "tty", "ptmx", "fd", "pts", "shm", "mqueue"} {
		assert.Regexp(t, `(^| )`+d+`( |$)`, mounts)
	}
}

// -v: a bind mount, read-only on request; an anonymous volume outlives its
// container until rm -v (or --rm).
func TestVolumes(t *testing.T) {
	h := newHost(t)
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o755))
	h.ok(h.runArgs("", "--name", "v", "-v", dir+":/host", "-v", "/anon", "sh", "-c", "echo from-container > /host/f; echo kept > /anon/f")...)
	b, err := os.ReadFile(filepath.Join(dir, "f"))
	require.NoError(t, err)
	assert.Equal(t, "from-container\n", string(b))
	r := h.run(h.runArgs("--rm", "-v", dir+":/host:ro", "sh", "-c", "echo x > /host/g")...)
	assert.NotEqual(t, 0, r.Code, "read-only")
	anon := h.inspect("v", `{{range .Mounts}}{{if eq .Type "volume"}}{{.Source}}{{end}}{{end}}`)
	b, err = os.ReadFile(filepath.Join(anon, "f"))
	require.NoError(t, err)
	assert.Equal(t, "kept\n", string(b))
	// What the container left there (a setuid-root binary, say) is out
	// of every host user's reach: <data-root>/volumes is root's only.
	fi, err := os.Stat(filepath.Dir(filepath.Dir(anon)))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), filepath.Dir(filepath.Dir(anon)))
	h.ok("start", "-a", "v")
	h.ok("rm", "-v", "v")
	assert.NoDirExists(t, filepath.Dir(anon), "rm -v removes the anonymous volume")
}
