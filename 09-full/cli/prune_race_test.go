//go:build linux

package cli

import (
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/07-unionfs/layer"
	"berth/09-full/engine"
	"berth/09-full/store"
)

// system prune --volumes and a create at the same time: the create's
// record is written, then its anonymous volume made (as berth create and
// its monitor do), just after prune began (pruneVolumesGap, between
// prune's two reads). The volume is the new container's: prune must keep
// it, and remove only the orphan. Reading the records before listing the
// directories removed it.
func TestPruneVolumesKeepsAConcurrentCreatesVolume(t *testing.T) {
	data, state := t.TempDir(), t.TempDir()
	st, err := store.Open(data, state)
	require.NoError(t, err)
	e := &engine.Engine{Store: st, DataRoot: data, StateRoot: state}

	orphan := engine.AnonymousVolumeDir(data, string(make64('a')))
	require.NoError(t, os.MkdirAll(orphan, 0o755))
	fresh := engine.AnonymousVolumeDir(data, string(make64('b')))

	create := func() {
		set := engine.Settings{Volumes: []layer.Volume{{Dest: "/data", Source: fresh, Anonymous: true}}}
		raw, err := set.Encode()
		require.NoError(t, err)
		spec := &specs.Spec{Version: specs.Version, Process: &specs.Process{Args: []string{"sh"}}, Root: &specs.Root{Path: "rootfs"}}
		require.NoError(t, st.Create(&store.Record{ID: store.NewID(), Name: "fresh", Spec: spec, Settings: raw}))
		require.NoError(t, os.MkdirAll(fresh, 0o755)) // the monitor's create seeds it
		require.NoError(t, os.WriteFile(filepath.Join(fresh, "f"), []byte("the container's\n"), 0o644))
	}
	pruneVolumesGap = create
	t.Cleanup(func() { pruneVolumesGap = func() {} })

	gone, _, err := pruneVolumes(e)
	require.NoError(t, err)
	assert.Equal(t, []string{string(make64('a'))}, gone, "only the orphan goes")
	assert.NoDirExists(t, filepath.Dir(orphan))
	assert.FileExists(t, filepath.Join(fresh, "f"), "prune removed the volume of a container being created")
}

func make64(c byte) []byte {
	b := make([]byte, 64)
	for i := range b {
		b[i] = c
	}
	return b
}
