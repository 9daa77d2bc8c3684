//go:build linux

package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func (a *app) waitCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "wait CONTAINER [CONTAINER...]",
		Short: "Block until one or more containers stop, then print their exit codes",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.engine()
			if err != nil {
				return err
			}
			failed := false
			for _, ref := range args {
				code, err := e.Wait(ref)
				if err != nil {
					fmt.Fprintf(a.stderr, "berth: %v\n", describe(err))
					failed = true
					continue
				}
				fmt.Fprintln(a.stdout, code)
			}
			if failed {
				return silent(1)
			}
			return nil
		},
	}
}
