//go:build linux

package oci_test

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/06-cgroups/cgroup"
)

// TestCgroupNamespace: berth-oci spec asks for a cgroup namespace where
// runc spec does, on a pure cgroup v2 host only; a container in one sees
// its own group as the root: every line of /proc/self/cgroup ends in
// ":/", where the host's namespace would show /berth-oci/ID.
func TestCgroupNamespace(t *testing.T) {
	r := newRT(t)
	mode, err := cgroup.DetectMode()
	require.NoError(t, err)
	has := false
	b := r.bundle([]string{"cat", "/proc/self/cgroup"}, func(s *specs.Spec) {
		for _, n := range s.Linux.Namespaces {
			has = has || n.Type == specs.CgroupNamespace
		}
		if !has {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace})
		}
	})
	assert.Equal(t, mode == cgroup.V2, has, "a cgroup namespace in berth-oci spec's namespaces on a %v host", mode)
	res := r.run("run", "--bundle", b, "cgns1")
	require.Equal(t, 0, res.Code, "%s", res)
	lines := strings.Split(strings.TrimSpace(res.Stdout), "\n")
	require.NotEmpty(t, lines)
	for _, l := range lines {
		assert.True(t, strings.HasSuffix(l, ":/"), "in a cgroup namespace of its own: %q", l)
	}
}
