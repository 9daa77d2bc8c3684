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

// tmpfsDir mounts a fresh tmpfs on a temporary directory, as /dev is one,
// and opens it.
func tmpfsDir(t *testing.T) (*os.File, string) {
	t.Helper()
	testenv.RequireRoot(t)
	dir := t.TempDir()
	require.NoError(t, unix.Mount("tmpfs", dir, "tmpfs", 0, "mode=755"))
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	f, err := os.Open(dir)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return f, dir
}

// fillDev makes the usual devices, the spec's devices (in directories of
// their own, with their mode and owner) and the links.
func TestFillDev(t *testing.T) {
	dev, dir := tmpfsDir(t)
	mode := os.FileMode(0o600)
	uid, gid := uint32(1000), uint32(1001)
	c := spine.NewContainer("t", []string{"true"})
	c.Spec.Linux.Devices = []specs.LinuxDevice{
		{Path: "/dev/net/tun", Type: "c", Major: 10, Minor: 200, FileMode: &mode, UID: &uid, GID: &gid},
		{Path: "/dev/fifo0", Type: "p"},
	}
	require.NoError(t, fillDev(c, dev))

	var st unix.Stat_t
	require.NoError(t, unix.Lstat(filepath.Join(dir, "net", "tun"), &st))
	assert.Equal(t, uint32(unix.S_IFCHR|0o600), st.Mode)
	assert.Equal(t, unix.Mkdev(10, 200), st.Rdev)
	assert.Equal(t, uid, st.Uid)
	assert.Equal(t, gid, st.Gid)
	require.NoError(t, unix.Lstat(filepath.Join(dir, "fifo0"), &st))
	assert.Equal(t, uint32(unix.S_IFIFO|0o666), st.Mode)
	for _, name := range []string{"null", "zero", "full", "random", "urandom", "tty"} {
		require.NoError(t, unix.Lstat(filepath.Join(dir, name), &st), name)
		assert.Equal(t, uint32(unix.S_IFCHR), st.Mode&unix.S_IFMT, name)
	}
	target, err := os.Readlink(filepath.Join(dir, "fd"))
	require.NoError(t, err)
	assert.Equal(t, "/proc/self/fd", target)
	require.NoError(t, fillDev(c, dev), "twice is fine")
}

func TestSpecDeviceRefusals(t *testing.T) {
	dev, err := os.Open(t.TempDir())
	require.NoError(t, err)
	defer dev.Close()
	for _, d := range []specs.LinuxDevice{
		{Path: "/etc/passwd", Type: "c"},
		{Path: "/dev/../etc/x", Type: "c"},
		{Path: "/dev/", Type: "c"},
		{Path: "/dev/x", Type: "q"},
	} {
		assert.Error(t, specDevice(dev, d), d.Path)
	}
}

// proc and sysfs are never mounted through a link an image planted.
func TestNotALink(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.Symlink("/", filepath.Join(root, "proc")))
	require.NoError(t, os.Mkdir(filepath.Join(root, "sys"), 0o755))
	rootDir, err := openRoot(root)
	require.NoError(t, err)
	defer rootDir.Close()
	assert.ErrorContains(t, notALink(rootDir, root, "/proc"), "must be mounted on an ordinary directory")
	assert.NoError(t, notALink(rootDir, root, "/sys"))
	assert.NoError(t, notALink(rootDir, root, "/missing/x"))
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
