//go:build linux

package nsenter

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"berth/01-uts/spine/proc"
	"berth/01-uts/spine/sealexe"
)

// A Namespace is a kind of namespace, named as in /proc/PID/ns.
type Namespace string

const (
	User   Namespace = "user"
	Mount  Namespace = "mnt"
	PID    Namespace = "pid"
	Net    Namespace = "net"
	IPC    Namespace = "ipc"
	UTS    Namespace = "uts"
	Cgroup Namespace = "cgroup"
	Time   Namespace = "time"
)

// flags maps each kind to its clone flag, in the order All lists them.
var flags = []struct {
	ns   Namespace
	flag uint32
}{
	{User, unix.CLONE_NEWUSER}, {Cgroup, unix.CLONE_NEWCGROUP}, {IPC, unix.CLONE_NEWIPC},
	{UTS, unix.CLONE_NEWUTS}, {Net, unix.CLONE_NEWNET}, {PID, unix.CLONE_NEWPID},
	{Time, unix.CLONE_NEWTIME}, {Mount, unix.CLONE_NEWNS},
}

// All lists every kind of namespace this package joins.
func All() []Namespace {
	out := make([]Namespace, len(flags))
	for i, f := range flags {
		out[i] = f.ns
	}
	return out
}

// A Target names the namespaces to join: those of a running process, or
// namespace files by path (an OCI config's "path", a bind mount under
// /run/netns), or both (a path replaces the process's file of its kind).
type Target struct {
	// Pid is a process whose namespaces to join (/proc/Pid/ns/*), usually
	// the container's init. 0: only Paths.
	Pid int
	// Start is Pid's start time (/proc/Pid/stat field 22), as the caller
	// recorded it with the pid: Start refuses a process that has the pid
	// now but started at another time (the init exited and the kernel gave
	// its pid to another process, maybe the host's). 0: not checked, for a
	// pid the caller has just read and named itself (nsjoin's --pid).
	Start uint64
	// Namespaces are the kinds to take from Pid; nil means every kind this
	// kernel has. The constructor skips any the caller is already in.
	Namespaces []Namespace
	// Paths are namespace files to join, by kind.
	Paths map[Namespace]string
}

// same checks, once the pidfd is open (it pins whatever process has the
// pid now), that this process is the one the caller meant: between the
// caller's liveness check and pidfd_open the init may have exited and
// its pid gone to another process, whose namespaces must not be joined.
func (t Target) same() error {
	if t.Start == 0 {
		return nil
	}
	now, err := proc.StartTime(t.Pid)
	if err != nil {
		return fmt.Errorf("nsenter: target process %d: %w", t.Pid, err)
	}
	if now != t.Start {
		return fmt.Errorf("nsenter: target process %d is not the one meant (it started at %d, not %d): the container's init has exited", t.Pid, now, t.Start)
	}
	return nil
}

// An order is one namespace to join.
type order struct {
	ns   Namespace
	flag uint32
	path string
}

func (t Target) orders() ([]order, error) {
	if t.Pid < 0 {
		return nil, fmt.Errorf("nsenter: target pid %d", t.Pid)
	}
	want := map[Namespace]string{}
	for k, p := range t.Paths {
		want[k] = p
	}
	if t.Pid > 0 {
		kinds := t.Namespaces
		if kinds == nil {
			for _, f := range flags {
				// /proc/self/ns/time is missing before Linux 5.6.
				if _, err := os.Lstat("/proc/self/ns/" + string(f.ns)); err == nil {
					kinds = append(kinds, f.ns)
				}
			}
		}
		for _, k := range kinds {
			if _, ok := want[k]; !ok {
				want[k] = fmt.Sprintf("/proc/%d/ns/%s", t.Pid, k)
			}
		}
	} else if t.Namespaces != nil {
		return nil, errors.New("nsenter: Target.Namespaces without a Pid")
	}
	var out []order
	for _, f := range flags {
		if p, ok := want[f.ns]; ok {
			out = append(out, order{f.ns, f.flag, p})
			delete(want, f.ns)
		}
	}
	for k := range want {
		return nil, fmt.Errorf("nsenter: unknown namespace kind %q (want one of %v)", k, All())
	}
	if len(out) == 0 {
		return nil, errors.New("nsenter: no namespace to join")
	}
	return out, nil
}

// A Cmd runs this binary (a sealed copy of it) once more, as a process
// inside the target's namespaces. The sequence is
//
//	Start     the constructor joins the namespaces and clones the final
//	          process, which waits; Pid names it
//	(caller)  put Pid in the container's cgroup, and anything else that
//	          must happen before it runs
//	Continue  the final process's Go runtime starts, its main() runs
//	          (Joined reports true there); the returned socket is the
//	          caller's to talk to it
//	Wait      its exit status: the caller is its parent
//
// After an error from Start or from the caller's own steps, call Kill and
// Wait if Pid is set.
type Cmd struct {
	Target Target
	// Args is the final process's argv, Args[0] included.
	Args []string
	// Env is the final process's environment; nil means os.Environ().
	Env []string
	// Stdin, Stdout and Stderr are the final process's; nil is /dev/null.
	// Files, not io.Readers: a copying goroutine would belong to the
	// short-lived intermediate process, not to the final one.
	Stdin, Stdout, Stderr *os.File
	// ExtraFiles become descriptors 3, 4, ... of the final process (OCI's
	// --preserve-fds). The socket to the caller comes after them.
	ExtraFiles []*os.File
	// Path is the binary to run; "" is this one. Either way a sealed
	// memfd copy of it runs, never the file itself.
	Path string

	// Pid is the final process, numbered in the caller's PID namespace.
	Pid int
	// Trace is what the constructor reported, step by step.
	Trace []string

	stage0  *exec.Cmd
	conn    *os.File
	proc    *os.Process
	handed  bool // Continue gave conn to the caller
	waited  bool
	exeCopy *os.File // a copy made for Path, closed after Start
}

// Start starts the process and returns once it is inside the namespaces
// and waiting for Continue, or with one error naming what failed. ctx
// bounds the wait for the constructor's report.
func (c *Cmd) Start(ctx context.Context) (err error) {
	if c.stage0 != nil {
		return errors.New("nsenter: Start called twice")
	}
	if len(c.Args) == 0 {
		return errors.New("nsenter: Cmd.Args is empty")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("nsenter: %w", err)
	}
	orders, err := c.Target.orders()
	if err != nil {
		return err
	}
	// A pidfd pins the target: if it is still alive after the
	// constructor opened /proc/PID/ns/*, the files were its, not those of
	// a process that got its PID after it exited.
	targetFd := -1
	if c.Target.Pid > 0 {
		targetFd, err = unix.PidfdOpen(c.Target.Pid, 0)
		if err != nil {
			return fmt.Errorf("nsenter: target process %d: %w", c.Target.Pid, err)
		}
		defer unix.Close(targetFd)
		if err := c.Target.same(); err != nil {
			return err
		}
	}
	exe, err := c.exe()
	if err != nil {
		return fmt.Errorf("nsenter: %w", err)
	}
	if c.exeCopy != nil {
		defer func() { c.exeCopy.Close(); c.exeCopy = nil }()
	}

	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("nsenter: socketpair: %w", err)
	}
	// Our end non-blocking, so that reads honour deadlines (ctx).
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return fmt.Errorf("nsenter: socketpair: %w", err)
	}
	c.conn = os.NewFile(uintptr(fds[0]), "nsenter")
	child := os.NewFile(uintptr(fds[1]), "nsenter-child")
	defer child.Close()
	defer func() {
		if err != nil {
			c.abort()
		}
	}()

	env := c.Env
	if env == nil {
		env = os.Environ()
	}
	env = withoutVar(env, envName)
	env = append(env, envName+"="+strconv.Itoa(3+len(c.ExtraFiles)))
	extra := append(append([]*os.File{}, c.ExtraFiles...), child)
	c.stage0 = &exec.Cmd{
		Args:       c.Args,
		Env:        env,
		Stdin:      c.Stdin,
		Stdout:     c.Stdout,
		Stderr:     c.Stderr,
		ExtraFiles: extra,
		// Stage 0 lives for a few milliseconds; if we die, so does it.
		SysProcAttr: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
	}
	// The sealed memfd, after the sync socket: execve runs it by its
	// number in the child (sealexe.StartFrom says why only that one).
	_ = sealexe.StartFrom(c.stage0, exe)
	if err := c.stage0.Start(); err != nil {
		c.stage0 = nil
		return fmt.Errorf("nsenter: start %s: %w", c.Args[0], err)
	}
	child.Close()

	stop := context.AfterFunc(ctx, func() { _ = c.conn.SetReadDeadline(time.Unix(1, 0)) })
	pid, reportErr := c.handshake(orders)
	// false: ctx ended, and the deadline is (being) set; Start fails.
	expired := !stop()
	if reportErr != nil || pid <= 0 {
		// Stage 0 exits after an ERROR; after anything else it may never
		// (a binary without the constructor runs its main()).
		_ = c.stage0.Process.Kill()
		_ = c.stage0.Wait()
		if expired {
			return fmt.Errorf("nsenter: %w", ctx.Err())
		}
		if reportErr == nil {
			reportErr = fmt.Errorf("nsenter: final process %d", pid)
		}
		return reportErr
	}
	// The final process is our child (CLONE_PARENT) and stays unreaped
	// until we wait for it: its pid cannot name anything else meanwhile.
	// From here on, abort kills and reaps it.
	c.Pid = pid
	if c.proc, err = os.FindProcess(pid); err != nil {
		_ = unix.Kill(pid, unix.SIGKILL)
		_, _ = unix.Wait4(pid, nil, 0, nil)
		_ = c.stage0.Wait()
		return fmt.Errorf("nsenter: final process %d: %w", pid, err)
	}
	// Stage 0 exits right after its report; reap it.
	if err := c.stage0.Wait(); err != nil {
		return fmt.Errorf("nsenter: the joining process: %w", err)
	}
	if expired {
		return fmt.Errorf("nsenter: %w", ctx.Err())
	}
	if targetFd >= 0 {
		if err := unix.PidfdSendSignal(targetFd, 0, nil, 0); err != nil {
			return fmt.Errorf("nsenter: target process %d exited while its namespaces were joined: %w", c.Target.Pid, err)
		}
	}
	return nil
}

// exe is the sealed binary to run.
func (c *Cmd) exe() (*os.File, error) {
	if c.Path == "" {
		return sealexe.SealedSelf()
	}
	f, err := sealexe.Seal(c.Path)
	c.exeCopy = f
	return f, err
}

// handshake sends the orders and reads the constructor's reports up to
// the final process's pid or the first error.
func (c *Cmd) handshake(orders []order) (int, error) {
	for _, o := range orders {
		p, err := joinPayload(o.flag, o.path)
		if err != nil {
			return 0, fmt.Errorf("nsenter: %s: %w", o.ns, err)
		}
		if err := writeFrame(c.conn, msgJoin, p); err != nil {
			return 0, c.lost(err)
		}
	}
	if err := writeFrame(c.conn, msgStart, binary.NativeEndian.AppendUint32(nil, version)); err != nil {
		return 0, c.lost(err)
	}
	for {
		f, err := readFrame(c.conn)
		if err != nil {
			return 0, c.lost(err)
		}
		switch f.typ {
		case msgLog:
			c.Trace = append(c.Trace, string(f.payload))
		case msgError:
			return 0, frameError(f.payload)
		case msgPid:
			if len(f.payload) != 4 {
				return 0, errors.New("nsenter: malformed pid report")
			}
			return int(int32(binary.NativeEndian.Uint32(f.payload))), nil
		default:
			return 0, fmt.Errorf("nsenter: unexpected message type %d", f.typ)
		}
	}
}

// lost explains a broken conversation: most likely the binary has no
// constructor (it does not import this package) and ran its main().
func (c *Cmd) lost(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return err // ctx ended: Start says so
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, unix.EPIPE) || errors.Is(err, unix.ECONNRESET) {
		return fmt.Errorf("nsenter: the joining process exited without a report (does %s import berth/09-full/nsenter?)", c.Args[0])
	}
	return fmt.Errorf("nsenter: talk to the joining process: %w", err)
}

// Continue lets the final process run: its Go runtime starts and its
// main() runs, with Joined() true. It returns the caller's end of the
// socket, Conn() in the final process; the caller closes it.
func (c *Cmd) Continue() (*os.File, error) {
	if c.proc == nil || c.handed {
		return nil, errors.New("nsenter: Continue without a successful Start")
	}
	if err := writeFrame(c.conn, msgContinue, nil); err != nil {
		return nil, fmt.Errorf("nsenter: continue process %d: %w", c.Pid, err)
	}
	c.handed = true
	return c.conn, nil
}

// Wait waits for the final process to exit.
func (c *Cmd) Wait() (*os.ProcessState, error) {
	if c.proc == nil {
		return nil, errors.New("nsenter: Wait without a successful Start")
	}
	if c.waited {
		return nil, errors.New("nsenter: Wait called twice")
	}
	c.waited = true
	st, err := c.proc.Wait()
	if !c.handed {
		c.conn.Close()
	}
	return st, err
}

// Signal sends sig to the final process, through its pidfd: once Wait
// has reaped it, the signal cannot reach a process that reused its PID
// (os.ErrProcessDone instead).
func (c *Cmd) Signal(sig os.Signal) error {
	if c.proc == nil {
		return errors.New("nsenter: Signal without a process")
	}
	return c.proc.Signal(sig)
}

// Kill sends SIGKILL to the final process.
func (c *Cmd) Kill() error { return c.Signal(os.Kill) }

// abort undoes a failed Start: the final process, if there is one, is
// killed and reaped; stage 0 is reaped.
func (c *Cmd) abort() {
	if c.proc != nil {
		_ = c.proc.Kill()
		_, _ = c.proc.Wait()
		c.waited = true
	}
	if c.conn != nil {
		c.conn.Close()
	}
}

func withoutVar(env []string, name string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}
