//go:build linux

package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"berth/08-image/store"
)

func rmiCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rmi IMAGE...",
		Short: "Remove images (a name, or an id for every name of it), then their unused blobs and layers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := storeOf(cmd)
			if err != nil {
				return err
			}
			var errs []error
			for _, a := range args {
				img, byName, err := s.Lookup(a)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				byID := !byName || img.Name == ""
				names := []string{img.Name}
				if byID {
					names = namesOf(s, img)
				}
				if err := s.Remove(img, byID); err != nil {
					errs = append(errs, err)
					continue
				}
				// As docker rmi: each name removed, then the image if no
				// name is left on it.
				for _, n := range names {
					if n != "" {
						fmt.Fprintf(cmd.OutOrStdout(), "Untagged: %s\n", store.FamiliarName(n))
					}
				}
				if img.ID() == "" { // a damaged image: no config to name it by
					fmt.Fprintf(cmd.OutOrStdout(), "Deleted: %s\n", img.Descriptor.Digest)
				} else if _, err := s.Get(img.ID().String()); errors.Is(err, store.ErrNotFound) {
					fmt.Fprintf(cmd.OutOrStdout(), "Deleted: %s\n", img.ID())
				}
			}
			res, err := s.GC(cmd.Context())
			if err != nil {
				errs = append(errs, err)
			}
			for _, d := range res.Layers {
				fmt.Fprintf(cmd.OutOrStdout(), "Deleted layer: %s\n", d)
			}
			return errors.Join(errs...)
		},
	}
	return cmd
}

// namesOf lists every name of img's manifest.
func namesOf(s *store.Store, img *store.Image) []string {
	imgs, err := s.List()
	if err != nil {
		return nil
	}
	var out []string
	for _, i := range imgs {
		if i.Descriptor.Digest == img.Descriptor.Digest {
			out = append(out, i.Name)
		}
	}
	return out
}
