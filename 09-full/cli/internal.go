//go:build linux

package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"berth/09-full/engine"
	"berth/09-full/inside"
	"berth/09-full/netvol"
)

// internalCommand holds the verbs a container's monitor runs: the heavy
// work, in a process that lives only for it.
func (a *app) internalCommand() *cobra.Command {
	group := &cobra.Command{Use: "internal", Short: "What a container's monitor runs (not for people)", Hidden: true}
	var restart bool
	create := &cobra.Command{
		Use:  "create [--restart] ID",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			files := engine.InheritedInitFiles()
			if files.Report == nil {
				return errors.New("internal create: no report socket on fd 3 (it is started by berth-monitor)")
			}
			e, err := a.Engine()
			if err != nil {
				return err
			}
			return e.CreateInit(args[0], restart, files)
		},
	}
	create.Flags().BoolVar(&restart, "restart", false, "a restart by the policy: start it too, unless stopped meanwhile")
	var run engine.Run
	exit := &cobra.Command{
		Use:  "exit --pid PID --start START ID",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.Engine()
			if err != nil {
				return err
			}
			d, err := e.Exited(args[0], run)
			if err != nil {
				return err
			}
			if d.Restart {
				fmt.Fprintf(a.Stdout, "restart %d\n", d.Delay.Milliseconds())
			} else {
				fmt.Fprintln(a.Stdout, "done")
			}
			return nil
		},
	}
	exit.Flags().IntVar(&run.Pid, "pid", 0, "the init's pid of the run that ended")
	exit.Flags().Uint64Var(&run.Start, "start", 0, "its start time (field 22 of /proc/PID/stat)")
	health := &cobra.Command{
		Use:  "healthcheck ID",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.Engine()
			if err != nil {
				return err
			}
			return e.HealthCheck(args[0])
		},
	}
	group.AddCommand(create, exit, health, netvol.DNSCommand(a.App), inside.ExecInspectCommand(a.App))
	return group
}
