//go:build linux

package execin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/creack/pty"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth/01-uts/spine"
	"berth/08-image/image"
	"berth/09-full/nsenter"
	"berth/09-full/security"
)

// Final is the final process's part: berth's main calls it first thing
// when nsenter.Joined. It is inside the container's namespaces and
// cgroup, still root there, not dumpable, its executable a sealed copy.
// It never returns: it executes the command, or exits with the code of
// why it could not, having said why over the socket.
func Final() {
	// Capabilities are per thread: the thread that drops them must be the
	// one that calls execve.
	runtime.LockOSThread()
	os.Exit(final(nsenter.Conn()))
}

func final(conn *os.File) int {
	var req Request
	if err := json.NewDecoder(io.LimitReader(conn, 1<<20)).Decode(&req); err != nil {
		fmt.Fprintln(os.Stderr, "berth exec: read the process:", err)
		return spine.ExitRuntime
	}
	answer := func(code int, err error) int {
		msg, _ := json.Marshal(reply{Error: err.Error(), Code: code})
		if _, werr := conn.Write(msg); werr != nil {
			fmt.Fprintln(os.Stderr, "berth exec:", err)
		}
		return code
	}
	p := req.Process
	if p == nil || len(p.Args) == 0 {
		return answer(spine.ExitRuntime, errors.New("no process"))
	}
	var slave *os.File
	if p.Terminal {
		var err error
		if slave, err = openTerminal(conn, p.ConsoleSize); err != nil {
			return answer(spine.ExitRuntime, err)
		}
	}
	if req.User != "" {
		// The container's /etc/passwd and /etc/group: the root is the
		// container's now, so "/" is its root, and nothing here can
		// lead a path out of it.
		u, err := image.ResolveUser(req.User, []string{"/"})
		if err != nil {
			return answer(spine.ExitRuntime, fmt.Errorf("unable to find user %s: %w", req.User, err))
		}
		p.User = u.SpecUser()
	}
	if slave != nil {
		// The terminal belongs to the user the command runs as, as a login
		// terminal does (and runc's): it may reopen /dev/tty, set modes.
		if err := slave.Chown(int(p.User.UID), int(p.User.GID)); err != nil {
			return answer(spine.ExitRuntime, fmt.Errorf("chown the terminal %s: %w", slave.Name(), err))
		}
		slave.Close()
	}
	if err := nsenter.Chdir(p.Cwd); err != nil {
		return answer(spine.ExitNotExecutable, err)
	}
	path, err := spine.LookPath(p.Args[0], p.Env)
	if err != nil {
		return answer(spine.ExitCode(err), err)
	}
	spec := &specs.Spec{Linux: &specs.Linux{Seccomp: req.Seccomp}}
	if err := security.Finalize(spec, p); err != nil {
		return answer(spine.ExitRuntime, err)
	}
	if err := nsenter.CloseExtraFDs(0); err != nil {
		return answer(spine.ExitRuntime, err)
	}
	err = unix.Exec(path, p.Args, p.Env)
	err = spine.ExecError(path, err)
	return answer(spine.ExitCode(err), err)
}

// openTerminal opens a pty in the container's own devpts (its /dev/ptmx,
// now that the mount namespace is the container's), sends the master to
// the caller, and makes the slave this process's controlling terminal
// and stdin, stdout and stderr. It returns the slave, still open.
func openTerminal(conn *os.File, size *specs.Box) (*os.File, error) {
	master, slave, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("open a pty in the container (/dev/ptmx): %w", err)
	}
	defer master.Close()
	if size != nil {
		if err := pty.Setsize(master, &pty.Winsize{Rows: uint16(size.Height), Cols: uint16(size.Width)}); err != nil {
			slave.Close()
			return nil, fmt.Errorf("set the pty's size: %w", err)
		}
	}
	msg, _ := json.Marshal(reply{Pty: true})
	if err := unix.Sendmsg(int(conn.Fd()), msg, unix.UnixRights(int(master.Fd())), nil, 0); err != nil {
		slave.Close()
		return nil, fmt.Errorf("send the pty master: %w", err)
	}
	if _, err := unix.Setsid(); err != nil {
		slave.Close()
		return nil, fmt.Errorf("setsid: %w", err)
	}
	fd := int(slave.Fd())
	if err := unix.IoctlSetInt(fd, unix.TIOCSCTTY, 0); err != nil {
		slave.Close()
		return nil, fmt.Errorf("make %s the controlling terminal: %w", slave.Name(), err)
	}
	for _, to := range []int{0, 1, 2} {
		if err := unix.Dup3(fd, to, 0); err != nil {
			slave.Close()
			return nil, fmt.Errorf("dup %s onto fd %d: %w", slave.Name(), to, err)
		}
	}
	return slave, nil
}
