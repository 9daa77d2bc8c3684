//go:build linux

package inside

import (
	"fmt"

	"github.com/spf13/cobra"

	"berth/07-unionfs/layer"
	"berth/09-full/engine"
)

// diffCommand is `berth diff CONTAINER`: what the container changed in
// its root, stage 07's changes of its layer (A added, C changed, D
// deleted), running or not.
func (a *app) diffCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "diff CONTAINER",
		Short: "Inspect changes to files or directories on a container's filesystem",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.Engine()
			if err != nil {
				return err
			}
			rec, err := e.Store.Get(args[0])
			if err != nil {
				return err
			}
			cfg, err := engine.ConfigOf(rec)
			if err != nil {
				return err
			}
			if len(cfg.Settings.Layers) == 0 {
				return fmt.Errorf("container %s has no layers of berth's (an OCI bundle's root): nothing to compare", rec.ID[:12])
			}
			changes, err := layer.NewStore(e.DataRoot).Changes(rec.ID)
			if err != nil {
				return err
			}
			for _, c := range changes {
				fmt.Fprintln(a.Stdout, c)
			}
			return nil
		},
	}
}
