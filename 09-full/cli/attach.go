//go:build linux

package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"berth/09-full/attach"
	"berth/09-full/engine"

	"berth/09-full/clikit"
)

func (a *app) attachCommand() *cobra.Command {
	var noStdin, sigProxy bool
	var detachKeys string
	cmd := &cobra.Command{
		Use:   "attach [OPTIONS] CONTAINER",
		Short: "Attach local standard input, output, and error streams to a running container",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
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
			st, err := e.Store.View(rec.ID)
			if err != nil {
				return err
			}
			if !st.Running() {
				return fmt.Errorf("you cannot attach to a stopped container, start it first")
			}
			if st.Status == "paused" {
				return fmt.Errorf("you cannot attach to a paused container, unpause it first")
			}
			cfg, err := engine.ConfigOf(rec)
			if err != nil {
				return err
			}
			return a.attachAndStart(e, rec, attachOptions{
				stdin: !noStdin && cfg.Settings.OpenStdin, tty: cfg.Spec.Process.Terminal,
				sigProxy: sigProxy && !cfg.Spec.Process.Terminal, keys: keys,
			})
		},
	}
	fs := cmd.Flags()
	fs.BoolVar(&noStdin, "no-stdin", false, "do not attach STDIN")
	fs.BoolVar(&sigProxy, "sig-proxy", true, "proxy all received signals to the process")
	fs.StringVar(&detachKeys, "detach-keys", "ctrl-p,ctrl-q", "the key sequence that detaches from the container")
	return cmd
}
