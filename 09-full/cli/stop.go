//go:build linux

package cli

import (
	"github.com/spf13/cobra"

	"berth/09-full/engine"
)

func (a *app) stopCommand() *cobra.Command {
	var timeout int
	cmd := &cobra.Command{
		Use:   "stop [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Stop one or more running containers: the stop signal, then SIGKILL after the timeout",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var t *int
			if cmd.Flags().Changed("time") {
				t = &timeout
			}
			return a.Each(args, func(e *engine.Engine, ref string) error { return e.Stop(ref, t) })
		},
	}
	cmd.Flags().IntVarP(&timeout, "time", "t", 10, "seconds to wait before killing the container")
	cmd.Flags().IntVar(&timeout, "timeout", 10, "seconds to wait before killing the container")
	_ = cmd.Flags().MarkHidden("timeout")
	return cmd
}
