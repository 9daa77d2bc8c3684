//go:build linux

// Package monitor is the loop of berth-monitor, the small process that is
// a detached container's parent for as long as it exists, as podman's
// conmon and containerd's shim are. It holds the container's stdio pipes
// (or its terminal's master), copies what the container writes into the
// json-file log and to attached clients, takes what they type, waits for
// the init, writes the exit file the moment it exits, runs the exit
// command (`berth internal exit`, the heavy cleanup, not resident here)
// and restarts the container when that says so. One goroutine per duty.
//
// It imports the standard library, x/sys and the small packages logfile
// and attach, nothing else: it idles beside every running container, so
// what it loads is paid for once per container.
package monitor

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"berth/09-full/attach"
	"berth/09-full/logfile"
)

// Config is the monitor's command line.
type Config struct {
	ID         string
	Berth      string // the berth binary, for internal create and exit
	Live       string // the container's live directory
	Log        string
	LogMaxSize int64
	LogMaxFile int
	Tty        bool
	Stdin      bool // -i: the container's stdin is a pipe clients write to
	StdinOnce  bool
	// HealthInterval, when set, runs `berth internal healthcheck ID` at
	// that interval while the container runs (health checks need exec:
	// issue 13).
	HealthInterval time.Duration
}

type monitor struct {
	cfg    Config
	log    *os.File // monitor.log: the monitor's and its helpers' stderr
	logw   *logfile.Writer
	srv    *attach.Server
	reaper *reaper
	idle   *idler

	mu     sync.Mutex
	stdin  *os.File // the container's stdin (write end) or terminal master
	master *os.File
}

// Run is the monitor. ready is where the first create's report goes (the
// command that launched it waits there). It returns the monitor's exit
// code.
func Run(cfg Config, ready *os.File) int {
	m := &monitor{cfg: cfg}
	var err error
	if m.log, err = os.OpenFile(filepath.Join(cfg.Live, "monitor.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
		fmt.Fprintf(ready, "error 125 monitor: %v\n", err)
		return 1
	}
	fail := func(err error) int {
		fmt.Fprintf(m.log, "%s monitor: %v\n", time.Now().Format(time.RFC3339), err)
		if ready != nil {
			fmt.Fprintf(ready, "error 125 monitor: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
			ready.Close()
		}
		return 1
	}
	// Orphans of the container (its init, once internal create exits) are
	// reparented to us, and we wait for them.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fail(fmt.Errorf("prctl(PR_SET_CHILD_SUBREAPER): %w", err))
	}
	m.reaper = newReaper()
	m.idle = startIdler()
	defer m.idle.stop()
	if m.logw, err = logfile.Open(cfg.Log, cfg.LogMaxSize, cfg.LogMaxFile); err != nil {
		return fail(err)
	}
	defer m.logw.Close()
	if m.srv, err = attach.Listen(filepath.Join(cfg.Live, "attach.sock")); err != nil {
		return fail(err)
	}
	m.srv.OnStdin, m.srv.OnCloseStdin, m.srv.OnResize = m.writeStdin, m.closeStdin, m.resize
	go m.srv.Serve()
	// Close removes the socket, unless a new run's monitor has made its
	// own at that path meanwhile (Close may wait 5 s for slow clients).
	defer m.srv.Close()

	restart := false
	for {
		r, err := m.runOnce(restart, ready)
		ready = nil // reported
		if err != nil {
			fmt.Fprintf(m.log, "%s monitor: %v\n", time.Now().Format(time.RFC3339), err)
			return 1
		}
		if !r.restart {
			return 0
		}
		time.Sleep(r.delay)
		restart = true
	}
}

type decision struct {
	restart bool
	delay   time.Duration
}

// runOnce creates the container (again), copies its output until its
// init exits, records the exit and runs the exit command.
func (m *monitor) runOnce(restart bool, ready *os.File) (decision, error) {
	sio, err := newStdio(m.cfg)
	if err != nil {
		return decision{}, err
	}
	defer sio.close()
	pid, start, held, report, err := m.create(restart, sio)
	if ready != nil {
		fmt.Fprintln(ready, report)
		ready.Close()
	}
	if err != nil || pid == 0 {
		return decision{}, err // not created: nothing runs, nothing to record
	}
	defer func() {
		for _, f := range held {
			f.Close()
		}
	}()
	copied := m.copyOutput(sio)
	stopHealth := m.health()
	ws := m.reaper.wait(pid)
	stopHealth()
	exitCode := code(ws)
	// Everything in the container's PID namespace died with its init, so
	// the pipes end; a process that escaped it (none should) must not keep
	// the exit from being recorded.
	select {
	case <-copied:
	case <-time.After(2 * time.Second):
		fmt.Fprintf(m.log, "%s monitor: output still open 2 s after the init exited\n", time.Now().Format(time.RFC3339))
	}
	if err := m.writeExit(exitCode, time.Now()); err != nil {
		fmt.Fprintf(m.log, "%s monitor: %v\n", time.Now().Format(time.RFC3339), err)
	}
	for _, f := range held { // the published ports, slirp4netns: free now
		f.Close()
	}
	held = nil
	m.reaper.forget(0)
	d, err := m.exitCommand(pid, start)
	m.srv.Exit(exitCode)
	return d, err
}

// create runs `berth internal create` and reads its report: the init's
// pid and the files to hold, or why it failed.
func (m *monitor) create(restart bool, sio *stdio) (pid int, start uint64, held []*os.File, report string, err error) {
	mine, theirs, err := socketPair("report")
	if err != nil {
		return 0, 0, nil, "error 125 monitor: socketpair: " + err.Error(), err
	}
	defer mine.Close()
	args := []string{"berth", "internal", "create"}
	if restart {
		args = append(args, "--restart")
	}
	args = append(args, m.cfg.ID)
	files := []*os.File{nil, m.log, m.log, theirs, sio.consoleTheirs, sio.initStdin, sio.initStdout, sio.initStderr}
	p, err := startProcess(m.cfg.Berth, args, files)
	theirs.Close()
	sio.closeTheirs()
	if err != nil {
		return 0, 0, nil, "error 125 monitor: " + err.Error(), err
	}
	line, held, rerr := readReport(mine)
	ws := m.reaper.wait(p)
	if rerr != nil {
		for _, f := range held {
			f.Close()
		}
		return 0, 0, nil, fmt.Sprintf("error 125 berth internal create ended (%s) without a report", describe(ws)),
			fmt.Errorf("internal create: %w", rerr)
	}
	kind, rest, _ := strings.Cut(line, " ")
	switch kind {
	case "ok":
		f := strings.Fields(rest)
		if len(f) == 2 {
			pid, err = strconv.Atoi(f[0])
			if err == nil {
				start, err = strconv.ParseUint(f[1], 10, 64)
			}
			if err == nil {
				if sio.consoleMine != nil {
					if err := m.takeConsole(sio); err != nil {
						return 0, 0, held, "error 125 monitor: " + err.Error(), err
					}
				}
				return pid, start, held, line, nil
			}
		}
	case "error", "stop":
		return 0, 0, held, line, nil
	}
	return 0, 0, held, "error 125 monitor: bad report " + strconv.Quote(line), fmt.Errorf("bad report %q", line)
}

func describe(ws syscall.WaitStatus) string {
	if ws.Signaled() {
		return "killed by " + ws.Signal().String()
	}
	return "exit " + strconv.Itoa(ws.ExitStatus())
}

// startProcess starts a helper with exactly these files as fds 0, 1, ...
// (a nil entry is a closed fd); it is waited for through the reaper.
func startProcess(path string, argv []string, files []*os.File) (int, error) {
	fds := make([]uintptr, len(files))
	for i, f := range files {
		if f == nil {
			fds[i] = ^uintptr(0) // closed in the child
			continue
		}
		fds[i] = f.Fd()
	}
	if fds[0] == ^uintptr(0) {
		null, err := os.Open(os.DevNull)
		if err != nil {
			return 0, err
		}
		defer null.Close()
		fds[0] = null.Fd()
	}
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{Env: os.Environ(), Files: fds})
	if err != nil {
		return 0, fmt.Errorf("start %s: %w", path, err)
	}
	return pid, nil
}

// socketPair makes a connected pair: ours waits through the runtime's
// poller (a blocked system call would cost the monitor a thread), theirs
// is an ordinary blocking socket for the helper that inherits it.
func socketPair(name string) (mine, theirs *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	if err := unix.SetNonblock(fds[1], false); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, nil, err
	}
	return os.NewFile(uintptr(fds[0]), name), os.NewFile(uintptr(fds[1]), name), nil
}

// recvmsg is recvmsg(2) on a socket of ours, waiting in the poller.
func recvmsg(sock *os.File, buf, oob []byte) (n, oobn, flags int, err error) {
	rc, err := sock.SyscallConn()
	if err != nil {
		return 0, 0, 0, err
	}
	var rerr error
	if err := rc.Read(func(fd uintptr) bool {
		n, oobn, flags, _, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_CMSG_CLOEXEC)
		return rerr != unix.EAGAIN
	}); err != nil {
		return 0, 0, 0, err
	}
	return n, oobn, flags, rerr
}

// MaxHeld is the most files one report can carry: the kernel's
// SCM_MAX_FD, the most descriptors one sendmsg passes.
const MaxHeld = 253

// readReport reads the one line internal create sends, with the files
// it attaches.
func readReport(sock *os.File) (string, []*os.File, error) {
	buf := make([]byte, 64*1024)
	// Room for as many descriptors as one message can carry: a smaller
	// buffer lets the kernel drop the rest (MSG_CTRUNC), closing them, and
	// the published ports they are lose their reservation.
	oob := make([]byte, unix.CmsgSpace(MaxHeld*4))
	var line []byte
	var held []*os.File
	for {
		n, oobn, flags, err := recvmsg(sock, buf, oob)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return "", held, err
		}
		if flags&unix.MSG_CTRUNC != 0 {
			return "", held, errors.New("the report's files were cut short (MSG_CTRUNC)")
		}
		if oobn > 0 {
			msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
			if err == nil {
				for _, msg := range msgs {
					if fds, err := unix.ParseUnixRights(&msg); err == nil {
						for _, fd := range fds {
							held = append(held, os.NewFile(uintptr(fd), "held"))
						}
					}
				}
			}
		}
		if n == 0 {
			return "", held, io.ErrUnexpectedEOF
		}
		line = append(line, buf[:n]...)
		if i := strings.IndexByte(string(line), '\n'); i >= 0 {
			return string(line[:i]), held, nil
		}
		if len(line) > 64*1024 {
			return "", held, errors.New("report too long")
		}
	}
}

// writeExit writes the exit file (store.Exit: {"exitCode":N,
// "finishedAt":"..."}), by hand, through a rename.
func (m *monitor) writeExit(exitCode int, at time.Time) error {
	b := []byte(`{"exitCode":`)
	b = strconv.AppendInt(b, int64(exitCode), 10)
	b = append(b, `,"finishedAt":"`...)
	b = at.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, "\"}\n"...)
	p := filepath.Join(m.cfg.Live, "exit")
	if err := os.WriteFile(p+".tmp", b, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return os.Rename(p+".tmp", p)
}

// exitCommand runs `berth internal exit ID` for the run of init pid
// (started at start), which cleans up and says whether to restart:
// "restart MS" or "done". The run's identity lets it do nothing when a
// `berth start` has recorded this run's end and begun another meanwhile.
func (m *monitor) exitCommand(pid int, start uint64) (decision, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return decision{}, err
	}
	defer r.Close()
	helper, err := startProcess(m.cfg.Berth, []string{"berth", "internal", "exit",
		"--pid", strconv.Itoa(pid), "--start", strconv.FormatUint(start, 10), m.cfg.ID}, []*os.File{nil, w, m.log})
	w.Close()
	if err != nil {
		return decision{}, err
	}
	line, _ := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	ws := m.reaper.wait(helper)
	if !ws.Exited() || ws.ExitStatus() != 0 {
		return decision{}, fmt.Errorf("berth internal exit %s: %s", m.cfg.ID, describe(ws))
	}
	kind, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
	if kind == "restart" {
		ms, err := strconv.Atoi(rest)
		if err != nil {
			return decision{}, fmt.Errorf("exit command: bad answer %q", line)
		}
		return decision{restart: true, delay: time.Duration(ms) * time.Millisecond}, nil
	}
	return decision{}, nil
}

// health runs the health check every interval while the container runs,
// one at a time: `berth internal healthcheck ID` (exec's machinery, too
// heavy to live here) runs the check and records its result; the next
// interval counts from its end, as Docker's. The returned function stops
// it, killing a check that still runs (its container is gone).
func (m *monitor) health() func() {
	if m.cfg.HealthInterval <= 0 {
		return func() {}
	}
	quit := make(chan struct{})
	done := make(chan struct{})
	var mu sync.Mutex
	running := 0 // the check's pid, our unreaped child while set
	go func() {
		defer close(done)
		t := time.NewTimer(m.cfg.HealthInterval)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
			}
			mu.Lock()
			pid, err := startProcess(m.cfg.Berth, []string{"berth", "internal", "healthcheck", m.cfg.ID}, []*os.File{nil, m.log, m.log})
			if err != nil {
				fmt.Fprintf(m.log, "%s monitor: %v\n", time.Now().Format(time.RFC3339), err)
			} else {
				running = pid
			}
			mu.Unlock()
			if err == nil {
				ws := m.reaper.wait(pid)
				mu.Lock()
				running = 0
				mu.Unlock()
				if !ws.Exited() || ws.ExitStatus() != 0 {
					fmt.Fprintf(m.log, "%s monitor: health check: %s\n", time.Now().Format(time.RFC3339), describe(ws))
				}
			}
			t.Reset(m.cfg.HealthInterval)
		}
	}()
	return func() {
		close(quit)
		mu.Lock()
		if running > 0 {
			_ = unix.Kill(running, unix.SIGKILL)
		}
		mu.Unlock()
		<-done
	}
}
