//go:build linux

package layer

import (
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"berth/01-uts/spine"
	"berth/01-uts/spine/roots"
)

func rmCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rm ID [ID...]",
		Short: "Remove stopped containers' layers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			stateRoot, err := roots.StateRootOf(cmd)
			if err != nil {
				return err
			}
			store, err := storeOf(cmd)
			if err != nil {
				return err
			}
			// A runtime killed with SIGKILL left its overlay mounted:
			// collecting it first unmounts it.
			spine.Collect(stateRoot, false)
			live, err := spine.Live(stateRoot)
			if err != nil {
				return err
			}
			for _, id := range args {
				if err := spine.ValidID(id); err != nil {
					return err
				}
				if slices.Contains(live, id) {
					return fmt.Errorf("container %q is running: stop it first", id)
				}
				if !store.Exists(id) {
					return fmt.Errorf("no container layer %q in %s", id, store.Root)
				}
				if err := store.Remove(id); err != nil {
					return err
				}
			}
			return nil
		},
	}
	return cmd
}
