//go:build linux

package cli_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/internal/testenv"
)

// Rootless, as podman: an ordinary user runs the same verbs, with stage
// 05's user namespace, a store of their own under ~/.local/share/berth and
// live state under $XDG_RUNTIME_DIR/berth; what needs root is refused in
// one line.
func TestRootless(t *testing.T) {
	a := testenv.NewAccount(t, "berth09", false)
	bin := a.Berth(t)
	rootfs := a.Rootfs(t)
	run := func(args ...string) testenv.Result {
		t.Helper()
		return a.Run(t, nil, bin, args...)
	}
	ok := func(args ...string) string {
		t.Helper()
		r := run(args...)
		require.Equal(t, 0, r.Code, "berth %s: %s", strings.Join(args, " "), r)
		return strings.TrimSpace(r.Stdout)
	}
	t.Cleanup(func() {
		if ids := strings.Fields(run("ps", "-aq").Stdout); len(ids) > 0 {
			run(append([]string{"rm", "-f"}, ids...)...)
		}
	})
	r := run("run", "--rm", "--rootfs", rootfs, "--network", "none", "sh", "-c", "id -u; cat /proc/self/uid_map")
	require.Equal(t, 0, r.Code, r.String())
	assert.Regexp(t, `^0\n\s+0\s+`+strconv.Itoa(a.UID)+`\s+1\n$`, r.Stdout, "root inside is the user outside")

	id := ok("run", "-d", "--name", "r", "--rootfs", rootfs, "--network", "none", "sh", "-c", "echo up; sleep 100")
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(run("logs", "r").Stdout, "up"); time.Sleep(50 * time.Millisecond) {
		require.True(t, time.Now().Before(deadline), "no log")
	}
	assert.Regexp(t, `\sr$`, ok("ps"))
	assert.DirExists(t, filepath.Join(a.Home, ".local", "share", "berth", "containers", id))
	assert.DirExists(t, filepath.Join(a.Runtime, "berth", ".containers", id))
	assert.Equal(t, "r", ok("stop", "-t", "1", "r"))
	assert.Equal(t, "exited", ok("inspect", "--format", "{{.State.Status}}", "r"))
	assert.Equal(t, "r", ok("rm", "r"))
	assert.NoDirExists(t, filepath.Join(a.Home, ".local", "share", "berth", "containers", id))
	entries, _ := os.ReadDir(filepath.Join(a.Runtime, "berth", ".containers"))
	assert.Empty(t, entries)

	r = run("run", "--rm", "--rootfs", rootfs, "-m", "64m", "true")
	assert.Equal(t, 125, r.Code)
	assert.Contains(t, r.Stderr, "resource limits need root")
	r = run("run", "--rm", "--rootfs", rootfs, "--network", "bridge", "true")
	assert.Equal(t, 125, r.Code)
	assert.Contains(t, r.Stderr, "--network bridge needs root")
}
