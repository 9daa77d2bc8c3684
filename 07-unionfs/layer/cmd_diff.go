//go:build linux

package layer

import (
	"fmt"

	"github.com/spf13/cobra"
)

func diffCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "diff ID",
		Short: "List what a container changed: A added, C changed, D deleted",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := storeOf(cmd)
			if err != nil {
				return err
			}
			if done, err := store.unshare(args[0], "diff", args[0]); done {
				return err
			}
			changes, err := store.Changes(args[0])
			if err != nil {
				return err
			}
			for _, c := range changes {
				fmt.Fprintln(cmd.OutOrStdout(), c)
			}
			return nil
		},
	}
	return cmd
}
