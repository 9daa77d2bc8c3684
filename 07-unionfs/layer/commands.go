//go:build linux

package layer

import (
	"os"

	"github.com/spf13/cobra"

	"berth/01-uts/spine"
)

// Commands are the verbs of the layer store: diff, commit, apply, rm.
// Each lives in its own file (cmd_*.go); the store knows nothing of flags.
func Commands() []*cobra.Command {
	return []*cobra.Command{diffCommand(), commitCommand(), applyCommand(), rmCommand()}
}

// roots are the --root and --data-root flags the verbs share with run.
type roots struct{ state, data string }

func (r *roots) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&r.state, "root", "", "directory of live container state (default $BERTH_ROOT or "+spine.DefaultState+")")
	cmd.Flags().StringVar(&r.data, "data-root", "", "directory of persistent data (default $BERTH_DATA_ROOT or "+spine.DefaultDataRoot+")")
}

func (r *roots) stateRoot() string { return pick(r.state, "BERTH_ROOT", spine.DefaultState) }
func (r *roots) store() Store {
	return NewStore(pick(r.data, "BERTH_DATA_ROOT", spine.DefaultDataRoot))
}

func pick(flag, env, def string) string {
	if flag != "" {
		return flag
	}
	if v := os.Getenv(env); v != "" {
		return v
	}
	return def
}
