//go:build linux

package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

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
	if st.MonitorAlive() && (st.Pid != 0 || st.Status == store.Created) {
		// A run whose end its monitor has not recorded yet: a new run now
		// would have its live directory (the exit file) wiped, and the old
		// exit command clean up the new run's steps. Start and Prepare
		// wait for the record first (settled); this is the backstop.
		return fmt.Errorf("container %s: the end of its previous run is not recorded yet; try again", rec.ID[:12])
	}
	l, err := e.launch(rec, cfg, func(pid int, start uint64) error {
		st.Status, st.Pid, st.PidStart, st.BootID = store.Created, 0, 0, proc.BootID()
		st.MonitorPid, st.MonitorStart = pid, start
		return e.Store.WriteState(rec.ID, st)
	})
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
	unlock, st, err := e.settled(rec)
	if err != nil {
		return err
	}
	defer unlock()
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
	if stored.Status == store.Created && stored.Pid != 0 && proc.Running(stored.Pid, stored.PidStart, stored.BootID) {
		// Its exec FIFO is gone: a start consumed it (the init runs the
		// command now) and died before it could write Running down.
		fifo := filepath.Join(e.SpineDir(rec.ID), spine.FifoName)
		if _, err := os.Lstat(fifo); errors.Is(err, os.ErrNotExist) {
			stored.Status, stored.StartedAt, stored.Error = store.Running, time.Now(), ""
			if err := e.Store.WriteState(rec.ID, stored); err != nil {
				return nil, err
			}
		}
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
	unlock, st, err := e.settled(rec)
	if err != nil {
		return err
	}
	defer unlock()
	if st.Running() || st.Status == store.Restarting || (st.Status == store.Created && proc.Running(st.Pid, st.PidStart, st.BootID)) {
		return nil
	}
	st.RestartCount, st.RestartDelay = 0, 0
	return e.createLocked(rec, st)
}

// settled takes the container's lock for a start and returns its state,
// once the end of its previous run is recorded. Between the moment its
// init exits (the monitor writes the exit file: the view says exited) and
// the moment the exit command has taken the lock and recorded it, the
// stored state still names the old run. A new run made in that window
// would be undone by the old run's exit command (its cleanup tears down
// the steps, the cgroup, of whatever run the state names), so we let go
// of the lock and wait for the record, as stop does.
func (e *Engine) settled(rec *store.Record) (func(), *store.State, error) {
	for tries := 0; ; tries++ {
		unlock, err := e.Store.Lock(rec.ID)
		if err != nil {
			return nil, nil, err
		}
		stored, err := e.Store.ReadState(rec.ID)
		if err != nil {
			unlock()
			return nil, nil, err
		}
		st, err := e.reconcile(rec)
		if err != nil {
			unlock()
			return nil, nil, err
		}
		pending := stored.Pid != 0 && stored.MonitorAlive() &&
			(stored.Running() || stored.Status == store.Created) &&
			!proc.Running(stored.Pid, stored.PidStart, stored.BootID)
		// A create whose command was killed while it waited: its monitor
		// (recorded first) runs, and maybe an init nobody recorded, which
		// holds the container's ports and cgroup. Undo that run first.
		interrupted := stored.Pid == 0 && stored.Status == store.Created && stored.MonitorAlive()
		if (!pending && !interrupted) || tries == 3 {
			return unlock, st, nil
		}
		unlock()
		if testHookExitPending != nil {
			testHookExitPending()
		}
		if interrupted {
			err = e.undoInterrupted(rec)
		} else {
			err = e.waitRun(rec, stored.Pid, stored.PidStart)
		}
		if err != nil {
			return nil, nil, err
		}
	}
}

// testHookExitPending runs when settled has found a run whose end is not
// recorded and let go of the lock: a test plays the exit command there.
var testHookExitPending func()

// waitRun waits until the stored state no longer names the run pid/start
// (its exit command recorded it), or does it itself when the monitor that
// would has died.
func (e *Engine) waitRun(rec *store.Record, pid int, start uint64) error {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		st, err := e.Store.ReadState(rec.ID)
		if err != nil {
			return err
		}
		if st.Pid != pid || st.PidStart != start {
			return nil
		}
		if !st.MonitorAlive() {
			return nil // settled's reconcile finishes it
		}
	}
	return fmt.Errorf("container %s: the end of its previous run was not recorded within 30 s (see %s/monitor.log)", rec.ID[:12], e.Store.LiveDir(rec.ID))
}

// undoInterrupted ends the run of a create whose command died while it
// waited for the report: it kills the init the spine recorded (if there
// is one yet: the monitor may still be creating it), and waits until the
// monitor, seeing it exit, has recorded it and ended.
func (e *Engine) undoInterrupted(rec *store.Record) error {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if pid := spine.InitPid(e.SpineDir(rec.ID)); pid > 0 {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
		st, err := e.Store.ReadState(rec.ID)
		if err != nil {
			return err
		}
		if st.Pid != 0 || st.Status != store.Created || !st.MonitorAlive() {
			return nil
		}
	}
	return fmt.Errorf("container %s: the monitor of an interrupted create did not end within 30 s (see %s/monitor.log)", rec.ID[:12], e.Store.LiveDir(rec.ID))
}
