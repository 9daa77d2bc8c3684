//go:build linux

package cli

import (
	"github.com/spf13/cobra"
)

func (a *app) renameCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "rename CONTAINER NEW_NAME",
		Short: "Rename a container",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.Engine()
			if err != nil {
				return err
			}
			rec, err := e.Store.Get(args[0])
			if err != nil {
				return err
			}
			if err := e.Store.Rename(rec.ID, args[1]); err != nil {
				return err
			}
			// Docker's attributes: the new name, and the old one with
			// the slash of its API.
			old := rec.Name
			rec.Name = args[1]
			e.Event(rec, "rename", map[string]string{"oldName": "/" + old})
			return nil
		},
	}
}
