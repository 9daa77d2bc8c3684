//go:build linux

package inside

import (
	"os"

	"berth/01-uts/spine"
	"fmt"

	units "github.com/docker/go-units"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"berth/06-cgroups/cgroup"
	"berth/09-full/engine"
	"berth/09-full/store"

	"berth/09-full/clikit"
)

// updateCommand is `berth update [--memory] [--memory-swap] [--cpus]
// [--pids-limit] [--restart] CONTAINER...`: live limits, written to the
// running container's cgroup (stage 06) and to its record, so that the
// next start has them too; --restart changes the policy its monitor
// applies at the next exit.
func (a *app) updateCommand() *cobra.Command {
	var memory, swap, restart string
	var cpus float64
	var pids int64
	cmd := &cobra.Command{
		Use:   "update [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Update configuration of one or more containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fs := cmd.Flags()
			res, err := updateResources(fs, memory, swap, cpus, pids)
			if err != nil {
				return clikit.Usage("%v", err)
			}
			var policy *engine.RestartPolicy
			if fs.Changed("restart") {
				p, err := engine.ParseRestartPolicy(restart)
				if err != nil {
					return clikit.Usage("%v", err)
				}
				policy = &p
			}
			if res == nil && policy == nil {
				return clikit.Usage("you must provide one or more flags when using this command")
			}
			if res != nil && os.Geteuid() != 0 {
				// Before any container: nothing changed, exit 125.
				return spine.Exitf(spine.ExitRuntime, "update is not supported in rootless mode: berth's rootless containers have no cgroup of their own (it uses no delegated cgroup v2 subtree), so their limits cannot change (--restart can)")
			}
			return a.Each(args, func(e *engine.Engine, ref string) error { return update(e, ref, res, policy) })
		},
	}
	fs := cmd.Flags()
	fs.StringVarP(&memory, "memory", "m", "", "memory limit (e.g. 64m)")
	fs.StringVar(&swap, "memory-swap", "", "memory plus swap limit; -1 for unlimited swap (default: twice --memory)")
	fs.Float64Var(&cpus, "cpus", 0, "number of CPUs (a CFS quota per 100ms period)")
	fs.Int64Var(&pids, "pids-limit", 0, "maximum number of tasks; -1 for unlimited")
	fs.StringVar(&restart, "restart", "", "restart policy to apply when a container exits")
	return cmd
}

// updateResources reads the limit flags given (nil: none was).
func updateResources(fs *pflag.FlagSet, memory, swap string, cpus float64, pids int64) (*specs.LinuxResources, error) {
	var res specs.LinuxResources
	set := false
	if fs.Changed("memory") {
		m, err := units.RAMInBytes(memory)
		if err != nil || m < 6<<20 {
			return nil, fmt.Errorf("invalid --memory %q: want a size of at least 6MB, such as 64m", memory)
		}
		s := 2 * m // Docker's default: as much swap as memory
		if fs.Changed("memory-swap") {
			if swap == "-1" {
				s = -1
			} else if s, err = units.RAMInBytes(swap); err != nil || s < m {
				return nil, fmt.Errorf("invalid --memory-swap %q: the total of memory and swap, at least --memory", swap)
			}
		}
		res.Memory, set = &specs.LinuxMemory{Limit: &m, Swap: &s}, true
	} else if fs.Changed("memory-swap") {
		return nil, fmt.Errorf("--memory-swap needs --memory: it is the total of memory and swap")
	}
	if fs.Changed("cpus") {
		if cpus <= 0 {
			return nil, fmt.Errorf("invalid --cpus %v: want a positive number, such as 0.5", cpus)
		}
		period := uint64(100000)
		quota := int64(cpus * float64(period))
		res.CPU, set = &specs.LinuxCPU{Quota: &quota, Period: &period}, true
	}
	if fs.Changed("pids-limit") {
		res.Pids, set = &specs.LinuxPids{Limit: &pids}, true
	}
	if !set {
		return nil, nil
	}
	return &res, nil
}

// update writes the limits to the cgroup of a running container, then to
// its record; the policy to its record.
func update(e *engine.Engine, ref string, res *specs.LinuxResources, policy *engine.RestartPolicy) error {
	rec, err := e.Store.Get(ref)
	if err != nil {
		return err
	}
	if res != nil {
		if noCgroup(rec) {
			return rootlessRefusal("update", rec, "so its limits cannot change (--restart can)")
		}
		st, err := e.Store.View(rec.ID)
		if err != nil {
			return err
		}
		if st.Running() {
			mode, err := cgroup.DetectMode()
			if err != nil {
				return err
			}
			g, err := cgroup.Load(mode, rec.Spec.Linux.CgroupsPath)
			if err != nil {
				return err
			}
			if err := g.Update(res); err != nil {
				return err
			}
		}
	}
	err = e.Store.UpdateRecord(rec.ID, func(r *store.Record) error {
		if res != nil {
			if r.Spec.Linux.Resources == nil {
				r.Spec.Linux.Resources = &specs.LinuxResources{}
			}
			cur := r.Spec.Linux.Resources
			if res.Memory != nil {
				if cur.Memory == nil {
					cur.Memory = &specs.LinuxMemory{}
				}
				cur.Memory.Limit, cur.Memory.Swap = res.Memory.Limit, res.Memory.Swap
			}
			if res.CPU != nil {
				if cur.CPU == nil {
					cur.CPU = &specs.LinuxCPU{}
				}
				cur.CPU.Quota, cur.CPU.Period = res.CPU.Quota, res.CPU.Period
			}
			if res.Pids != nil {
				cur.Pids = res.Pids
			}
		}
		if policy != nil {
			set, err := engine.DecodeSettings(r.Settings)
			if err != nil {
				return err
			}
			if set.AutoRemove && policy.Name != "no" {
				return fmt.Errorf("cannot update restart policy of a container started with --rm")
			}
			set.Restart = *policy
			if r.Settings, err = set.Encode(); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		e.Event(rec, "update", nil)
	}
	return err
}
