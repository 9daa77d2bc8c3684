//go:build linux

package spine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth/01-uts/spine/proc"
)

// The exec FIFO is runc's way to split create from start, and berth's. The
// parent makes a named pipe in the container's state directory and passes
// the init a descriptor of it (O_PATH: it opens nothing yet). When set up,
// the init opens it for writing through /proc/self/fd, which blocks until
// a reader comes: the init waits there, inside every namespace, its
// command found, its root pivoted. Start is whoever opens the FIFO for
// reading, from any process that can reach the state directory: the open
// unblocks the init, which writes one byte and goes on to execve. The
// reader removes the FIFO once it has the byte, so a second start finds
// nothing to open.

// FifoName is the exec FIFO's name in a container's state directory.
const FifoName = "exec.fifo"

// makeExecFifo creates the FIFO and opens it O_PATH for the init. The
// container's root must be able to open it: in a user namespace that is
// another host uid than ours, so it owns the FIFO.
func makeExecFifo(c *Container) (*os.File, error) {
	p := filepath.Join(c.StateDir(), FifoName)
	if err := unix.Mkfifo(p, 0o600); err != nil {
		return nil, fmt.Errorf("mkfifo %s: %w", p, err)
	}
	if uid, gid, ok := containerRoot(c.Spec); ok && os.Geteuid() == 0 {
		if err := os.Lchown(p, int(uid), int(gid)); err != nil {
			return nil, fmt.Errorf("chown %s to the container's root: %w", p, err)
		}
	}
	fd, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", p, err)
	}
	return os.NewFile(uintptr(fd), p), nil
}

// containerRoot is the host uid and gid of the container's root, when it
// has a user namespace of its own.
func containerRoot(spec *specs.Spec) (uid, gid uint32, ok bool) {
	if spec.Linux == nil || len(spec.Linux.UIDMappings) == 0 {
		return 0, 0, false
	}
	uid, uok := toHost(spec.Linux.UIDMappings, 0)
	gid, gok := toHost(spec.Linux.GIDMappings, 0)
	return uid, gid, uok && gok
}

func toHost(m []specs.LinuxIDMapping, id uint32) (uint32, bool) {
	for _, l := range m {
		if id >= l.ContainerID && id-l.ContainerID < l.Size {
			return l.HostID + id - l.ContainerID, true
		}
	}
	return 0, false
}

// waitStart is the init's side: block until started. The FIFO's path is
// on the host and the init has pivoted away from it; its descriptor still
// names it, and /proc/self/fd reopens it for writing. The write end stays
// open, close-on-exec, until the command runs (execve closes it, or
// Started for an init that runs the command as its child): Start reads to
// its end, so a start returns once the command runs, as runc's does. A
// signal sent after start then reaches the command, not a Go init that
// would die of it with status 2.
func waitStart() error {
	path := fmt.Sprintf("/proc/self/fd/%d", fifoFd())
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open the exec FIFO (%s): %w", path, err)
	}
	unix.Close(fifoFd())
	if _, err := unix.Write(fd, []byte{'0'}); err != nil {
		unix.Close(fd)
		return fmt.Errorf("write to the exec FIFO: %w", err)
	}
	startedFd = fd
	return nil
}

// startedFd is the FIFO's write end after waitStart, until the command runs.
var startedFd = -1

// closeStarted closes it: the command runs.
func closeStarted() {
	if startedFd >= 0 {
		unix.Close(startedFd)
		startedFd = -1
	}
}

// ErrStarted: the container has been started already (its FIFO is gone).
var ErrStarted = errors.New("the container was started already")

// Start starts the created container of state directory dir whose init
// is pid: it opens the exec FIFO, waits for the init's byte, then for the
// FIFO's end, which comes when the init's execve closes its write end: the
// command runs when Start returns. It fails if the init dies before its
// byte, rather than waiting for a writer that will never come; otherwise
// it waits as long as the init takes (the poll's 100 ms is only how often
// it looks).
func Start(dir string, pid int) error {
	p := filepath.Join(dir, FifoName)
	// Non-blocking: the open returns at once, whether or not the init is
	// there to write; poll then waits for its byte.
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return ErrStarted
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", p, err)
	}
	defer unix.Close(fd)
	start, _ := proc.StartTime(pid)
	started := false // the init's byte came: now wait for the end
	for {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 100)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("poll %s: %w", p, err)
		}
		if n > 0 {
			buf := make([]byte, 1)
			n, err := unix.Read(fd, buf)
			if errors.Is(err, unix.EAGAIN) {
				continue
			}
			if err != nil {
				return fmt.Errorf("read %s: %w", p, err)
			}
			if n > 0 && !started {
				// Started: the FIFO's name goes, so no second start can
				// open it; the command runs when the write end closes.
				started = true
				if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
					return fmt.Errorf("remove %s: %w", p, err)
				}
				continue
			}
			if n == 0 {
				if started {
					// execve closed the write end (or the init ended
					// before it: its exit is the monitor's to record).
					return nil
				}
				// A writer came and went without its byte: another start
				// took it, or the init died on the way.
				if _, serr := os.Stat(p); errors.Is(serr, os.ErrNotExist) {
					return ErrStarted
				}
				return errors.New("the container's init closed its exec FIFO without starting")
			}
			continue
		}
		if !proc.Alive(pid, start) || proc.Zombie(pid) {
			if started {
				return nil
			}
			return errors.New("the container's init exited before it was started")
		}
	}
}
