//go:build linux

// Package cli is berth's command line: Docker's verbs, flags, output and
// exit codes, one file per verb, over the engine. It is the only place
// that knows flags.
package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"berth/01-uts/spine"
	"berth/01-uts/spine/roots"
	"berth/09-full/inside"
	"berth/09-full/netvol"

	"berth/09-full/clikit"
	"berth/09-full/imageverbs"
)

// app is what every verb shares (clikit.App: the verb being run, whose
// global flags say the roots, the engine over them, the output), with
// this package's verbs as its methods.
type app struct{ *clikit.App }

// Main runs berth's command line and exits with Docker's codes: the
// container's own for run, start -a, wait; 125 when berth fails (a bad
// flag, a bad image); 1 for a verb's error on a container (no such
// container), as the docker CLI.
func Main() {
	a := &app{&clikit.App{Stdout: os.Stdout, Stderr: os.Stderr}}
	root := a.rootCommand()
	err := root.Execute()
	if err == nil {
		os.Exit(0)
	}
	var ee *spine.ExitError
	if errors.As(err, &ee) && ee.Err == clikit.ErrSilent {
		os.Exit(ee.Code)
	}
	fmt.Fprintf(os.Stderr, "berth: %v\n", err)
	os.Exit(clikit.ExitCode(err))
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "berth",
		Short:         "containers, as Docker runs them, without a daemon",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// --root, --data-root, --debug: every stage's, and stage 08's verbs
	// below read them too.
	roots.AddGlobalFlags(root.PersistentFlags())
	root.PersistentPreRun = func(cmd *cobra.Command, args []string) { a.Cmd = cmd }
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return clikit.Usage("%v\nSee '%s --help'.", err, cmd.CommandPath())
	})
	verbs := []*cobra.Command{
		a.runCommand(), a.createCommand(), a.startCommand(), a.psCommand(), a.logsCommand(),
		a.stopCommand(), a.killCommand(), a.restartCommand(), a.rmCommand(), a.waitCommand(),
		a.inspectCommand(), a.attachCommand(), a.renameCommand(), a.pauseCommand(true), a.pauseCommand(false),
		a.containerCommand(), a.systemCommand(), a.daemonCommand(),
	}
	root.AddCommand(verbs...)
	root.AddCommand(inside.Commands(a.App)...)
	root.AddCommand(netvol.Commands(a.App)...)
	root.AddCommand(imageverbs.Commands(a.App)...)
	internal := a.internalCommand()
	internal.AddCommand(imageverbs.BuildRunCommand())
	root.AddCommand(internal)
	return root
}

// noHelpShorthand frees -h for --hostname, as docker run has it.
func noHelpShorthand(fs *pflag.FlagSet) {
	fs.Bool("help", false, "help for this command")
}
