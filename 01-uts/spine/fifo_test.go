//go:build linux

package spine

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// A stand-in init: a shell that opens the FIFO for writing (blocking until
// Start opens it for reading) and writes its byte.
func fakeInit(t *testing.T, dir string) *exec.Cmd {
	t.Helper()
	require.NoError(t, unix.Mkfifo(filepath.Join(dir, FifoName), 0o600))
	cmd := exec.Command("sh", "-c", `printf 0 > "$1"; exec sleep 30`, "sh", filepath.Join(dir, FifoName))
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

// Start unblocks the waiting init, takes its byte and removes the FIFO;
// a second Start finds the container started.
func TestStartOpensTheFifo(t *testing.T) {
	dir := t.TempDir()
	cmd := fakeInit(t, dir)
	require.NoError(t, Start(dir, cmd.Process.Pid))
	assert.NoFileExists(t, filepath.Join(dir, FifoName))
	assert.ErrorIs(t, Start(dir, cmd.Process.Pid), ErrStarted)
}

// An init that dies before anyone starts it must not leave Start waiting
// for a writer that will never come.
func TestStartNoticesADeadInit(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, unix.Mkfifo(filepath.Join(dir, FifoName), 0o600))
	cmd := exec.Command("true")
	require.NoError(t, cmd.Start())
	pid := cmd.Process.Pid
	require.NoError(t, cmd.Wait())
	err := Start(dir, pid)
	assert.ErrorContains(t, err, "exited before it was started")
}

// A detached container is alive while its init is, with no lock held by
// anyone; Collect leaves it alone, and collects it once the init is gone.
func TestDetachedLivenessIsTheInit(t *testing.T) {
	root := t.TempDir()
	sleeper := exec.Command("sleep", "30")
	require.NoError(t, sleeper.Start())
	t.Cleanup(func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() })

	c := NewContainer("t", []string{"true"})
	c.ID, c.State, c.Detached = "detached", root, true
	marker := filepath.Join(t.TempDir(), "marker")
	c.Steps = []Step{&cleanStep{Marker: marker}}
	st, err := createState(c)
	require.NoError(t, err)
	require.NoError(t, st.setPid(sleeper.Process.Pid))
	st.unlock() // its creator is gone

	dir := filepath.Join(root, "detached")
	assert.True(t, Running(dir))
	Collect(root, false)
	assert.DirExists(t, dir)
	assert.NoFileExists(t, marker)

	require.NoError(t, sleeper.Process.Kill())
	_ = sleeper.Wait()
	assert.False(t, Running(dir))
	Collect(root, false)
	assert.NoDirExists(t, dir)
	assert.FileExists(t, marker)
}

// Start returns once the command runs, not as soon as the init has its
// byte: a signal sent after start must reach the command, not an init
// still at its last steps (a Go init dies of SIGTERM with status 2). The
// stand-in keeps the write end open while it "finishes its steps", then
// closes it as execve would.
func TestStartWaitsForTheCommand(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, unix.Mkfifo(filepath.Join(dir, FifoName), 0o600))
	ran := filepath.Join(dir, "ran")
	cmd := exec.Command("sh", "-c", `exec 3>"$1"; printf 0 >&3; sleep 0.3; echo > "$2"; exec 3>&-; exec sleep 30`,
		"sh", filepath.Join(dir, FifoName), ran)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	require.NoError(t, Start(dir, cmd.Process.Pid))
	assert.FileExists(t, ran, "start returned before the init closed the FIFO (its execve)")
}
