//go:build linux

package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strconv"

	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"berth/09-full/daemon"
	"berth/09-full/engine"
	"berth/09-full/store"

	"berth/09-full/clikit"
)

// berthVersion is what berth daemon's /version says berth is.
const berthVersion = "0.9.0"

// daemonCommand is `berth daemon`: the Docker Engine API on a unix
// socket, over this command line's own engine and code (inspect, ps's
// status, create), so both show and make the same containers. Stopping
// it stops no container: each has its own monitor.
func (a *app) daemonCommand() *cobra.Command {
	var host, pidfile string
	cmd := &cobra.Command{
		Use:   "daemon [-H unix:///PATH]",
		Short: "Serve the Docker Engine API, so the docker CLI and SDKs drive berth",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.Engine()
			if err != nil {
				return err
			}
			l, err := daemon.Listen(host)
			if err != nil {
				return clikit.Usage("%v", err)
			}
			if pidfile != "" {
				// As dockerd's --pidfile: who started the daemon in the
				// background stops it by this pid.
				if err := os.WriteFile(pidfile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
					l.Close()
					return fmt.Errorf("write the pid file: %w", err)
				}
				defer os.Remove(pidfile)
			}
			s := daemon.New(daemon.Options{
				Engine:  e,
				Inspect: func(e *engine.Engine, ref string) (*container.InspectResponse, error) { return inspect(e, ref) },
				Status:  func(rec *store.Record, st *store.State) string { return statusText(st) + healthText(rec, st) },
				Create:  CreateContainer,
				Version: berthVersion,
			})
			ctx, stop := signal.NotifyContext(context.Background(), unix.SIGINT, unix.SIGTERM)
			defer stop()
			go func() { <-ctx.Done(); l.Close() }()
			fmt.Fprintf(a.Stderr, "berth daemon: API %s on %s\n", daemon.APIVersion, host)
			err = s.Serve(l)
			if ctx.Err() != nil || errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return err
		},
	}
	cmd.Flags().StringVarP(&host, "host", "H", daemon.DefaultHost, "the socket to listen on: unix:///PATH (TCP is refused: it needs TLS, which is not built yet)")
	cmd.Flags().StringVarP(&pidfile, "pidfile", "p", "", "write the daemon's pid to this file (removed when it stops)")
	return cmd
}
