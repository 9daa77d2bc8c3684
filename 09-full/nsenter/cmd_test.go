//go:build linux

package nsenter_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"berth/09-full/nsenter"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// finalInTest is what this test binary does when a Cmd runs it as the
// final process (TestMain calls it first): it tells its caller who its
// parent is and exits 7.
func finalInTest() {
	if !nsenter.Joined() {
		return
	}
	fmt.Fprintf(nsenter.Conn(), "ppid %d exe %s env %q", os.Getppid(), readlink("/proc/self/exe"), os.Getenv("_BERTH_NSENTER"))
	os.Exit(7)
}

func readlink(p string) string { l, _ := os.Readlink(p); return l }

// TestCmd drives the API itself, with no privilege: the target is this
// process, so every namespace is "already there". The final process is
// this test binary's child (CLONE_PARENT), not stage 0's, and its exit
// status comes straight to Wait.
func TestCmd(t *testing.T) {
	c := &nsenter.Cmd{Target: nsenter.Target{Pid: os.Getpid()}, Args: []string{"nsenter-test"}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, c.Start(ctx))
	require.NotZero(t, c.Pid)
	assert.Contains(t, strings.Join(c.Trace, "\n"), "mnt: already there")
	conn, err := c.Continue()
	require.NoError(t, err)
	defer conn.Close()
	msg, err := io.ReadAll(conn)
	require.NoError(t, err)
	st, err := c.Wait()
	require.NoError(t, err)
	assert.Equal(t, 7, st.ExitCode())
	assert.Equal(t, fmt.Sprintf("ppid %d exe /memfd:berth-sealed (deleted) env \"\"", os.Getpid()), string(msg),
		"the caller is the parent; a sealed copy runs; the variable is gone")
	assert.ErrorIs(t, c.Signal(os.Kill), os.ErrProcessDone, "reaped: no signal reaches a reused PID")
}

// A binary without the constructor (it does not import the package)
// never answers: Start says so, or gives up when ctx ends; it never hangs.
func TestNoConstructor(t *testing.T) {
	c := &nsenter.Cmd{Target: nsenter.Target{Pid: os.Getpid()}, Path: "/bin/true", Args: []string{"true"}}
	err := c.Start(context.Background())
	assert.ErrorContains(t, err, "the joining process exited without a report (does true import berth/09-full/nsenter?)")

	c = &nsenter.Cmd{Target: nsenter.Target{Pid: os.Getpid()}, Path: "/bin/sleep", Args: []string{"sleep", "100"}}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = c.Start(ctx)
	assert.True(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
	assert.Less(t, time.Since(start), 30*time.Second)

	err = (&nsenter.Cmd{Target: nsenter.Target{Pid: os.Getpid()}, Args: []string{"x"}}).Start(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "ctx already over: nothing starts")
}
