//go:build linux

package cli

import (
	"encoding/json"

	"github.com/spf13/cobra"
)

func inspectCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "inspect IMAGE",
		Short: "Print an image's manifest and config as JSON",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, img, err := imageOf(cmd, args[0])
			if err != nil {
				return err
			}
			v := struct {
				Name     string `json:"name"`
				ID       string `json:"id"`
				Digest   string `json:"digest"`
				Manifest any    `json:"manifest"`
				Config   any    `json:"config"`
			}{img.Name, img.ID().String(), img.Descriptor.Digest.String(), img.Manifest, img.Config}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(v)
		},
	}
	return cmd
}
