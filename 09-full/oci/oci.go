//go:build linux

// Package oci is berth-oci's command line: runc's verbs and flags (create,
// start, state, kill, delete, run, list, ps, pause, resume, features,
// spec) over an OCI bundle, carried out by berth's engine (engine.Steps,
// the spine's Create and Start). The container belongs to whoever called
// create (containerd's shim, conmon, a shell): no monitor of berth's sits
// in between; its live state is the spine's state directory <root>/<id>,
// and it lives as long as its init, known by pid and start time.
package oci

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"berth/01-uts/spine"
)

// Version is what --version and features print.
const Version = "0.9.0"

// DefaultRoot is root's state root; without root it is $XDG_RUNTIME_DIR's.
const DefaultRoot = "/run/berth-oci"

// globals are the flags every verb shares, as runc's.
type globals struct {
	root      string
	log       string
	logFormat string
	systemd   bool
	debug     bool
}

var g globals

// Main runs berth-oci and exits with the verb's code: 0, the container's
// own for run, else 125 with one line on stderr (and, with --log, the
// same line in the log file, as JSON with --log-format json: containerd's
// shim reads the last error from there).
func Main() {
	root := &cobra.Command{
		Use:           "berth-oci",
		Short:         "run OCI bundles with berth's engine (runc's command line)",
		Version:       Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if g.logFormat != "text" && g.logFormat != "json" {
				return fmt.Errorf("--log-format %q: want text or json", g.logFormat)
			}
			if g.systemd {
				return fmt.Errorf("--systemd-cgroup is not supported: berth-oci manages cgroups through the cgroupfs (give linux.cgroupsPath as a path, /a/b)")
			}
			if g.root == "" {
				r, err := defaultRoot()
				if err != nil {
					return err
				}
				g.root = r
			}
			abs, err := filepath.Abs(g.root)
			if err != nil {
				return fmt.Errorf("--root %s: %w", g.root, err)
			}
			g.root = abs
			return nil
		},
	}
	root.SetVersionTemplate("berth-oci version {{.Version}}\nspec: " + specVersion + "\n")
	f := root.PersistentFlags()
	f.StringVar(&g.root, "root", "", "directory of the containers' live state (default "+DefaultRoot+"; without root $XDG_RUNTIME_DIR/berth-oci)")
	f.StringVar(&g.log, "log", "", "append errors (and --debug lines) to this file")
	f.StringVar(&g.logFormat, "log-format", "text", "format of the log file: text or json")
	f.BoolVar(&g.systemd, "systemd-cgroup", false, "cgroups through systemd (not supported: refused)")
	f.BoolVar(&g.debug, "debug", false, "print what each step does")
	root.AddCommand(createCmd(), startCmd(), runCmd(), stateCmd(), killCmd(), deleteCmd(),
		execCmd(), updateCmd(), listCmd(), psCmd(), pauseCmd(true), pauseCmd(false), featuresCmd(), specCmd())
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%v (see '%s --help')", err, cmd.CommandPath())
	})
	err := root.Execute()
	if s, ok := err.(silentExit); ok {
		os.Exit(s.code)
	}
	if err != nil {
		logError(err)
	}
	os.Exit(spine.ExitCode(err))
}

// defaultRoot is /run/berth-oci for root, else under $XDG_RUNTIME_DIR.
func defaultRoot() (string, error) {
	if os.Geteuid() == 0 {
		return DefaultRoot, nil
	}
	dir := os.Getenv("XDG_RUNTIME_DIR")
	if dir == "" {
		return "", fmt.Errorf("without root berth-oci keeps its state under $XDG_RUNTIME_DIR, which is not set: give --root")
	}
	return filepath.Join(dir, "berth-oci"), nil
}

// logError prints err on stderr and appends it to --log.
func logError(err error) {
	fmt.Fprintf(os.Stderr, "berth-oci: %v\n", err)
	logLine("error", err.Error())
}

// debugf logs a line with --debug, to --log if given, else stderr.
func debugf(format string, args ...any) {
	if !g.debug {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if g.log == "" {
		fmt.Fprintf(os.Stderr, "berth-oci: %s\n", msg)
		return
	}
	logLine("debug", msg)
}

// logLine appends one line to the --log file: {"level","msg","time"} with
// --log-format json (the shape containerd's shim decodes), else text.
func logLine(level, msg string) {
	if g.log == "" {
		return
	}
	f, err := openLog(g.log)
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth-oci: %v\n", err)
		return
	}
	defer f.Close()
	now := time.Now().UTC().Format(time.RFC3339Nano)
	var line []byte
	if g.logFormat == "json" {
		line, _ = json.Marshal(map[string]string{"level": level, "msg": msg, "time": now})
	} else {
		line = []byte(fmt.Sprintf("time=%q level=%s msg=%q", now, level, msg))
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		fmt.Fprintf(os.Stderr, "berth-oci: write log %s: %v\n", g.log, err)
	}
}

// openLog opens the --log file to append to. Not through a symlink
// (O_NOFOLLOW): berth-oci runs as root, and a link planted at the log's
// path would have it append to any file of the host; and only a regular
// file (O_NONBLOCK: a FIFO planted there must not hold berth-oci in open).
func openLog(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_CLOEXEC|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open log %s: %w", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open log %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("open log %s: not a regular file (%s)", path, fi.Mode().Type())
	}
	return f, nil
}

// silentExit ends berth-oci with a code and no message (run's exit code
// is the container's).
type silentExit struct{ code int }

func (e silentExit) Error() string { return fmt.Sprintf("exit %d", e.code) }

// exactArgs is cobra's ExactArgs with runc's wording.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%s: want %s, got %d arguments (see '%s --help')", cmd.Name(), what, len(args), cmd.CommandPath())
		}
		return nil
	}
}

// stateDir is the container's live state: the spine's directory.
func stateDir(id string) (string, error) {
	if err := spine.ValidID(id); err != nil {
		return "", err
	}
	return filepath.Join(g.root, id), nil
}
