//go:build linux

package inside

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"berth/06-cgroups/cgroup"
	"berth/09-full/engine"
	"berth/09-full/store"
)

// topCommand is `berth top CONTAINER [ps OPTIONS]`: the host's ps, with
// the options given (-ef by default), cut to the container's processes,
// as docker top does it (moby's daemon/top_unix.go).
func (a *app) topCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "top CONTAINER [ps OPTIONS]",
		Short: "Display the running processes of a container",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.Engine()
			if err != nil {
				return err
			}
			return a.top(e, args[0], args[1:])
		},
	}
	cmd.Flags().SetInterspersed(false) // -o pid,comm is ps's
	return cmd
}

func (a *app) top(e *engine.Engine, ref string, psArgs []string) error {
	rec, err := e.Store.Get(ref)
	if err != nil {
		return err
	}
	st, err := e.Store.View(rec.ID)
	if err != nil {
		return err
	}
	if !st.Running() {
		return fmt.Errorf("container %s is not running", rec.ID)
	}
	pids, err := containerPids(rec, st.Pid)
	if err != nil {
		return err
	}
	e.Event(rec, "top", nil)
	if len(psArgs) == 0 {
		psArgs = []string{"-ef"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ps", psArgs...).Output()
	if err != nil {
		return fmt.Errorf("ps %s: %w", strings.Join(psArgs, " "), err)
	}
	titles, rows, err := psRows(out, pids)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(a.Stdout, 20, 1, 3, ' ', 0)
	fmt.Fprintln(w, strings.Join(titles, "\t"))
	for _, r := range rows {
		fmt.Fprintln(w, strings.Join(r, "\t"))
	}
	return w.Flush()
}

// psRows reads ps's output: the header's titles, and the rows whose PID
// is one of pids. The last column (the command) may hold spaces.
func psRows(out []byte, pids []int) ([]string, [][]string, error) {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	titles := strings.Fields(lines[0])
	col := slices.Index(titles, "PID")
	if col < 0 {
		return nil, nil, fmt.Errorf("couldn't find PID field in ps output")
	}
	var rows [][]string
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) < len(titles) {
			continue
		}
		if len(f) > len(titles) {
			f = append(f[:len(titles)-1], strings.Join(f[len(titles)-1:], " "))
		}
		pid, err := strconv.Atoi(f[col])
		if err != nil {
			return nil, nil, fmt.Errorf("unexpected pid %q in ps output", f[col])
		}
		if slices.Contains(pids, pid) {
			rows = append(rows, f)
		}
	}
	return titles, rows, nil
}

// containerPids lists the container's processes as the host numbers
// them: its cgroup's (every exec too), or, without a cgroup of its own
// (rootless), every process in its init's PID namespace.
func containerPids(rec *store.Record, init int) ([]int, error) {
	if rec.Spec.Linux != nil && rec.Spec.Linux.CgroupsPath != "" && os.Geteuid() == 0 {
		if mode, err := cgroup.DetectMode(); err == nil && cgroup.Exists(mode, rec.Spec.Linux.CgroupsPath) {
			if g, err := cgroup.Load(mode, rec.Spec.Linux.CgroupsPath); err == nil {
				return g.Procs()
			}
		}
	}
	want, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", init))
	if err != nil {
		return nil, fmt.Errorf("the container's PID namespace: %w", err)
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var pids []int
	for _, d := range dirs {
		if ns, err := os.Readlink(d + "/ns/pid"); err == nil && ns == want {
			pid, _ := strconv.Atoi(filepath.Base(d))
			pids = append(pids, pid)
		}
	}
	return pids, nil
}
