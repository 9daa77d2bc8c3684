//go:build linux

package monitor

import (
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// A reaper waits for every child, and, as a subreaper, for every orphan
// of the container's that is reparented here (its init once `internal
// create` has exited, slirp4netns): no zombie stays. Those the monitor
// waits for by pid get their status; a status may come before anyone asks
// for it (an init that dies at once), so it is kept until taken.
type reaper struct {
	mu     sync.Mutex
	cond   *sync.Cond
	status map[int]syscall.WaitStatus
}

func newReaper() *reaper {
	r := &reaper{status: map[int]syscall.WaitStatus{}}
	r.cond = sync.NewCond(&r.mu)
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, unix.SIGCHLD)
	go func() {
		for range sigs {
			r.reap()
		}
	}()
	return r
}

// reap collects every child that has exited (SIGCHLDs merge).
func (r *reaper) reap() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		r.mu.Lock()
		r.status[pid] = syscall.WaitStatus(ws)
		r.cond.Broadcast()
		r.mu.Unlock()
	}
}

// wait waits for pid's status, as its own or an adopted child's.
func (r *reaper) wait(pid int) syscall.WaitStatus {
	r.reap() // a SIGCHLD may have come before Notify
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		if ws, ok := r.status[pid]; ok {
			delete(r.status, pid)
			return ws
		}
		r.cond.Wait()
	}
}

// forget drops the statuses nobody will ask for (orphans of the container).
func (r *reaper) forget(keep int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for pid := range r.status {
		if pid != keep {
			delete(r.status, pid)
		}
	}
}

// code is a status as a shell reports it: the exit code, or 128+N.
func code(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
