//go:build linux

package cli

import (
	"fmt"

	"github.com/distribution/reference"
	"github.com/spf13/cobra"

	"berth/08-image/registry"
)

func pushCommand() *cobra.Command {
	var (
		reg registryFlags
	)
	cmd := &cobra.Command{
		Use:   "push NAME[:TAG]",
		Short: "Send an image to the registry its name names (tag it first: tag busybox 127.0.0.1:5000/busybox)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := storeOf(cmd)
			if err != nil {
				return err
			}
			if r, err := reference.ParseNormalizedNamed(args[0]); err == nil && reference.IsNameOnly(r) {
				fmt.Fprintln(cmd.OutOrStdout(), "Using default tag: latest")
			}
			ctx, stop := interruptible(cmd)
			defer stop()
			c, err := reg.client(args[0])
			if err != nil {
				return err
			}
			_, err = registry.Push(ctx, s, c, args[0], cmd.OutOrStdout())
			return err
		},
	}
	reg.addFlags(cmd)
	return cmd
}
