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

	"berth/01-uts/spine/proc"
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

// TestStaleTarget: a Target whose Start is not the live pid's start time
// (the init exited and its pid went to another process, here this test
// process standing in for the stranger) is refused once the pidfd is
// open, before any namespace is joined; the right start time is joined.
func TestStaleTarget(t *testing.T) {
	start, err := proc.StartTime(os.Getpid())
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := &nsenter.Cmd{Target: nsenter.Target{Pid: os.Getpid(), Start: start + 1}, Args: []string{"nsenter-test"}}
	err = c.Start(ctx)
	require.Error(t, err, "a stale target must be refused")
	assert.Equal(t, fmt.Sprintf("nsenter: target process %d is not the one meant (it started at %d, not %d): the container's init has exited", os.Getpid(), start, start+1), err.Error())
	assert.Zero(t, c.Pid, "nothing started")

	c = &nsenter.Cmd{Target: nsenter.Target{Pid: os.Getpid(), Start: start}, Args: []string{"nsenter-test"}}
	require.NoError(t, c.Start(ctx))
	conn, err := c.Continue()
	require.NoError(t, err)
	_, _ = io.ReadAll(conn)
	conn.Close()
	st, err := c.Wait()
	require.NoError(t, err)
	assert.Equal(t, 7, st.ExitCode())
}
