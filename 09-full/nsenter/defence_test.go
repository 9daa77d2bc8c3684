//go:build linux

package nsenter_test

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"berth/internal/testenv"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestExeIsSealedCopy: the joined process, before it executes the
// command, runs a sealed memfd copy of the binary, never the host's file,
// and is not dumpable.
func TestExeIsSealedCopy(t *testing.T) {
	testenv.RequireRoot(t)
	tg := startTarget(t, targetOpts{})
	r := join(t, "-probe", "-t", fmt.Sprint(tg.Pid), "--", "true")
	require.Equal(t, 0, r.Code, r.String())
	p := probes(r.Stdout)
	assert.True(t, strings.HasPrefix(p["exe"], "/memfd:berth-sealed"), "/proc/self/exe is %q", p["exe"])
	assert.Equal(t, "true", p["exe-sealed"])
	var st unix.Stat_t
	require.NoError(t, unix.Stat(helper(t), &st))
	assert.NotEqual(t, fmt.Sprintf("%d:%d", st.Dev, st.Ino), p["exe-inode"], "the host's binary file")
	assert.Equal(t, "0", p["dumpable"], "dumpable until execve")
}

// TestCVE20195736 replays the attack: a command in the container is a
// script "#!/proc/self/exe", so the exec runs this binary again, inside
// and dumpable; it keeps a handle on its executable and, once the exec's
// processes are gone, writes to it. With the sealed copy the write is
// refused and the host's binary is untouched.
func TestCVE20195736(t *testing.T) {
	testenv.RequireRoot(t)
	tg := startTarget(t, targetOpts{})
	dir := t.TempDir()
	bin := filepath.Join(dir, "nsjoin") // a copy: the one other tests use must survive a failure
	copyFile(t, helper(t), bin)
	before := sum(t, bin)
	script := filepath.Join(dir, "evil.cve-2019-5736")
	require.NoError(t, os.WriteFile(script, []byte("#!/proc/self/exe\n"), 0o755))

	r := testenv.Run(t, nil, bin, "-t", fmt.Sprint(tg.Pid), "--", script)
	require.Equal(t, 0, r.Code, r.String())
	var outcome string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if b, err := os.ReadFile(script + ".out"); err == nil && len(b) > 0 {
			outcome = strings.TrimSpace(string(b))
			break
		}
	}
	require.NotEmpty(t, outcome, "the attack reported nothing")
	assert.True(t, strings.HasPrefix(outcome, "refused"), "the attack: %s", outcome)
	assert.Equal(t, before, sum(t, bin), "the host's binary changed")
}

func sum(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return fmt.Sprintf("%x", sha256.Sum256(b))
}

// TestLeakedFD: a descriptor the caller holds without close-on-exec (it
// inherited it) does not reach the command; the ones passed on purpose
// (-preserve-fds, OCI's --preserve-fds) do.
func TestLeakedFD(t *testing.T) {
	testenv.RequireRoot(t)
	tg := startTarget(t, targetOpts{})
	secret := filepath.Join(t.TempDir(), "host-secret")
	require.NoError(t, os.WriteFile(secret, []byte("host secret\n"), 0o600))
	f, err := os.Open(secret)
	require.NoError(t, err)
	defer f.Close()

	// nsjoin gets the file as its descriptor 7, as a leaked one would be.
	r := runFiles(t, []*os.File{nil, nil, nil, nil, f}, "-t", fmt.Sprint(tg.Pid), "--",
		"sh", "-c", "ls /proc/self/fd; cat /proc/self/fd/7")
	assert.NotContains(t, r.Stdout, "host secret", r.String())
	assert.Equal(t, "0\n1\n2\n3\n", r.Stdout, "ls sees its stdio and its own directory handle")
	assert.Equal(t, 1, r.Code, r.String())

	// Preserved: descriptor 3 is a pipe the command writes to.
	pr, pw, err := os.Pipe()
	require.NoError(t, err)
	defer pr.Close()
	r = runFiles(t, []*os.File{pw}, "-preserve-fds", "1", "-t", fmt.Sprint(tg.Pid), "--", "sh", "-c", "echo through fd 3 >&3")
	pw.Close()
	require.Equal(t, 0, r.Code, r.String())
	b := make([]byte, 64)
	n, _ := pr.Read(b)
	assert.Equal(t, "through fd 3\n", string(b[:n]))
}

// TestCwdOutsideRoot: a working directory that names a leaked descriptor
// of a host directory (CVE-2024-21626's /proc/self/fd/N) is refused; one
// inside the container is entered.
func TestCwdOutsideRoot(t *testing.T) {
	testenv.RequireRoot(t)
	tg := startTarget(t, targetOpts{})
	hostDir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(hostDir, "secret"), []byte("host secret\n"), 0o600))
	d, err := os.Open(hostDir)
	require.NoError(t, err)
	defer d.Close()

	r := runFiles(t, []*os.File{nil, nil, nil, nil, d}, "-cwd", "/proc/self/fd/7", "-t", fmt.Sprint(tg.Pid), "--", "cat", "secret")
	assert.NotContains(t, r.Stdout, "host secret")
	oneLine(t, r, "working directory /proc/self/fd/7 is outside the container's root")

	r = join(t, "-cwd", tg.Mnt, "-t", fmt.Sprint(tg.Pid), "--", "cat", "marker")
	assert.Equal(t, 0, r.Code, r.String())
	assert.Equal(t, "marker\n", r.Stdout)
}
