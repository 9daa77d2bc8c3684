//go:build linux

package execin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"berth/01-uts/spine"
	"berth/06-cgroups/cgroup"
	"berth/09-full/nsenter"
)

// A Target is the container to run in, as its record and state say it.
type Target struct {
	Pid int // its init
	// Start is the init's start time, recorded with Pid: nsenter refuses
	// a process that got the pid after the init exited (nsenter.Target).
	Start uint64
	// CgroupsPath is its cgroup (spec linux.cgroupsPath); "" when it has
	// none of its own (rootless): the process stays in the caller's.
	CgroupsPath string
}

// Stdio is where the process's streams go. Without a terminal berth
// copies through pipes, never handing the caller's own descriptors to
// the container: a terminal of the host's in a container process's hands
// could be used to type commands into the host's shell (TIOCSTI).
type Stdio struct {
	Stdin          io.Reader // nil: /dev/null
	Stdout, Stderr io.Writer // nil: discarded
	// Files, when set, are the process's stdin, stdout and stderr as
	// they are, nothing copied: berth-oci's caller (containerd's shim)
	// hands the runtime the fifos the process must hold, and a detached
	// exec outlives berth-oci.
	Files *[3]*os.File
}

// A Session is a started exec: the process runs the command.
type Session struct {
	cmd *nsenter.Cmd
	// Pid is the process, as the host numbers it.
	Pid int
	// Master is the pty's master with -t; the caller copies through it.
	Master *os.File

	outputs sync.WaitGroup
	readers []*os.File
}

// Start starts the process and returns once it runs the command, or with
// the reason it could not (a *spine.ExitError with 126 or 127 when the
// command was not executable or not found, 125 otherwise).
func Start(ctx context.Context, t Target, req *Request, stdio Stdio) (_ *Session, err error) {
	s := &Session{}
	files, closeTheirs, err := s.pipes(req.Process.Terminal, stdio)
	if err != nil {
		return nil, err
	}
	defer closeTheirs()
	// The final process's environment until it executes the command: none
	// of berth's own (it is not dumpable, but the less the better).
	s.cmd = &nsenter.Cmd{
		Target: nsenter.Target{Pid: t.Pid, Start: t.Start},
		Args:   []string{"berth-exec"},
		Env:    []string{},
		Stdin:  files[0], Stdout: files[1], Stderr: files[2],
	}
	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := s.cmd.Start(startCtx); err != nil {
		s.closeReaders()
		return nil, spine.Exitf(spine.ExitRuntime, "%v", err)
	}
	s.Pid = s.cmd.Pid
	fail := func(err error) (*Session, error) {
		_ = s.cmd.Kill()
		_, _ = s.cmd.Wait()
		s.closeReaders()
		if s.Master != nil {
			s.Master.Close()
		}
		return nil, err
	}
	// Not one instruction of the process runs outside the container's
	// cgroup: it waits in the constructor until Continue.
	if t.CgroupsPath != "" {
		if err := joinCgroup(t.CgroupsPath, s.Pid); err != nil {
			return fail(spine.Exitf(spine.ExitRuntime, "exec: %v", err))
		}
	}
	conn, err := s.cmd.Continue()
	if err != nil {
		return fail(spine.Exitf(spine.ExitRuntime, "%v", err))
	}
	defer conn.Close()
	msg, err := json.Marshal(req)
	if err == nil {
		_, err = conn.Write(msg)
	}
	if err != nil {
		return fail(spine.Exitf(spine.ExitRuntime, "exec: send the process: %v", err))
	}
	rest, err := s.receive(conn, req.Process.Terminal)
	if err != nil {
		return fail(err)
	}
	var r reply
	derr := json.NewDecoder(io.MultiReader(bytes.NewReader(rest), io.LimitReader(conn, 64*1024))).Decode(&r)
	if errors.Is(derr, io.EOF) {
		return s, nil // the socket closed on execve: it runs
	}
	if derr != nil {
		return fail(spine.Exitf(spine.ExitRuntime, "exec: the process's answer: %v", derr))
	}
	code := r.Code
	if code == 0 {
		code = spine.ExitRuntime
	}
	return fail(spine.Exitf(code, "%s", r.Error))
}

// pipes makes the process's stdin, stdout and stderr: /dev/null with a
// terminal (the final process makes the pty's slave its stdio), else
// pipes that goroutines copy. It returns the process's ends and what
// closes them once it has them.
func (s *Session) pipes(tty bool, stdio Stdio) ([3]*os.File, func(), error) {
	var files [3]*os.File
	var theirs []*os.File
	closeTheirs := func() {
		for _, f := range theirs {
			f.Close()
		}
	}
	if tty {
		return files, closeTheirs, nil
	}
	if stdio.Files != nil {
		return *stdio.Files, closeTheirs, nil
	}
	if stdio.Stdin != nil {
		r, w, err := os.Pipe()
		if err != nil {
			return files, closeTheirs, fmt.Errorf("exec: pipe: %w", err)
		}
		files[0], theirs = r, append(theirs, r)
		go func() {
			_, _ = io.Copy(w, stdio.Stdin)
			w.Close()
		}()
	}
	for i, dst := range []io.Writer{stdio.Stdout, stdio.Stderr} {
		if dst == nil {
			continue
		}
		r, w, err := os.Pipe()
		if err != nil {
			closeTheirs()
			s.closeReaders()
			return files, func() {}, fmt.Errorf("exec: pipe: %w", err)
		}
		files[1+i], theirs = w, append(theirs, w)
		s.readers = append(s.readers, r)
		s.outputs.Add(1)
		go func() {
			defer s.outputs.Done()
			_, _ = io.Copy(dst, r)
		}()
	}
	return files, closeTheirs, nil
}

func (s *Session) closeReaders() {
	for _, r := range s.readers {
		r.Close()
	}
}

// receive reads the pty master (with -t) and returns any bytes read
// beyond it: the start of an error reply.
func (s *Session) receive(conn *os.File, tty bool) ([]byte, error) {
	if !tty {
		return nil, nil
	}
	data, fd, err := recvFd(conn)
	if err != nil {
		return nil, spine.Exitf(spine.ExitRuntime, "exec: %v", err)
	}
	if fd < 0 {
		return data, nil
	}
	s.Master = os.NewFile(uintptr(fd), "pty-master")
	var r reply
	if err := json.Unmarshal(data, &r); err != nil || !r.Pty {
		return nil, spine.Exitf(spine.ExitRuntime, "exec: a descriptor that is not the pty's master")
	}
	return nil, nil
}

// recvFd reads one message and the descriptor it carries (-1: none). A
// stream socket's recvmsg stops after a message that carries descriptors,
// so what follows it is not read here.
func recvFd(sock *os.File) ([]byte, int, error) {
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	rc, err := sock.SyscallConn()
	if err != nil {
		return nil, -1, err
	}
	var n, oobn int
	var rerr error
	if err := rc.Read(func(fd uintptr) bool {
		n, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_CMSG_CLOEXEC)
		return rerr != unix.EAGAIN
	}); err != nil {
		return nil, -1, err
	}
	if rerr != nil {
		return nil, -1, fmt.Errorf("receive the pty master: %w", rerr)
	}
	if oobn == 0 {
		return buf[:n], -1, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, -1, errors.New("receive the pty master: a malformed message")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, -1, errors.New("receive the pty master: want one descriptor")
	}
	return buf[:n], fds[0], nil
}

// Signal sends sig to the process (through a pidfd: never to a process
// that reused its pid).
func (s *Session) Signal(sig os.Signal) error { return s.cmd.Signal(sig) }

// Wait waits for the process and for its output to drain, and returns its
// exit code as a shell reports it (128+N for a signal). Output still open
// 2 s after it exited (a background process of the exec holds it) is cut.
func (s *Session) Wait() (int, error) {
	st, err := s.cmd.Wait()
	if err != nil {
		s.closeReaders()
		return spine.ExitRuntime, fmt.Errorf("exec: wait: %w", err)
	}
	drained := make(chan struct{})
	go func() { s.outputs.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(2 * time.Second):
	}
	s.closeReaders()
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return st.ExitCode(), nil
}

// joinCgroup moves pid into the container's group, on v1 or v2.
func joinCgroup(path string, pid int) error {
	mode, err := cgroup.DetectMode()
	if err != nil {
		return err
	}
	if !cgroup.Exists(mode, path) {
		return fmt.Errorf("the container's cgroup %s is gone", path)
	}
	g, err := cgroup.Load(mode, path)
	if err != nil {
		return fmt.Errorf("cgroup %s: %w", path, err)
	}
	if err := g.Add(pid); err != nil {
		return fmt.Errorf("join cgroup %s: %w", path, err)
	}
	return nil
}
