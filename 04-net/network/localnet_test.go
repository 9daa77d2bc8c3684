//go:build linux

package network_test

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"berth/04-net/network"
	"berth/internal/testenv"
)

// CVE-2020-8558: route_localnet on the bridge (published ports reached
// through 127.0.0.1 need it) also lets a packet a container addresses to
// 127.0.0.1 through the gateway's MAC into the host's loopback services.
// The container sends the same crafted datagram to a UDP socket the host
// bound to 127.0.0.1 and, as a control that the datagram is well made, to
// one on the gateway's address; only the control may arrive.
func TestContainerCannotReachHostLoopback(t *testing.T) {
	h := newHost(t)
	rootfs := testenv.CopyRootfs(t)
	buildLoopspoof(t, filepath.Join(rootfs, "bin", "loopspoof"))
	r := h.run("true") // makes the bridge
	require.Equal(t, 0, r.Code, r.String())
	br, err := netlink.LinkByName(network.DefaultBridge)
	require.NoError(t, err)

	secret, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer secret.Close()
	control, err := net.ListenPacket("udp4", "10.88.0.1:0")
	require.NoError(t, err)
	defer control.Close()

	r = h.run("--rootfs", rootfs, "loopspoof", br.Attrs().HardwareAddr.String(),
		secret.LocalAddr().String(), control.LocalAddr().String())
	require.Equal(t, 0, r.Code, r.String())

	buf := make([]byte, 100)
	require.NoError(t, control.SetReadDeadline(time.Now().Add(30*time.Second)))
	n, _, err := control.ReadFrom(buf)
	require.NoError(t, err, "the control datagram to the gateway's address never came: the helper is broken")
	assert.Equal(t, "loopspoof to "+control.LocalAddr().String(), string(buf[:n]))
	// The datagram to 127.0.0.1 was sent first, on the same path: had it
	// passed, it would be queued by now. A second more for good measure.
	require.NoError(t, secret.SetReadDeadline(time.Now().Add(time.Second)))
	n, from, err := secret.ReadFrom(buf)
	assert.Error(t, err, "a container reached the host's 127.0.0.1: %q from %v", buf[:n], from)
	h.assertNothingLeft()
}

// buildLoopspoof puts the helper program at dst (in the VM, where there is
// no go, vmtest passes it prebuilt).
func buildLoopspoof(t *testing.T, dst string) {
	t.Helper()
	var build *exec.Cmd
	if p := os.Getenv("BERTH_LOOPSPOOF"); p != "" {
		build = exec.Command("cp", p, dst)
	} else {
		build = exec.Command("go", "build", "-o", dst, "./04-net/network/internal/loopspoof")
		build.Dir = testenv.RepoRoot()
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
	}
	out, err := build.CombinedOutput()
	require.NoError(t, err, string(out))
}
