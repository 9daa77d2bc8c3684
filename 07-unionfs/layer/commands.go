//go:build linux

package layer

import (
	"github.com/spf13/cobra"

	"berth/01-uts/spine/roots"
)

// Commands are the verbs of the layer store: diff, commit, apply, rm.
// Each lives in its own file (cmd_*.go); the store knows nothing of flags.
func Commands() []*cobra.Command {
	return []*cobra.Command{diffCommand(), commitCommand(), applyCommand(), rmCommand()}
}

// storeOf is the layer store under a verb's data root: the global
// --data-root, $BERTH_DATA_ROOT, or the default (roots.DataRoot; without
// root, the user's own, as for run).
func storeOf(cmd *cobra.Command) (Store, error) {
	d, err := roots.DataRootOf(cmd)
	return NewStore(d), err
}
