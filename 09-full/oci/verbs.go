//go:build linux

package oci

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"berth/01-uts/spine"
	"berth/09-full/engine"
)

// signalPid signals pid only if it is still the process that started at
// start (through a pidfd: no stranger that got the pid meanwhile).
func signalPid(pid int, start uint64, sig syscall.Signal) error {
	return engine.SignalRun(pid, start, sig)
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func stateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "state ID",
		Short: "print the container's state as the runtime spec's JSON",
		Args:  exactArgs(1, "ID"),
		RunE: func(_ *cobra.Command, args []string) error {
			x, err := load(args[0])
			if err != nil {
				return err
			}
			return printJSON(x.state())
		},
	}
}

func killCmd() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "kill [--all] ID [SIGNAL]",
		Short: "send a signal (a name, TERM or SIGTERM, or a number; default TERM) to the init",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(_ *cobra.Command, args []string) error {
			sig := unix.SIGTERM
			if len(args) == 2 {
				s, err := engine.ParseSignal(args[1])
				if err != nil {
					return err
				}
				sig = s
			}
			x, err := load(args[0])
			if err != nil {
				return err
			}
			if x.status == Stopped && !all {
				return fmt.Errorf("container %s is not running", x.id)
			}
			return x.signal(sig, all)
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "send it to every process of the container's cgroup")
	return cmd
}

func deleteCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "delete [--force] ID",
		Short: "delete a stopped (or created) container; --force kills a running one first",
		Args:  exactArgs(1, "ID"),
		RunE: func(_ *cobra.Command, args []string) error {
			x, err := load(args[0])
			if err != nil {
				if force && strings.Contains(err.Error(), "does not exist") {
					return nil
				}
				return err
			}
			switch {
			case x.status == Stopped:
			case x.status == Created || force:
				// A created container has not run anything yet: runc
				// deletes it without --force (containerd does, after a
				// failed start). A paused one is thawed, or SIGKILL waits.
				if x.status == Paused {
					_ = x.freeze(false)
				}
				if err := x.signal(unix.SIGKILL, x.c.Spec.Linux.CgroupsPath != ""); err != nil {
					return err
				}
				if !x.waitGone(10 * time.Second) {
					return fmt.Errorf("delete %s: its init %d did not exit within 10s of SIGKILL", x.id, x.pid)
				}
			default:
				return fmt.Errorf("cannot delete container %s that is not stopped: %s", x.id, x.status)
			}
			if err := x.remove(); err != nil {
				return err
			}
			x.status = Stopped
			x.poststop()
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "kill the container if it runs")
	return cmd
}

func pauseCmd(on bool) *cobra.Command {
	use, short := "resume ID", "resume a paused container"
	if on {
		use, short = "pause ID", "freeze every process of the container (its cgroup's freezer)"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  exactArgs(1, "ID"),
		RunE: func(_ *cobra.Command, args []string) error {
			x, err := load(args[0])
			if err != nil {
				return err
			}
			switch {
			case on && x.status != Running:
				return fmt.Errorf("container %s is not running: %s", x.id, x.status)
			case !on && x.status != Paused:
				return fmt.Errorf("container %s is not paused: %s", x.id, x.status)
			}
			return x.freeze(on)
		},
	}
}

func listCmd() *cobra.Command {
	var format string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "list the containers of --root",
		Args:  cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			entries, err := os.ReadDir(g.root)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("read %s: %w", g.root, err)
			}
			states := []State{}
			for _, e := range entries {
				if !e.IsDir() || spine.ValidID(e.Name()) != nil {
					continue
				}
				x, err := load(e.Name())
				if err != nil {
					continue // being created or deleted right now
				}
				states = append(states, x.state())
			}
			sort.Slice(states, func(i, j int) bool { return states[i].ID < states[j].ID })
			switch {
			case format == "json":
				return printJSON(states)
			case format != "table":
				return fmt.Errorf("--format %q: want table or json", format)
			case quiet:
				for _, s := range states {
					fmt.Println(s.ID)
				}
				return nil
			}
			w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
			fmt.Fprintln(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER")
			for _, s := range states {
				fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", s.ID, s.Pid, s.Status, s.Bundle, s.Created.Format(time.RFC3339Nano), s.Owner)
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print the ids only")
	return cmd
}

func psCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "ps [--format json] ID",
		Short: "list the processes of the container (its cgroup's)",
		Args:  exactArgs(1, "ID"),
		RunE: func(_ *cobra.Command, args []string) error {
			x, err := load(args[0])
			if err != nil {
				return err
			}
			pids := []int{}
			if x.status != Stopped {
				grp, err := x.group()
				if err != nil {
					return err
				}
				if pids, err = grp.Procs(); err != nil {
					return err
				}
			}
			sort.Ints(pids)
			switch format {
			case "json":
				return printJSON(pids)
			case "table":
			default:
				return fmt.Errorf("--format %q: want table or json", format)
			}
			w := tabwriter.NewWriter(os.Stdout, 8, 1, 3, ' ', 0)
			fmt.Fprintln(w, "PID\tCMD")
			for _, pid := range pids {
				cmdline, _ := readSmall(fmt.Sprintf("/proc/%d/cmdline", pid))
				fmt.Fprintf(w, "%d\t%s\n", pid, strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " ")))
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	return cmd
}
