//go:build linux

package engine

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func spec() *specs.Spec {
	return &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{Args: []string{"sh"}},
		Root:    &specs.Root{Path: "rootfs"},
		Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{
			{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}, {Type: specs.NetworkNamespace},
		}},
	}
}

// A field no step carries out is refused in one line, never ignored.
func TestSupported(t *testing.T) {
	require.NoError(t, Supported(spec()))
	for _, tc := range []struct {
		change func(*specs.Spec)
		want   string
	}{
		{func(s *specs.Spec) { s.Linux.IntelRdt = &specs.LinuxIntelRdt{} }, "engine: linux.intelRdt is not supported"},
		{func(s *specs.Spec) { s.Hooks = &specs.Hooks{} }, "engine: hooks is not supported"},
		{func(s *specs.Spec) { s.Process.ApparmorProfile = "docker-default" }, "engine: process.apparmorProfile is not supported"},
		{func(s *specs.Spec) { s.Process.Args = nil }, "process.args is empty"},
		{func(s *specs.Spec) { s.Root = nil }, "the spec needs process, root and linux"},
		{func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.MountNamespace, Path: "/proc/1/ns/mnt"})
		}, "joining a mount namespace (/proc/1/ns/mnt) is not supported"},
	} {
		s := spec()
		tc.change(s)
		assert.ErrorContains(t, Supported(s), tc.want)
	}
}

// The network step works on the namespace the spec gives; a mode that
// does not match it is refused.
func TestNetworkModeMatchesTheSpec(t *testing.T) {
	cfg := &Config{Spec: spec(), Settings: Settings{Network: Network{Mode: "host"}}}
	_, err := Steps(cfg)
	assert.ErrorContains(t, err, "network mode host does not match")
	cfg.Settings.Network.Mode = "none"
	steps, err := Steps(cfg)
	require.NoError(t, err)
	var names []string
	for _, s := range steps {
		names = append(names, s.Name())
	}
	assert.Equal(t, []string{"pid", "network", "rootfs", "user", "security"}, names, "an OCI bundle's spec: no layers, no cgroup path")
	cfg.Settings.Network.Mode = ""
	steps, err = Steps(cfg)
	require.NoError(t, err)
	assert.Len(t, steps, 4, "no network step: the caller gave the namespaces")
}
