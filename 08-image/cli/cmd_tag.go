//go:build linux

package cli

import (
	"github.com/spf13/cobra"
)

func tagCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tag IMAGE NAME",
		Short: "Give an image another name",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, img, err := imageOf(cmd, args[0])
			if err != nil {
				return err
			}
			return s.Tag(args[1], img.Descriptor)
		},
	}
	return cmd
}
