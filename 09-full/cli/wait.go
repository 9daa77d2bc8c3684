//go:build linux

package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"berth/09-full/clikit"
)

func (a *app) waitCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "wait CONTAINER [CONTAINER...]",
		Short: "Block until one or more containers stop, then print their exit codes",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.Engine()
			if err != nil {
				return err
			}
			failed := false
			for _, ref := range args {
				code, err := e.Wait(ref)
				if err != nil {
					fmt.Fprintf(a.Stderr, "berth: %v\n", clikit.Describe(err))
					failed = true
					continue
				}
				fmt.Fprintln(a.Stdout, code)
			}
			if failed {
				return clikit.Silent(1)
			}
			return nil
		},
	}
}
