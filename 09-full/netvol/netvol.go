//go:build linux

// Package netvol holds the verbs of what a container attaches to and
// what outlives it (chapters 09-network and 09-volumes): `berth network`
// (create, ls, inspect, rm, prune; and the hidden `internal dns`, a
// user network's name server) and `berth volume` (create, ls, inspect,
// rm, prune). The stores they work on are 09-full/networks and
// 09-full/volume; berth's command line (09-full/cli) adds the verbs.
package netvol

import (
	"github.com/spf13/cobra"

	"berth/09-full/clikit"
)

// app is clikit.App with this package's verbs as its methods.
type app struct{ *clikit.App }

// Commands are `berth network` and `berth volume`.
func Commands(ka *clikit.App) []*cobra.Command {
	a := &app{ka}
	return []*cobra.Command{a.networkCommand(), a.volumeCommand()}
}

// DNSCommand is `berth internal dns NETWORK`, the name server of a user
// network that the engine starts.
func DNSCommand(ka *clikit.App) *cobra.Command { return (&app{ka}).dnsCommand() }
