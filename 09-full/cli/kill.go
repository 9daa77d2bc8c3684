//go:build linux

package cli

import (
	"github.com/spf13/cobra"

	"berth/09-full/engine"

	"berth/09-full/clikit"
)

func (a *app) killCommand() *cobra.Command {
	var signal string
	cmd := &cobra.Command{
		Use:   "kill [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Kill one or more running containers (send them a signal)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sig, err := engine.ParseSignal(signal)
			if err != nil {
				return clikit.Usage("%v", err)
			}
			return a.Each(args, func(e *engine.Engine, ref string) error { return e.Kill(ref, sig) })
		},
	}
	cmd.Flags().StringVarP(&signal, "signal", "s", "KILL", "signal to send to the container")
	return cmd
}
