//go:build linux

package oci

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hookWithin runs h in the background and fails the test if it has not
// returned by limit: a hook must never hold berth-oci longer than its
// timeout and the wait for its output (hookWaitDelay).
func hookWithin(t *testing.T, h specs.Hook, limit time.Duration) ([]byte, error) {
	t.Helper()
	type result struct {
		out []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := runHook("poststart", h, []byte("{}"))
		done <- result{out, err}
	}()
	select {
	case r := <-done:
		return r.out, r.err
	case <-time.After(limit):
		t.Fatalf("the hook %v still holds berth-oci after %s", h.Args, limit)
		return nil, nil
	}
}

// killLeft kills the process whose pid the hook wrote to file.
func killLeft(t *testing.T, file string) {
	t.Cleanup(func() {
		b, err := os.ReadFile(file)
		if err != nil {
			return
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
}

func seconds(n int) *int { return &n }

// TestHookLeavesChild: a hook that exits at once but leaves a child
// holding its stdout returns (after hookWaitDelay), as a success.
func TestHookLeavesChild(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	killLeft(t, pidFile)
	h := specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "sleep 1000 & echo $! > " + pidFile + "; exit 0"}, Timeout: seconds(10)}
	_, err := hookWithin(t, h, 10*time.Second+hookWaitDelay+20*time.Second)
	assert.NoError(t, err)
}

// TestHookTimeout: a hook that outlives its timeout is killed with its
// children (its process group), and the error says so.
func TestHookTimeout(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	killLeft(t, pidFile)
	h := specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "sleep 1000 & echo $! > " + pidFile + "; wait"}, Timeout: seconds(1)}
	_, err := hookWithin(t, h, time.Second+hookWaitDelay+20*time.Second)
	require.Error(t, err)
	assert.Equal(t, "poststart hook /bin/sh: did not finish within 1s", err.Error())
	b, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	// The child is killed with the group: gone, or a zombie its new
	// parent has not reaped yet.
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil || strings.Contains(string(st), ") Z ") {
			break
		}
		require.True(t, time.Now().Before(deadline), "the hook's child %d still runs: %s", pid, st)
		time.Sleep(50 * time.Millisecond)
	}
}

// TestHookOutputCapped: a hook that writes 10 MB keeps berth-oci's
// memory to maxHookOutput.
func TestHookOutputCapped(t *testing.T) {
	h := specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "head -c 10000000 /dev/zero; exit 1"}, Timeout: seconds(30)}
	out, err := hookWithin(t, h, 30*time.Second+hookWaitDelay+20*time.Second)
	require.Error(t, err)
	assert.Equal(t, maxHookOutput, len(out), "the output kept")
}
