// Command 01-uts runs a command in a new UTS namespace: it has its own
// hostname, and the host's is unchanged. Chapter: docs/01-uts.md.
package main

import (
	"berth/01-uts/spine"
	"berth/01-uts/uts"
)

func main() {
	spine.Main(spine.Program{
		Name:  "01-uts",
		Short: "a command with its own hostname",
		Options: []spine.Option{
			&uts.Options{},
		},
	})
}
