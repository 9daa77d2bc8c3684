//go:build linux

package spine

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// These tests run containers from the test binary itself: Run re-executes
// /proc/self/exe as berth-init, and TestMain plays that part. A container
// without namespaces needs no root: it tests the spine alone.
func TestMain(m *testing.M) {
	if IsInit() {
		os.Exit(runInit())
	}
	if helper := os.Getenv("SPINE_TEST_HELPER"); helper != "" {
		os.Exit(runHelper(helper))
	}
	os.Exit(m.Run())
}

// hostContainer is a container with no namespace of its own, whose
// command is sh -c script, with its state under a temporary root.
func hostContainer(t *testing.T, script string) *Container {
	t.Helper()
	c := NewContainer("spine-test", []string{"sh", "-c", script})
	c.ID = "t" + RandomID()
	c.State = t.TempDir()
	return c
}

// inheritedFd opens path without close-on-exec at fd number want, as a
// shell's `exec 7<path` does, and closes it when the test ends.
func inheritedFd(t *testing.T, path string, want int) {
	t.Helper()
	fd, err := unix.Open(path, unix.O_RDONLY, 0) // no O_CLOEXEC: what a shell hands down
	require.NoError(t, err)
	require.NoError(t, unix.Dup3(fd, want, 0))
	unix.Close(fd)
	t.Cleanup(func() { unix.Close(want) })
}

// A descriptor the runtime inherited does not reach the command; one in
// PreserveFds does, at its own number.
func TestCommandGetsOnlyPreservedFds(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	require.NoError(t, os.WriteFile(secret, []byte("host secret\n"), 0o600))
	passed := filepath.Join(dir, "passed")
	require.NoError(t, os.WriteFile(passed, []byte("passed on purpose\n"), 0o600))
	inheritedFd(t, passed, 40)
	inheritedFd(t, secret, 41)
	inheritedFd(t, dir, 42)

	for _, preserve := range [][]int{nil, {40}} {
		out := filepath.Join(dir, "out")
		c := hostContainer(t, fmt.Sprintf(`exec >%s 2>&1; cat /proc/self/fd/41; ls /proc/self/fd/42/; cat /proc/self/fd/40; echo fds: $(ls /proc/self/fd)`, out))
		c.PreserveFds = preserve
		code, err := Run(c)
		require.NoError(t, err)
		require.Equal(t, 0, code)
		b, err := os.ReadFile(out)
		require.NoError(t, err)
		got := string(b)
		assert.NotContains(t, got, "host secret", "an inherited file must not reach the command")
		assert.NotContains(t, got, "secret\n", "an inherited directory must not reach the command")
		assert.Contains(t, got, "/proc/self/fd/41: No such file or directory")
		// sh's own stdio, ls's descriptor of the directory it lists, and
		// the preserved fd.
		if preserve == nil {
			assert.Contains(t, got, "/proc/self/fd/40: No such file or directory")
			assert.Contains(t, got, "fds: 0 1 2 3\n")
		} else {
			assert.Contains(t, got, "passed on purpose\n")
			assert.Contains(t, got, "fds: 0 1 2 3 40\n")
		}
	}
}

func TestPreserveFdsRefusesWhatItCannotPass(t *testing.T) {
	for _, tc := range []struct {
		fds  []int
		want string
	}{
		{[]int{2}, "cannot pass fd 2 to the container: only fds 3 to 65536 are passed (0-2 are its stdio)"},
		{[]int{1 << 20}, "cannot pass fd 1048576"},
		{[]int{999}, "cannot pass fd 999 to the container: it is not open"},
	} {
		c := hostContainer(t, "true")
		c.PreserveFds = tc.fds
		code, err := Run(c)
		assert.Equal(t, ExitRuntime, code)
		assert.ErrorContains(t, err, tc.want)
	}
	inheritedFd(t, "/dev/null", 43)
	c := hostContainer(t, "true")
	c.PreserveFds = []int{43, 43}
	_, err := Run(c)
	assert.EqualError(t, err, "fd 43 is passed to the container twice")
}

// The command's umask is the spec's, or 022: never the caller's.
func TestCommandUmask(t *testing.T) {
	old := unix.Umask(0o077)
	defer unix.Umask(old)
	out := filepath.Join(t.TempDir(), "umask")
	c := hostContainer(t, "umask >"+out)
	code, err := Run(c)
	require.NoError(t, err)
	require.Equal(t, 0, code)
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Equal(t, "0022\n", string(b))

	c = hostContainer(t, "umask >"+out)
	mask := uint32(0o027)
	c.Spec.Process.User.Umask = &mask
	code, err = Run(c)
	require.NoError(t, err)
	require.Equal(t, 0, code)
	b, err = os.ReadFile(out)
	require.NoError(t, err)
	assert.Equal(t, "0027\n", string(b))
}

// flakyCleaner fails its first Cleanup, and leaves a mark for each.
type flakyCleaner struct {
	Dir string `json:"dir"`
}

func (*flakyCleaner) Name() string { return "spine-test-flaky" }
func (s *flakyCleaner) Cleanup(*Container) error {
	first := filepath.Join(s.Dir, "tried")
	if _, err := os.Stat(first); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(first, nil, 0o600); err != nil {
			return err
		}
		return errors.New("the first cleanup fails")
	}
	return os.WriteFile(filepath.Join(s.Dir, "cleaned"), nil, 0o600)
}

func init() { Register("spine-test-flaky", func() Step { return &flakyCleaner{} }) }

// A cleanup that failed keeps the container's state, and the next run's
// Collect finishes the job.
func TestFailedCleanupKeepsStateForCollect(t *testing.T) {
	marks := t.TempDir()
	c := hostContainer(t, "true")
	c.Steps = []Step{&flakyCleaner{Dir: marks}}
	code, err := Run(c)
	assert.Equal(t, ExitRuntime, code)
	assert.EqualError(t, err, fmt.Sprintf("cleanup spine-test-flaky: the first cleanup fails (its state stays in %s: the next run tries again)", c.StateDir()))
	assert.FileExists(t, filepath.Join(c.StateDir(), "state.json"))
	assert.NoFileExists(t, filepath.Join(marks, "cleaned"))

	Collect(c.State, false)
	assert.FileExists(t, filepath.Join(marks, "cleaned"))
	assert.NoDirExists(t, c.StateDir())
}

// The fallback of kernels before 5.11 marks the same descriptors as
// close_range does.
func TestCloseExecFallback(t *testing.T) {
	for _, fd := range []int{50, 51, 52} {
		inheritedFd(t, "/dev/null", fd)
	}
	require.NoError(t, cloexecRangeProc(50, 51))
	for fd, want := range map[int]bool{50: true, 51: true, 52: false} {
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		require.NoError(t, err)
		assert.Equal(t, want, flags&unix.FD_CLOEXEC != 0, "fd %d", fd)
	}
	require.NoError(t, CloseExecExcept([]int{52, 1}))
	flags, err := unix.FcntlInt(52, unix.F_GETFD, 0)
	require.NoError(t, err)
	assert.Zero(t, flags&unix.FD_CLOEXEC, "a kept fd stays open across exec")
}

// A working directory outside the process's root is refused: here a
// process keeps a descriptor of the host's /, chroots into a directory,
// and fchdirs to the descriptor, as a chdir to /proc/self/fd/N would.
func TestVerifyCwdRefusesOutsideTheRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: chroot needs root")
	}
	cmd := exec.Command("/proc/self/exe", "-test.run=^$")
	cmd.Env = append(os.Environ(), "SPINE_TEST_HELPER=verifycwd", "SPINE_TEST_JAIL="+t.TempDir())
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Equal(t, "inside: ok\noutside: working directory /proc/self/fd/N is outside the container's root: refused\n", string(out))
}

func runHelper(name string) int {
	if name != "verifycwd" {
		fmt.Fprintln(os.Stderr, "unknown helper", name)
		return 2
	}
	host, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err == nil {
		err = unix.Chroot(os.Getenv("SPINE_TEST_JAIL"))
	}
	if err == nil {
		err = unix.Chdir("/")
	}
	if err != nil {
		fmt.Println(err)
		return 1
	}
	say := func(where string, err error) {
		if err == nil {
			fmt.Println(where + ": ok")
		} else {
			fmt.Println(where + ": " + err.Error())
		}
	}
	say("inside", verifyCwd("/"))
	if err := unix.Fchdir(host); err != nil {
		fmt.Println(err)
		return 1
	}
	say("outside", verifyCwd("/proc/self/fd/N"))
	return 0
}
