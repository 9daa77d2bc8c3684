//go:build linux

package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"berth/01-uts/spine"
	"berth/08-image/archive"
	"berth/08-image/image"
	"berth/08-image/progress"
	"berth/08-image/store"
)

func loadCommand() *cobra.Command {
	var (
		bound image.SizeFlag
		input string
	)
	cmd := &cobra.Command{
		Use:   "load [-i FILE|DIR|-]",
		Short: "Load images from an archive (docker save, docker-archive, oci-archive; plain or gzip'd) or an OCI layout directory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := storeOf(cmd)
			if err != nil {
				return err
			}
			s.MaxImageSize = bound.N
			// Ctrl-C ends the load; the blobs it stored go with it.
			ctx, stop := interruptible(cmd)
			defer stop()
			var loaded []archive.LoadedImage
			src := input
			// On a terminal, a bar of the archive read so far (docker's
			// "Loading layer"); on a pipe, nothing more than the names.
			out := progress.New(cmd.OutOrStdout())
			switch st, serr := os.Stat(input); {
			case input == "" || input == "-":
				src = "stdin"
				in := cmd.InOrStdin()
				if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
					return errors.New("load reads an archive from stdin, which is a terminal: give -i FILE, or redirect it (< FILE)")
				}
				loaded, err = archive.Load(ctx, s, out.Reader("", "Loading", in, 0))
			case serr != nil:
				return fmt.Errorf("load: %w", serr)
			case st.IsDir():
				loaded, err = archive.LoadDir(ctx, s, input)
			default:
				f, oerr := os.Open(input)
				if oerr != nil {
					return oerr
				}
				defer f.Close()
				var size int64
				if st.Mode().IsRegular() {
					size = st.Size()
				}
				loaded, err = archive.Load(ctx, s, out.Reader("", "Loading", f, size))
			}
			if err != nil && ctx.Err() != nil && len(loaded) == 0 {
				return spine.Exitf(130, "load interrupted: nothing was loaded")
			}
			if err != nil {
				return fmt.Errorf("load %s: %w", src, err)
			}
			for _, l := range loaded {
				switch {
				case l.Name == "":
					out.Printf("Loaded image ID: %s", l.ID)
				default:
					if l.Replaced != "" {
						out.Printf("The image %s already exists, renaming the old one with ID %s to empty string", store.FamiliarName(l.Name), l.Replaced)
					}
					out.Printf("Loaded image: %s", store.FamiliarName(l.Name))
				}
			}
			return nil
		},
	}
	bound.AddFlag(cmd.Flags())
	cmd.Flags().StringVarP(&input, "input", "i", "", "read from FILE (or an OCI layout directory) instead of stdin")
	return cmd
}
