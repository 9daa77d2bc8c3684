//go:build linux

package inside

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"berth/07-unionfs/layer"
	"berth/08-image/build"
	imgstore "berth/08-image/store"
	"berth/09-full/engine"
	"berth/09-full/store"

	"berth/09-full/clikit"
)

// commitCommand is `berth commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]`:
// a new image, the container's image plus its layer (stage 07's commit,
// an OCI layer tar), with the container's configuration, as docker
// commit makes it. The container is paused while its layer is read,
// unless --pause=false.
func (a *app) commitCommand() *cobra.Command {
	var author, message string
	var changes []string
	var pause bool
	cmd := &cobra.Command{
		Use:   "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
		Short: "Create a new image from a container's changes",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := ""
			if len(args) == 2 {
				name = args[1]
				if _, err := imgstore.NormalizeName(name); err != nil {
					return clikit.Usage("invalid reference format: %s", name)
				}
			}
			e, err := a.Engine()
			if err != nil {
				return err
			}
			id, err := a.commit(e, args[0], name, author, message, changes, pause)
			if err != nil {
				return err
			}
			if rec, err := e.Store.Get(args[0]); err == nil {
				e.Event(rec, "commit", map[string]string{"comment": message, "imageID": id, "imageRef": name})
			}
			fmt.Fprintln(a.Stdout, id)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVarP(&author, "author", "a", "", `author (e.g., "John Hannibal Smith <hannibal@a-team.com>")`)
	fs.StringArrayVarP(&changes, "change", "c", nil, "apply Dockerfile instruction to the created image")
	fs.StringVarP(&message, "message", "m", "", "commit message")
	fs.BoolVarP(&pause, "pause", "p", true, "pause container during commit")
	return cmd
}

func (a *app) commit(e *engine.Engine, ref, name, author, message string, changes []string, pause bool) (string, error) {
	rec, err := e.Store.Get(ref)
	if err != nil {
		return "", err
	}
	cfg, err := engine.ConfigOf(rec)
	if err != nil {
		return "", err
	}
	if rec.Image.ID == "" {
		return "", fmt.Errorf("container %s runs on a directory (--rootfs), not an image: import the directory as an image first (berth import DIR NAME)", rec.ID[:12])
	}
	images := imgstore.NewStore(e.DataRoot)
	base, err := images.Get(rec.Image.ID)
	if err != nil {
		return "", fmt.Errorf("the container's image %s: %w", rec.Image.Ref, err)
	}
	// The new image's configuration is the container's, as docker's:
	// its command, environment, working directory, user, labels, health
	// check; then --change over it.
	img := base.Config
	c := img.Config
	c.Cmd, c.Entrypoint, c.Env = cfg.Settings.Cmd, cfg.Settings.Entrypoint, cfg.Spec.Process.Env
	c.WorkingDir, c.User, c.Labels = cfg.Spec.Process.Cwd, cfg.Settings.User, rec.Labels
	if c.WorkingDir == "/" {
		c.WorkingDir = ""
	}
	if err := build.ApplyChanges(&c, changes); err != nil {
		return "", clikit.Usage("%v", err)
	}
	img.Config = c
	docker := base.Docker
	docker.Healthcheck = cfg.Settings.Healthcheck

	st, err := e.Store.View(rec.ID)
	if err != nil {
		return "", err
	}
	if pause && st.Status == store.Running {
		if err := e.Pause(rec.ID); err != nil {
			return "", err
		}
		defer func() { _ = e.Unpause(rec.ID) }()
	}
	tmp, err := os.CreateTemp(e.DataRoot, ".commit-*.tar")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if _, err := layer.NewStore(e.DataRoot).Commit(rec.ID, tmp); err != nil {
		return "", err
	}
	if _, err := tmp.Seek(0, 0); err != nil {
		return "", err
	}
	l, err := images.PutLayer(tmp)
	if err != nil {
		return "", err
	}
	layers := []imgstore.Layer{}
	for i, desc := range base.Manifest.Layers {
		layers = append(layers, imgstore.Layer{Blob: desc, DiffID: base.Config.RootFS.DiffIDs[i]})
	}
	layers = append(layers, l)
	now := time.Now().UTC()
	img.Created, img.Author = &now, author
	img.History = append(slices.Clone(base.Config.History), ocispec.History{
		Created: &now, Author: author, Comment: message,
		CreatedBy: strings.Join(append(append([]string{}, cfg.Settings.Entrypoint...), cfg.Settings.Cmd...), " "),
	})
	out, err := images.CommitDocker(name, img, docker, layers)
	if err != nil {
		return "", err
	}
	return out.ID().String(), nil
}
