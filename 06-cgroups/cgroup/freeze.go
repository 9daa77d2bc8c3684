//go:build linux

package cgroup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// What stops a group's processes: kill them all, or freeze them and thaw
// them again. Each waits until the kernel says it is done, as long as its
// context lets it.

// Kill sends SIGKILL to every process left in the group and waits until
// it is empty (10 seconds at most, or until ctx ends). Without a PID
// namespace, children of the container's init outlive it; and a group with
// members cannot be removed.
func (g *Group) Kill(ctx context.Context) error {
	if pids, err := g.Procs(); err == nil && len(pids) == 0 {
		return nil // the usual case: nothing outlived the init
	}
	if g.v2 != nil {
		if err := g.v2.Kill(); err != nil { // cgroup.kill (5.14+), else freeze+kill+thaw
			return fmt.Errorf("kill cgroup %s: %w", g.path, err)
		}
	} else {
		// Freeze first so nothing forks while we kill; frozen tasks die
		// when thawed. The freeze is bounded: a task in uninterruptible
		// sleep (an execve in progress) keeps the group FREEZING, and the
		// library's freeze waits for FROZEN for ever (a start/exit race
		// hung berth's exit command there, holding the container's lock).
		frozen := g.freezeV1(ctx, 2*time.Second) == nil
		pids, err := g.Procs()
		for _, pid := range pids {
			_ = unix.Kill(pid, unix.SIGKILL) // ESRCH: already gone
		}
		if frozen {
			if terr := g.v1.Thaw(); terr != nil && err == nil {
				err = terr
			}
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("kill cgroup %s: %w", g.path, err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids, err := g.Procs()
		if err != nil || len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup %s: processes %v still alive 10s after SIGKILL", g.path, pids)
		}
		if err := sleep(ctx, 5*time.Millisecond); err != nil {
			return fmt.Errorf("cgroup %s: waiting for processes %v to die: %w", g.path, pids, err)
		}
	}
}

// freezeV1 asks the v1 freezer to freeze the group and waits at most d
// (or until ctx ends) for it to say FROZEN.
func (g *Group) freezeV1(ctx context.Context, d time.Duration) error {
	f := filepath.Join(Root, "freezer", g.path, "freezer.state")
	if err := os.WriteFile(f, []byte("FROZEN"), 0); err != nil {
		return fmt.Errorf("freeze %s: %w", f, err)
	}
	for deadline := time.Now().Add(d); ; {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("read %s: %w", f, err)
		}
		if strings.TrimSpace(string(b)) == "FROZEN" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not FROZEN after %v", f, d)
		}
		if err := sleep(ctx, time.Millisecond); err != nil {
			return err
		}
	}
}

// sleep waits d, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Freeze stops every process of the group (v1 freezer.state, v2
// cgroup.freeze); Thaw lets them go on.
//
// v1's freezer.state reads FREEZING until every task is frozen, and the
// library waits for FROZEN. v2's cgroup.freeze reads back what was asked
// at once; the tasks are frozen when cgroup.events says "frozen 1", so
// that is what v2 waits for, 10 seconds at most, or until ctx ends. (v1's
// wait is the library's, which takes no context.)
func (g *Group) Freeze(ctx context.Context) error {
	if g.v2 == nil {
		return g.v1.Freeze()
	}
	if err := g.v2.Freeze(); err != nil {
		return err
	}
	return g.waitFrozen(ctx, true)
}

// Thaw lets the processes of a frozen group go on (see Freeze).
func (g *Group) Thaw(ctx context.Context) error {
	if g.v2 == nil {
		return g.v1.Thaw()
	}
	if err := g.v2.Thaw(); err != nil {
		return err
	}
	return g.waitFrozen(ctx, false)
}

func (g *Group) waitFrozen(ctx context.Context, want bool) error {
	f := filepath.Join(Root, g.path, "cgroup.events")
	line := "frozen 0"
	if want {
		line = "frozen 1"
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), line) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: no %q after 10s", f, line)
		}
		if err := sleep(ctx, time.Millisecond); err != nil {
			return fmt.Errorf("%s: waiting for %q: %w", f, line, err)
		}
	}
}

// Frozen reports whether the group is frozen.
func (g *Group) Frozen() (bool, error) {
	f, want := filepath.Join(Root, "freezer", g.path, "freezer.state"), "FROZEN"
	if g.mode.Unified() {
		f, want = filepath.Join(Root, g.path, "cgroup.freeze"), "1"
	}
	b, err := os.ReadFile(f)
	if err != nil {
		return false, err
	}
	return strings.TrimSpace(string(b)) == want, nil
}
