//go:build linux

package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"berth/01-uts/spine"
	"berth/01-uts/spine/proc"
	"berth/06-cgroups/cgroup"
	"berth/09-full/store"
)

// Remove removes a container; a running one only with force (SIGKILL
// first). With volumes, its anonymous volumes go too.
func (e *Engine) Remove(id string, force, volumes bool) error {
	rec, err := e.Store.Get(id)
	var bad *store.Unreadable
	if errors.As(err, &bad) {
		// Nothing of it can be known but its id: what the spine recorded
		// of its steps is cleaned up, the rest removed.
		return e.Store.RemoveUnreadable(bad.ID, func() error { return e.cleanupSpine(bad.ID) })
	}
	if err != nil {
		return err
	}
	for try := 0; ; try++ {
		unlock, err := e.Store.Lock(rec.ID)
		if err != nil {
			return err
		}
		st, err := e.reconcile(rec)
		if err != nil {
			unlock()
			return err
		}
		waiting := st.Status == store.Created && st.MonitorAlive() // its init waits to be started
		if !st.Running() && st.Status != store.Restarting && !waiting {
			cfg, err := ConfigOf(rec)
			if err == nil {
				err = e.removeLocked(rec, cfg, volumes)
			}
			unlock()
			if err == nil {
				// Its monitor may be finishing (its exit command found the
				// record gone): rm returns once nothing of it is left.
				for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) &&
					st.MonitorPid > 0 && proc.Running(st.MonitorPid, st.MonitorStart, st.BootID); {
					time.Sleep(10 * time.Millisecond)
				}
			}
			return err
		}
		if !force && !waiting {
			unlock()
			return fmt.Errorf("cannot remove container %q: container is %s: stop the container before removing or force remove", rec.Name, st.Status)
		}
		// Kill it, let go of the lock, wait for its end to be recorded.
		stored, err := e.Store.ReadState(rec.ID)
		if err == nil {
			stored.ManuallyStopped = true
			if stored.Status == store.Restarting {
				stored.Status = store.Exited
			}
			err = e.Store.WriteState(rec.ID, stored)
		}
		if err == nil && st.Pid > 0 && proc.Running(st.Pid, st.PidStart, st.BootID) {
			if st.Status == store.Paused {
				_ = e.freeze(rec, false)
			}
			err = SignalRun(st.Pid, st.PidStart, unix.SIGKILL)
		} else if err == nil && st.Pid == 0 && waiting {
			// An interrupted create: its init, if made, is the spine's.
			if pid := spine.InitPid(e.SpineDir(rec.ID)); pid > 0 {
				_ = unix.Kill(pid, unix.SIGKILL)
			}
		}
		unlock()
		if err != nil {
			return err
		}
		if try > 3 {
			return fmt.Errorf("container %s would not die", rec.ID[:12])
		}
		e.waitExit(rec.ID, 30*time.Second)
		if err := e.waitRecorded(rec); err != nil {
			return err
		}
		e.waitMonitor(rec.ID, 10*time.Second)
	}
}

// waitMonitor waits a moment for the monitor to finish its work (its exit
// command may still hold the lock, or be about to take it).
func (e *Engine) waitMonitor(id string, d time.Duration) {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		st, err := e.Store.ReadState(id)
		if err != nil || st.MonitorPid == 0 || !st.MonitorAlive() {
			return
		}
		if st.Status != store.Created && st.Status != store.Restarting && !st.Running() {
			return
		}
	}
}

// Pause freezes every process of a running container (cgroup freezer).
func (e *Engine) Pause(id string) error { return e.pause(id, true) }

// Unpause thaws a paused container.
func (e *Engine) Unpause(id string) error { return e.pause(id, false) }

func (e *Engine) pause(id string, on bool) error {
	rec, err := e.Store.Get(id)
	if err != nil {
		return err
	}
	unlock, err := e.Store.Lock(rec.ID)
	if err != nil {
		return err
	}
	defer unlock()
	st, err := e.reconcile(rec)
	if err != nil {
		return err
	}
	switch {
	case on && st.Status == store.Paused:
		return fmt.Errorf("container %s is already paused", rec.ID)
	case on && st.Status != store.Running:
		return fmt.Errorf("container %s is not running", rec.ID)
	case !on && st.Status != store.Paused:
		return fmt.Errorf("container %s is not paused", rec.ID)
	}
	if err := e.freeze(rec, on); err != nil {
		return err
	}
	stored, err := e.Store.ReadState(rec.ID)
	if err != nil {
		return err
	}
	stored.Status = store.Running
	action := "unpause"
	if on {
		stored.Status, action = store.Paused, "pause"
	}
	if err := e.Store.WriteState(rec.ID, stored); err != nil {
		return err
	}
	e.event(rec, action, nil)
	return nil
}

func (e *Engine) freeze(rec *store.Record, on bool) error {
	path := rec.Spec.Linux.CgroupsPath
	if path == "" || os.Geteuid() != 0 {
		return errors.New("pause needs the container's own cgroup (a rootless container has none)")
	}
	mode, err := cgroup.DetectMode()
	if err != nil {
		return err
	}
	g, err := cgroup.Load(mode, path)
	if err != nil {
		return err
	}
	if on {
		return g.Freeze(context.Background())
	}
	return g.Thaw(context.Background())
}
