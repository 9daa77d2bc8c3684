//go:build linux

// Package imageverbs holds the image verbs under Docker's names, on
// berth's roots (chapter 09-full): stage 08's pull, push, images, rmi,
// tag, build, save, load, import, history, at the top and under
// `berth image`, with what only berth knows — image prune and rmi that
// know berth's containers, image inspect in Docker's shape — and login
// and logout. berth's command line (09-full/cli) adds them.
package imageverbs

import (
	"context"
	"errors"

	"github.com/spf13/cobra"

	imagestore "berth/08-image/store"
	"berth/09-full/clikit"
)

// app is clikit.App with this package's verbs as its methods.
type app struct{ *clikit.App }

// Commands are the image verbs (top and `berth image`), login and logout.
func Commands(ka *clikit.App) []*cobra.Command {
	a := &app{ka}
	return append(a.imageCommands(), a.loginCommand(), a.logoutCommand())
}

// Prune is image prune's work, for system prune: docker's lines
// (untagged: NAME, deleted: ID) and the space reclaimed.
func Prune(ka *clikit.App, ctx context.Context, all bool) ([]string, int64, error) {
	return (&app{ka}).pruneImages(ctx, all)
}

// Describe is an image in Docker's shape, or an error in Docker's words
// (No such image: REF).
func Describe(dataRoot, ref string) (*Image, error) {
	r, err := inspectImage(imagestore.NewStore(dataRoot), ref)
	if err != nil {
		return nil, errors.New(describeImageErr(err))
	}
	return r, nil
}

// Find is an image in Docker's shape for inspect's fallback: nil when no
// image has that name.
func Find(dataRoot, ref string) (*Image, error) { return imageOrNil(dataRoot, ref) }
