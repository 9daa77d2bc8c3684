//go:build linux

package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/distribution/reference"

	"berth/01-uts/spine"
	imagecli "berth/08-image/cli"
	imgstore "berth/08-image/store"
	"berth/09-full/clikit"
)

// Docker's --pull policies for run and create.
const (
	pullMissing = "missing" // pull an image the store lacks (the default)
	pullAlways  = "always"  // pull before creating, even one the store has
	pullNever   = "never"   // never pull: an image the store lacks is an error
)

// validPull is docker's check of --pull, in its words.
func validPull(policy string) error {
	switch policy {
	case pullMissing, pullAlways, pullNever:
		return nil
	}
	return fmt.Errorf("invalid pull option: '%s': must be one of %q, %q or %q", policy, pullAlways, pullMissing, pullNever)
}

// ensureImage makes sure the store has the image ref names, as docker run
// and create do before they create: with "missing", an image the store
// lacks is announced on stderr (Unable to find image 'NAME:TAG' locally)
// and pulled; with "always", pulled whatever the store has; with "never",
// one the store lacks is refused (No such image: NAME:TAG). The pull is
// berth pull's (imagecli.Pull: the stored login, its credential helper,
// $BERTH_INSECURE_REGISTRIES), its progress on stderr as docker's, so
// that stdout is only the container's id or output; one that fails keeps
// nothing and is one line, exit 125. Ctrl-C stops it the same way.
func (a *app) ensureImage(dataRoot, ref, policy string, quiet bool) error {
	st := imgstore.NewStore(dataRoot)
	if policy != pullAlways {
		_, err := st.Get(ref)
		if err == nil {
			return nil
		}
		if !errors.Is(err, imgstore.ErrNotFound) {
			return err
		}
		if policy == pullNever {
			return clikit.Usage("No such image: %s", familiarTagged(ref))
		}
		if !quiet {
			fmt.Fprintf(a.Stderr, "Unable to find image '%s' locally\n", familiarTagged(ref))
		}
	}
	out := a.Stderr
	if quiet {
		out = nil // progress.New: discard
	}
	ctx, stop := spine.NotifyInterrupt(context.Background())
	defer stop()
	if _, err := imagecli.Pull(ctx, st, ref, out); err != nil {
		if ctx.Err() != nil {
			return spine.Exitf(130, "pull of %s interrupted: nothing of it was kept", familiarTagged(ref))
		}
		return clikit.Usage("%v", err)
	}
	return nil
}

// familiarTagged is a name as docker says it in these lines: short, with
// its tag (busybox:latest), or as given when it is no name.
func familiarTagged(ref string) string {
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ref
	}
	return reference.FamiliarString(reference.TagNameOnly(n))
}
