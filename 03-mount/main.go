// Command 03-mount is 02-pid plus a root filesystem of its own: a mount
// namespace, pivot_root into the busybox tree, fresh /proc /sys /dev, and
// no way back to the host's root. Chapter: docs/03-mount.md.
package main

import (
	"berth/01-uts/spine"
	"berth/01-uts/uts"
	"berth/02-pid/pid"
	"berth/03-mount/rootfs"
)

func main() {
	spine.Main(spine.Program{
		Name:  "03-mount",
		Short: "a command with its own hostname, process tree and root filesystem",
		Options: []spine.Option{
			&uts.Options{},
			&pid.Options{},
			&rootfs.Options{},
		},
	})
}
