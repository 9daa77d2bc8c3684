//go:build linux

package events

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The journal is bounded: past MaxSize it rotates once, and a reader
// sees the events of both files in order.
func TestRotateAndRead(t *testing.T) {
	dir := t.TempDir()
	saved := MaxSize
	MaxSize = 600
	t.Cleanup(func() { MaxSize = saved })
	for i := 0; i < 20; i++ {
		require.NoError(t, Append(dir, "start", "id", map[string]string{"n": string(rune('a' + i))}))
	}
	st, err := os.Stat(filepath.Join(dir, File))
	require.NoError(t, err)
	assert.LessOrEqual(t, st.Size(), MaxSize)
	assert.FileExists(t, filepath.Join(dir, File+".1"))
	var got []string
	require.NoError(t, Read(dir, time.Time{}, time.Time{}, false, nil, func(ev Event) error {
		got = append(got, ev.Actor.Attributes["n"])
		return nil
	}))
	require.NotEmpty(t, got)
	assert.Equal(t, "t", got[len(got)-1], "the newest last")
	for i := 1; i < len(got); i++ {
		assert.Equal(t, got[i-1][0]+1, got[i][0], "in order, none missing: %v", got)
	}
}
