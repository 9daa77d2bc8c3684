//go:build linux

// Package clikit is what berth's verbs share: the engine of the roots a
// verb's global flags say, its output, Docker's exit codes and wording of
// errors, and Go templates as the docker CLI takes them (--format). The
// verbs live in 09-full/cli (a container's life, the system),
// 09-full/inside (the verbs that look inside a running container),
// 09-full/imageverbs (images, logins) and 09-full/netvol (networks and
// volumes).
package clikit

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"berth/01-uts/spine"
	"berth/01-uts/spine/roots"
	"berth/09-full/engine"
	"berth/09-full/store"
)

// App is what every verb shares: the verb being run (whose global flags
// say the roots), the engine over them, and where output goes.
type App struct {
	Cmd            *cobra.Command
	Eng            *engine.Engine
	Stdout, Stderr io.Writer
}

// Engine opens the store of the roots the verb's global flags say: flag,
// then environment, then the default (a user's own without root, as
// podman's: roots.StateRoot).
func (a *App) Engine() (*engine.Engine, error) {
	if a.Eng != nil {
		return a.Eng, nil
	}
	data, err := roots.DataRootOf(a.Cmd)
	if err != nil {
		return nil, err
	}
	state, err := roots.StateRootOf(a.Cmd)
	if err != nil {
		return nil, err
	}
	e, err := engine.New(data, state)
	if err != nil {
		return nil, err
	}
	e.Verbose = roots.DebugOf(a.Cmd)
	a.Eng = e
	return e, nil
}

// Each runs fn on every container named, printing each name as Docker
// does, and fails (exit 1) if any failed, after trying them all.
func (a *App) Each(refs []string, fn func(e *engine.Engine, ref string) error) error {
	e, err := a.Engine()
	if err != nil {
		return err
	}
	failed := false
	for _, ref := range refs {
		if err := fn(e, ref); err != nil {
			fmt.Fprintf(a.Stderr, "berth: %v\n", Describe(err))
			failed = true
			continue
		}
		fmt.Fprintln(a.Stdout, ref)
	}
	if failed {
		return Silent(1)
	}
	return nil
}

// Describe words an error as Docker does.
func Describe(err error) string {
	if errors.Is(err, store.ErrNotFound) {
		msg := err.Error()
		if _, ref, ok := strings.Cut(msg, ": "); ok {
			return "No such container: " + ref
		}
		return "No such container"
	}
	return err.Error()
}

// Usage marks bad input (flags, arguments): exit 125, as docker.
func Usage(format string, args ...any) error {
	return spine.Exitf(spine.ExitRuntime, format, args...)
}

// ExitCode: an ExitError's own code; 1 for a verb's failure (usage errors
// are 125, see flagError).
func ExitCode(err error) int {
	var ee *spine.ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return 1
}

// ErrSilent carries a container's exit code: nothing more to say.
var ErrSilent = errors.New("exit")

func Silent(code int) error { return &spine.ExitError{Code: code, Err: ErrSilent} }
