//go:build linux

package spine

import (
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

type fakeStep struct {
	Value string `json:"value"`
}

func (*fakeStep) Name() string { return "spine-test-fake" }

func init() { Register("spine-test-fake", func() Step { return &fakeStep{} }) }

func TestStepsRoundTrip(t *testing.T) {
	wire, err := encodeSteps([]Step{&fakeStep{Value: "x"}})
	require.NoError(t, err)
	steps, err := decodeSteps(wire)
	require.NoError(t, err)
	require.Len(t, steps, 1)
	assert.Equal(t, &fakeStep{Value: "x"}, steps[0])

	_, err = decodeSteps([]wireStep{{Name: "nope", Config: []byte("{}")}})
	assert.ErrorContains(t, err, `unknown step "nope"`)
}

func TestCloneFlags(t *testing.T) {
	c := NewContainer("t", []string{"true"})
	c.AddNamespace(specs.UTSNamespace, "")
	c.AddNamespace(specs.PIDNamespace, "")
	c.AddNamespace(specs.NetworkNamespace, "/proc/1/ns/net") // joined, not created
	f, err := CloneFlags(c.Spec)
	require.NoError(t, err)
	assert.Equal(t, uintptr(unix.CLONE_NEWUTS|unix.CLONE_NEWPID), f)

	c.RemoveNamespace(specs.PIDNamespace)
	f, err = CloneFlags(c.Spec)
	require.NoError(t, err)
	assert.Equal(t, uintptr(unix.CLONE_NEWUTS), f)

	c.Spec.Linux.Namespaces = append(c.Spec.Linux.Namespaces, specs.LinuxNamespace{Type: "time"})
	_, err = CloneFlags(c.Spec)
	assert.Error(t, err)
}

func TestLookPathExitCodes(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "tool")
	require.NoError(t, os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755))
	plain := filepath.Join(dir, "plain")
	require.NoError(t, os.WriteFile(plain, []byte("x"), 0o644))
	env := []string{"PATH=/nonexistent:" + dir}

	p, err := LookPath("tool", env)
	require.NoError(t, err)
	assert.Equal(t, exe, p)

	_, err = LookPath("missing", env)
	assert.Equal(t, ExitNotFound, ExitCode(err))
	_, err = LookPath(filepath.Join(dir, "missing"), env)
	assert.Equal(t, ExitNotFound, ExitCode(err))
	// Even root needs an x bit to execute a file.
	_, err = LookPath(plain, env)
	assert.Equal(t, ExitNotExecutable, ExitCode(err))
	_, err = LookPath(dir, env)
	assert.Equal(t, ExitNotExecutable, ExitCode(err), "a directory is not executable")
}

func TestValidID(t *testing.T) {
	for _, ok := range []string{"a", "0123456789ab", "web-1.example_x"} {
		assert.NoError(t, ValidID(ok), ok)
	}
	for _, bad := range []string{"", "-a", "../x", "a/b", "a b", string(make([]byte, 65))} {
		assert.Error(t, ValidID(bad), bad)
	}
	assert.Regexp(t, `^[0-9a-f]{12}$`, RandomID())
}

func TestSetEnvReplaces(t *testing.T) {
	c := NewContainer("t", []string{"true"})
	c.SetEnv("A", "1")
	c.SetEnv("A", "2")
	c.SetEnv("AB", "3")
	assert.Equal(t, []string{"PATH=" + DefaultPath, "A=2", "AB=3"}, c.Spec.Process.Env)
}

// Collect must clean up a container whose runtime is gone (its lock is
// free) and leave alone one whose runtime lives (its lock is held).
type cleanStep struct {
	Marker string `json:"marker"`
}

func (*cleanStep) Name() string { return "spine-test-clean" }
func (s *cleanStep) Cleanup(*Container) error {
	return os.WriteFile(s.Marker, []byte("cleaned"), 0o600)
}

func init() { Register("spine-test-clean", func() Step { return &cleanStep{} }) }

func TestCollectDeadOnly(t *testing.T) {
	root := t.TempDir()
	mk := func(id string) (*state, string) {
		c := NewContainer("t", []string{"true"})
		c.ID, c.State = id, root
		marker := filepath.Join(t.TempDir(), "marker")
		c.Steps = []Step{&cleanStep{Marker: marker}}
		st, err := createState(c)
		require.NoError(t, err)
		return st, marker
	}
	live, liveMarker := mk("live")
	dead, deadMarker := mk("dead")
	dead.unlock() // as if its runtime had died

	ids, err := Live(root)
	require.NoError(t, err)
	assert.Equal(t, []string{"live"}, ids)

	Collect(root, false)
	assert.FileExists(t, deadMarker)
	assert.NoDirExists(t, filepath.Join(root, "dead"))
	assert.NoFileExists(t, liveMarker)
	assert.DirExists(t, filepath.Join(root, "live"))

	// The same id cannot be used twice while its runtime lives.
	c := NewContainer("t", []string{"true"})
	c.ID, c.State = "live", root
	_, err = createState(c)
	assert.ErrorContains(t, err, "in use")
	require.NoError(t, live.remove())
}
