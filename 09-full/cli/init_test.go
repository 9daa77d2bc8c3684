//go:build linux

package cli_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"berth/internal/testenv"
)

// hideInits runs berth in a mount namespace of its own where every static
// init berth looks for (security.FindInit) is /dev/null, as on a host
// without Debian's tini: nothing else changes, and the host's files stay.
const hideInits = `for f in /usr/bin/tini-static /usr/libexec/docker/docker-init /usr/bin/docker-init; do
	if [ -e "$f" ]; then mount --bind /dev/null "$f" || exit 99; fi
done
exec "$@"`

// TestInitWithoutTini: on a host without tini, --init is refused in one
// line, exit 125, and no container is made; it never falls back to
// berth's own binary as the container's PID 1 (issue 14).
func TestInitWithoutTini(t *testing.T) {
	h := newHost(t)
	args := append([]string{"-m", "--propagation", "private", "sh", "-c", hideInits, "sh", h.bin},
		h.runArgs("--init", "cat", "/proc/1/comm")...)
	r := testenv.Run(t, h.env, "unshare", args...)
	assert.Equal(t, 125, r.Code, r.String())
	assert.Equal(t, "berth: --init needs a static init on the host: install Debian's tini package (it ships /usr/bin/tini-static)\n", r.Stderr)
	assert.Empty(t, r.Stdout, "no container ran")
	assert.Empty(t, h.ids(), "no container was made")
}
