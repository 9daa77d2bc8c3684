//go:build linux

package rootfs

import (
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"berth/01-uts/spine"
	"berth/internal/testenv"
)

// fillDev makes the usual devices, the spec's devices and the links; a
// link the image planted in its /dev (here dev/net -> a host directory)
// resolves inside the root, so no node lands on the host.
func TestFillDevStaysInsideTheRoot(t *testing.T) {
	testenv.RequireRoot(t)
	root := t.TempDir()
	host := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "dev"), 0o755))
	require.NoError(t, os.Symlink(host, filepath.Join(root, "dev", "net")))
	mode := os.FileMode(0o600)
	uid, gid := uint32(1000), uint32(1001)
	c := spine.NewContainer("t", []string{"true"})
	c.Spec.Linux.Devices = []specs.LinuxDevice{
		{Path: "/dev/net/tun", Type: "c", Major: 10, Minor: 200, FileMode: &mode, UID: &uid, GID: &gid},
	}
	require.NoError(t, fillDev(c, root))

	entries, err := os.ReadDir(host)
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing may be made through the image's link")
	var st unix.Stat_t
	require.NoError(t, unix.Stat(filepath.Join(root, host, "tun"), &st), "the link resolved inside the root")
	assert.Equal(t, uint32(unix.S_IFCHR|0o600), st.Mode)
	assert.Equal(t, unix.Mkdev(10, 200), st.Rdev)
	assert.Equal(t, uid, st.Uid)
	assert.Equal(t, gid, st.Gid)
	for _, name := range []string{"null", "zero", "full", "random", "urandom", "tty"} {
		require.NoError(t, unix.Stat(filepath.Join(root, "dev", name), &st), name)
		assert.Equal(t, uint32(unix.S_IFCHR), st.Mode&unix.S_IFMT, name)
	}
	target, err := os.Readlink(filepath.Join(root, "dev", "fd"))
	require.NoError(t, err)
	assert.Equal(t, "/proc/self/fd", target)
}

func TestSpecDeviceRefusals(t *testing.T) {
	root := t.TempDir()
	for _, d := range []specs.LinuxDevice{
		{Path: "/etc/passwd", Type: "c"},
		{Path: "/dev/../etc/x", Type: "c"},
		{Path: "/dev/", Type: "c"},
		{Path: "/dev/x", Type: "q"},
	} {
		assert.Error(t, specDevice(root, d), d.Path)
	}
}

// proc and sysfs are never mounted through a link an image planted.
func TestNotALink(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.Symlink("/", filepath.Join(root, "proc")))
	require.NoError(t, os.Mkdir(filepath.Join(root, "sys"), 0o755))
	assert.ErrorContains(t, notALink(root, "/proc"), "must be mounted on an ordinary directory")
	assert.NoError(t, notALink(root, "/sys"))
}

// The OCI spec's mount options: flags become flags (Docker's /dev is
// "nosuid,strictatime,mode=755,size=65536k"), the rest is the filesystem's
// data.
func TestParseOptions(t *testing.T) {
	flags, data, bind := parseOptions(specs.Mount{Type: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}})
	assert.Equal(t, uintptr(unix.MS_NOSUID|unix.MS_STRICTATIME), flags)
	assert.Equal(t, "mode=755,size=65536k", data)
	assert.False(t, bind)
	flags, data, bind = parseOptions(specs.Mount{Type: "bind", Options: []string{"rbind", "ro", "noatime", "rprivate"}})
	assert.Equal(t, uintptr(unix.MS_BIND|unix.MS_REC|unix.MS_RDONLY|unix.MS_NOATIME), flags)
	assert.Empty(t, data)
	assert.True(t, bind)
}
