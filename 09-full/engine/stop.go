//go:build linux

package engine

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"berth/01-uts/spine/proc"
	"berth/09-full/store"
)

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
	if err != nil {
		return err
	}
	if st == nil {
		// Not running; its end may still be on its way to the record.
		return e.waitRecorded(rec)
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
	if err := e.waitRecorded(rec); err != nil {
		return err
	}
	e.event(rec, "stop", nil)
	return nil
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
	// Stopped by hand: said in the stored state before anything else,
	// whatever the container is doing, so that the exit command (which
	// may be about to decide on a restart: the init has just exited) or
	// the next restart (between two runs) sees it.
	if stopped {
		stored, err := e.Store.ReadState(rec.ID)
		if err != nil {
			return nil, err
		}
		if (stored.Running() || stored.Status == store.Restarting) && !stored.ManuallyStopped {
			stored.ManuallyStopped = true
			if stored.Status == store.Restarting {
				stored.Status = store.Exited
			}
			if err := e.Store.WriteState(rec.ID, stored); err != nil {
				return nil, err
			}
		}
	}
	if !st.Running() {
		return nil, nil
	}
	if st.Status == store.Paused && (sig != unix.SIGKILL) {
		// A frozen process takes the signal only once thawed.
		if err := e.freeze(rec, false); err != nil {
			return nil, err
		}
	}
	if err := SignalRun(st.Pid, st.PidStart, sig); err != nil {
		return nil, err
	}
	e.event(rec, "kill", map[string]string{"signal": strconv.Itoa(int(sig))})
	return st, nil
}

// SignalRun sends sig to the process pid if it is still the one that
// started at start: through a pidfd, which names one process for good,
// taken before the start time is checked again. kill(2) by pid, after a
// check, could reach a stranger that got the pid in between. Gone is no
// error.
func SignalRun(pid int, start uint64, sig syscall.Signal) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	defer unix.Close(fd)
	if now, err := proc.StartTime(pid); err != nil || now != start {
		return nil // another process has the pid now: not ours to signal
	}
	if err := unix.PidfdSendSignal(fd, sig, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("signal %d: %w", pid, err)
	}
	return nil
}

// Kill sends sig to a running container (Docker's kill).
func (e *Engine) Kill(ref string, sig syscall.Signal) error {
	rec, err := e.Store.Get(ref)
	if err != nil {
		return err
	}
	cfg, err := ConfigOf(rec)
	if err != nil {
		return err
	}
	stopSig, err := StopSignal(cfg)
	if err != nil {
		return err
	}
	// Only a signal that ends it says "stopped by hand", as Docker: a HUP
	// that asks a server to reload its configuration must leave the
	// restart policy on.
	st, err := e.signal(rec, sig, sig == unix.SIGKILL || sig == stopSig)
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
