//go:build linux

// Package inside holds the verbs that look inside a running container,
// or reach into it (chapter 09-exec): exec, top, stats, port, cp, diff,
// commit, export, update, events. berth's command line (09-full/cli) adds
// them beside a container's life and the images.
package inside

import (
	"github.com/spf13/cobra"

	"berth/09-full/clikit"
)

// app is clikit.App with this package's verbs as its methods.
type app struct{ *clikit.App }

// Commands are the verbs, for the root command and `berth container`.
func Commands(ka *clikit.App) []*cobra.Command {
	a := &app{ka}
	return []*cobra.Command{a.execCommand(), a.topCommand(), a.portCommand(), a.diffCommand(), a.cpCommand(),
		a.statsCommand(), a.commitCommand(), a.updateCommand(), a.exportCommand(), a.eventsCommand()}
}

// ExecInspectCommand is `berth internal exec-inspect` (the daemon's exec
// inspect, later).
func ExecInspectCommand(ka *clikit.App) *cobra.Command { return (&app{ka}).execInspectCommand() }
