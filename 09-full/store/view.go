package store

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"berth/01-uts/spine/proc"
)

// The stored state says what the last command that changed it saw. What
// is true now also depends on processes that may have died since, with
// nobody to write it down: the init (is it the same process, in this
// boot?), the monitor (it writes the exit file the moment the init exits,
// before its exit command has updated state.json), and a reboot (the
// state root, a tmpfs, is empty). View merges them.

// ExitFile is the monitor's record of the init's exit, in the live
// directory: {"exitCode":N,"finishedAt":"..."}.
const ExitFile = "exit"

// An Exit is what the monitor wrote when the init exited.
type Exit struct {
	ExitCode   int       `json:"exitCode"`
	FinishedAt time.Time `json:"finishedAt"`
}

// ReadExit returns the monitor's exit record, or nil when there is none.
func (s *Store) ReadExit(id string) *Exit {
	var e Exit
	if err := readJSON(filepath.Join(s.LiveDir(id), ExitFile), &e); err != nil {
		return nil
	}
	return &e
}

// AppendExit is how the monitor writes its exit file: by hand, without
// encoding/json (a small monitor), read back by ReadExit.
func AppendExit(b []byte, code int, at time.Time) []byte {
	b = append(b, `{"exitCode":`...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, `,"finishedAt":"`...)
	b = at.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, "\"}\n"...)
}

// ExitUnknown is the exit code of a container whose end nobody saw (its
// monitor died, the host rebooted), as Docker shows such a container.
const ExitUnknown = 255

// MonitorDied is the error a container shows once its monitor is gone.
const MonitorDied = "the container's monitor died: its logs, attach and restart policy are gone (stop or rm still work)"

// View is the container's state as it is now.
func (s *Store) View(id string) (*State, error) {
	st, err := s.ReadState(id)
	if err != nil {
		return nil, err
	}
	return s.view(id, st), nil
}

func (s *Store) view(id string, st *State) *State {
	switch st.Status {
	case Running, Paused, Restarting, Removing:
	default:
		return st
	}
	rebooted := st.BootID != "" && st.BootID != proc.BootID()
	monitorAlive := !rebooted && st.MonitorPid > 0 && proc.Running(st.MonitorPid, st.MonitorStart, st.BootID)
	if ex := s.ReadExit(id); ex != nil && !rebooted && !ex.FinishedAt.Before(st.StartedAt) && st.Status != Restarting {
		// The monitor saw it exit; its exit command has not yet written
		// it down (or was killed before it could).
		st.Status, st.ExitCode, st.FinishedAt = Exited, ex.ExitCode, ex.FinishedAt
		st.Pid = 0
		if !monitorAlive {
			st.Error = MonitorDied
		}
		return st
	}
	if st.Status == Restarting {
		if !monitorAlive {
			st.Status, st.Error = Exited, MonitorDied
		}
		return st
	}
	if rebooted || !proc.Running(st.Pid, st.PidStart, st.BootID) {
		// Nobody recorded its end: the host went down, or the monitor died
		// and so could not.
		st.Status, st.ExitCode, st.Pid = Exited, ExitUnknown, 0
		if st.FinishedAt.IsZero() || st.FinishedAt.Before(st.StartedAt) {
			st.FinishedAt = time.Time{}
		}
		if !rebooted {
			st.Error = MonitorDied
		}
		return st
	}
	if !monitorAlive && st.MonitorPid > 0 {
		st.Error = MonitorDied
	}
	return st
}

// Running reports whether st is a container whose processes run.
func (st *State) Running() bool {
	return st.Status == Running || st.Status == Paused
}

// MonitorAlive reports whether the container's monitor still runs.
func (st *State) MonitorAlive() bool {
	return st.MonitorPid > 0 && proc.Running(st.MonitorPid, st.MonitorStart, st.BootID)
}

// ClearLive makes a fresh live directory for a run of the container (its
// monitor's socket and exit file).
func (s *Store) ClearLive(id string) (string, error) {
	dir := s.LiveDir(id)
	if err := os.RemoveAll(dir); err != nil {
		return "", fmt.Errorf("remove %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create %s: %w", dir, err)
	}
	return dir, nil
}
