//go:build linux

// Package events is berth's event journal, what `docker events` shows:
// one JSON line per event (create, start, die, oom, kill, stop, destroy,
// pause, unpause, rename, exec_create, exec_start, exec_die), appended by
// whichever berth process made it happen, in
// <state-root>/events.jsonl. Without a daemon there is no one to hold
// the events in memory: the file is the stream. It is bounded: past
// MaxSize it is renamed to events.jsonl.1 (the one before is dropped),
// under a lock, so that a reader sees every event of the last two files.
package events

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// An Event is one line of the journal, in the Engine API's shape
// (events.Message).
type Event struct {
	Type   string `json:"Type"`   // "container"
	Action string `json:"Action"` // "start", "die", "exec_start: sh"...
	Actor  Actor  `json:"Actor"`
	Scope  string `json:"scope"`
	// Time and TimeNano are when it happened (seconds, nanoseconds).
	Time     int64 `json:"time"`
	TimeNano int64 `json:"timeNano"`
}

// Actor is what the event is about: the container, and attributes
// (name, image, exitCode, signal, execID).
type Actor struct {
	ID         string            `json:"ID"`
	Attributes map[string]string `json:"Attributes"`
}

// File is the journal's name in the state root.
const File = "events.jsonl"

// MaxSize is the journal's bound before it is rotated.
var MaxSize int64 = 1 << 20

// Append writes one event. Errors are the caller's to ignore: an event
// that cannot be written must not fail what it reports.
func Append(stateRoot, action, id string, attrs map[string]string) error {
	now := time.Now()
	ev := Event{Type: "container", Action: action, Actor: Actor{ID: id, Attributes: attrs}, Scope: "local",
		Time: now.Unix(), TimeNano: now.UnixNano()}
	line, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	line = append(line, '\n')
	p := filepath.Join(stateRoot, File)
	lock, err := os.OpenFile(p+".lock", os.O_CREATE|os.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("events: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("events: lock: %w", err)
	}
	if st, err := os.Stat(p); err == nil && st.Size()+int64(len(line)) > MaxSize {
		if err := os.Rename(p, p+".1"); err != nil {
			return fmt.Errorf("events: rotate: %w", err)
		}
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("events: %w", err)
	}
	if _, err := f.Write(line); err != nil {
		f.Close()
		return fmt.Errorf("events: %w", err)
	}
	return f.Close()
}

// Read calls fn for every event from since (zero: all) in order, then,
// with follow, for every new one until stop is closed or until passes.
func Read(stateRoot string, since, until time.Time, follow bool, stop <-chan struct{}, fn func(Event) error) error {
	p := filepath.Join(stateRoot, File)
	emit := func(ev Event) (bool, error) {
		t := time.Unix(0, ev.TimeNano)
		if !since.IsZero() && t.Before(since) {
			return false, nil
		}
		if !until.IsZero() && t.After(until) {
			return true, nil
		}
		return false, fn(ev)
	}
	// The rotated file, then the current one.
	if done, err := readAll(p+".1", emit); err != nil || done {
		return err
	}
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) && follow {
		for err != nil {
			if waitOrStop(stop, until) {
				return nil
			}
			f, err = os.Open(p)
		}
	} else if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer func() { f.Close() }()
	r := bufio.NewReader(f)
	var partial []byte
	for {
		line, err := r.ReadBytes('\n')
		partial = append(partial, line...)
		if err == nil {
			var ev Event
			if json.Unmarshal(partial, &ev) == nil {
				if done, ferr := emit(ev); ferr != nil || done {
					return ferr
				}
			}
			partial = partial[:0]
			continue
		}
		if !errors.Is(err, io.EOF) {
			return err
		}
		if !follow || waitOrStop(stop, until) {
			return nil
		}
		// Rotated meanwhile: go on in the new file.
		if rotated(f, p) {
			f.Close()
			if f, err = os.Open(p); err != nil {
				return err
			}
			r.Reset(f)
			partial = partial[:0]
		}
	}
}

func readAll(p string, emit func(Event) (bool, error)) (bool, error) {
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		var ev Event
		if json.Unmarshal(sc.Bytes(), &ev) != nil {
			continue
		}
		if done, err := emit(ev); err != nil || done {
			return done, err
		}
	}
	return false, sc.Err()
}

// waitOrStop waits a moment; true means stop (closed, or until passed).
func waitOrStop(stop <-chan struct{}, until time.Time) bool {
	select {
	case <-stop:
		return true
	case <-time.After(100 * time.Millisecond):
	}
	return !until.IsZero() && time.Now().After(until)
}

// rotated reports whether p is no longer the file f has open.
func rotated(f *os.File, p string) bool {
	a, err1 := f.Stat()
	b, err2 := os.Stat(p)
	return err1 == nil && err2 == nil && !os.SameFile(a, b)
}
