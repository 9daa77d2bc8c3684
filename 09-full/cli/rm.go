//go:build linux

package cli

import (
	"github.com/spf13/cobra"

	"berth/09-full/engine"
)

func (a *app) rmCommand() *cobra.Command {
	var force, volumes bool
	cmd := &cobra.Command{
		Use:   "rm [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Remove one or more containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.Each(args, func(e *engine.Engine, ref string) error { return e.Remove(ref, force, volumes) })
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "force the removal of a running container (uses SIGKILL)")
	cmd.Flags().BoolVarP(&volumes, "volumes", "v", false, "remove anonymous volumes associated with the container")
	return cmd
}
