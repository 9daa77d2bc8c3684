//go:build linux

package spine

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth/01-uts/spine/consolesock"
)

// initArg is argv[0] of the re-executed binary: it tells Main to run the
// child side instead of the command line.
const initArg = "berth-init"

// syncFd is where the child finds its end of the sync socket: after the
// preserved fds, named by $_BERTH_SYNC_FD (see Create). Right after it come
// an O_PATH descriptor of the exec FIFO (fifo.go) and, with a console
// socket (CreateOptions.ConsoleSocket), that socket.
var syncFd = 3

func fifoFd() int    { return syncFd + 1 }
func consoleFd() int { return syncFd + 2 }

// envConfigFd names a memfd holding the config when the child re-executes
// itself once more (see reexecAsRoot).
const envConfigFd = "_BERTH_CONFIG_FD"

func init() {
	// Namespaces joined with setns belong to the calling thread. Keeping the
	// main goroutine on the main thread means the thread that joins, mounts
	// and finally calls execve is always the same one.
	runtime.LockOSThread()
}

// IsInit reports whether this process is a re-executed container init.
func IsInit() bool { return len(os.Args) > 0 && os.Args[0] == initArg }

// runInit is the child side of the spine. It returns the exit code to use
// when setup fails; on success it never returns (execve replaced it).
func runInit() int {
	if v := os.Getenv(envSyncFd); v != "" {
		fd, err := strconv.Atoi(v)
		if err != nil || fd < 3 {
			fmt.Fprintf(os.Stderr, "berth-init: bad %s=%q\n", envSyncFd, v)
			return ExitRuntime
		}
		syncFd = fd
	}
	closeExeFd()
	// Nothing the container starts may inherit the sync socket (the parent
	// waits for it to close) or the FIFO.
	unix.CloseOnExec(syncFd)
	unix.CloseOnExec(fifoFd())
	// What the init makes (mount points, /dev) does not depend on the
	// runtime's umask; the command gets the spec's (execCommand).
	unix.Umask(DefaultUmask)
	// ps shows "exe" for a binary run as /proc/self/exe; name it.
	if name, err := unix.BytePtrFromString(initArg); err == nil {
		_ = unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(name)), 0, 0, 0)
	}
	sync := os.NewFile(uintptr(syncFd), "sync")
	ch := newChannel(sync)
	fail := func(err error) int {
		code := ExitCode(err)
		// If the parent is gone there is no one to tell; stderr is the
		// last resort.
		if sendErr := ch.send(message{Type: msgError, Error: err.Error(), Code: code}); sendErr != nil {
			fmt.Fprintf(os.Stderr, "berth-init: %v\n", err)
		}
		return code
	}
	if err := setNotDumpable(); err != nil {
		return fail(err)
	}

	c, steps, reexeced, err := readConfig(ch)
	if err != nil {
		return fail(err)
	}
	c.log = os.Stderr
	c.Steps = steps
	c.sync = sync
	if c.ConsoleSocket {
		unix.CloseOnExec(consoleFd())
	}

	if !reexeced {
		if _, err := ch.expect(msgGo); err != nil {
			return fail(err)
		}
		if needsReexec(c) {
			return fail(reexecAsRoot(c, steps))
		}
	} else if !c.Detached {
		if err := rearmDeathSignal(); err != nil {
			return fail(err)
		}
	}
	if err := joinNamespaces(c); err != nil {
		return fail(err)
	}
	for _, s := range steps {
		if ps, ok := s.(PreChilder); ok {
			if err := ps.PreChild(c); err != nil {
				return fail(fmt.Errorf("%s: %w", s.Name(), err))
			}
		}
	}
	for _, s := range steps {
		if cs, ok := s.(Childer); ok {
			if err := cs.Child(c); err != nil {
				return fail(fmt.Errorf("%s: %w", s.Name(), err))
			}
		}
	}
	// Last, inside every namespace and mount: the terminal (see tty.go).
	if c.Spec.Process.Terminal {
		send := func(master *os.File) error { return ch.sendFile(message{Type: msgConsole}, master) }
		if c.ConsoleSocket {
			send = func(master *os.File) error { return consolesock.Send(consoleFd(), master) }
		}
		if err := openConsole(c, send); err != nil {
			return fail(fmt.Errorf("console: %w", err))
		}
	}
	path, err := findCommand(c)
	if err != nil {
		return fail(err)
	}
	// Set up: say so, and wait until the container is started.
	if err := ch.send(message{Type: msgReady}); err != nil {
		return fail(err)
	}
	if err := waitStart(); err != nil {
		return fail(err)
	}
	return fail(execCommand(c, path))
}

// readConfig gets the container either from the socket or, after a
// re-exec, from the memfd the previous image left behind.
func readConfig(ch *channel) (*Container, []Step, bool, error) {
	var m message
	reexeced := false
	if fdStr := os.Getenv(envConfigFd); fdStr != "" {
		fd, err := strconv.Atoi(fdStr)
		if err != nil {
			return nil, nil, false, fmt.Errorf("bad %s=%q", envConfigFd, fdStr)
		}
		f := os.NewFile(uintptr(fd), "config")
		defer f.Close()
		if err := json.NewDecoder(f).Decode(&m); err != nil {
			return nil, nil, false, fmt.Errorf("read config after re-exec: %w", err)
		}
		os.Unsetenv(envConfigFd)
		reexeced = true
	} else {
		var err error
		if m, err = ch.expect(msgConfig); err != nil {
			return nil, nil, false, err
		}
	}
	if m.Container == nil || m.Container.Spec == nil || m.Container.Spec.Process == nil {
		return nil, nil, false, errors.New("sync: config without a container spec")
	}
	steps, err := decodeSteps(m.Steps)
	if err != nil {
		return nil, nil, false, err
	}
	return m.Container, steps, reexeced, nil
}

var nsFlags = map[specs.LinuxNamespaceType]uintptr{
	specs.UTSNamespace:     unix.CLONE_NEWUTS,
	specs.PIDNamespace:     unix.CLONE_NEWPID,
	specs.IPCNamespace:     unix.CLONE_NEWIPC,
	specs.MountNamespace:   unix.CLONE_NEWNS,
	specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.UserNamespace:    unix.CLONE_NEWUSER,
	specs.CgroupNamespace:  unix.CLONE_NEWCGROUP,
}

// CloneFlags is the union of the namespaces the spec asks to create.
func CloneFlags(spec *specs.Spec) (uintptr, error) {
	var flags uintptr
	for _, ns := range spec.Linux.Namespaces {
		f, ok := nsFlags[ns.Type]
		if !ok {
			return 0, fmt.Errorf("unsupported namespace type %q", ns.Type)
		}
		if ns.Path == "" {
			flags |= f
		}
	}
	return flags, nil
}

// joinNamespaces enters the namespaces the spec names by path. The Go
// runtime is multithreaded by now, and the kernel refuses setns into a
// mount or user namespace for a multithreaded process; a network, UTS, IPC
// or cgroup namespace is per thread and works on our locked main thread.
// A PID namespace the parent has joined for us (startInPidns); stage 09
// joins the others before the Go runtime starts.
func joinNamespaces(c *Container) error {
	for _, ns := range c.Spec.Linux.Namespaces {
		// The init was born in a PID namespace given by path
		// (startInPidns).
		if ns.Path == "" || ns.Type == specs.PIDNamespace {
			continue
		}
		switch ns.Type {
		case specs.NetworkNamespace, specs.UTSNamespace, specs.IPCNamespace, specs.CgroupNamespace:
		default:
			return fmt.Errorf("joining a %s namespace by path needs the single-threaded nsenter of stage 09", ns.Type)
		}
		fd, err := unix.Open(ns.Path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s namespace %s: %w", ns.Type, ns.Path, err)
		}
		err = unix.Setns(fd, int(nsFlags[ns.Type]))
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("setns %s %s: %w", ns.Type, ns.Path, err)
		}
		c.Logf("joined %s namespace %s", ns.Type, ns.Path)
	}
	return nil
}

// findCommand changes to the working directory and finds the command, so
// that a missing one fails the create (127), not the start.
func findCommand(c *Container) (string, error) {
	// Change directory first: a relative command (./run.sh) is relative to
	// the container's working directory, as in a shell.
	if cwd := c.Spec.Process.Cwd; cwd != "" {
		if err := os.Chdir(cwd); err != nil {
			return "", fmt.Errorf("chdir to working directory %s: %w", cwd, err)
		}
		if err := verifyCwd(cwd); err != nil {
			return "", err
		}
	}
	return LookPath(c.Spec.Process.Args[0], c.Spec.Process.Env)
}

// execCommand ends the child: the last Execer step, or plain execve.
func execCommand(c *Container, path string) error {
	var execer Execer
	for _, s := range c.Steps {
		if e, ok := s.(Execer); ok {
			execer = e
		}
	}
	for _, s := range c.Steps {
		if p, ok := s.(PreExecer); ok {
			if err := p.PreExec(c); err != nil {
				return fmt.Errorf("%s: %w", s.Name(), err)
			}
		}
	}
	// The command gets its stdio and c.PreserveFds, nothing else the init
	// holds or inherited (inherit.go).
	if err := CloseExecExcept(c.PreserveFds); err != nil {
		return err
	}
	unix.Umask(CommandUmask(c.Spec.Process))
	if execer != nil {
		// An init that runs the command as its child (stage 02's --init)
		// is the container's process from here: start is done. (Its fds
		// stay as few as before: the command sees none of them.)
		closeStarted()
		return execer.Exec(c, path, c.Spec.Process.Args, c.Spec.Process.Env)
	}
	return Execve(path, c.Spec.Process.Args, c.Spec.Process.Env)
}

// Execve replaces the init with the command. A successful execve closes
// the sync socket (close-on-exec): the parent reads EOF and knows the
// command is running. It returns only on failure.
func Execve(path string, argv, env []string) error {
	unix.CloseOnExec(syncFd)
	return ExecError(path, unix.Exec(path, argv, env))
}

// Started tells the parent the command runs, for an Execer that starts it
// as a child rather than replacing itself.
func (c *Container) Started() error {
	closeStarted()
	if c.sync == nil {
		return nil
	}
	err := c.sync.Close()
	c.sync = nil
	return err
}

// LookPath finds file in the PATH of env, as a shell would, inside the
// container's root. Errors carry exit code 127 or 126.
func LookPath(file string, env []string) (string, error) {
	if file == "" {
		return "", Exitf(ExitNotFound, "exec: empty command")
	}
	if strings.Contains(file, "/") {
		if err := checkExecutable(file); err != nil {
			return "", ExecError(file, err)
		}
		return file, nil
	}
	pathEnv := DefaultPath
	for _, kv := range env {
		if strings.HasPrefix(kv, "PATH=") {
			pathEnv = kv[len("PATH="):]
		}
	}
	var firstErr error
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, file)
		err := checkExecutable(p)
		if err == nil {
			return p, nil
		}
		if firstErr == nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENOTDIR) {
			firstErr = ExecError(p, err)
		}
	}
	if firstErr != nil {
		return "", firstErr
	}
	return "", Exitf(ExitNotFound, "exec: %q: executable file not found in $PATH", file)
}

func checkExecutable(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	if st.IsDir() {
		return unix.EISDIR
	}
	return unix.Access(p, unix.X_OK)
}

// ExecError turns an execve failure into Docker's exit codes: 127 when the
// file is missing, 126 when it exists but cannot be executed.
func ExecError(path string, err error) error {
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return Exitf(ExitNotFound, "exec %s: no such file or directory", path)
	}
	return Exitf(ExitNotExecutable, "exec %s: %v", path, err)
}
