//go:build linux

// Package lockfile is the one way berth processes exclude each other: an
// flock(2) on a file. Every stage takes one somewhere: the spine's
// container lock (01), the address leases (04), the overlay probe (07), the
// image store's index and its garbage collector (08), a build's RUN
// containers (08).
//
// flock belongs to the open file, not to the process: two opens of the
// same file in one process exclude each other too, and the kernel drops
// the lock when the last descriptor of that open is closed, however the
// process ends. So a lock that can be taken means its last holder is gone,
// which is how a later run knows what a killed one left (Held).
//
// A lock file may be removed by its holder (a build removes a RUN's lock
// when its layer is gone): whoever opened it before the removal and waited
// would then hold a lock on a name that no longer exists. So a lock counts
// only if the path still names the file locked; if not, the new file is
// opened and locked instead.
package lockfile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Mode is how a lock is held: many Shared holders at once, or one
// Exclusive holder alone.
type Mode int

const (
	Shared    Mode = unix.LOCK_SH
	Exclusive Mode = unix.LOCK_EX
)

// ErrHeld: the lock is held by another open of the file (TryAcquire).
var ErrHeld = fmt.Errorf("held by another process: %w", unix.EWOULDBLOCK)

// A Lock is a held lock on a file.
type Lock struct {
	f    *os.File
	path string
}

// Acquire opens path (creating it, mode 0600; its directory must exist) and
// takes the lock in mode m, waiting as long as another process holds it.
// A ctx that can end (a daemon's request, a Ctrl-C) ends the wait: the
// lock is then tried every few milliseconds instead of waited for in the
// kernel, which no context can interrupt.
func Acquire(ctx context.Context, path string, m Mode) (*Lock, error) {
	if ctx.Done() == nil {
		return lock(path, m, true, true)
	}
	delay := time.Millisecond
	for {
		l, err := lock(path, m, true, false)
		if !errors.Is(err, ErrHeld) {
			return l, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("lock %s: %w", path, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}

// TryAcquire is Acquire without the wait: ErrHeld when another process holds
// the lock.
func TryAcquire(path string, m Mode) (*Lock, error) {
	return lock(path, m, true, false)
}

// TryAcquireExisting is TryAcquire on a file that must exist already: a
// missing one is an error (os.ErrNotExist), never created. It is how one
// process looks at a lock another made (the spine's Collect).
func TryAcquireExisting(path string, m Mode) (*Lock, error) {
	return lock(path, m, false, false)
}

// Held reports whether some process holds a lock on path: a shared lock
// cannot be taken at once. A missing file is not held. This is the
// liveness probe of a lock its holder keeps for as long as it lives.
func Held(path string) bool {
	l, err := lock(path, Shared, false, false)
	if err == nil {
		l.Unlock()
	}
	return errors.Is(err, ErrHeld)
}

func lock(path string, m Mode, create, wait bool) (*Lock, error) {
	flags := os.O_RDWR
	if create {
		flags |= os.O_CREATE
	}
	for {
		f, err := os.OpenFile(path, flags, 0o600)
		if err != nil {
			return nil, fmt.Errorf("open lock %s: %w", path, err)
		}
		how := int(m)
		if !wait {
			how |= unix.LOCK_NB
		}
		for {
			err = unix.Flock(int(f.Fd()), how)
			if !errors.Is(err, unix.EINTR) {
				break
			}
		}
		if errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, ErrHeld
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		var locked, now unix.Stat_t
		if unix.Fstat(int(f.Fd()), &locked) == nil && unix.Stat(path, &now) == nil &&
			locked.Dev == now.Dev && locked.Ino == now.Ino {
			return &Lock{f: f, path: path}, nil
		}
		// Removed (or replaced) while we waited: that lock guards nothing.
		f.Close()
		if !create {
			return nil, fmt.Errorf("open lock %s: %w", path, os.ErrNotExist)
		}
	}
}

// Path is the lock file's name.
func (l *Lock) Path() string { return l.path }

// Unlock lets the lock go; twice is fine.
func (l *Lock) Unlock() {
	if l != nil && l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// Remove deletes the lock file, then lets the lock go: no one who opens
// the name afterwards locks this file (see the package comment).
func (l *Lock) Remove() {
	if l != nil && l.f != nil {
		_ = os.Remove(l.path)
		l.Unlock()
	}
}
