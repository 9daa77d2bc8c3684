// Command 06-cgroups runs a command in its own cgroup: memory, CPU, PIDs
// and block I/O limits with docker run's flags, a cgroup namespace, live
// stats, pause and resume. Chapter: docs/06-cgroups.md.
package main

import (
	"berth/01-uts/spine"
	"berth/01-uts/uts"
	"berth/06-cgroups/cgroup"
)

func main() {
	spine.Main(spine.Program{
		Name:  "06-cgroups",
		Short: "a command with resource limits, accounting and a freezer",
		Options: []spine.Option{
			&uts.Options{},
			&cgroup.Options{},
		},
		Commands: cgroup.Commands(),
	})
}
