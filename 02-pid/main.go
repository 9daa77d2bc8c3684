// Command 02-pid is 01-uts plus PID and IPC namespaces and a private /proc:
// the command sees only its own processes and is PID 1. Chapter:
// docs/02-pid.md.
package main

import (
	"berth/01-uts/spine"
	"berth/01-uts/uts"
	"berth/02-pid/pid"
)

func main() {
	spine.Main(spine.Program{
		Name:  "02-pid",
		Short: "a command with its own hostname and process tree",
		Options: []spine.Option{
			&uts.Options{},
			&pid.Options{},
		},
	})
}
