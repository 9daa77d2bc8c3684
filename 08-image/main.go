// Command 08-image is 07-unionfs with images: a content-addressed store of
// manifests, configs and layers (an OCI image layout), filled by import,
// load, pull and build, and run --image NAME, which takes ENTRYPOINT, CMD,
// ENV, WORKDIR and USER from the image's config. Chapter: docs/08-image.md.
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
	"berth/08-image/cli"
	"berth/08-image/image"
)

func main() {
	spine.Main(spine.Program{
		Name:  "08-image",
		Short: "a container from an image: pull, load, build, images, history",
		Options: []spine.Option{
			&uts.Options{},
			&pid.Options{},
			&rootfs.Options{},
			&network.Options{OtherModes: []string{userns.SlirpMode}},
			&userns.Options{},
			&cgroup.Options{},
			&image.Options{}, // stage 07's layer options, with --image NAME
		},
		Commands: append(append(append([]*cobra.Command{network.CleanupCommand()},
			cgroup.Commands()...), layer.Commands()...), cli.Commands()...),
		CommandOptional: true, // the image's ENTRYPOINT and CMD
		RunUse:          "run [flags] [COMMAND [ARG...]]",
	})
}
