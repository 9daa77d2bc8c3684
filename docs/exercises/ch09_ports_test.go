//go:build exercise && linux

package exercises

// The exercises of docs/09-ports.md, 09-21 and 09-22. They publish
// ports on the bridge: run them as CI does, inside the stand-in host
// namespace (scripts/standin-host.sh).

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// publishing starts a detached container with the given -p flags and
// returns its id; the test removes it.
func publishing(t *testing.T, h *volumeHost, args ...string) string {
	t.Helper()
	id := h.ok(append(append([]string{"run", "-d", "--rootfs", h.rootf}, args...), "sleep", "1000")...)
	t.Cleanup(func() { h.run("rm", "-f", id) })
	return id
}

// 09-21: a range is one rule per port.
func TestExercise09_21(t *testing.T) {
	a := answer(t, "09-21", 1)
	h := newVolumeHost(t)
	id := publishing(t, h, "-p", "127.0.0.1:18100-18102:80-82")
	out, err := nftChain("output")
	require.NoError(t, err, out)
	assert.Equal(t, strconv.Itoa(strings.Count(out, "container "+id)), a[0])
}

// 09-22: -p 80 twice: two free host ports, both to the container's 80.
func TestExercise09_22(t *testing.T) {
	a := answer(t, "09-22", 1)
	h := newVolumeHost(t)
	id := publishing(t, h, "-p", "80", "-p", "80")
	n := len(strings.Split(h.ok("port", id, "80"), "\n"))
	assert.Equal(t, strconv.Itoa(n), a[0])
}

func nftChain(chain string) (string, error) {
	out, err := exec.Command("nft", "list", "chain", "ip", "berth", chain).CombinedOutput()
	return string(out), err
}
