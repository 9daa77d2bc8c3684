//go:build linux

package volume

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"ab", "data", "my-vol_1.2", "0x"} {
		assert.NoError(t, CheckName(ok), ok)
	}
	for _, bad := range []string{"", "a", "..", ".x", "-x", "_x", "a/b", "../x", "a b", "a:b"} {
		assert.Error(t, CheckName(bad), bad)
	}
}

// Create makes a whole volume or nothing; a second Create of one name
// returns the first; List skips a directory that is no volume (a half
// made one, a removal under way).
func TestCreateListRemove(t *testing.T) {
	s := New(t.TempDir())
	v, created, err := s.Create("data", map[string]string{"k": "v"}, nil)
	require.NoError(t, err)
	assert.True(t, created)
	assert.Equal(t, filepath.Join(s.Root, "data", "_data"), v.Mountpoint)
	again, created, err := s.Create("data", nil, nil)
	require.NoError(t, err)
	assert.False(t, created)
	assert.Equal(t, "v", again.Labels["k"])

	require.NoError(t, os.MkdirAll(filepath.Join(s.Root, "half", "_data"), 0o700))
	require.NoError(t, os.MkdirAll(filepath.Join(s.Root, ".removing-x"), 0o700))
	all, err := s.List()
	require.NoError(t, err)
	require.Len(t, all, 1)
	assert.Equal(t, "data", all[0].Name)

	require.NoError(t, s.Remove("data"))
	_, err = s.Get("data")
	assert.True(t, errors.Is(err, ErrNotFound))
	assert.True(t, errors.Is(s.Remove("data"), ErrNotFound))

	_, _, err = s.Create("tt", nil, map[string]string{"type": "nfs"})
	assert.Error(t, err)
	_, _, err = s.Create("tm", nil, map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m"})
	assert.NoError(t, err)
	_, _, err = s.Create("bad", nil, map[string]string{"uid": "0"})
	assert.Error(t, err)
}
