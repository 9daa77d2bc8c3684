//go:build linux

package security

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A bundle's config.json reaches Validate as it was written: every field
// is input. Each case is a hostile or impossible one, refused in one line.
func TestValidate(t *testing.T) {
	h, err := ThisHost()
	require.NoError(t, err)
	good := func() *specs.Spec {
		s := newSpec()
		require.NoError(t, Apply(s, Options{}, h))
		return s
	}
	require.NoError(t, Validate(good()), "Docker's defaults are valid")
	u := func(v uint) *uint { return &v }
	adj := 1001
	for _, tc := range []struct {
		name string
		edit func(*specs.Spec)
		err  string
	}{
		{"unknown capability", func(s *specs.Spec) {
			s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_EVERYTHING")
		}, `unknown capability "CAP_EVERYTHING"`},
		{"effective beyond permitted", func(s *specs.Spec) {
			s.Process.Capabilities.Effective = append(s.Process.Capabilities.Effective, "CAP_SYS_ADMIN")
		}, "not in the permitted set"},
		{"ambient not inheritable", func(s *specs.Spec) { s.Process.Capabilities.Ambient = []string{"CAP_CHOWN"} }, "permitted and inheritable"},
		{"inheritable beyond bounding", func(s *specs.Spec) { s.Process.Capabilities.Inheritable = []string{"CAP_SYS_ADMIN"} }, "not in the bounding set"},
		{"rlimit type", func(s *specs.Spec) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_WISHES", Soft: 1, Hard: 1}}
		}, `unknown type "RLIMIT_WISHES"`},
		{"rlimit soft above hard", func(s *specs.Spec) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 2, Hard: 1}}
		}, "above the hard limit"},
		{"oomScoreAdj", func(s *specs.Spec) { s.Process.OOMScoreAdj = &adj }, "out of range"},
		{"host sysctl", func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"kernel.core_pattern": "|/x"} }, "not namespaced"},
		{"sysctl path", func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"net/../../kernel/core_pattern": "|/x"} }, "invalid sysctl name"},
		{"relative masked path", func(s *specs.Spec) { s.Linux.MaskedPaths = []string{"proc/kcore"} }, "not an absolute path"},
		{"seccomp notify", func(s *specs.Spec) { s.Linux.Seccomp.Syscalls[0].Action = specs.ActNotify }, "SCMP_ACT_NOTIFY"},
		{"seccomp errno", func(s *specs.Spec) { s.Linux.Seccomp.DefaultErrnoRet = u(1 << 20) }, "not an errno"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := good()
			tc.edit(s)
			err := Validate(s)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.err)
			assert.NotContains(t, err.Error(), "\n")
		})
	}
}
