// Command 04-net is 03-mount plus a network: a network namespace with a
// veth pair on the bridge berth0, an address, outbound NAT, published
// ports (-p) and the modes bridge, none, host and container:PID.
// Chapter: docs/04-net.md.
package main

import (
	"github.com/spf13/cobra"

	"berth/01-uts/spine"
	"berth/01-uts/uts"
	"berth/02-pid/pid"
	"berth/03-mount/rootfs"
	"berth/04-net/network"
)

func main() {
	spine.Main(spine.Program{
		Name:  "04-net",
		Short: "a command with its own hostname, process tree, root filesystem and network",
		Options: []spine.Option{
			&uts.Options{},
			&pid.Options{},
			&rootfs.Options{},
			&network.Options{},
		},
		Commands: []*cobra.Command{network.CleanupCommand()},
	})
}
