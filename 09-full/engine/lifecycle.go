//go:build linux

package engine

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"berth/01-uts/spine"
	"berth/01-uts/spine/proc"
	"berth/06-cgroups/cgroup"
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
	return e.createLocked(rec, st)
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
	return e.Store.WriteState(id, st)
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

// StopSignal is the container's stop signal (SIGTERM unless set).
func StopSignal(cfg *Config) (syscall.Signal, error) {
	if cfg.Settings.StopSignal == "" {
		return unix.SIGTERM, nil
	}
	return ParseSignal(cfg.Settings.StopSignal)
}

// ParseSignal reads a signal as Docker takes it: KILL, SIGKILL, 9.
func ParseSignal(s string) (syscall.Signal, error) {
	if n, err := parseUint(s); err == nil {
		if n < 1 || n > 64 {
			return 0, fmt.Errorf("invalid signal: %s", s)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("invalid signal: %s", s)
}

func parseUint(s string) (int, error) {
	n := 0
	if s == "" {
		return 0, errors.New("empty")
	}
	for _, c := range s {
		if c < '0' || c > '9' || n > 1000 {
			return 0, errors.New("not a number")
		}
		n = n*10 + int(c-'0')
	}
	return n, nil
}

// Stop sends the stop signal, waits up to timeout (the container's own
// when nil: --stop-timeout, else 10 s), then SIGKILL, and waits until the
// exit is recorded. The restart policy rests until the next start.
func (e *Engine) Stop(ref string, timeout *int) error {
	rec, err := e.Store.Get(ref)
	if err != nil {
		return err
	}
	id := rec.ID
	cfg, err := ConfigOf(rec)
	if err != nil {
		return err
	}
	sig, err := StopSignal(cfg)
	if err != nil {
		return err
	}
	t := 10
	if cfg.Settings.StopTimeout != nil {
		t = *cfg.Settings.StopTimeout
	}
	if timeout != nil {
		t = *timeout
	}
	st, err := e.signal(rec, sig, true)
	if err != nil || st == nil {
		return err
	}
	if t < 0 {
		t = 1 << 30 // -1: wait for ever, as Docker
	}
	if !e.waitExit(id, time.Duration(t)*time.Second) {
		if _, err := e.signal(rec, unix.SIGKILL, true); err != nil {
			return err
		}
		if !e.waitExit(id, 30*time.Second) {
			return fmt.Errorf("container %s did not exit 30 s after SIGKILL", id[:12])
		}
	}
	return e.waitRecorded(rec)
}

// signal sends sig to the container's init under the lock; stopped marks
// the restart policy off. It returns nil (and no error) when the container
// does not run.
func (e *Engine) signal(rec *store.Record, sig syscall.Signal, stopped bool) (*store.State, error) {
	unlock, err := e.Store.Lock(rec.ID)
	if err != nil {
		return nil, err
	}
	defer unlock()
	st, err := e.reconcile(rec)
	if err != nil {
		return nil, err
	}
	if st.Status == store.Restarting && stopped {
		// Between two runs: the monitor's next restart sees this and
		// does not happen.
		st.Status, st.ManuallyStopped = store.Exited, true
		return nil, e.Store.WriteState(rec.ID, st)
	}
	if !st.Running() {
		return nil, nil
	}
	if stopped && !st.ManuallyStopped {
		stored, err := e.Store.ReadState(rec.ID)
		if err != nil {
			return nil, err
		}
		stored.ManuallyStopped = true
		if err := e.Store.WriteState(rec.ID, stored); err != nil {
			return nil, err
		}
	}
	if st.Status == store.Paused && (sig != unix.SIGKILL) {
		// A frozen process takes the signal only once thawed.
		if err := e.freeze(rec, false); err != nil {
			return nil, err
		}
	}
	if err := unix.Kill(st.Pid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
		return nil, fmt.Errorf("kill %d: %w", st.Pid, err)
	}
	return st, nil
}

// Kill sends sig to a running container (Docker's kill).
func (e *Engine) Kill(ref string, sig syscall.Signal) error {
	rec, err := e.Store.Get(ref)
	if err != nil {
		return err
	}
	st, err := e.signal(rec, sig, true)
	if err != nil {
		return err
	}
	if st == nil {
		return fmt.Errorf("cannot kill container: %s: container %s is not running", ref, rec.ID)
	}
	return nil
}

// waitExit waits up to d for the container to stop running.
func (e *Engine) waitExit(id string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		st, err := e.Store.View(id)
		if err != nil || !st.Running() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitRecorded waits until the exit command has written the container's
// end down (its cleanup done), or does it itself when no monitor will.
func (e *Engine) waitRecorded(rec *store.Record) error {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		st, err := e.Store.ReadState(rec.ID)
		if errors.Is(err, store.ErrNotFound) {
			return nil // --rm took it
		}
		if err != nil {
			return err
		}
		if !st.Running() {
			return nil
		}
		if v, err := e.Store.View(rec.ID); err == nil && !v.MonitorAlive() {
			unlock, err := e.Store.Lock(rec.ID)
			if err != nil {
				return nil
			}
			_, err = e.reconcile(rec)
			unlock()
			return err
		}
	}
	return fmt.Errorf("container %s: its exit was not recorded within 30 s (see %s/monitor.log)", rec.ID[:12], e.Store.LiveDir(rec.ID))
}

// Wait blocks until the container is not running and returns its exit
// code (Docker's wait).
func (e *Engine) Wait(id string) (int, error) {
	rec, err := e.Store.Get(id)
	if err != nil {
		return 0, err
	}
	for {
		st, err := e.Store.View(rec.ID)
		if errors.Is(err, store.ErrNotFound) {
			return 0, err
		}
		if err != nil {
			return 0, err
		}
		if !st.Running() && st.Status != store.Restarting {
			if err := e.waitRecorded(rec); err != nil {
				return 0, err
			}
			if s, err := e.Store.ReadState(rec.ID); err == nil {
				return s.ExitCode, nil
			}
			return st.ExitCode, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Remove removes a container; a running one only with force (SIGKILL
// first). With volumes, its anonymous volumes go too.
func (e *Engine) Remove(id string, force, volumes bool) error {
	rec, err := e.Store.Get(id)
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
			err = unix.Kill(st.Pid, unix.SIGKILL)
			if errors.Is(err, unix.ESRCH) {
				err = nil
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
	if on {
		stored.Status = store.Paused
	}
	return e.Store.WriteState(rec.ID, stored)
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
		return g.Freeze()
	}
	return g.Thaw()
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
