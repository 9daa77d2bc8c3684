//go:build linux

package cli

import (
	"context"
	"errors"

	"github.com/spf13/cobra"

	"berth/01-uts/spine"
	"berth/01-uts/spine/roots"
	"berth/08-image/build"
	"berth/08-image/image"
	"berth/08-image/store"
)

func buildCommand() *cobra.Command { return BuildCommand(nil, false) }

// BuildCommand is build, whose RUN steps run `<this binary> RUNVERB...
// [08's run flags] -- COMMAND` (nil: run). Stage 09's berth passes its
// hidden verb that is stage 08's run, and pull: a FROM image the store
// lacks is pulled, as docker's classic builder does, with the login
// pull would use (registryFlags.client: config.json, its credential
// helper). Stage 08's build uses no network.
func BuildCommand(runVerb []string, pull bool) *cobra.Command {
	var (
		bound image.SizeFlag
		o     build.Options
	)
	cmd := &cobra.Command{
		Use:   "build [-t NAME] [-f Dockerfile] [--build-arg NAME=value]... [--no-cache] CONTEXT",
		Short: "Build an image from a Dockerfile, as docker's classic builder: a step per instruction, a container per RUN (no network)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := storeOf(cmd)
			if err != nil {
				return err
			}
			s.MaxImageSize = bound.N
			for _, t := range o.Tags {
				if _, err := store.NormalizeName(t); err != nil {
					return err
				}
			}
			o.Context = args[0]
			o.RunVerb = runVerb
			o.Out, o.Err = cmd.OutOrStdout(), cmd.ErrOrStderr()
			if pull {
				o.Pull = func(ctx context.Context, ref string) (*store.Image, error) {
					return Pull(ctx, s, ref, o.Out)
				}
			}
			if o.StateRoot, err = roots.StateRootOf(cmd); err != nil {
				return err
			}
			// Ctrl-C stops the build: its RUN container is killed and
			// everything it made so far is removed (see build_run.go).
			ctx, stop := spine.NotifyInterrupt(cmd.Context())
			defer stop()
			_, err = build.Build(ctx, s, o)
			var exit *spine.ExitError
			switch {
			case err == nil:
				return nil
			case ctx.Err() != nil:
				return spine.Exitf(130, "build interrupted: the step's container and layer were removed, nothing was tagged")
			case errors.As(err, &exit):
				return err // a RUN's command failed: its exit code
			}
			return &spine.ExitError{Code: 1, Err: err} // as docker build: 1
		},
	}
	fs := cmd.Flags()
	bound.AddFlag(fs)
	fs.StringArrayVarP(&o.Tags, "tag", "t", nil, "name the image NAME[:TAG] (repeatable)")
	fs.StringVarP(&o.Dockerfile, "file", "f", "", "the Dockerfile (default CONTEXT/Dockerfile)")
	fs.StringArrayVar(&o.BuildArgs, "build-arg", nil, "set an ARG: NAME=value, or NAME for the value in the environment (repeatable)")
	fs.BoolVar(&o.NoCache, "no-cache", false, "run every step again, without the build cache")
	return cmd
}
