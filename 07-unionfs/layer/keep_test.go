//go:build linux

package layer

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/01-uts/spine"
	"berth/07-unionfs/layertest"
	"berth/internal/testenv"
)

// With Keep (stage 09), a container layer survives its run and the next
// Prepare attaches it again, with what the first run wrote; an anonymous
// volume is not seeded again over what the container put in it. Without
// Keep, a second Prepare of the same id is refused, as before.
func TestKeepReattachesTheLayer(t *testing.T) {
	testenv.RequireRoot(t)
	for _, driver := range []string{DriverOverlay, DriverCopy} {
		t.Run(driver, func(t *testing.T) {
			lower := t.TempDir()
			layertest.Write(t, lower, map[string]string{"etc/motd": "image\n", "data/seed": "from the image\n"})
			data := t.TempDir()
			vol := filepath.Join(t.TempDir(), "vol")
			c := spine.NewContainer("t", []string{"true"})
			c.ID, c.DataRoot = "keep-"+driver, data
			s := &Step{Driver: driver, Layers: []string{lower}, Keep: true,
				Volumes: []Volume{{Source: vol, Dest: "/data", Anonymous: true}}}
			first := func() string {
				require.NoError(t, s.Prepare(c))
				return c.Spec.Root.Path
			}
			root := first()
			require.NoError(t, s.Parent(c, 0)) // the container ran
			require.NoError(t, os.WriteFile(filepath.Join(root, "etc/motd"), []byte("changed\n"), 0o644))
			require.NoError(t, os.WriteFile(filepath.Join(vol, "seed"), []byte("the container's\n"), 0o644))
			require.NoError(t, s.Cleanup(c))
			assert.True(t, NewStore(data).Exists(c.ID), "the layer stays")

			root = first()
			assert.Equal(t, "changed\n", layertest.Read(t, filepath.Join(root, "etc/motd")))
			assert.Equal(t, "the container's\n", layertest.Read(t, filepath.Join(vol, "seed")), "not seeded twice")
			require.NoError(t, s.Cleanup(c))

			s.Keep = false
			assert.ErrorContains(t, s.Prepare(c), "already exists")
			require.NoError(t, NewStore(data).Remove(c.ID))
		})
	}
}
