//go:build linux

package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/distribution/reference"
	"github.com/spf13/cobra"

	"berth/08-image/build"
	"berth/08-image/store"
)

func imagesCommand() *cobra.Command {
	var (
		quiet bool
		all   bool
	)
	cmd := &cobra.Command{
		Use:   "images [REPOSITORY[:TAG]]",
		Short: "List the images of the store (those of one repository, as docker images NAME)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := storeOf(cmd)
			if err != nil {
				return err
			}
			imgs, err := s.List()
			if err != nil {
				return err
			}
			if !all { // a build's intermediate images (see Intermediate)
				var shown []*store.Image
				for _, img := range imgs {
					if !build.Intermediate(img, imgs) {
						shown = append(shown, img)
					}
				}
				imgs = shown
			}
			if len(args) == 1 {
				if imgs, err = filterRepo(imgs, args[0]); err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			if quiet {
				seen := map[string]bool{}
				for _, img := range imgs {
					if !seen[img.ShortID()] {
						fmt.Fprintln(out, img.ShortID())
						seen[img.ShortID()] = true
					}
				}
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 8, 3, ' ', 0)
			fmt.Fprintln(tw, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE")
			for _, img := range imgs {
				repo, tag := splitFamiliar(img.FamiliarName())
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", repo, tag, img.ShortID(), ago(img.Config.Created), humanSize(img.Size()))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the image ids")
	cmd.Flags().BoolVarP(&all, "all", "a", false, "show a build's intermediate images too")
	return cmd
}

// filterRepo keeps the images of one repository, and of one tag if the
// filter has one: "busybox" keeps busybox:latest and busybox:1.36.
func filterRepo(imgs []*store.Image, filter string) ([]*store.Image, error) {
	r, err := reference.ParseNormalizedNamed(filter)
	if err != nil {
		return nil, fmt.Errorf("invalid image name %q: %w", filter, err)
	}
	tagged, hasTag := r.(reference.Tagged)
	var out []*store.Image
	for _, img := range imgs {
		ir, err := reference.ParseNormalizedNamed(img.Name)
		if err != nil || ir.Name() != r.Name() {
			continue
		}
		if it, ok := ir.(reference.Tagged); hasTag && (!ok || it.Tag() != tagged.Tag()) {
			continue
		}
		out = append(out, img)
	}
	return out, nil
}

// splitFamiliar splits busybox:latest into busybox and latest.
func splitFamiliar(name string) (repo, tag string) {
	if name == "<none>" {
		return "<none>", "<none>"
	}
	if i := strings.LastIndex(name, "@"); i >= 0 {
		return name[:i], "<none>"
	}
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		return name[:i], name[i+1:]
	}
	return name, "<none>"
}
