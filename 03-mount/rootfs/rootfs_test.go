//go:build linux

package rootfs_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/internal/testenv"
)

func run(t *testing.T, args ...string) testenv.Result {
	t.Helper()
	return testenv.Run(t, testenv.StateEnv(t), testenv.Binary(t, "03-mount"), append([]string{"run"}, args...)...)
}

func mountinfo(t *testing.T) string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	return string(b)
}

func TestRootIsBusybox(t *testing.T) {
	testenv.RequireRoot(t)
	rootfs := testenv.Rootfs(t)
	entries, err := os.ReadDir(rootfs)
	require.NoError(t, err)
	var want []string
	for _, e := range entries {
		want = append(want, e.Name())
	}
	sort.Strings(want)

	r := run(t, "ls", "-1", "/")
	require.Equal(t, 0, r.Code, r.String())
	assert.Equal(t, want, strings.Fields(r.Stdout))

	r = run(t, "sh", "-c", "echo $$; pwd; readlink /bin/sh")
	require.Equal(t, 0, r.Code, r.String())
	assert.Equal(t, "1\n/\n/bin/busybox\n", r.Stdout)
}

// Every way a learner would try to reach the host's root ends in the
// container's root.
func TestHostRootUnreachable(t *testing.T) {
	testenv.RequireRoot(t)
	r := run(t, "sh", "-c", "ls -1 /proc/1/root/ | tr '\\n' ' '; echo; cd /../../..; pwd; ls -1 | tr '\\n' ' '; echo; ls -1 / | tr '\\n' ' '")
	require.Equal(t, 0, r.Code, r.String())
	lines := strings.Split(strings.TrimRight(r.Stdout, "\n"), "\n")
	require.Len(t, lines, 4, r.Stdout)
	assert.Equal(t, lines[3], lines[0], "/proc/1/root is the container's root")
	assert.Equal(t, "/", lines[1])
	assert.Equal(t, lines[3], lines[2], "walking .. stops at the container's root")
	assert.NotContains(t, lines[0], "work", "no host directory may show")
}

// Inside, the mount table holds only the container's own mounts.
func TestMountinfoShowsNoHostMounts(t *testing.T) {
	testenv.RequireRoot(t)
	r := run(t, "cat", "/proc/self/mountinfo")
	require.Equal(t, 0, r.Code, r.String())
	allowed := map[string]bool{"/": true, "/proc": true, "/sys": true, "/dev": true, "/dev/pts": true, "/dev/shm": true, "/dev/mqueue": true}
	var points []string
	for _, l := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		f := strings.Fields(l)
		require.Greater(t, len(f), 5, l)
		points = append(points, f[4])
		assert.True(t, allowed[f[4]], "unexpected mount point %s inside the container:\n%s", f[4], r.Stdout)
	}
	assert.Len(t, points, len(allowed))
}

func TestDevAndSys(t *testing.T) {
	testenv.RequireRoot(t)
	r := run(t, "sh", "-c", "echo $(ls /dev); echo hi > /dev/null && head -c 4 /dev/zero | wc -c; touch /sys/x 2>&1; true")
	require.Equal(t, 0, r.Code, r.String())
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	assert.Equal(t, "fd full mqueue null ptmx pts random shm stderr stdin stdout tty urandom zero", strings.TrimSpace(lines[0]))
	assert.Equal(t, "4", strings.TrimSpace(lines[1]))
	assert.Contains(t, lines[2], "Read-only file system", "/sys is read-only")
}

func TestMountTableUnchanged(t *testing.T) {
	testenv.RequireRoot(t)
	before := mountinfo(t)
	r := run(t, "sh", "-c", "mount -t tmpfs none /tmp && echo mounted")
	require.Equal(t, 0, r.Code, r.String())
	assert.Equal(t, "mounted\n", r.Stdout)
	assert.Equal(t, before, mountinfo(t), "the host's mount table must be exactly as before")
}

func TestReadOnly(t *testing.T) {
	testenv.RequireRoot(t)
	r := run(t, "--read-only", "sh", "-c", "touch /etc/x")
	assert.Equal(t, 1, r.Code, r.String())
	assert.Contains(t, r.Stderr, "Read-only file system")

	r = run(t, "sh", "-c", "touch /tmp/berth-rw-test && rm /tmp/berth-rw-test && echo writable")
	assert.Equal(t, "writable\n", r.Stdout, r.String())
}

// The chroot breakout works against chroot(1) and fails against pivot_root.
func TestBreakout(t *testing.T) {
	testenv.RequireRoot(t)
	jail := testenv.CopyRootfs(t)
	build := exec.Command("go", "build", "-o", filepath.Join(jail, "breakout"), "./03-mount/breakout")
	build.Dir = testenv.RepoRoot()
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if os.Getenv("BERTH_BREAKOUT") != "" { // prebuilt, e.g. in the VM where there is no go
		build = exec.Command("cp", os.Getenv("BERTH_BREAKOUT"), filepath.Join(jail, "breakout"))
	}
	out, err := build.CombinedOutput()
	require.NoError(t, err, string(out))
	marker := filepath.Join(t.TempDir(), "host-secret")
	require.NoError(t, os.WriteFile(marker, []byte("host secret\n"), 0o644))

	r := testenv.Run(t, nil, "chroot", jail, "/breakout", marker)
	require.Equal(t, 0, r.Code, "the breakout should escape chroot: %s", r)
	assert.Equal(t, "escaped: host secret\n", r.Stdout)

	r = run(t, "--rootfs", jail, "/breakout", marker)
	assert.Equal(t, 1, r.Code, r.String())
	assert.Contains(t, r.Stdout, "contained:")
}

func TestExitCodesAndBadInput(t *testing.T) {
	testenv.RequireRoot(t)
	before := mountinfo(t)
	empty := t.TempDir()
	linked := t.TempDir()
	victim := t.TempDir()
	require.NoError(t, os.Symlink(victim, filepath.Join(linked, "proc")))
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"exit 0", []string{"true"}, 0, ""},
		{"exit 1", []string{"false"}, 1, ""},
		{"exit 42", []string{"sh", "-c", "exit 42"}, 42, ""},
		{"not executable", []string{"/etc/passwd"}, 126, "03-mount: exec /etc/passwd: permission denied\n"},
		{"not found", []string{"bash"}, 127, "03-mount: exec: \"bash\": executable file not found in $PATH\n"},
		{"missing rootfs", []string{"--rootfs", "/nonexistent/rootfs", "sh"}, 125,
			"03-mount: rootfs: /nonexistent/rootfs does not exist: build the busybox tree with `sudo make rootfs`, or pass --rootfs DIR\n"},
		{"rootfs without the command", []string{"--rootfs", empty, "sh"}, 127, "03-mount: exec: \"sh\": executable file not found in $PATH\n"},
		{"symlinked /proc", []string{"--rootfs", linked, "sh"}, 125, "03-mount: rootfs: /proc in rootfs " + linked + " is a symlink: refusing to mount over it\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, tc.args...)
			assert.Equal(t, tc.code, r.Code, r.String())
			assert.Equal(t, tc.stderr, r.Stderr)
		})
	}
	assert.Equal(t, before, mountinfo(t), "nothing may be left mounted")
	entries, err := os.ReadDir(empty)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.ElementsMatch(t, []string{"proc", "sys", "dev"}, names, "only mount points are created in a rootfs")
	entries, err = os.ReadDir(victim)
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing is mounted or created through a symlink")
}

func TestNotRoot(t *testing.T) {
	testenv.RequireRoot(t)
	bin := testenv.Binary(t, "03-mount")
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o755))
	exe := filepath.Join(dir, "03-mount")
	out, err := exec.Command("cp", bin, exe).CombinedOutput()
	require.NoError(t, err, string(out))
	r := testenv.Run(t, nil, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", exe, "run", "sh")
	assert.Equal(t, 125, r.Code, r.String())
	assert.Equal(t, "03-mount: needs root for its namespaces: run it with sudo\n", r.Stderr)
}

// A root shell with `umask 077` gave the container its umask, and the
// mount points the runtime made in the rootfs were drwx------: a user
// other than root inside could not even reach /proc. The runtime works
// with umask 022, and the command gets 022 (the spec's process.user.umask
// when it says otherwise), as with runc and Docker.
func TestCallersUmaskStaysOutside(t *testing.T) {
	testenv.RequireRoot(t)
	rootfs := testenv.CopyRootfs(t)
	for _, d := range []string{"proc", "sys", "dev"} {
		require.NoError(t, os.Remove(filepath.Join(rootfs, d)))
	}
	r := testenv.Run(t, testenv.StateEnv(t), "sh", "-c", `umask 077; exec "$@"`, "sh",
		testenv.Binary(t, "03-mount"), "run", "--rootfs", rootfs, "sh", "-c", "umask; touch /tmp/f; stat -c '%A %n' /tmp/f; rm /tmp/f")
	require.Equal(t, 0, r.Code, r.String())
	assert.Equal(t, "0022\n-rw-r--r-- /tmp/f\n", r.Stdout)
	for _, d := range []string{"proc", "sys", "dev"} {
		st, err := os.Stat(filepath.Join(rootfs, d))
		require.NoError(t, err)
		assert.Equal(t, "drwxr-xr-x", st.Mode().String(), "mount point /%s", d)
	}
}
