//go:build linux

package inside

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"berth/07-unionfs/layer"
	"berth/09-full/engine"

	"berth/09-full/clikit"
)

// exportCommand is `berth export [-o FILE] CONTAINER`: the container's
// root as one tar (stage 07's layers, merged in user space).
func (a *app) exportCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "export [OPTIONS] CONTAINER",
		Short: "Export a container's filesystem as a tar archive",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
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
			if len(cfg.Settings.Layers) == 0 {
				return fmt.Errorf("container %s has no layers of berth's (an OCI bundle's root): export its directory instead", rec.ID[:12])
			}
			if output == "" {
				if term.IsTerminal(int(os.Stdout.Fd())) {
					return clikit.Usage("cowardly refusing to save to a terminal. Use the -o flag or redirect")
				}
				if err := layer.NewStore(e.DataRoot).Export(rec.ID, a.Stdout); err != nil {
					return err
				}
				e.Event(rec, "export", nil)
				return nil
			}
			// Written beside the file and renamed: no half tar under its name.
			tmp, err := os.CreateTemp(filepath.Dir(output), ".export-*")
			if err != nil {
				return err
			}
			defer os.Remove(tmp.Name())
			if err := layer.NewStore(e.DataRoot).Export(rec.ID, tmp); err != nil {
				tmp.Close()
				return err
			}
			if err := tmp.Close(); err != nil {
				return err
			}
			if err := os.Rename(tmp.Name(), output); err != nil {
				return err
			}
			e.Event(rec, "export", nil)
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to a file, instead of STDOUT")
	return cmd
}
