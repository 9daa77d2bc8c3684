//go:build linux

package spine

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"berth/01-uts/spine/roots"
)

// A Program is one stage's command: its name, the options of every stage
// up to it, and any extra verbs (cleanup, stats, diff...).
type Program struct {
	Name     string
	Short    string
	Options  []Option
	Commands []*cobra.Command
	// CommandOptional: run may be given no COMMAND, because an option
	// supplies one (stage 08: the image's ENTRYPOINT and CMD). RunUse is
	// then run's usage line.
	CommandOptional bool
	RunUse          string
}

// MaybeInit runs the container init, and exits, when this process was
// re-executed as one; otherwise it returns. A program with a command line
// of its own (stage 09's berth) calls it first thing, then StartRuntime.
func MaybeInit() {
	if IsInit() {
		os.Exit(runInit())
	}
}

// StartRuntime makes the runtime's process what the containers may inherit
// from: whatever the caller's shell had, the runtime makes its files with
// Docker's and runc's umask (see DefaultUmask), and a descriptor it
// inherited goes no further than this process (inherit.go).
func StartRuntime(prog string) {
	unix.Umask(DefaultUmask)
	if err := CloseExecExcept(nil); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
		os.Exit(ExitRuntime)
	}
}

// Main runs the program, or the container init when re-executed as one.
// It never returns.
func Main(p Program) {
	MaybeInit()
	StartRuntime(p.Name)
	root := &cobra.Command{
		Use:           p.Name,
		Short:         p.Short,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	roots.AddGlobalFlags(root.PersistentFlags())
	root.AddCommand(runCommand(p))
	root.AddCommand(p.Commands...)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%v (see '%s --help')", err, cmd.CommandPath())
	})
	cmd, err := root.ExecuteC()
	if err != nil && err != errSilent && !isSilent(err) {
		fmt.Fprintf(os.Stderr, "%s: %v\n", p.Name, roots.ReadOnly(err, cmd))
	}
	os.Exit(ExitCode(err))
}

// RunCommand is the run verb of a Program, for a command line of its own
// to mount (stage 09's berth builds with stage 08's: a Dockerfile's RUN is
// a container of that run, see 08-image/build/run.go).
func RunCommand(p Program) *cobra.Command { return runCommand(p) }

func runCommand(p Program) *cobra.Command {
	var (
		id           string
		verbose, tty bool
		env          []string
	)
	use := "run [flags] COMMAND [ARG...]"
	if p.RunUse != "" {
		use = p.RunUse
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: "Run a command in a new container",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 && !p.CommandOptional {
				return fmt.Errorf("run needs a command, for example: %s run sh", p.Name)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c := NewContainer(p.Name, args)
			c.Verbose = verbose || roots.DebugOf(cmd)
			if id == "" {
				id = RandomID()
			}
			if err := ValidID(id); err != nil {
				return err
			}
			c.ID = id
			// Without root, only a stage with a user namespace (05) can
			// run anything: the others stop here, before even the rootless
			// state root is looked for.
			if os.Geteuid() != 0 && !canRunRootless(p.Options) {
				return errNeedsRoot
			}
			var err error
			if c.State, err = roots.StateRootOf(cmd); err != nil {
				return err
			}
			if c.DataRoot, err = roots.DataRootOf(cmd); err != nil {
				return err
			}
			if tty {
				c.Spec.Process.Terminal = true
				c.SetEnv("TERM", envOr("TERM", "xterm"))
			}
			for _, o := range p.Options {
				steps, err := o.Configure(c)
				if err != nil {
					return &ExitError{Code: ExitCode(err), Err: err}
				}
				c.Steps = append(c.Steps, steps...)
			}
			if len(c.Spec.Process.Args) == 0 {
				return Exitf(ExitRuntime, "run needs a command, for example: %s run sh", p.Name)
			}
			// -e last: it overrides what the options set (an image's ENV), as
			// docker run -e does.
			for _, kv := range env {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					v, ok = os.LookupEnv(k) // -e NAME passes the host's value, as Docker does
					if !ok {
						continue
					}
				}
				c.SetEnv(k, v)
			}
			if os.Geteuid() != 0 && !rootless(c) {
				return errNeedsRoot
			}
			code, err := Run(c)
			if err != nil {
				return &ExitError{Code: code, Err: err}
			}
			if code != 0 {
				return &ExitError{Code: code, Err: errSilent}
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.SetInterspersed(false) // flags after COMMAND belong to COMMAND
	fs.StringVar(&id, "id", "", "container id (default: 12 random hex digits)")
	fs.BoolVar(&verbose, "verbose", false, "say what each step does")
	fs.BoolVarP(&tty, "tty", "t", false, "allocate a pseudo-terminal")
	fs.StringArrayVarP(&env, "env", "e", nil, "set an environment variable (NAME=VALUE, or NAME to pass the host's)")
	for _, o := range p.Options {
		o.AddFlags(fs)
	}
	return cmd
}

// rootless: a container in a new user namespace may be started without root.
func rootless(c *Container) bool {
	path, ok := c.Namespace("user")
	return ok && path == ""
}

var errNeedsRoot = Exitf(ExitRuntime, "needs root for its namespaces: run it with sudo")

// canRunRootless: one of the options can make a container that needs no
// root (RootlessOption).
func canRunRootless(opts []Option) bool {
	for _, o := range opts {
		if r, ok := o.(RootlessOption); ok && r.RunsRootless() {
			return true
		}
	}
	return false
}

// errSilent carries the command's own exit code: nothing more to say.
var errSilent = fmt.Errorf("command exited non-zero")

func isSilent(err error) bool {
	e, ok := err.(*ExitError)
	return ok && e.Err == errSilent
}
