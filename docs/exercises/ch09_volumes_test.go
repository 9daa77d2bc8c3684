//go:build exercise && linux

package exercises

// The exercises of docs/09-volumes.md, 09-23 to 09-26.

import (
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/09-full/volume"
	"berth/internal/testenv"
)

// volumeHost runs bin/berth with one private data and state root for
// the whole test, on the busybox tree.
type volumeHost struct {
	t          *testing.T
	env        []string
	bin, rootf string
}

func newVolumeHost(t *testing.T) *volumeHost {
	t.Helper()
	testenv.RequireRoot(t)
	return &volumeHost{t: t, env: testenv.StateEnv(t), bin: testenv.Berth(t), rootf: testenv.Rootfs(t)}
}

func (h *volumeHost) run(args ...string) testenv.Result {
	h.t.Helper()
	return testenv.Run(h.t, h.env, h.bin, args...)
}

func (h *volumeHost) ok(args ...string) string {
	h.t.Helper()
	r := h.run(args...)
	require.Equal(h.t, 0, r.Code, "berth %s: %s", strings.Join(args, " "), r)
	return strings.TrimSpace(r.Stdout)
}

func (h *volumeHost) ctr(args ...string) string {
	h.t.Helper()
	return h.ok(append([]string{"run", "--rm", "--rootfs", h.rootf, "--network", "none"}, args...)...)
}

// 09-23: a named volume is filled from the image once, while empty; a
// second mount elsewhere shows what the first put there, and a file
// removed from it does not come back.
func TestExercise09_23(t *testing.T) {
	a := answer(t, "09-23", 2)
	h := newVolumeHost(t)
	h.ctr("-v", "e23:/etc", "true")
	n := len(strings.Fields(h.ctr("-v", "e23:/etc2", "ls", "/etc2")))
	h.ctr("-v", "e23:/etc", "rm", "/etc/motd")
	again := "no"
	if strings.Contains(h.ctr("-v", "e23:/etc", "ls", "/etc"), "motd") {
		again = "yes"
	}
	assert.Equal(t, strconv.Itoa(n), a[0], "line 1: the entries of /etc2 in the second container")
	assert.Equal(t, again, a[1], "line 2: did motd come back?")
}

// 09-24: the label that marks an anonymous volume.
func TestExercise09_24(t *testing.T) {
	a := answer(t, "09-24", 1)
	assert.Equal(t, volume.AnonymousLabel, a[0])
}

// 09-25: volume create --opt nocopy=true makes a volume that -v never
// fills from the image.
func TestExercise09_25(t *testing.T) {
	h := newVolumeHost(t)
	h.ok("volume", "create", "--opt", "nocopy=true", "e25")
	assert.Equal(t, "true", h.ok("volume", "inspect", "--format", "{{index .Options \"nocopy\"}}", "e25"))
	// (hosts, hostname and resolv.conf are bind mounts over /etc: their
	// mount points are made in the volume, as Docker makes them)
	got := h.ctr("-v", "e25:/etc", "ls", "/etc")
	assert.NotContains(t, got, "passwd", "a nocopy volume mounted over /etc is not filled from the image")
	assert.NotContains(t, got, "motd", "a nocopy volume mounted over /etc is not filled from the image")
	h.ok("volume", "create", "e25b")
	assert.Contains(t, h.ctr("-v", "e25b:/etc", "ls", "/etc"), "passwd", "a volume without nocopy is still filled")
}

// 09-26: what volume ls --filter name= matches.
func TestExercise09_26(t *testing.T) {
	a := answer(t, "09-26", 1)
	h := newVolumeHost(t)
	for _, n := range []string{"abc", "xab", "ba"} {
		h.ok("volume", "create", n)
	}
	want := strings.Fields(h.ok("volume", "ls", "-q", "--filter", "name=ab"))
	assert.Equal(t, strings.Join(want, " "), strings.Join(strings.Fields(a[0]), " "))
}
