//go:build linux

package spine

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth/01-uts/spine/consolesock"
	"berth/01-uts/spine/sealexe"
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

// needsReexec: a process that enters a new user namespace runs execve before
// its uid map exists, so the kernel gives it no capabilities in that
// namespace. Once the parent has written the map, executing ourselves again
// as the mapped root gives the full set (stage 05 explains this). An init
// that already holds them (as root, os/exec wrote the map and switched to
// uid 0 before the first execve) has nothing to gain from a second one.
// An init that holds them but is not root there (a map that keeps your own
// id: stage 05's SetupCmd kept them in its ambient set) becomes root, and
// executes itself again all the same.
func needsReexec(c *Container) bool {
	path, ok := c.Namespace(specs.UserNamespace)
	return ok && path == "" && (!hasCapSysAdmin() || os.Geteuid() != 0)
}

// hasCapSysAdmin reports whether CAP_SYS_ADMIN is in our effective set.
func hasCapSysAdmin() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	return data[unix.CAP_SYS_ADMIN/32].Effective&(1<<(unix.CAP_SYS_ADMIN%32)) != 0
}

func reexecAsRoot(c *Container, steps []Step) error {
	wire, err := encodeSteps(steps)
	if err != nil {
		return err
	}
	fd, err := unix.MemfdCreate("berth-config", 0) // no CLOEXEC: it must survive execve
	if err != nil {
		return fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "config")
	if err := json.NewEncoder(f).Encode(message{Type: msgConfig, Container: c, Steps: wire}); err != nil {
		return fmt.Errorf("write config to memfd: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("rewind memfd: %w", err)
	}
	// Not root of the namespace (a map that keeps your own id, stage 05's
	// SetupCmd): the capabilities it kept in its ambient set let it
	// become root, and root needs no ambient set: none may reach the
	// container's command.
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_CAP_AMBIENT_CLEAR_ALL): %w", err)
	}
	if err := unix.Setresuid(0, 0, 0); err != nil {
		return fmt.Errorf("setresuid(0) in the user namespace (is uid 0 mapped?): %w", err)
	}
	if err := unix.Setresgid(0, 0, 0); err != nil {
		return fmt.Errorf("setresgid(0) in the user namespace (is gid 0 mapped?): %w", err)
	}
	// The sockets and the FIFO must survive this one execve.
	keep := []int{syncFd, fifoFd()}
	if c.ConsoleSocket {
		keep = append(keep, consoleFd())
	}
	for _, fd := range keep {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
			return fmt.Errorf("keep fd %d across re-exec: %w", fd, err)
		}
	}
	c.Logf("spine: uid %d in the user namespace, but no capabilities since its execve: executing itself again", os.Getuid())
	exe, err := sealedExe()
	if err != nil {
		return err
	}
	env := append(os.Environ(), fmt.Sprintf("%s=%d", envConfigFd, fd))
	err = unix.Exec(exe, []string{initArg}, env)
	return fmt.Errorf("re-exec %s: %w", exe, err)
}

// sealedExe is what the init executes itself again from: its own
// executable, which Create started from a sealed memfd copy (sealexe), so
// /proc/self/exe is that memfd, never the host's file. It is checked
// through a descriptor, and the re-exec runs what was checked: execve
// resolves /proc/self/fd/N before close-on-exec closes it.
func sealedExe() (string, error) {
	f, err := os.Open("/proc/self/exe")
	if err != nil {
		return "", fmt.Errorf("re-exec: %w", err)
	}
	if !sealexe.IsSealed(f) {
		f.Close()
		return "", errors.New("re-exec: the init does not run a sealed copy of its binary")
	}
	// Never closed: it must stay open until the execve, which closes it.
	return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())), nil
}

// envExeFd names the descriptor the init was executed from (the sealed
// copy, sealexe.StartFrom): once running, it needs no descriptor of it
// (the kernel keeps the executable mapped; reexecAsRoot opens it again).
const envExeFd = "_BERTH_EXE_FD"

// closeExeFd closes that descriptor, so that neither PID 1 (stage 02's
// --init lives on) nor a step holds it, and forgets its number: the
// re-executed init must not close whatever has that number then.
func closeExeFd() {
	if v := os.Getenv(envExeFd); v != "" {
		if fd, err := strconv.Atoi(v); err == nil && fd > 2 {
			unix.Close(fd)
		}
		os.Unsetenv(envExeFd)
	}
}

// envNoDump tells the init to make itself non-dumpable: Create sets it
// when its caller is root (see initEnv).
const envNoDump = "_BERTH_NODUMP"

// setNotDumpable makes the init non-dumpable until it executes the
// command (the kernel makes a process dumpable again when it executes a
// file it may read): no core dump of it is written, and only
// CAP_SYS_PTRACE traces it or opens its /proc/PID files (exe, fd, mem,
// environ) from a process that can see it. The files of /proc/PID then
// belong to root, which is why only a root runtime asks for it: a
// rootless one must still write the init's uid_map and open its
// /proc/PID/ns files as itself.
func setNotDumpable() error {
	if os.Getenv(envNoDump) != "1" {
		return nil
	}
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_DUMPABLE, 0): %w", err)
	}
	return nil
}

// rearmDeathSignal restores the parent-death signal after reexecAsRoot: the
// kernel clears it when an execve raises a process's capabilities, so the
// container would outlive a SIGKILLed runtime. The runtime may have died
// before it was set again: its end of the sync socket then reads as hung up.
func rearmDeathSignal() error {
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_PDEATHSIG): %w", err)
	}
	fds := []unix.PollFd{{Fd: int32(syncFd), Events: unix.POLLRDHUP}}
	if n, err := unix.Poll(fds, 0); err == nil && n > 0 && fds[0].Revents&(unix.POLLRDHUP|unix.POLLHUP) != 0 {
		return errors.New("the runtime is gone")
	}
	return nil
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
