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

	"berth/internal/testenv"
)

type healthJSON struct {
	Status        string
	FailingStreak int
	Log           []struct {
		ExitCode int
		Output   string
	}
}

func (h *host) health(ref string) healthJSON {
	h.t.Helper()
	var out healthJSON
	require.NoError(h.t, json.Unmarshal([]byte(h.inspect(ref, "{{json .State.Health}}")), &out))
	return out
}

func (h *host) psStatus(name string) string {
	h.t.Helper()
	for _, line := range strings.Split(h.ok("ps", "--format", "{{.Names}}\t{{.Status}}"), "\n") {
		if n, status, _ := strings.Cut(line, "\t"); n == name {
			return status
		}
	}
	return ""
}

// A check that fails in the start period does not count: the container
// stays "starting"; once the check passes it is healthy, and after
// --health-retries failures in a row, unhealthy. ps and inspect say so.
func TestHealthCheck(t *testing.T) {
	h := newHost(t)
	h.runD("--name", "web", "--health-cmd", "cat /tmp/ok", "--health-interval", "100ms",
		"--health-retries", "2", "--health-start-period", "1h", "sleep", "1000")
	assert.Regexp(t, `^Up .* \(health: starting\)$`, h.psStatus("web"))
	// Failures, but in the start period.
	for deadline := time.Now().Add(30 * time.Second); len(h.health("web").Log) < 3; time.Sleep(50 * time.Millisecond) {
		require.True(t, time.Now().Before(deadline), "no checks ran: %+v", h.health("web"))
	}
	hs := h.health("web")
	assert.Equal(t, "starting", hs.Status, "failures in the start period do not count")
	assert.Equal(t, 0, hs.FailingStreak)
	assert.Equal(t, 1, hs.Log[0].ExitCode)
	assert.Contains(t, hs.Log[0].Output, "can't open '/tmp/ok'")

	h.ok("exec", "web", "sh", "-c", "echo fine >/tmp/ok")
	h.waitFor("web", "{{.State.Health.Status}}", "healthy", 30*time.Second)
	assert.Regexp(t, `^Up .* \(healthy\)$`, h.psStatus("web"))
	hs = h.health("web")
	assert.LessOrEqual(t, len(hs.Log), 5, "the last five, as Docker keeps")
	assert.Equal(t, "fine\n", hs.Log[len(hs.Log)-1].Output)

	// Passed once: from now on failures count, even in the start period.
	h.ok("exec", "web", "rm", "/tmp/ok")
	h.waitFor("web", "{{.State.Health.Status}}", "unhealthy", 30*time.Second)
	assert.Regexp(t, `^Up .* \(unhealthy\)$`, h.psStatus("web"))
	hs = h.health("web")
	assert.GreaterOrEqual(t, hs.FailingStreak, 2)
	assert.Equal(t, 1, hs.Log[len(hs.Log)-1].ExitCode)
	assert.Equal(t, `["CMD-SHELL","cat /tmp/ok"] 100000000 2`, h.inspect("web", "{{json .Config.Healthcheck.Test}} {{.Config.Healthcheck.Interval}} {{.Config.Healthcheck.Retries}}"))

	h.ok("stop", "-t", "1", "web")
	assert.Equal(t, "", h.inspect("web", "{{if .State.Running}}running{{end}}"))
}

// Unhealthy after --health-retries failures, without a start period; a
// check that does not end in --health-timeout is a failure (-1).
func TestHealthCheckTimeout(t *testing.T) {
	h := newHost(t)
	h.runD("--name", "slow", "--health-cmd", "sleep 10", "--health-interval", "50ms",
		"--health-timeout", "200ms", "--health-retries", "3", "sleep", "1000")
	h.waitFor("slow", "{{.State.Health.Status}}", "unhealthy", 30*time.Second)
	hs := h.health("slow")
	assert.GreaterOrEqual(t, hs.FailingStreak, 3, "unhealthy only after 3 failures in a row")
	assert.GreaterOrEqual(t, len(hs.Log), 3)
	assert.Equal(t, -1, hs.Log[0].ExitCode)
	assert.Equal(t, "Health check exceeded timeout (200ms)", hs.Log[0].Output)
	h.ok("rm", "-f", "slow")
}

// No health check: no health in ps or inspect; --no-healthcheck refuses
// the --health-* flags; bad values are one line, exit 125.
func TestHealthCheckFlags(t *testing.T) {
	h := newHost(t)
	h.runD("--name", "plain", "sleep", "1000")
	assert.Regexp(t, `^Up [^(]*$`, h.psStatus("plain"))
	assert.Equal(t, "null", h.inspect("plain", "{{json .State.Health}}"))
	h.runD("--name", "none", "--no-healthcheck", "sleep", "1000")
	assert.Equal(t, "null", h.inspect("none", "{{json .State.Health}}"))
	assert.Equal(t, `["NONE"]`, h.inspect("none", "{{json .Config.Healthcheck.Test}}"))
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--no-healthcheck", "--health-cmd", "true"}, "--no-healthcheck conflicts with --health-* options"},
		{[]string{"--health-cmd", "true", "--health-interval", "0s"}, "--health-interval cannot be less than 1ms"},
		{[]string{"--health-interval", "1s"}, "--health-* options need a health check"},
		{[]string{"--health-cmd", "true", "--health-retries", "-1"}, "--health-retries cannot be negative"},
	} {
		r := h.run(h.runArgs("-d", append(c.args, "true")...)...)
		assert.Equal(t, 125, r.Code, "%v: %s", c.args, r)
		assert.Contains(t, r.Stderr, c.msg, "%v", c.args)
	}
}

// HEALTHCHECK in a Dockerfile: build keeps it in the image config, run
// runs it; --no-healthcheck turns it off.
func TestHealthCheckFromImage(t *testing.T) {
	h := newHost(t)
	h.importBusybox()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(
		"FROM busybox\nHEALTHCHECK --interval=100ms --retries=1 CMD [\"cat\", \"/tmp/ok\"]\nCMD [\"sleep\", \"1000\"]\n"), 0o644))
	r := testenv.Run(t, h.env, testenv.Binary(t, "08-image"), "build", "-t", "hc", dir)
	require.Equal(t, 0, r.Code, r.String())

	h.ok("run", "-d", "--name", "hc", "--network", "none", "hc")
	assert.Equal(t, `["CMD","cat","/tmp/ok"] 100000000`, h.inspect("hc", "{{json .Config.Healthcheck.Test}} {{.Config.Healthcheck.Interval}}"))
	h.waitFor("hc", "{{.State.Health.Status}}", "unhealthy", 30*time.Second)
	h.ok("exec", "hc", "touch", "/tmp/ok")
	h.waitFor("hc", "{{.State.Health.Status}}", "healthy", 30*time.Second)

	h.ok("run", "-d", "--name", "off", "--network", "none", "--no-healthcheck", "hc")
	assert.Equal(t, "null", h.inspect("off", "{{json .State.Health}}"))
}
