//go:build linux

package cli

import (
	"github.com/spf13/cobra"

	"berth/09-full/attach"
	"berth/09-full/engine"

	"berth/09-full/clikit"
)

func (a *app) startCommand() *cobra.Command {
	var attachOut, interactive bool
	var detachKeys string
	cmd := &cobra.Command{
		Use:   "start [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Start one or more created or stopped containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !attachOut && !interactive {
				return a.Each(args, func(e *engine.Engine, ref string) error { return e.Start(ref) })
			}
			if len(args) > 1 {
				return clikit.Usage("you cannot start and attach multiple containers at once")
			}
			keys, err := attach.ParseDetachKeys(detachKeys)
			if err != nil {
				return clikit.Usage("%v", err)
			}
			e, err := a.Engine()
			if err != nil {
				return err
			}
			rec, err := e.Store.Get(args[0])
			if err != nil {
				return err
			}
			cfg, err := engine.ConfigOf(rec)
			if err != nil {
				return err
			}
			// The monitor of the run to come must be there to attach to:
			// a stopped container is created again first.
			if err := e.Prepare(rec.ID); err != nil {
				return err
			}
			return a.attachAndStart(e, rec, attachOptions{
				stdin: interactive && cfg.Settings.OpenStdin, tty: cfg.Spec.Process.Terminal,
				sigProxy: !cfg.Spec.Process.Terminal, keys: keys, start: true,
			})
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&attachOut, "attach", "a", false, "attach STDOUT/STDERR and forward signals")
	fs.BoolVarP(&interactive, "interactive", "i", false, "attach the container's STDIN")
	fs.StringVar(&detachKeys, "detach-keys", "ctrl-p,ctrl-q", "the key sequence that detaches from the container")
	return cmd
}
