//go:build linux

package oci

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPidFileSymlinks: links planted at the pid file's old temporary
// name and at the pid file itself are not followed: the files they name
// keep their content, and the pid file is a regular file with the pid.
func TestPidFileSymlinks(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	require.NoError(t, os.WriteFile(victim, []byte("precious\n"), 0o600))
	victim2 := filepath.Join(dir, "victim2")
	require.NoError(t, os.WriteFile(victim2, []byte("precious\n"), 0o600))
	pidFile := filepath.Join(dir, "init.pid")
	require.NoError(t, os.Symlink(victim, filepath.Join(dir, ".init.pid.tmp")))
	require.NoError(t, os.Symlink(victim2, pidFile))

	require.NoError(t, writePidFile(pidFile, 4242))
	for _, v := range []string{victim, victim2} {
		b, err := os.ReadFile(v)
		require.NoError(t, err)
		assert.Equal(t, "precious\n", string(b), "%s written through a symlink", v)
	}
	fi, err := os.Lstat(pidFile)
	require.NoError(t, err)
	assert.True(t, fi.Mode().IsRegular(), "the pid file is a regular file: %s", fi.Mode())
	assert.Equal(t, os.FileMode(0o644), fi.Mode().Perm())
	b, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	assert.Equal(t, "4242", string(b))
}

// TestLogSymlink: --log at a symlink is refused, the file it names left
// as it was; a regular file is appended to.
func TestLogSymlink(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	require.NoError(t, os.WriteFile(victim, []byte("precious\n"), 0o600))
	log := filepath.Join(dir, "log")
	require.NoError(t, os.Symlink(victim, log))
	saved := g
	t.Cleanup(func() { g = saved })
	g.log, g.logFormat = log, "text"
	logLine("error", "hello")
	b, err := os.ReadFile(victim)
	require.NoError(t, err)
	assert.Equal(t, "precious\n", string(b), "the log was appended through a symlink")
	_, err = openLog(log)
	assert.ErrorContains(t, err, "open log "+log+": ")

	require.NoError(t, os.Remove(log))
	logLine("error", "hello")
	b, err = os.ReadFile(log)
	require.NoError(t, err)
	assert.Contains(t, string(b), `level=error msg="hello"`)
}
