//go:build linux

package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"berth/01-uts/spine"
	"berth/06-cgroups/cgroup"
	"berth/07-unionfs/layer"
	"berth/09-full/store"
)

// The exit command (`berth internal exit ID`, conmon's --exit-command):
// the monitor runs it once the container's init has exited and its exit
// file is written. The heavy cleanup code is not resident in the monitor
// while the container runs; it is loaded for this moment only.

// A Decision is what the exit command tells the monitor.
type Decision struct {
	Restart bool
	Delay   time.Duration
}

// A Run names one run of a container: its init's pid and start time, as
// the monitor that ran it knows them (from internal create's report).
type Run struct {
	Pid   int
	Start uint64
}

// Exited records the exit of run of container id, cleans up what its
// steps made (veth, lease, rules, cgroup, overlay mount), and decides,
// under the container's lock, whether its restart policy restarts it.
// With --rm, the container is removed. When the stored state names
// another run, the exit was recorded already and a new run has begun:
// nothing is done (its cleanup would tear the new run down).
func (e *Engine) Exited(id string, run Run) (Decision, error) {
	if err := store.CheckID(id); err != nil {
		return Decision{}, err
	}
	unlock, err := e.Store.Lock(id)
	if errors.Is(err, store.ErrNotFound) {
		// Removed meanwhile (rm -f): the steps' cleanup is still ours.
		return Decision{}, e.cleanupSpine(id)
	}
	if err != nil {
		return Decision{}, err
	}
	defer unlock()
	rec, err := e.Store.Get(id)
	if err != nil {
		return Decision{}, err
	}
	cfg, err := ConfigOf(rec)
	if err != nil {
		return Decision{}, err
	}
	st, err := e.Store.ReadState(id)
	if err != nil {
		return Decision{}, err
	}
	if st.Pid != 0 && (st.Pid != run.Pid || st.PidStart != run.Start) {
		return Decision{}, nil
	}
	d := e.finish(rec, cfg, st)
	if st.OOMKilled {
		e.event(rec, "oom", nil)
	}
	e.event(rec, "die", map[string]string{"exitCode": strconv.Itoa(st.ExitCode)})
	if d.Restart {
		st.Status = store.Restarting
	}
	if err := e.Store.WriteState(id, st); err != nil {
		return Decision{}, err
	}
	if cfg.Settings.AutoRemove && !d.Restart {
		return Decision{}, e.removeLocked(rec, cfg, true)
	}
	return d, nil
}

// finish is the end of a run, whoever notices it (the exit command, or a
// later command that finds the monitor dead): the exit status (the
// monitor's record, else unknown), the OOM killer's verdict, the steps'
// cleanup, and the restart decision. st is updated; the caller writes it.
func (e *Engine) finish(rec *store.Record, cfg *Config, st *store.State) Decision {
	ex := e.Store.ReadExit(rec.ID)
	if ex != nil {
		st.ExitCode, st.FinishedAt = ex.ExitCode, ex.FinishedAt
	} else {
		st.ExitCode, st.FinishedAt = store.ExitUnknown, time.Now()
		if st.MonitorPid != 0 && !st.MonitorAlive() {
			st.Error = store.MonitorDied
		}
	}
	st.OOMKilled = oomKilled(cfg)
	st.Status, st.Pid, st.PidStart = store.Exited, 0, 0
	if err := e.cleanupSpine(rec.ID); err != nil {
		st.Error = err.Error()
	}
	ran := st.FinishedAt.Sub(st.StartedAt)
	if st.StartedAt.IsZero() || ex == nil || cfg.Settings.AutoRemove ||
		!cfg.Settings.Restart.ShouldRestart(st.ExitCode, st.RestartCount, st.ManuallyStopped) {
		st.RestartDelay = 0
		return Decision{}
	}
	st.RestartDelay = NextDelay(st.RestartDelay, ran)
	return Decision{Restart: true, Delay: st.RestartDelay}
}

// oomKilled reads the container's cgroup (before its cleanup removes it):
// did the OOM killer kill any of its processes in this run?
func oomKilled(cfg *Config) bool {
	path := cfg.Spec.Linux.CgroupsPath
	if path == "" || os.Geteuid() != 0 {
		return false
	}
	mode, err := cgroup.DetectMode()
	if err != nil {
		return false
	}
	g, err := cgroup.Load(mode, path)
	if err != nil {
		return false
	}
	n, err := g.OOMKills()
	return err == nil && n > 0
}

// cleanupSpine runs the Cleanup steps recorded in the container's spine
// state, if it has any left: a second run finds nothing to do.
func (e *Engine) cleanupSpine(id string) error {
	if err := store.CheckID(id); err != nil {
		return err
	}
	dir := e.SpineDir(id)
	if _, err := os.Stat(filepath.Join(dir, "state.json")); errors.Is(err, os.ErrNotExist) {
		return os.RemoveAll(dir)
	}
	c, _, _, err := spine.ReadState(dir)
	if err != nil {
		return fmt.Errorf("read the state of %s: %w", id, err)
	}
	c.Verbose = e.Verbose
	if err := spine.Cleanup(c); err != nil {
		return fmt.Errorf("clean up container %s: %w", id[:12], err)
	}
	return nil
}

// volumesOfOthers names the volumes the other containers' records list
// (an anonymous volume another took with --volumes-from). A record that
// cannot be read counts as using nothing: it has no settings to mount.
// Without the list (nil), every volume counts as used: kept, not lost.
func (e *Engine) volumesOfOthers(id string) map[string]bool {
	out := map[string]bool{}
	recs, err := e.Store.List()
	if err != nil {
		return nil
	}
	for _, r := range recs {
		if r.ID == id {
			continue
		}
		if set, err := DecodeSettings(r.Settings); err == nil {
			for _, v := range set.Volumes {
				if v.Name != "" {
					out[v.Name] = true
				}
			}
		}
	}
	return out
}

// removeLocked removes a container that runs no more: its layer, its
// anonymous volumes (with volumes), its record. The caller holds its lock.
func (e *Engine) removeLocked(rec *store.Record, cfg *Config, volumes bool) error {
	if err := e.cleanupSpine(rec.ID); err != nil {
		return err
	}
	if err := layer.NewStore(e.DataRoot).Remove(rec.ID); err != nil && layer.NewStore(e.DataRoot).Exists(rec.ID) {
		return fmt.Errorf("remove the container layer of %s: %w", rec.ID[:12], err)
	}
	if volumes {
		shared := e.volumesOfOthers(rec.ID)
		for _, v := range cfg.Settings.Volumes {
			if !v.Anonymous || shared == nil || shared[filepath.Base(filepath.Dir(v.Source))] {
				continue // another container mounts it (--volumes-from): it stays, as Docker's
			}
			// <data-root>/volumes/<name>/_data: the volume is its parent.
			dir := filepath.Dir(v.Source)
			if filepath.Dir(dir) != filepath.Join(e.DataRoot, "volumes") {
				continue // not one of ours: never remove it
			}
			if err := os.RemoveAll(dir); err != nil {
				return fmt.Errorf("remove volume %s: %w", dir, err)
			}
		}
	}
	if err := e.Store.Remove(rec.ID); err != nil {
		return err
	}
	e.event(rec, "destroy", nil)
	return nil
}
