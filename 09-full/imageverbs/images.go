//go:build linux

package imageverbs

import (
	"context"
	"fmt"

	units "github.com/docker/go-units"
	digest "github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"

	"berth/01-uts/spine"
	"berth/01-uts/uts"
	"berth/02-pid/pid"
	"berth/03-mount/rootfs"
	"berth/04-net/network"
	"berth/05-user/userns"
	"berth/06-cgroups/cgroup"
	"berth/08-image/build"
	imagecli "berth/08-image/cli"
	"berth/08-image/image"
	imagestore "berth/08-image/store"
)

// buildRunVerb is where berth's build finds the run of its RUN steps.
var buildRunVerb = []string{"internal", "build-run"}

// imageCommands are stage 08's verbs under Docker's names, on berth's
// roots: pull, push, images, rmi, tag, build, save, load, import, history
// at the top, and all of them under `berth image`, with image prune,
// which needs to know berth's containers, and image inspect in Docker's
// shape (stage 08's prints the manifest and config as stored).
func (a *app) imageCommands() []*cobra.Command {
	group := &cobra.Command{Use: "image", Short: "Manage images"}
	for _, c := range a.imageVerbs() {
		if c.Name() == "inspect" {
			continue // Docker's shape (imageinspect.go), not stage 08's
		}
		switch c.Name() { // docker image ls, docker image rm
		case "images":
			c.Aliases = append(c.Aliases, "ls", "list")
		case "rmi":
			c.Aliases = append(c.Aliases, "rm", "remove")
		}
		group.AddCommand(c)
	}
	var top []*cobra.Command
	for _, c := range a.imageVerbs() {
		if c.Name() != "inspect" { // docker's inspect is a container's
			top = append(top, c)
		}
	}
	group.AddCommand(a.imagePruneCommand(), a.imageInspectCommand())
	return append(top, group)
}

// imageVerbs are stage 08's verbs, build made to run its RUN steps with
// stage 08's run mounted in berth (BuildRunCommand), rmi made to refuse
// an image a container uses (a.guardRmi).
func (a *app) imageVerbs() []*cobra.Command {
	var out []*cobra.Command
	for _, c := range imagecli.Commands() {
		switch c.Name() {
		case "build":
			c = imagecli.BuildCommand(buildRunVerb, true)
		case "rmi":
			a.guardRmi(c)
		}
		out = append(out, c)
	}
	return out
}

// guardRmi makes rmi refuse, as docker's does, to take away the image of
// a container (its last name, or the image by id) without -f. With -f the
// image goes; the layers stay as long as the container stands on them
// (stage 08's GC keeps them), so the container still starts.
func (a *app) guardRmi(c *cobra.Command) {
	var force bool
	c.Flags().BoolVarP(&force, "force", "f", false, "remove an image even if a container was made from it")
	run := c.RunE
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if !force {
			if err := a.rmiConflict(args); err != nil {
				return err
			}
		}
		return run(cmd, args)
	}
}

// rmiConflict is docker's conflict: an image some container was made
// from would be gone.
func (a *app) rmiConflict(refs []string) error {
	e, err := a.Engine()
	if err != nil {
		return err
	}
	recs, err := e.Store.List()
	if err != nil {
		return err
	}
	users := map[string]string{} // image id -> a container of it
	for _, r := range recs {
		users[r.Image.ID] = r.ID
	}
	s := imagestore.NewStore(e.DataRoot)
	imgs, err := s.List()
	if err != nil {
		return err
	}
	for _, ref := range refs {
		img, byName, err := s.Lookup(ref)
		if err != nil {
			continue // rmi says what is wrong with it
		}
		ctr, used := users[img.ID().String()]
		if !used {
			continue
		}
		names := 0
		for _, o := range imgs {
			if o.Descriptor.Digest == img.Descriptor.Digest {
				names++
			}
		}
		if !byName || names <= 1 {
			return fmt.Errorf("conflict: unable to remove repository reference %q (must force) - container %s is using its referenced image %s",
				ref, ctr[:12], img.ShortID())
		}
	}
	return nil
}

// buildRunCommand is `berth internal build-run`: stage 08's run, the
// container of a Dockerfile's RUN (08-image/build/run.go), as docker's
// classic builder runs a container per RUN. Its options are stage 08's
// (08-image/main.go), without network (the builder passes --net none).
func BuildRunCommand() *cobra.Command {
	c := spine.RunCommand(spine.Program{
		Name: "berth",
		Options: []spine.Option{
			&uts.Options{}, &pid.Options{}, &rootfs.Options{},
			&network.Options{OtherModes: []string{userns.SlirpMode}},
			&userns.Options{}, &cgroup.Options{}, &image.Options{},
		},
		CommandOptional: true,
	})
	c.Use = "build-run [08's run flags] [COMMAND [ARG...]]"
	c.Short = "A Dockerfile's RUN step: stage 08's run (berth build runs it)"
	return c
}

func (a *app) imagePruneCommand() *cobra.Command {
	var force, all bool
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused images: dangling ones (unnamed, no child), or with -a every image no container uses",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			warning := "WARNING! This will remove all dangling images."
			if all {
				warning = "WARNING! This will remove all images without at least one container associated to them."
			}
			if !force && !a.Confirm(warning) {
				return nil
			}
			lines, reclaimed, err := a.pruneImages(cmd.Context(), all)
			if len(lines) > 0 {
				fmt.Fprintln(a.Stdout, "Deleted Images:")
				for _, l := range lines {
					fmt.Fprintln(a.Stdout, l)
				}
				fmt.Fprintln(a.Stdout)
			}
			fmt.Fprintf(a.Stdout, "Total reclaimed space: %s\n", units.HumanSize(float64(reclaimed)))
			return err
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	cmd.Flags().BoolVarP(&all, "all", "a", false, "remove all unused images, not just dangling ones")
	return cmd
}

// confirm asks Docker's question on stdout and reads the answer on stdin.
// pruneImages removes the images no container was made from: with all,
// every such image; else only the unnamed ones (a build's dangling
// result, an image whose name went to a newer one). An image that is the
// parent of one kept (a tagged image's build steps: the build cache)
// stays, so it goes round until nothing more can go, children first, as
// docker's prune. Then the blobs and layers nothing reaches any more go
// (08's GC), and their sizes are the space reclaimed. It returns
// docker's lines: untagged: NAME, deleted: ID.
func (a *app) pruneImages(ctx context.Context, all bool) (lines []string, reclaimed int64, err error) {
	e, err := a.Engine()
	if err != nil {
		return nil, 0, err
	}
	s := imagestore.NewStore(e.DataRoot)
	recs, err := e.Store.List()
	if err != nil {
		return nil, 0, err
	}
	used := map[string]bool{}
	for _, r := range recs {
		used[r.Image.ID] = true
	}
	imgs, err := s.List()
	if err != nil {
		return nil, 0, err
	}
	sizes := map[digest.Digest]int64{}
	for _, img := range imgs {
		sizes[img.Descriptor.Digest] = img.Descriptor.Size
		sizes[img.Manifest.Config.Digest] = img.Manifest.Config.Size
		for _, l := range img.Manifest.Layers {
			sizes[l.Digest] = l.Size
		}
	}
	gone := make([]bool, len(imgs))
	for changed := true; changed; {
		changed = false
		for i, img := range imgs {
			if gone[i] || used[img.ID().String()] || (!all && img.Name != "") || parentOfKept(i, imgs, gone) {
				continue
			}
			if err := s.Remove(img, false); err != nil {
				return lines, 0, err
			}
			gone[i], changed = true, true
			if img.Name != "" {
				lines = append(lines, "untagged: "+img.FamiliarName())
			}
			if lastOf(i, imgs, gone) {
				lines = append(lines, "deleted: "+img.ID().String())
			}
		}
	}
	res, err := s.GC(ctx)
	for _, d := range res.Blobs {
		reclaimed += sizes[d]
	}
	return lines, reclaimed, err
}

// parentOfKept: another image, not removed, is built on imgs[i].
func parentOfKept(i int, imgs []*imagestore.Image, gone []bool) bool {
	for j, o := range imgs {
		if j != i && !gone[j] && o.ID() != imgs[i].ID() && build.IsParent(imgs[i], o) {
			return true
		}
	}
	return false
}

// lastOf: no entry of imgs[i]'s id is left (its last name went).
func lastOf(i int, imgs []*imagestore.Image, gone []bool) bool {
	for j, o := range imgs {
		if j != i && !gone[j] && o.ID() == imgs[i].ID() {
			return false
		}
	}
	return true
}
