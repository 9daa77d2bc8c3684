//go:build linux

package cli

import (
	"fmt"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"berth/01-uts/spine"
	"berth/08-image/build"
	"berth/08-image/image"
	"berth/08-image/store"
)

func importCommand() *cobra.Command {
	var (
		bound   image.SizeFlag
		cmdArgs []string
		changes []string
	)
	cmd := &cobra.Command{
		Use:   "import ROOTFS [NAME]",
		Short: "Make a one-layer image of a root filesystem: a directory, or a tarball (plain or gzip; '-' for stdin)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			s, err := storeOf(cmd)
			if err != nil {
				return err
			}
			s.MaxImageSize = bound.N
			name := ""
			if len(args) == 2 {
				if name, err = store.NormalizeName(args[1]); err != nil {
					return err
				}
			}
			// --change: Dockerfile instructions on the config (build_config.go),
			// checked before anything is stored.
			config := ocispec.ImageConfig{Cmd: cmdArgs}
			if err := build.ApplyChanges(&config, changes); err != nil {
				return err
			}
			src := args[0]
			// Ctrl-C ends the import: the half-stored layer is removed.
			ctx, stop := interruptible(cmd)
			defer stop()
			added, err := store.Begin(ctx, s)
			if err != nil {
				return err
			}
			defer func() { // a failed import stores nothing
				added.End(err != nil)
				if err == nil {
					return
				}
				if ctx.Err() != nil {
					err = spine.Exitf(130, "import interrupted: nothing was stored")
				}
			}()
			if err := added.Snapshot(); err != nil {
				return err
			}
			l, err := s.ImportLayer(ctx, src)
			if err != nil {
				return err
			}
			added.Note(l.Blob.Digest)
			if err := ctx.Err(); err != nil {
				return err
			}
			now := time.Now().UTC()
			cfg := ocispec.Image{
				Created: &now,
				Config:  config,
				History: []ocispec.History{{Created: &now, CreatedBy: "berth import " + src, Comment: "imported"}},
			}
			img, err := s.Commit(name, cfg, []store.Layer{l})
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), img.ID())
			return nil
		},
	}
	bound.AddFlag(cmd.Flags())
	cmd.Flags().StringArrayVar(&cmdArgs, "cmd", nil, "the image's CMD, one argument per flag (--cmd sh), when run is given no command")
	cmd.Flags().StringArrayVarP(&changes, "change", "c", nil, `apply a Dockerfile instruction to the config: CMD ["sh"], ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR (repeatable)`)
	return cmd
}
