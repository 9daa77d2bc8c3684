//go:build linux

package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/distribution/reference"
	"github.com/spf13/cobra"

	"berth/01-uts/spine"
)

// verbs are the commands of the image store, in the order help lists
// them. Each lives in its own file (cmd_*.go), which adds itself here.
var verbs = []func() *cobra.Command{
	imagesCommand, historyCommand, inspectCommand, tagCommand, rmiCommand, importCommand,
}

// Commands are the verbs of the image store; each works on the store
// under --data-root.
func Commands() []*cobra.Command {
	var out []*cobra.Command
	for _, v := range verbs {
		out = append(out, v())
	}
	return out
}

// storeOf is the image store under a verb's data root: the global
// --data-root, $BERTH_DATA_ROOT, or the default (spine.DataRoot; without
// root, the user's own, as for run).
func storeOf(cmd *cobra.Command) (*Store, error) {
	dir, err := spine.DataRootOf(cmd)
	if err != nil {
		return nil, err
	}
	return NewStore(dir), nil
}

// imageOf opens the store and finds an image in it by name or id.
func imageOf(cmd *cobra.Command, nameOrID string) (*Store, *Image, error) {
	s, err := storeOf(cmd)
	if err != nil {
		return nil, nil, err
	}
	img, err := s.Get(nameOrID)
	return s, img, err
}

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
				var shown []*Image
				for _, img := range imgs {
					if !Intermediate(img, imgs) {
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
func filterRepo(imgs []*Image, filter string) ([]*Image, error) {
	r, err := reference.ParseNormalizedNamed(filter)
	if err != nil {
		return nil, fmt.Errorf("invalid image name %q: %w", filter, err)
	}
	tagged, hasTag := r.(reference.Tagged)
	var out []*Image
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

func historyCommand() *cobra.Command {
	var (
		noTrunc bool
	)
	cmd := &cobra.Command{
		Use:   "history IMAGE",
		Short: "Show how an image was made, one line per step, newest first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, img, err := imageOf(cmd, args[0])
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 8, 3, ' ', 0)
			fmt.Fprintln(tw, "LAYER\tCREATED\tCREATED BY\tSIZE\tCOMMENT")
			rows := historyRows(img)
			for i := len(rows) - 1; i >= 0; i-- {
				r := rows[i]
				by := strings.ReplaceAll(r.createdBy, "\n", " ")
				if !noTrunc && len(by) > 45 {
					by = by[:44] + "…"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.layer, ago(r.created), by, r.size, r.comment)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&noTrunc, "no-trunc", false, "do not shorten the CREATED BY column")
	return cmd
}

type historyRow struct {
	layer, createdBy, size, comment string
	created                         *time.Time
}

// historyRows pairs the config's history with the layers: an entry marked
// empty_layer changed only the config (ENV, CMD…); each other entry made
// the next layer, in order.
func historyRows(img *Image) []historyRow {
	var rows []historyRow
	next := 0
	for _, h := range img.Config.History {
		r := historyRow{createdBy: h.CreatedBy, comment: h.Comment, created: h.Created, layer: "<none>", size: "0B"}
		if !h.EmptyLayer && next < len(img.Manifest.Layers) {
			l := img.Manifest.Layers[next]
			r.layer, r.size = ShortID(img.Config.RootFS.DiffIDs[next]), humanSize(l.Size)
			next++
		}
		rows = append(rows, r)
	}
	// Layers with no history entry (an image made by hand) still show.
	for ; next < len(img.Manifest.Layers); next++ {
		rows = append(rows, historyRow{layer: ShortID(img.Config.RootFS.DiffIDs[next]), size: humanSize(img.Manifest.Layers[next].Size)})
	}
	return rows
}

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
						fmt.Fprintf(cmd.OutOrStdout(), "Untagged: %s\n", FamiliarName(n))
					}
				}
				if img.ID() == "" { // a damaged image: no config to name it by
					fmt.Fprintf(cmd.OutOrStdout(), "Deleted: %s\n", img.Descriptor.Digest)
				} else if _, err := s.Get(img.ID().String()); errors.Is(err, ErrNotFound) {
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
func namesOf(s *Store, img *Image) []string {
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

// ago prints a time as docker does: "5 minutes ago".
func ago(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "N/A"
	}
	d := time.Since(*t)
	switch {
	case d < 0:
		return "in the future"
	case d < time.Minute:
		return "Less than a minute ago"
	case d < time.Hour:
		return plural(int(d.Minutes()), "minute") + " ago"
	case d < 48*time.Hour:
		return plural(int(d.Hours()), "hour") + " ago"
	case d < 14*24*time.Hour:
		return plural(int(d.Hours()/24), "day") + " ago"
	case d < 60*24*time.Hour:
		return plural(int(d.Hours()/24/7), "week") + " ago"
	case d < 2*365*24*time.Hour:
		return plural(int(d.Hours()/24/30), "month") + " ago"
	}
	return plural(int(d.Hours()/24/365), "year") + " ago"
}

func plural(n int, unit string) string {
	if n == 1 {
		if unit == "hour" {
			return "An hour"
		}
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// humanSize prints bytes as docker does: 4.26MB (powers of 1000).
func humanSize(n int64) string {
	f := float64(n)
	for _, u := range []string{"B", "kB", "MB", "GB"} {
		if f < 1000 {
			if u == "B" {
				return fmt.Sprintf("%dB", n)
			}
			return fmt.Sprintf("%.3g%s", f, u)
		}
		f /= 1000
	}
	return fmt.Sprintf("%.3gTB", f)
}
