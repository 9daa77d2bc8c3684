//go:build linux

package cgroup

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/01-uts/spine"
	"berth/internal/testenv"
)

// busyGroup makes a group (as a host service's) with a sleeping process
// in it; the test's cleanup ends both.
func busyGroup(t *testing.T, path string) (Mode, int) {
	t.Helper()
	testenv.RequireRoot(t)
	mode, err := DetectMode()
	if err != nil {
		t.Skipf("skipped: this machine has no cgroup filesystem: %v", err)
	}
	g, err := Create(mode, path, nil)
	require.NoError(t, err)
	sleep := exec.Command("sleep", "1000")
	require.NoError(t, sleep.Start())
	t.Cleanup(func() {
		_ = sleep.Process.Kill()
		_ = sleep.Wait()
		_ = g.Delete()
	})
	require.NoError(t, g.Add(sleep.Process.Pid))
	return mode, sleep.Process.Pid
}

// TestCgroupInUseRefused: a container whose linux.cgroupsPath names a
// group that holds a process (the hostile input: a host service's group)
// is refused by the step's Prepare, and its Cleanup, which runs after
// the failure, neither kills that process nor removes the group. An
// empty existing group is taken.
func TestCgroupInUseRefused(t *testing.T) {
	path := fmt.Sprintf("/sec16-inuse-%d", os.Getpid())
	mode, pid := busyGroup(t, path)

	c := &spine.Container{ID: "sec16inuse", Spec: &specs.Spec{Linux: &specs.Linux{CgroupsPath: path}}, Prog: "test"}
	s := &Step{}
	err := s.Prepare(c)
	require.Error(t, err, "a group in use must be refused")
	assert.Contains(t, err.Error(), fmt.Sprintf("cgroupsPath %s: the cgroup exists and holds processes (pid %d, in ", path, pid))
	require.NoError(t, s.Cleanup(c))
	assert.NoError(t, syscall.Kill(pid, 0), "the group's process was killed")
	st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	assert.NotContains(t, string(st), ") Z ", "the group's process was killed")
	assert.True(t, Exists(mode, path), "the group was removed")

	// A group above one in use is in use: Cleanup would kill its
	// whole subtree.
	above := fmt.Sprintf("/sec16-above-%d", os.Getpid())
	t.Cleanup(func() { // after busyGroup's (cleanups run last first)
		for _, d := range Dirs(mode, above) {
			_ = os.Remove(d)
		}
	})
	_, pid2 := busyGroup(t, above+"/svc")
	err = CheckUnused(mode, above)
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), fmt.Sprintf("(pid %d, in ", pid2)), "%v", err)

	empty := fmt.Sprintf("/sec16-empty-%d", os.Getpid())
	g, err := Create(mode, empty, nil)
	require.NoError(t, err)
	defer g.Delete()
	assert.NoError(t, CheckUnused(mode, empty), "an empty group is taken")
	assert.Error(t, CheckUnused(mode, "/a/../b"), "a path that is not clean")
}
