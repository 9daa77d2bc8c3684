//go:build linux

package cgroup

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/01-uts/spine"
	"berth/internal/testenv"
)

// linux.cgroupsPath is honoured as given (stage 09, OCI bundles); without
// one a container's group is /berth/<id>. Only the cgroupfs form is
// understood, and nothing that could climb out of the cgroup root.
func TestGroupOf(t *testing.T) {
	c := spine.NewContainer("t", []string{"true"})
	c.ID = "abc"
	for _, tc := range []struct{ path, want, err string }{
		{"", "/berth/abc", ""},
		{"/berth/abc", "/berth/abc", ""},
		{"/kubepods/pod1/abc", "/kubepods/pod1/abc", ""},
		{"system.slice:berth:abc", "", "systemd form"},
		{"relative/abc", "", "absolute, clean path"},
		{"/berth/../../etc", "", "absolute, clean path"},
		{"/", "", "absolute, clean path"},
	} {
		c.Spec.Linux.CgroupsPath = tc.path
		got, err := groupOf(c)
		if tc.err != "" {
			assert.ErrorContains(t, err, tc.err, tc.path)
			continue
		}
		require.NoError(t, err, tc.path)
		assert.Equal(t, tc.want, got)
	}
}

// A group at a path of several levels, none of which exist: every
// ancestor is made (and on v2 hands the controllers down), the limit is
// written at that path, and Delete removes the group.
func TestGroupAtAGivenPath(t *testing.T) {
	testenv.RequireRoot(t)
	mode, err := DetectMode()
	if err != nil {
		t.Skipf("skipped: this machine has no cgroup filesystem: %v", err)
	}
	top := "/berth-test-" + spine.RandomID()
	path := top + "/pod/ctr"
	t.Cleanup(func() {
		for _, p := range []string{path, top + "/pod", top} {
			for _, d := range Dirs(mode, p) {
				_ = os.Remove(d)
			}
		}
	})
	limit := int64(64 << 20)
	g, err := Create(mode, path, &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}})
	require.NoError(t, err)
	file := filepath.Join(Root, "memory", path, "memory.limit_in_bytes")
	if mode.Unified() {
		file = filepath.Join(Root, path, "memory.max")
	}
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Equal(t, strconv.FormatInt(limit, 10), strings.TrimSpace(string(b)))
	require.NoError(t, g.Delete())
	assert.False(t, Exists(mode, path))
}
