// Command 06-cgroups is 05-user plus a cgroup of its own: memory, CPU,
// PIDs and block I/O limits with docker run's flags, a cgroup namespace,
// live stats, pause and resume. Chapter: docs/06-cgroups.md.
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
)

func main() {
	spine.Main(spine.Program{
		Name:  "06-cgroups",
		Short: "a container with resource limits, accounting and a freezer",
		Options: []spine.Option{
			&uts.Options{},
			&pid.Options{},
			&rootfs.Options{},
			&network.Options{OtherModes: []string{userns.SlirpMode}},
			&userns.Options{},
			&cgroup.Options{},
		},
		Commands: append([]*cobra.Command{network.CleanupCommand()}, cgroup.Commands()...),
	})
}
