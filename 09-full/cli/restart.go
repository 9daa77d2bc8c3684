//go:build linux

package cli

import (
	"github.com/spf13/cobra"

	"berth/09-full/engine"
)

func (a *app) restartCommand() *cobra.Command {
	var timeout int
	cmd := &cobra.Command{
		Use:   "restart [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Restart one or more containers (stop, then start)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var t *int
			if cmd.Flags().Changed("time") {
				t = &timeout
			}
			return a.Each(args, func(e *engine.Engine, ref string) error {
				if err := e.Stop(ref, t); err != nil {
					return err
				}
				if err := e.Start(ref); err != nil {
					return err
				}
				// After stop's and start's own events, as Docker's.
				if rec, err := e.Store.Get(ref); err == nil {
					e.Event(rec, "restart", nil)
				}
				return nil
			})
		},
	}
	cmd.Flags().IntVarP(&timeout, "time", "t", 10, "seconds to wait for stop before killing the container")
	return cmd
}
