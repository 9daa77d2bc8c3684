//go:build linux

// Package cli is berth's command line: Docker's verbs, flags, output and
// exit codes, one file per verb, over the engine. It is the only place
// that knows flags.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"berth/01-uts/spine"
	"berth/01-uts/spine/roots"
	"berth/09-full/engine"
	"berth/09-full/store"
)

// app is what every verb shares: the verb being run (whose global flags
// say the roots), and the engine over them.
type app struct {
	cmd            *cobra.Command
	eng            *engine.Engine
	stdout, stderr io.Writer
}

// Main runs berth's command line and exits with Docker's codes: the
// container's own for run, start -a, wait; 125 when berth fails (a bad
// flag, a bad image); 1 for a verb's error on a container (no such
// container), as the docker CLI.
func Main() {
	a := &app{stdout: os.Stdout, stderr: os.Stderr}
	root := a.rootCommand()
	err := root.Execute()
	if err == nil {
		os.Exit(0)
	}
	var ee *spine.ExitError
	if errors.As(err, &ee) && ee.Err == errSilent {
		os.Exit(ee.Code)
	}
	fmt.Fprintf(os.Stderr, "berth: %v\n", err)
	os.Exit(exitCode(err))
}

// errSilent carries a container's exit code: nothing more to say.
var errSilent = errors.New("exit")

func silent(code int) error { return &spine.ExitError{Code: code, Err: errSilent} }

// exitCode: an ExitError's own code; 1 for a verb's failure (usage errors
// are 125, see flagError).
func exitCode(err error) int {
	var ee *spine.ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return 1
}

// usage marks bad input (flags, arguments): exit 125, as docker.
func usage(format string, args ...any) error {
	return spine.Exitf(spine.ExitRuntime, format, args...)
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
	root.PersistentPreRun = func(cmd *cobra.Command, args []string) { a.cmd = cmd }
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usage("%v\nSee '%s --help'.", err, cmd.CommandPath())
	})
	verbs := []*cobra.Command{
		a.runCommand(), a.createCommand(), a.startCommand(), a.psCommand(), a.logsCommand(),
		a.stopCommand(), a.killCommand(), a.restartCommand(), a.rmCommand(), a.waitCommand(),
		a.inspectCommand(), a.attachCommand(), a.renameCommand(), a.pauseCommand(true), a.pauseCommand(false),
		a.containerCommand(), a.loginCommand(), a.logoutCommand(), a.systemCommand(),
		a.execCommand(), a.topCommand(), a.portCommand(), a.diffCommand(), a.cpCommand(), a.statsCommand(), a.commitCommand(), a.updateCommand(), a.exportCommand(), a.eventsCommand(),
	}
	root.AddCommand(verbs...)
	root.AddCommand(a.imageCommands()...)
	internal := a.internalCommand()
	internal.AddCommand(buildRunCommand())
	root.AddCommand(internal)
	return root
}

// engine opens the store of the roots the verb's global flags say: flag,
// then environment, then the default (a user's own without root, as
// podman's: roots.StateRoot).
func (a *app) engine() (*engine.Engine, error) {
	if a.eng != nil {
		return a.eng, nil
	}
	data, err := roots.DataRootOf(a.cmd)
	if err != nil {
		return nil, err
	}
	state, err := roots.StateRootOf(a.cmd)
	if err != nil {
		return nil, err
	}
	e, err := engine.New(data, state)
	if err != nil {
		return nil, err
	}
	e.Verbose = roots.DebugOf(a.cmd)
	a.eng = e
	return e, nil
}

// each runs fn on every container named, printing each name as Docker
// does, and fails (exit 1) if any failed, after trying them all.
func (a *app) each(refs []string, fn func(e *engine.Engine, ref string) error) error {
	e, err := a.engine()
	if err != nil {
		return err
	}
	failed := false
	for _, ref := range refs {
		if err := fn(e, ref); err != nil {
			fmt.Fprintf(a.stderr, "berth: %v\n", describe(err))
			failed = true
			continue
		}
		fmt.Fprintln(a.stdout, ref)
	}
	if failed {
		return silent(1)
	}
	return nil
}

// describe words an error as Docker does.
func describe(err error) string {
	if errors.Is(err, store.ErrNotFound) {
		msg := err.Error()
		if _, ref, ok := strings.Cut(msg, ": "); ok {
			return "No such container: " + ref
		}
		return "No such container"
	}
	return err.Error()
}

// noHelpShorthand frees -h for --hostname, as docker run has it.
func noHelpShorthand(fs *pflag.FlagSet) {
	fs.Bool("help", false, "help for this command")
}
