//go:build linux

package cli

import (
	"fmt"

	units "github.com/docker/go-units"
	"github.com/spf13/cobra"

	"berth/09-full/inside"
)

// containerCommand is `berth container ...`: Docker's management form of
// the verbs (container ls, container rm...), and container prune.
func (a *app) containerCommand() *cobra.Command {
	group := &cobra.Command{Use: "container", Short: "Manage containers"}
	group.AddCommand(a.psCommand(), a.createCommand(), a.runCommand(), a.startCommand(), a.stopCommand(),
		a.killCommand(), a.restartCommand(), a.rmCommand(), a.waitCommand(), a.inspectCommand(),
		a.attachCommand(), a.renameCommand(), a.pauseCommand(true), a.pauseCommand(false),
		a.logsCommand(), a.pruneCommand())
	for _, c := range inside.Commands(a.App) {
		if c.Name() != "events" {
			group.AddCommand(c)
		}
	}
	return group
}

func (a *app) pruneCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all stopped containers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !force && !a.Confirm("WARNING! This will remove all stopped containers.") {
				return nil
			}
			e, err := a.Engine()
			if err != nil {
				return err
			}
			deleted, total := a.pruneContainers(e)
			a.Section("Deleted Containers:", deleted)
			fmt.Fprintf(a.Stdout, "Total reclaimed space: %s\n", units.HumanSize(float64(total)))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	return cmd
}
