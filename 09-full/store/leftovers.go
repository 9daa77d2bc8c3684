package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// A record that is there but cannot be read, and a name reserved by a
// create that died before it wrote its record: what is left of a
// container that never fully existed, and how it goes.

// ErrUnreadable: a container whose record is there but cannot be read
// (too big, not JSON). Only rm takes it (RemoveUnreadable).
var ErrUnreadable = errors.New("unreadable container record")

// Unreadable is the error of a record that does not decode.
type Unreadable struct {
	ID  string
	Err error
}

func (e *Unreadable) Error() string {
	return fmt.Sprintf("container %s: its record cannot be read (rm removes it): %v", e.ID[:12], e.Err)
}

func (e *Unreadable) Is(target error) bool { return target == ErrUnreadable }

func (e *Unreadable) Unwrap() error { return e.Err }

// RemoveUnreadable removes container id whose record cannot be read:
// cleanup first (the caller's: what its steps left), then its directory,
// its live directory and every name that points at it. One whose stored
// state says it runs is left alone.
func (s *Store) RemoveUnreadable(id string, cleanup func() error) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("invalid container id %q", id)
	}
	if st, err := s.View(id); err == nil && (st.Running() || st.MonitorAlive()) {
		return fmt.Errorf("container %s: its record cannot be read, and it still runs (pid %d): stop it by hand first", id[:12], st.Pid)
	}
	if err := cleanup(); err != nil {
		return err
	}
	names := filepath.Join(s.DataRoot, "containers", "names")
	entries, err := os.ReadDir(names)
	if err != nil {
		return fmt.Errorf("read %s: %w", names, err)
	}
	for _, e := range entries {
		if b, err := os.ReadFile(filepath.Join(names, e.Name())); err == nil && strings.TrimSpace(string(b)) == id {
			if err := os.Remove(filepath.Join(names, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("release name %s: %w", e.Name(), err)
			}
		}
	}
	for _, d := range []string{s.LiveDir(id), s.Dir(id)} {
		if err := os.RemoveAll(d); err != nil {
			return fmt.Errorf("remove %s: %w", d, err)
		}
	}
	return nil
}

// staleAfter is how old a name's reservation must be, its record still
// missing, to be a dead create's: a create writes its record
// milliseconds after it reserves the name.
const staleAfter = time.Minute

// dropStale removes the reservation of name if it is stale: older than
// staleAfter and naming a container with no record. It reports whether
// it did. It holds a lock on the names directory while it checks and
// removes, so two creates cannot both judge one file stale and the
// second remove the first one's fresh reservation.
func (s *Store) dropStale(name string) (bool, error) {
	dir := filepath.Join(s.DataRoot, "containers", "names")
	d, err := os.Open(dir)
	if err != nil {
		return false, fmt.Errorf("open %s: %w", dir, err)
	}
	defer d.Close()
	if err := unix.Flock(int(d.Fd()), unix.LOCK_EX); err != nil {
		return false, fmt.Errorf("lock %s: %w", dir, err)
	}
	p := s.namePath(name)
	fi, err := os.Lstat(p)
	if err != nil || !fi.Mode().IsRegular() || time.Since(fi.ModTime()) < staleAfter {
		return false, nil
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return false, nil
	}
	id := strings.TrimSpace(string(b))
	if idPattern.MatchString(id) {
		if _, err := os.Lstat(filepath.Join(s.Dir(id), "config.json")); !errors.Is(err, os.ErrNotExist) {
			return false, nil // a container has it (or we cannot tell)
		}
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("release the stale name %s: %w", name, err)
	}
	return true, nil
}
