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
	// No cgroup of its own: stats and update's limits say so in one line,
	// podman's way; update --restart needs none.
	for _, args := range [][]string{{"stats", "--no-stream", "r"}, {"stats", "--no-stream"}, {"update", "--memory", "64m", "r"}} {
		r := run(args...)
		assert.Equal(t, 125, r.Code, "%v: %s", args, r)
		assert.Equal(t, 1, strings.Count(strings.TrimSpace(r.Stderr), "\n")+1, "one line: %s", r.Stderr)
		assert.Regexp(t, `is not supported in rootless mode: (container r has|berth's rootless containers have) no cgroup of (its|their) own`, r.Stderr)
	}
	assert.Equal(t, "r", ok("update", "--restart", "on-failure", "r"))
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

// Rootless, the image verbs: an ordinary user imports, builds (the RUN a
// rootless container of stage 08's run), runs, counts and prunes images
// in a store of their own.
func TestRootlessImages(t *testing.T) {
	a := testenv.NewAccount(t, "berth09i", false)
	bin := a.Berth(t)
	rootfs := a.Rootfs(t)
	ok := func(args ...string) string {
		t.Helper()
		r := a.Run(t, nil, bin, args...)
		require.Equal(t, 0, r.Code, "berth %s: %s", strings.Join(args, " "), r)
		return strings.TrimSpace(r.Stdout)
	}
	ok("import", rootfs, "base")
	ctx := filepath.Join(a.Home, "ctx")
	require.NoError(t, os.MkdirAll(ctx, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM base\nRUN echo ran >/ran\nCMD [\"cat\", \"/ran\"]\n"), 0o644))
	require.NoError(t, os.Chown(ctx, a.UID, a.GID))
	require.NoError(t, os.Chown(filepath.Join(ctx, "Dockerfile"), a.UID, a.GID))
	assert.Contains(t, ok("build", "-t", "app", ctx), "Successfully tagged app:latest")
	assert.Equal(t, "ran", ok("run", "--rm", "--network", "none", "app"))
	assert.Regexp(t, `(?m)^Images +3 +0 `, ok("system", "df"))
	assert.Contains(t, ok("image", "prune", "-a", "-f"), "untagged: app:latest")
	assert.Empty(t, ok("images", "-a", "-q"))
	assert.DirExists(t, filepath.Join(a.Home, ".local", "share", "berth", "images"))
}
