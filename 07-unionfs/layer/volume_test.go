//go:build linux

package layer

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseVolume(t *testing.T) {
	host := t.TempDir()
	v, err := ParseVolume(host + ":/data:ro")
	require.NoError(t, err)
	assert.Equal(t, Volume{Source: host, Dest: "/data", ReadOnly: true}, v)
	v, err = ParseVolume("/cache/")
	require.NoError(t, err)
	assert.Equal(t, Volume{Dest: "/cache", Anonymous: true}, v)
	for _, bad := range []string{"rel:/data", host + ":data", host + ":/", host + ":/a/../b", host + ":/d:rx", "/nonexistent-berth:/d", "a:b:c:d"} {
		_, err := ParseVolume(bad)
		assert.Error(t, err, bad)
	}
}
