//go:build linux

package execin

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func container() *specs.Spec {
	return &specs.Spec{
		Process: &specs.Process{
			Args: []string{"sleep", "1000"}, Env: []string{"PATH=/bin", "A=1"}, Cwd: "/srv",
			User:            specs.User{UID: 1000, GID: 100},
			Capabilities:    &specs.LinuxCapabilities{Bounding: []string{"CAP_CHOWN"}, Effective: []string{"CAP_CHOWN"}},
			NoNewPrivileges: true, Terminal: true,
		},
		Linux: &specs.Linux{Seccomp: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}},
	}
}

// An exec's process is the container's, but for what the flags say.
func TestNewRequest(t *testing.T) {
	r, err := NewRequest(container(), Options{Args: []string{"sh"}, Env: []string{"A=2", "B=3"}})
	require.NoError(t, err)
	p := r.Process
	assert.Equal(t, []string{"sh"}, p.Args)
	assert.Equal(t, []string{"PATH=/bin", "A=2", "B=3"}, p.Env, "-e replaces and adds")
	assert.Equal(t, "/srv", p.Cwd)
	assert.Equal(t, specs.User{UID: 1000, GID: 100}, p.User)
	assert.Equal(t, []string{"CAP_CHOWN"}, p.Capabilities.Effective, "the init's restrictions")
	assert.True(t, p.NoNewPrivileges)
	assert.False(t, p.Terminal, "the container's terminal is not the exec's")
	assert.Equal(t, specs.ActErrno, r.Seccomp.DefaultAction)

	r, err = NewRequest(container(), Options{Args: []string{"sh"}, Workdir: "/tmp", User: "nobody", Tty: true,
		Privileged: true, AllCaps: []string{"CAP_CHOWN", "CAP_SYS_ADMIN"}})
	require.NoError(t, err)
	assert.Equal(t, "/tmp", r.Process.Cwd)
	assert.Equal(t, "nobody", r.User, "resolved inside, against the container's /etc/passwd")
	assert.True(t, r.Process.Terminal)
	assert.Equal(t, []string{"CAP_CHOWN", "CAP_SYS_ADMIN"}, r.Process.Capabilities.Effective)
	assert.Empty(t, r.Process.Capabilities.Ambient)

	_, err = NewRequest(container(), Options{Args: []string{"sh"}, Workdir: "tmp"})
	assert.ErrorContains(t, err, "not an absolute path")
	_, err = NewRequest(container(), Options{})
	assert.ErrorContains(t, err, "no command")
}
