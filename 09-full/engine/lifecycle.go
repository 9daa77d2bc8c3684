//go:build linux

package engine

import (
	"errors"
	"fmt"
	"time"

	"berth/01-uts/spine"
	"berth/01-uts/spine/proc"
	"berth/09-full/store"
)

// The container state machine, as Docker's:
//
//	created --start--> running --exit--> exited --start--> running ...
//	                   running --pause--> paused --unpause--> running
//	                   running --exit, policy--> restarting --back-off--> running
//	any --rm--> (gone)
//
// Every transition holds the container's lock; none holds it while it
// waits for the container to exit.

// Create makes the container of record rec: its monitor runs, its init
// waits inside its namespaces to be started. A failure (a command not
// found: 127) is recorded in the state and returned.
func (e *Engine) Create(rec *store.Record) error {
	unlock, err := e.Store.Lock(rec.ID)
	if err != nil {
		return err
	}
	defer unlock()
	st, err := e.Store.ReadState(rec.ID)
	if err != nil {
		return err
	}
	if err := e.createLocked(rec, st); err != nil {
		return err
	}
	e.event(rec, "create", nil)
	return nil
}

func (e *Engine) createLocked(rec *store.Record, st *store.State) error {
	cfg, err := ConfigOf(rec)
	if err != nil {
		return err
	}
	l, err := e.launch(rec, cfg)
	if err != nil {
		st.Status, st.Error, st.ExitCode = store.Created, err.Error(), spine.ExitCode(err)
		st.Pid, st.MonitorPid = 0, 0
		if werr := e.Store.WriteState(rec.ID, st); werr != nil {
			return werr
		}
		return err
	}
	st.Status, st.Error = store.Created, ""
	st.Pid, st.PidStart, st.BootID = l.Pid, l.PidStart, proc.BootID()
	st.MonitorPid, st.MonitorStart = l.MonitorPid, l.MonitorStart
	return e.Store.WriteState(rec.ID, st)
}

// Start starts a created container, or creates and starts again one that
// has exited (or whose init a reboot took). Starting a running one is
// nothing to do, as with Docker.
func (e *Engine) Start(ref string) error {
	rec, err := e.Store.Get(ref)
	if err != nil {
		return err
	}
	id := rec.ID
	unlock, err := e.Store.Lock(id)
	if err != nil {
		return err
	}
	defer unlock()
	st, err := e.reconcile(rec)
	if err != nil {
		return err
	}
	switch st.Status {
	case store.Running, store.Paused, store.Restarting:
		return nil
	}
	if st.Status != store.Created || !proc.Running(st.Pid, st.PidStart, st.BootID) {
		st.RestartCount, st.RestartDelay = 0, 0
		if err := e.createLocked(rec, st); err != nil {
			return err
		}
	}
	if err := spine.Start(e.SpineDir(id), st.Pid); err != nil {
		if errors.Is(err, spine.ErrStarted) {
			return nil
		}
		return fmt.Errorf("start container %s: %w", id[:12], err)
	}
	st.Status, st.StartedAt, st.ManuallyStopped, st.Error, st.ExitCode = store.Running, time.Now(), false, "", 0
	st.FinishedAt, st.OOMKilled = time.Time{}, false
	if err := e.Store.WriteState(id, st); err != nil {
		return err
	}
	e.event(rec, "start", nil)
	return nil
}

// reconcile brings a stored state up to date with what is true, under the
// lock: a run whose end nobody recorded (its monitor died) is finished
// here, its steps cleaned up.
func (e *Engine) reconcile(rec *store.Record) (*store.State, error) {
	stored, err := e.Store.ReadState(rec.ID)
	if err != nil {
		return nil, err
	}
	v, err := e.Store.View(rec.ID)
	if err != nil {
		return nil, err
	}
	if !(stored.Running() || stored.Status == store.Restarting || stored.Status == store.Removing) || v.Running() || v.MonitorAlive() {
		return v, nil
	}
	// It has ended and no monitor will say so: finish it ourselves.
	cfg, err := ConfigOf(rec)
	if err != nil {
		return nil, err
	}
	e.finish(rec, cfg, stored)
	stored.RestartDelay = 0
	if err := e.Store.WriteState(rec.ID, stored); err != nil {
		return nil, err
	}
	return stored, nil
}

// Prepare makes sure a container that is to be started has a monitor and
// a waiting init (created again if it has exited), so that a client can
// attach before Start: start -a.
func (e *Engine) Prepare(id string) error {
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
	if st.Running() || st.Status == store.Restarting || (st.Status == store.Created && proc.Running(st.Pid, st.PidStart, st.BootID)) {
		return nil
	}
	st.RestartCount, st.RestartDelay = 0, 0
	return e.createLocked(rec, st)
}
