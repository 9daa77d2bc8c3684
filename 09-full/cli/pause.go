//go:build linux

package cli

import (
	"github.com/spf13/cobra"

	"berth/09-full/engine"
)

// pauseCommand is pause (on) or unpause: the cgroup freezer of stage 06.
func (a *app) pauseCommand(on bool) *cobra.Command {
	use, short := "pause", "Pause all processes within one or more containers"
	if !on {
		use, short = "unpause", "Unpause all processes within one or more containers"
	}
	return &cobra.Command{
		Use:   use + " CONTAINER [CONTAINER...]",
		Short: short,
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.Each(args, func(e *engine.Engine, ref string) error {
				if on {
					return e.Pause(ref)
				}
				return e.Unpause(ref)
			})
		},
	}
}
