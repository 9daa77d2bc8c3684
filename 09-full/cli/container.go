//go:build linux

package cli

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"berth/09-full/store"
)

// containerCommand is `berth container ...`: Docker's management form of
// the verbs (container ls, container rm...), and container prune.
func (a *app) containerCommand() *cobra.Command {
	group := &cobra.Command{Use: "container", Short: "Manage containers"}
	group.AddCommand(a.psCommand(), a.createCommand(), a.runCommand(), a.startCommand(), a.stopCommand(),
		a.killCommand(), a.restartCommand(), a.rmCommand(), a.waitCommand(), a.inspectCommand(),
		a.attachCommand(), a.renameCommand(), a.pauseCommand(true), a.pauseCommand(false),
		a.logsCommand(), a.pruneCommand(), a.execCommand(), a.topCommand(), a.portCommand(), a.diffCommand(), a.cpCommand(), a.statsCommand(), a.commitCommand(), a.updateCommand(), a.exportCommand())
	return group
}

func (a *app) pruneCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all stopped containers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !force {
				fmt.Fprint(a.stdout, "WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ")
				answer, _ := bufio.NewReader(os.Stdin).ReadString('\n')
				if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
					return nil
				}
			}
			e, err := a.engine()
			if err != nil {
				return err
			}
			recs, err := e.Store.List()
			if err != nil {
				return err
			}
			var deleted []string
			for _, r := range recs {
				st, err := e.Store.View(r.ID)
				if err != nil || st.Running() || st.Status == store.Restarting || (st.Status == store.Created && st.MonitorAlive()) {
					continue
				}
				if err := e.Remove(r.ID, false, false); err != nil {
					fmt.Fprintf(a.stderr, "berth: %v\n", err)
					continue
				}
				deleted = append(deleted, r.ID)
			}
			if len(deleted) > 0 {
				fmt.Fprintln(a.stdout, "Deleted Containers:")
				for _, id := range deleted {
					fmt.Fprintln(a.stdout, id)
				}
				fmt.Fprintln(a.stdout)
			}
			fmt.Fprintln(a.stdout, "Total reclaimed space: 0B")
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	return cmd
}
