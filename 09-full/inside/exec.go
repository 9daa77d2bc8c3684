//go:build linux

package inside

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/creack/pty"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"berth/01-uts/spine"
	"berth/09-full/engine"
	"berth/09-full/execin"
	"berth/09-full/security"
	"berth/09-full/specgen"
	"berth/09-full/store"

	"berth/09-full/clikit"
)

type execFlags struct {
	interactive, tty, detach, privileged bool
	env, envFiles                        []string
	user, workdir                        string
}

func (a *app) execCommand() *cobra.Command {
	f := &execFlags{}
	cmd := &cobra.Command{
		Use:   "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
		Short: "Execute a command in a running container",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return clikit.Usage("\"berth exec\" requires at least 2 arguments.\nSee 'berth exec --help'.")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return a.exec(f, args[0], args[1:]) },
	}
	fs := cmd.Flags()
	fs.SetInterspersed(false) // flags after COMMAND are the command's
	fs.BoolVarP(&f.interactive, "interactive", "i", false, "keep STDIN open")
	fs.BoolVarP(&f.tty, "tty", "t", false, "allocate a pseudo-TTY")
	fs.BoolVarP(&f.detach, "detach", "d", false, "detached mode: run the command in the background")
	fs.StringArrayVarP(&f.env, "env", "e", nil, "set environment variables")
	fs.StringArrayVar(&f.envFiles, "env-file", nil, "read in a file of environment variables")
	fs.StringVarP(&f.user, "user", "u", "", "username or UID (format: \"<name|uid>[:<group|gid>]\")")
	fs.StringVarP(&f.workdir, "workdir", "w", "", "working directory inside the container")
	fs.BoolVar(&f.privileged, "privileged", false, "give extended privileges to the command")
	return cmd
}

// execTarget finds a running container to exec in: its record, and where
// its init and cgroup are. Not running or paused is said in one line,
// exit 125.
func execTarget(e *engine.Engine, ref string) (*store.Record, execin.Target, error) {
	rec, err := e.Store.Get(ref)
	if err != nil {
		return nil, execin.Target{}, spine.Exitf(spine.ExitRuntime, "%s", clikit.Describe(err))
	}
	st, err := e.Store.View(rec.ID)
	if err != nil {
		return nil, execin.Target{}, err
	}
	switch st.Status {
	case store.Running:
	case store.Paused:
		return nil, execin.Target{}, spine.Exitf(spine.ExitRuntime, "Container %s is paused, unpause the container before exec", rec.ID)
	default:
		return nil, execin.Target{}, spine.Exitf(spine.ExitRuntime, "container %s is not running", rec.ID)
	}
	t := execin.Target{Pid: st.Pid, Start: st.PidStart}
	if rec.Spec.Linux != nil && os.Geteuid() == 0 {
		// Rootless containers have no cgroup of their own (stage 06 needs
		// root): the process stays where the caller is.
		t.CgroupsPath = rec.Spec.Linux.CgroupsPath
	}
	return rec, t, nil
}

func (a *app) exec(f *execFlags, ref string, args []string) error {
	if !f.detach {
		return a.execIn(f, ref, args, nil)
	}
	rep := keeperReport()
	if rep == nil {
		return spawnKeeper() // execdetach.go: the keeper runs execIn
	}
	return a.execIn(f, ref, args, rep)
}

// execIn runs the exec; rep, a detached exec's keeper's report, is told
// once the command runs.
func (a *app) execIn(f *execFlags, ref string, args []string, rep *os.File) (err error) {
	defer func() {
		if rep != nil && err != nil {
			report(rep, err)
			rep = nil
		}
	}()
	env, err := specgen.ExecEnv(f.env, f.envFiles)
	if err != nil {
		return clikit.Usage("%v", err)
	}
	e, err := a.Engine()
	if err != nil {
		return err
	}
	rec, target, err := execTarget(e, ref)
	if err != nil {
		return err
	}
	o := execin.Options{Args: args, Env: env, User: f.user, Workdir: f.workdir, Tty: f.tty, Privileged: f.privileged}
	if f.privileged {
		avail, err := security.AvailableCaps()
		if err != nil {
			return err
		}
		o.AllCaps = security.AllCapabilities(avail)
	}
	req, err := execin.NewRequest(rec.Spec, o)
	if err != nil {
		return clikit.Usage("%v", err)
	}
	stdinTerm := term.IsTerminal(int(os.Stdin.Fd()))
	if f.tty {
		if !hasEnvKey(req.Process.Env, "TERM") {
			req.Process.Env = append(req.Process.Env, "TERM=xterm")
		}
		if stdinTerm {
			if ws, err := pty.GetsizeFull(os.Stdin); err == nil {
				req.Process.ConsoleSize = &specs.Box{Height: uint(ws.Rows), Width: uint(ws.Cols)}
			}
		}
	}
	if f.interactive && f.tty && !stdinTerm && !f.detach {
		return clikit.Usage("the input device is not a TTY")
	}
	live := e.Store.LiveDir(rec.ID)
	record := execin.NewRecord(rec.ID, o, f.interactive, f.detach)
	if err := record.Write(live); err != nil {
		return err
	}
	cmdline := strings.Join(args, " ")
	e.Event(rec, "exec_create: "+cmdline, map[string]string{"execID": record.ID})
	var stdio execin.Stdio
	if !f.detach {
		stdio = execin.Stdio{Stdout: a.Stdout, Stderr: a.Stderr}
		if f.interactive {
			stdio.Stdin = os.Stdin
		}
	}
	// Watch SIGWINCH and the signals to pass on from now: none is lost.
	winch := make(chan os.Signal, 1)
	sigs := make(chan os.Signal, 16)
	if !f.detach {
		if f.tty && stdinTerm {
			signal.Notify(winch, unix.SIGWINCH)
			defer signal.Stop(winch)
		}
		if !f.tty {
			signal.Notify(sigs, spine.ForwardedSignals...)
			defer signal.Stop(sigs)
		}
	}
	s, err := execin.Start(context.Background(), target, req, stdio)
	if err != nil {
		record.Exited(spine.ExitCode(err))
		_ = record.Write(live)
		return err
	}
	record.Started(s.Pid)
	_ = record.Write(live)
	e.Event(rec, "exec_start: "+cmdline, map[string]string{"execID": record.ID})
	if f.detach {
		// The CLI returns; we wait, and record the end. A terminal's
		// output goes to our stdout, /dev/null.
		report(rep, nil)
		rep = nil
	}
	go func() {
		for sig := range sigs {
			_ = s.Signal(sig)
		}
	}()
	var ttyDone chan struct{}
	if s.Master != nil {
		defer s.Master.Close()
		ttyDone = make(chan struct{})
		restore := func() {}
		if stdinTerm {
			_ = pty.InheritSize(os.Stdin, s.Master)
			go func() {
				for range winch {
					_ = pty.InheritSize(os.Stdin, s.Master)
				}
			}()
			if f.interactive {
				if old, err := term.MakeRaw(int(os.Stdin.Fd())); err == nil {
					restore = func() { _ = term.Restore(int(os.Stdin.Fd()), old) }
				}
			}
		}
		defer restore()
		if f.interactive {
			go func() { _, _ = io.Copy(s.Master, os.Stdin) }()
		}
		go func() {
			// Ends with EIO once the last holder of the slave is gone.
			_, _ = io.Copy(a.Stdout, s.Master)
			close(ttyDone)
		}()
	}
	code, err := s.Wait()
	if ttyDone != nil {
		select {
		case <-ttyDone:
		case <-time.After(2 * time.Second):
		}
	}
	record.Exited(code)
	_ = record.Write(live)
	e.Event(rec, "exec_die", map[string]string{"execID": record.ID, "exitCode": strconv.Itoa(code)})
	if err != nil {
		return err
	}
	if code != 0 {
		return clikit.Silent(code)
	}
	return nil
}

func hasEnvKey(env []string, key string) bool {
	for _, kv := range env {
		if len(kv) > len(key) && kv[:len(key)+1] == key+"=" {
			return true
		}
	}
	return false
}

// execInspectCommand is `berth internal exec-inspect CONTAINER EXEC-ID`:
// an exec's record, as the Engine API's exec inspect returns it (docker's
// CLI has no verb for it; the daemon, issue 17, serves it).
func (a *app) execInspectCommand() *cobra.Command {
	return &cobra.Command{
		Use:  "exec-inspect CONTAINER EXEC-ID",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.Engine()
			if err != nil {
				return err
			}
			rec, err := e.Store.Get(args[0])
			if err != nil {
				return err
			}
			r, err := execin.ReadRecord(e.Store.LiveDir(rec.ID), args[1])
			if err != nil {
				return err
			}
			out, err := json.MarshalIndent(r, "", "    ")
			if err != nil {
				return err
			}
			fmt.Fprintln(a.Stdout, string(out))
			return nil
		},
	}
}
