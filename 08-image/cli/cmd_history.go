//go:build linux

package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"berth/08-image/store"
)

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
func historyRows(img *store.Image) []historyRow {
	var rows []historyRow
	next := 0
	for _, h := range img.Config.History {
		r := historyRow{createdBy: h.CreatedBy, comment: h.Comment, created: h.Created, layer: "<none>", size: "0B"}
		if !h.EmptyLayer && next < len(img.Manifest.Layers) {
			l := img.Manifest.Layers[next]
			r.layer, r.size = store.ShortID(img.Config.RootFS.DiffIDs[next]), humanSize(l.Size)
			next++
		}
		rows = append(rows, r)
	}
	// Layers with no history entry (an image made by hand) still show.
	for ; next < len(img.Manifest.Layers); next++ {
		rows = append(rows, historyRow{layer: store.ShortID(img.Config.RootFS.DiffIDs[next]), size: humanSize(img.Manifest.Layers[next].Size)})
	}
	return rows
}
