//go:build linux

package oci

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
)

// TestDefaultSpecNamespaces: runc spec's namespaces, in its order; a
// cgroup namespace on a pure cgroup v2 host only; rootless without the
// network namespace and with a user namespace last.
func TestDefaultSpecNamespaces(t *testing.T) {
	for _, c := range []struct {
		name              string
		rootless, unified bool
		want              []specs.LinuxNamespaceType
	}{
		{"v1 or hybrid", false, false, []specs.LinuxNamespaceType{"pid", "network", "ipc", "uts", "mount"}},
		{"pure v2", false, true, []specs.LinuxNamespaceType{"pid", "network", "ipc", "uts", "mount", "cgroup"}},
		{"rootless, v1 or hybrid", true, false, []specs.LinuxNamespaceType{"pid", "ipc", "uts", "mount", "user"}},
		{"rootless, pure v2", true, true, []specs.LinuxNamespaceType{"pid", "ipc", "uts", "mount", "cgroup", "user"}},
	} {
		var got []specs.LinuxNamespaceType
		for _, n := range DefaultSpec(c.rootless, c.unified, 1000, 1000).Linux.Namespaces {
			assert.Empty(t, n.Path, "%s: %s joined, not new", c.name, n.Type)
			got = append(got, n.Type)
		}
		assert.Equal(t, c.want, got, c.name)
	}
}
