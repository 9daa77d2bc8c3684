//go:build linux

package layer

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"berth/01-uts/spine"
	"berth/01-uts/spine/roots"
)

func commitCommand() *cobra.Command {
	var pause bool
	cmd := &cobra.Command{
		Use:   "commit ID OUT.tar",
		Short: "Write a container's layer as an OCI layer tarball ('-' for stdout)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			id, out := args[0], args[1]
			store, err := storeOf(cmd)
			if err != nil {
				return err
			}
			// (Inside the user namespace of unshare.go the outer run has
			// paused it already.)
			if pause && os.Getenv(envInside) != "1" {
				stateRoot, err := roots.StateRootOf(cmd)
				if err != nil {
					return err
				}
				resume, err := pauseForCommit(cmd.Context(), stateRoot, id)
				if err != nil {
					return err
				}
				// Thawed however the commit ends, a signal included (only
				// SIGKILL leaves it paused: '07-unionfs resume ID').
				sigs := make(chan os.Signal, 1)
				signal.Notify(sigs, spine.InterruptSignals...)
				done := make(chan struct{})
				go func() {
					select {
					case s := <-sigs:
						if err := resume(); err != nil {
							fmt.Fprintln(os.Stderr, err)
						}
						os.Exit(128 + int(s.(syscall.Signal)))
					case <-done:
					}
				}()
				defer func() {
					signal.Stop(sigs)
					close(done)
					err = errors.Join(err, resume())
				}()
			}
			if done, err := store.unshare(id, "commit", id, out); done {
				return err
			}
			return commitTo(store, id, out, cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVar(&pause, "pause", true, "freeze a running container while its layer is read (as docker commit does)")
	return cmd
}

// commitTo writes the layer to out, or to stdout for "-".
func commitTo(store Store, id, out string, stdout io.Writer) error {
	if out == "-" {
		_, err := store.Commit(id, stdout)
		return err
	}
	// Written beside OUT and renamed: a failed commit leaves no
	// truncated tarball that looks like a layer.
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := store.Commit(id, tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
