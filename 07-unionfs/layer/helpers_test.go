//go:build linux

package layer

import (
	"path/filepath"

	"berth/01-uts/spine"
)

func spineContainer(store Store, id string) *spine.Container {
	c := spine.NewContainer("test", []string{"true"})
	c.ID = id
	c.DataRoot = filepath.Dir(store.Root)
	return c
}
