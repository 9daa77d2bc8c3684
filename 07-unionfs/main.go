// Command 07-unionfs is 06-cgroups on a root made of layers: read-only
// layers, an init layer and a writable container layer joined by overlay
// (or copied, where overlay cannot mount), plus volumes, and the verbs
// diff, commit, apply and rm. Chapter: docs/07-unionfs.md.
package main

import (
	"github.com/spf13/cobra"

	"berth/01-uts/spine"
	"berth/01-uts/uts"
	"berth/02-pid/pid"
	"berth/03-mount/rootfs"
	"berth/04-net/network"
	"berth/05-user/userns"
	"berth/06-cgroups/cgroup"
	"berth/07-unionfs/layer"
)

func main() {
	spine.Main(spine.Program{
		Name:  "07-unionfs",
		Short: "a container on overlay layers, with diff, commit and apply",
		Options: []spine.Option{
			&uts.Options{},
			&pid.Options{},
			&rootfs.Options{},
			&network.Options{OtherModes: []string{userns.SlirpMode}},
			&userns.Options{},
			&cgroup.Options{},
			&layer.Options{},
		},
		Commands: append(append([]*cobra.Command{network.CleanupCommand()}, cgroup.Commands()...), layer.Commands()...),
	})
}
