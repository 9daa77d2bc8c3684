//go:build linux

package layer

import (
	"os"

	"github.com/spf13/cobra"

	"berth/01-uts/spine"
	"berth/05-user/userns"
)

// Commands are the verbs of the layer store: diff, commit, apply, rm.
// Each lives in its own file (cmd_*.go); the store knows nothing of flags.
func Commands() []*cobra.Command {
	return []*cobra.Command{diffCommand(), commitCommand(), applyCommand(), rmCommand()}
}

// roots are the --root and --data-root flags the verbs share with run.
// Without root the defaults are the user's own, as for run (stage 05):
// $XDG_RUNTIME_DIR/berth and ~/.local/share/berth.
type roots struct{ state, data string }

func (r *roots) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&r.state, "root", "", "directory of live container state (default $BERTH_ROOT, or "+spine.DefaultState+" for root and $XDG_RUNTIME_DIR/berth without)")
	cmd.Flags().StringVar(&r.data, "data-root", "", "directory of persistent data (default $BERTH_DATA_ROOT, or "+spine.DefaultDataRoot+" for root and ~/.local/share/berth without)")
}

func (r *roots) stateRoot() (string, error) {
	return pick(r.state, "BERTH_ROOT", spine.DefaultState, userns.RootlessStateRoot)
}

func (r *roots) store() (Store, error) {
	d, err := pick(r.data, "BERTH_DATA_ROOT", spine.DefaultDataRoot, userns.RootlessDataRoot)
	return NewStore(d), err
}

func pick(flag, env, def string, rootless func() (string, error)) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if v := os.Getenv(env); v != "" {
		return v, nil
	}
	if os.Geteuid() != 0 {
		return rootless()
	}
	return def, nil
}
