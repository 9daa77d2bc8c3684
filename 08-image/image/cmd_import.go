//go:build linux

package image

import (
	"fmt"
	"os"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
)

func importCommand() *cobra.Command {
	var (
		roots   dataRoot
		cmdArgs []string
		changes []string
	)
	cmd := &cobra.Command{
		Use:   "import ROOTFS [NAME]",
		Short: "Make a one-layer image of a root filesystem: a directory, or a tarball (plain or gzip; '-' for stdin)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := roots.store()
			if err != nil {
				return err
			}
			name := ""
			if len(args) == 2 {
				if name, err = NormalizeName(args[1]); err != nil {
					return err
				}
			}
			// --change: Dockerfile instructions on the config (build_config.go),
			// checked before anything is stored.
			config := ocispec.ImageConfig{Cmd: cmdArgs}
			if err := ApplyChanges(&config, changes); err != nil {
				return err
			}
			release, err := s.Hold()
			if err != nil {
				return err
			}
			defer release()
			src := args[0]
			var l Layer
			if st, err := os.Stat(src); err == nil && st.IsDir() {
				l, err = s.PutTree(src)
				if err != nil {
					return err
				}
			} else {
				f := os.Stdin
				if src != "-" {
					if f, err = os.Open(src); err != nil {
						return err
					}
					defer f.Close()
				}
				plain, err := decompressed(f)
				if err != nil {
					return fmt.Errorf("import %s: %w", src, err)
				}
				if l, err = s.PutLayer(plain); err != nil {
					return err
				}
			}
			now := time.Now().UTC()
			cfg := ocispec.Image{
				Created: &now,
				Config:  config,
				History: []ocispec.History{{Created: &now, CreatedBy: "berth import " + src, Comment: "imported"}},
			}
			img, err := s.Commit(name, cfg, []Layer{l})
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), img.ID())
			return nil
		},
	}
	roots.addFlag(cmd)
	cmd.Flags().StringArrayVar(&cmdArgs, "cmd", nil, "the image's CMD, one argument per flag (--cmd sh), when run is given no command")
	cmd.Flags().StringArrayVarP(&changes, "change", "c", nil, `apply a Dockerfile instruction to the config: CMD ["sh"], ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR (repeatable)`)
	return cmd
}
