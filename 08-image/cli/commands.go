//go:build linux

// Package cli is stage 08's command line: the verbs of the image store
// (images, history, inspect, tag, rmi, import, build, load, save, pull,
// push), one file each, over the packages that do the work (store,
// archive, registry, build). Chapter: docs/08-image.md, "The verbs".
package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"berth/01-uts/spine/roots"
	"berth/08-image/store"
)

// Commands are the verbs of stage 08, in the order help lists them: one
// file each (cmd_*.go), and the only code of the stage that knows flags.
// Each works on the image store under the global --data-root.
func Commands() []*cobra.Command {
	return []*cobra.Command{
		imagesCommand(), historyCommand(), inspectCommand(), tagCommand(), rmiCommand(), importCommand(),
		buildCommand(), loadCommand(), pullCommand(), pushCommand(), saveCommand(),
	}
}

// storeOf is the image store under a verb's data root: the global
// --data-root, $BERTH_DATA_ROOT, or the default (roots.DataRoot; without
// root, the user's own, as for run).
func storeOf(cmd *cobra.Command) (*store.Store, error) {
	dir, err := roots.DataRootOf(cmd)
	if err != nil {
		return nil, err
	}
	return store.NewStore(dir), nil
}

// imageOf opens the store and finds an image in it by name or id.
func imageOf(cmd *cobra.Command, nameOrID string) (*store.Store, *store.Image, error) {
	s, err := storeOf(cmd)
	if err != nil {
		return nil, nil, err
	}
	img, err := s.Get(nameOrID)
	return s, img, err
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
