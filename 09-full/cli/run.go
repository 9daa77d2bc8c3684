//go:build linux

package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/creack/pty"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"berth/09-full/attach"
	"berth/09-full/engine"
	"berth/09-full/store"

	"berth/09-full/clikit"
)

func (a *app) runCommand() *cobra.Command {
	f := &createFlags{}
	var detach, sigProxy bool
	var detachKeys string
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create and run a new container from an image",
		RunE: func(cmd *cobra.Command, args []string) error {
			keys, err := attach.ParseDetachKeys(detachKeys)
			if err != nil {
				return clikit.Usage("%v", err)
			}
			e, rec, err := a.create(f, args)
			if err != nil {
				if rec != nil && f.o.AutoRemove {
					_ = e.Remove(rec.ID, true, true)
				}
				return err
			}
			if detach {
				if err := e.Start(rec.ID); err != nil {
					return err
				}
				fmt.Fprintln(a.Stdout, rec.ID)
				return nil
			}
			return a.attachAndStart(e, rec, attachOptions{
				stdin: f.o.Interactive, tty: f.o.Tty, sigProxy: sigProxy && !f.o.Tty, keys: keys, start: true,
			})
		},
	}
	fs := cmd.Flags()
	f.add(fs)
	fs.BoolVarP(&detach, "detach", "d", false, "run the container in the background and print its ID")
	fs.BoolVar(&f.o.AutoRemove, "rm", false, "automatically remove the container and its anonymous volumes when it exits")
	fs.BoolVar(&sigProxy, "sig-proxy", true, "proxy received signals to the process (without -t)")
	fs.StringVar(&detachKeys, "detach-keys", "ctrl-p,ctrl-q", "the key sequence that detaches from the container")
	return cmd
}

type attachOptions struct {
	stdin, tty, sigProxy bool
	keys                 []byte
	start                bool // start the container once attached (run, start -a)
}

// attachAndStart attaches to the container's monitor, starts the container
// if asked, and copies until it exits (its exit code is ours) or the
// detach keys are typed (exit 0; it runs on).
func (a *app) attachAndStart(e *engine.Engine, rec *store.Record, o attachOptions) error {
	sock := filepath.Join(e.Store.LiveDir(rec.ID), "attach.sock")
	c, err := attach.Dial(sock, attach.Options{Stdin: o.stdin, Stdout: true, Stderr: true, StdinOnce: o.stdin})
	if err != nil {
		return fmt.Errorf("attach to container %s: its monitor does not answer: %w", rec.ID[:12], err)
	}
	defer c.Close()

	var stdin io.Reader
	if o.stdin {
		stdin = os.Stdin
	}
	restore := func() {}
	if o.tty {
		if fd := int(os.Stdin.Fd()); term.IsTerminal(fd) {
			if ws, err := pty.GetsizeFull(os.Stdin); err == nil {
				_ = c.Resize(ws.Rows, ws.Cols)
			}
			winch := make(chan os.Signal, 1)
			signal.Notify(winch, unix.SIGWINCH)
			go func() {
				for range winch {
					if ws, err := pty.GetsizeFull(os.Stdin); err == nil {
						_ = c.Resize(ws.Rows, ws.Cols)
					}
				}
			}()
			if o.stdin {
				if old, err := term.MakeRaw(fd); err == nil {
					restore = func() { _ = term.Restore(fd, old) }
				}
			}
			defer signal.Stop(winch)
		}
	}
	defer restore()
	if o.sigProxy {
		stop := a.proxySignals(e, rec.ID)
		defer stop()
	}
	if o.start {
		if err := e.Start(rec.ID); err != nil {
			return err
		}
	}
	res, err := c.Stream(stdin, os.Stdout, os.Stderr, o.keys)
	if errors.Is(err, attach.ErrClosed) {
		// The monitor went away without a word (killed): the container's
		// end is in its state, once someone finds it.
		restore()
		code, werr := e.Wait(rec.ID)
		if werr != nil {
			return werr
		}
		return clikit.Silent(code)
	}
	if err != nil {
		return err
	}
	if res.Detached {
		return nil
	}
	if res.Code != 0 {
		return clikit.Silent(res.Code)
	}
	return nil
}

// proxySignals passes the signals berth receives to the container's
// init, as docker run --sig-proxy does; SIGKILL cannot be caught, and
// leaves the container running.
func (a *app) proxySignals(e *engine.Engine, id string) func() {
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2)
	go func() {
		for s := range sigs {
			if st, err := e.Store.View(id); err == nil && st.Running() {
				_ = unix.Kill(st.Pid, s.(syscall.Signal))
			}
		}
	}()
	return func() { signal.Stop(sigs); close(sigs) }
}
