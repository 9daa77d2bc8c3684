package proc

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAlive(t *testing.T) {
	start, err := StartTime(os.Getpid())
	require.NoError(t, err)
	assert.True(t, Alive(os.Getpid(), start))
	assert.True(t, Alive(os.Getpid(), 0))
	assert.False(t, Alive(os.Getpid(), start+1), "another start time is another process")
	assert.False(t, Alive(0, 0))
	assert.NotEmpty(t, BootID())
	assert.True(t, Same(os.Getpid(), start, BootID()))
	assert.False(t, Same(os.Getpid(), start, "another-boot"))
}

func TestZombie(t *testing.T) {
	cmd := exec.Command("true")
	require.NoError(t, cmd.Start())
	pid := cmd.Process.Pid
	// Until it has exited; nobody has waited for it yet.
	for deadline := time.Now().Add(10 * time.Second); !Zombie(pid); time.Sleep(time.Millisecond) {
		require.True(t, time.Now().Before(deadline), "true did not exit")
	}
	assert.True(t, Alive(pid, 0), "a zombie is not yet gone")
	assert.False(t, Running(pid, 0, ""), "but it runs no more")
	require.NoError(t, cmd.Wait())
	assert.False(t, Alive(pid, 0))
	assert.False(t, Zombie(pid))
}
