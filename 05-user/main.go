// Command 05-user adds a user namespace to the earlier stages: root inside the
// container is an ordinary user outside, and the whole container runs
// without sudo. Chapter: docs/05-user.md.
package main

import (
	"github.com/spf13/cobra"

	"berth/01-uts/spine"
	"berth/01-uts/uts"
	"berth/02-pid/pid"
	"berth/03-mount/rootfs"
	"berth/04-net/network"
	"berth/05-user/userns"
)

func main() {
	spine.Main(spine.Program{
		Name:  "05-user",
		Short: "a container whose root is an ordinary user outside, runnable without sudo",
		Options: []spine.Option{
			&uts.Options{},
			&pid.Options{},
			&rootfs.Options{},
			&network.Options{OtherModes: []string{userns.SlirpMode}},
			&userns.Options{},
		},
		Commands: []*cobra.Command{network.CleanupCommand()},
	})
}
