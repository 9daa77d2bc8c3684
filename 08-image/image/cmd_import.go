//go:build linux

package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"berth/01-uts/spine"
	"berth/07-unionfs/diff"
	"berth/07-unionfs/untar"
)

func importCommand() *cobra.Command {
	var (
		bound   imageBound
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
			s.MaxImageSize = bound.n
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
			src := args[0]
			// Ctrl-C ends the import: the half-stored layer is removed.
			ctx, stop := interruptible(cmd)
			defer stop()
			release, err := s.Hold(ctx)
			if err != nil {
				return err
			}
			added := &newBlobs{s: s}
			defer func() { // a failed import stores nothing
				release()
				if err == nil {
					return
				}
				added.remove()
				if ctx.Err() != nil {
					err = spine.Exitf(130, "import interrupted: nothing was stored")
				}
			}()
			if err := added.snapshot(); err != nil {
				return err
			}
			l, err := importLayer(ctx, s, src)
			if err != nil {
				return err
			}
			added.note(l.Blob.Digest)
			if err := ctx.Err(); err != nil {
				return err
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
	bound.addFlag(cmd.Flags())
	cmd.Flags().StringArrayVar(&cmdArgs, "cmd", nil, "the image's CMD, one argument per flag (--cmd sh), when run is given no command")
	cmd.Flags().StringArrayVarP(&changes, "change", "c", nil, `apply a Dockerfile instruction to the config: CMD ["sh"], ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR (repeatable)`)
	return cmd
}

// importLayer stores src as a layer: a directory's tree, or a tarball,
// plain or gzip'd, which is read through tar as it streams to the store
// (layertar.go), so that what is not a tar, names a path outside the
// root, or holds more files than --max-image-size stops the import with
// its reason before the blob is complete (and PutBlob removes it);
// nothing is left for run to trip on.
func importLayer(ctx context.Context, s *Store, src string) (Layer, error) {
	var in io.Reader
	if st, err := os.Stat(src); err == nil && st.IsDir() {
		// PutTree, through the interruptible reader and the bound.
		pr, pw := io.Pipe()
		go func() {
			_, err := diff.WriteTree(pw, src)
			pw.CloseWithError(err)
		}()
		defer pr.CloseWithError(io.ErrClosedPipe) // stops WriteTree if PutLayer gave up
		in = readerUntil(ctx, pr)
	} else {
		f := os.Stdin
		if src != "-" {
			if f, err = os.Open(src); err != nil {
				return Layer{}, err
			}
			defer f.Close()
		}
		plain, _, err := untar.Decompress(readerUntil(ctx, f))
		if err != nil {
			return Layer{}, fmt.Errorf("import %s: %w", src, err)
		}
		defer plain.Close()
		in = plain
	}
	checked := newCheckedTar(in, newBudget(s.maxImageSize()))
	l, err := s.PutLayer(checked)
	switch {
	case err != nil && errors.Is(checked.err, errLayerNotATar):
		return Layer{}, fmt.Errorf("import %s: %w (a tarball of a root filesystem, plain or gzip'd, or a directory)", src, checked.err)
	case err != nil && checked.err != nil:
		return Layer{}, fmt.Errorf("import %s: %w", src, checked.err)
	}
	return l, err
}
