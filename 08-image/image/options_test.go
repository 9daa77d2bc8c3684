//go:build linux

package image

import (
	"os"
	"path/filepath"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestProcessArgs(t *testing.T) {
	cfg := func(ep, cmd []string) ocispec.ImageConfig { return ocispec.ImageConfig{Entrypoint: ep, Cmd: cmd} }
	for _, c := range []struct {
		cfg  ocispec.ImageConfig
		args []string
		want []string
	}{
		{cfg(nil, []string{"sh"}), nil, []string{"sh"}},
		{cfg(nil, []string{"sh"}), []string{"ls", "/"}, []string{"ls", "/"}},
		{cfg([]string{"echo", "ep"}, []string{"default"}), nil, []string{"echo", "ep", "default"}},
		{cfg([]string{"echo", "ep"}, []string{"default"}), []string{"x"}, []string{"echo", "ep", "x"}},
		{cfg(nil, nil), nil, []string{}},
	} {
		assert.Equal(t, c.want, ProcessArgs(c.cfg, c.args))
	}
}

func TestResolveUserReadsTheMergedLayers(t *testing.T) {
	lower, upper := t.TempDir(), t.TempDir()
	write := func(dir, rel, content string) {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(rel)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, rel), []byte(content), 0o644))
	}
	write(lower, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\nold:x:500:500::/home/old:/bin/sh\n")
	write(lower, "etc/group", "root:x:0:\nstaff:x:50:app\n")
	write(upper, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:100::/home/app:/bin/sh\n")
	layers := []string{upper, lower} // top first

	u, err := ResolveUser("app", layers)
	require.NoError(t, err)
	assert.Equal(t, User{UID: 1000, GID: 100, AdditionalGids: []uint32{50}, Home: "/home/app"}, u)
	_, err = ResolveUser("old", layers)
	assert.ErrorContains(t, err, "no such user", "the upper /etc/passwd hides the lower one")
	u, err = ResolveUser("1000:50", layers)
	require.NoError(t, err)
	assert.Equal(t, uint32(50), u.GID)
	u, err = ResolveUser("4242", layers)
	require.NoError(t, err)
	assert.Equal(t, User{UID: 4242}, u, "a number needs no entry")
	u, err = ResolveUser("app:staff", layers)
	require.NoError(t, err)
	assert.Equal(t, uint32(50), u.GID)
	_, err = ResolveUser("app:nogroup", layers)
	assert.ErrorContains(t, err, "no such group")
	u, err = ResolveUser("", layers)
	require.NoError(t, err)
	assert.Equal(t, User{Home: "/root"}, u)

	// A whiteout in the top layer deletes the file for the layers below.
	require.NoError(t, os.Remove(filepath.Join(upper, "etc/passwd")))
	require.NoError(t, unix.Mknod(filepath.Join(upper, "etc/passwd"), unix.S_IFCHR|0o600, 0))
	_, err = ResolveUser("old", layers)
	assert.ErrorContains(t, err, "no such user")

	// A symlinked /etc/passwd resolves inside its layer, never on the host.
	evil := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(evil, "etc"), 0o755))
	require.NoError(t, os.Symlink("/etc/passwd", filepath.Join(evil, "etc/passwd")))
	u, err = ResolveUser("daemon", []string{evil}) // in the host's /etc/passwd
	assert.Error(t, err, "the host's /etc/passwd must not be read: got %+v", u)
}

func TestImageBoundFlag(t *testing.T) {
	var b SizeFlag
	assert.Equal(t, "32GiB", b.String(), "the default")
	for in, want := range map[string]int64{"1MiB": 1 << 20, "512m": 512 << 20, "8GiB": 8 << 30, "100": 100, "1.5g": 3 << 29} {
		require.NoError(t, b.Set(in), in)
		assert.Equal(t, want, b.N, in)
	}
	for _, bad := range []string{"0", "-1", "lots", "1Q"} {
		assert.Error(t, b.Set(bad), bad)
	}
}
