//go:build linux

package engine

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"berth/01-uts/spine"
	"berth/01-uts/spine/proc"
	"berth/09-full/store"
)

// A container outlives the command that made it: its init's parent is a
// monitor (berth-monitor, a small separate program, as podman's conmon),
// not `berth run`. The command starts the monitor in a session of its own;
// the monitor makes itself a subreaper and runs `berth internal create`,
// which sets the container up with the spine (Create, detached) and exits,
// so that the waiting init is reparented to the monitor. The monitor then
// holds the container's stdio (or its terminal), writes its log, serves
// its attach socket, waits for its exit, and runs `berth internal exit`.
//
// Between these processes the messages are one line of text:
//
//	ok PID START          the init (pid, start time) waits on its exec FIFO
//	error CODE MESSAGE    it could not be created; CODE is 125, 126 or 127
//	stop                  (a restart) the container was stopped meanwhile
//
// internal create sends it to the monitor over a socket, with the files
// the steps hold (published ports, slirp4netns's pipe) attached; the
// monitor passes it on to the command that launched it over a pipe.

// Report lines.
const (
	ReportOK    = "ok"
	ReportError = "error"
	ReportStop  = "stop"
)

// A Launched container: its init waits to be started, its monitor runs.
type Launched struct {
	Pid          int
	PidStart     uint64
	MonitorPid   int
	MonitorStart uint64
}

// launch starts the monitor of a container and waits until the container
// is created. The caller holds the container's lock.
//
// started is called as soon as the monitor runs, before the wait: the
// caller records the monitor then, so that a command killed while it
// waits leaves a monitor (and maybe an init) that the next command finds.
func (e *Engine) launch(rec *store.Record, cfg *Config, started func(pid int, start uint64) error) (*Launched, error) {
	live, err := e.Store.ClearLive(rec.ID)
	if err != nil {
		return nil, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("pipe: %w", err)
	}
	defer r.Close()
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		w.Close()
		return nil, err
	}
	defer devnull.Close()
	// The monitor runs in / (as a daemon does: it must not keep the
	// directory berth was typed in busy, nor resolve anything from it),
	// so every path it is given is absolute.
	var live2, logPath, stateRoot, dataRoot string
	for _, p := range []struct {
		to   *string
		from string
	}{{&live2, live}, {&logPath, rec.LogPath}, {&stateRoot, e.StateRoot}, {&dataRoot, e.DataRoot}} {
		if *p.to, err = filepath.Abs(p.from); err != nil {
			return nil, fmt.Errorf("absolute path of %s: %w", p.from, err)
		}
	}
	s := cfg.Settings
	args := []string{
		"--id", rec.ID, "--berth", e.Berth, "--live", live2, "--log", logPath,
		"--log-max-size", strconv.FormatInt(s.Log.MaxSize, 10), "--log-max-file", strconv.Itoa(s.Log.MaxFile),
	}
	if cfg.Spec.Process.Terminal {
		args = append(args, "--tty")
	}
	if s.OpenStdin {
		args = append(args, "--stdin")
	}
	if s.StdinOnce {
		args = append(args, "--stdin-once")
	}
	if HealthEnabled(s.Healthcheck) {
		args = append(args, "--health-interval", HealthInterval(s.Healthcheck).String())
	}
	cmd := exec.Command(e.Monitor, args...)
	cmd.Env = append(monitorEnv(os.Environ()), "BERTH_ROOT="+stateRoot, "BERTH_DATA_ROOT="+dataRoot)
	cmd.Dir = "/"
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
	cmd.ExtraFiles = []*os.File{w}
	// A session of its own: the terminal's Ctrl-C and hang-up are not its,
	// and the command that launched it may die at any moment.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, fmt.Errorf("start %s: %w", e.Monitor, err)
	}
	w.Close()
	// Reaped here if it ends while we still run (a foreground run);
	// otherwise init takes it over when we exit.
	go func() { _ = cmd.Wait() }()
	l := &Launched{MonitorPid: cmd.Process.Pid}
	l.MonitorStart, _ = proc.StartTime(l.MonitorPid)
	if err := started(l.MonitorPid, l.MonitorStart); err != nil {
		_ = cmd.Process.Kill()
		return nil, err
	}

	line, err := bufio.NewReader(io.LimitReader(r, 64*1024)).ReadString('\n')
	if err != nil {
		msg := ""
		if b, rerr := os.ReadFile(filepath.Join(live, "monitor.log")); rerr == nil {
			msg = ": " + strings.TrimSpace(string(b))
		}
		return nil, fmt.Errorf("the container's monitor ended before the container was created%s", msg)
	}
	kind, rest, _ := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
	switch kind {
	case ReportOK:
		f := strings.Fields(rest)
		if len(f) != 2 {
			return nil, fmt.Errorf("monitor: bad report %q", line)
		}
		l.Pid, _ = strconv.Atoi(f[0])
		l.PidStart, _ = strconv.ParseUint(f[1], 10, 64)
		return l, nil
	case ReportError:
		code, msg, _ := strings.Cut(rest, " ")
		n, err := strconv.Atoi(code)
		if err != nil {
			n = spine.ExitRuntime
		}
		return nil, &spine.ExitError{Code: n, Err: errors.New(msg)}
	}
	return nil, fmt.Errorf("monitor: bad report %q", line)
}

// monitorEnv is what of the command's environment the monitor (and the
// helpers it runs: internal create, exit) gets: where to find programs,
// the rootless roots, berth's own settings. Not the rest: the monitor
// lives as long as the container, and `MY_SECRET=... berth run` must not
// leave the secret in it (nor, through it, in the container's init).
func monitorEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "PATH", k == "HOME", k == "XDG_RUNTIME_DIR", k == "XDG_DATA_HOME", k == "TMPDIR", k == "GODEBUG",
			strings.HasPrefix(k, "BERTH_"):
			out = append(out, kv)
		}
	}
	return out
}

// maxHeld is the kernel's SCM_MAX_FD: the most descriptors one sendmsg
// passes (monitor.MaxHeld; the engine does not import the monitor).
const maxHeld = 253

// InitFiles are the descriptors `berth internal create` inherits from the
// monitor: the report socket (fd 3), the console socket (fd 4, with a
// terminal), the container's stdin, stdout and stderr (fds 5, 6, 7).
type InitFiles struct {
	Report  *os.File
	Console *os.File
	Stdio   [3]*os.File
}

// InheritedInitFiles opens fds 3-7 as the monitor passed them.
func InheritedInitFiles() InitFiles {
	f := func(fd int, name string) *os.File {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			return nil
		}
		unix.CloseOnExec(fd)
		return os.NewFile(uintptr(fd), name)
	}
	return InitFiles{Report: f(3, "report"), Console: f(4, "console"),
		Stdio: [3]*os.File{f(5, "stdin"), f(6, "stdout"), f(7, "stderr")}}
}

// CreateInit is `berth internal create`: it creates the container of
// record id under the monitor that runs it and reports to the monitor.
// With restart (the monitor's restart policy), it takes the container's
// lock, goes on only if nobody stopped the container meanwhile, and
// starts it too.
func (e *Engine) CreateInit(id string, restart bool, f InitFiles) error {
	if err := store.CheckID(id); err != nil {
		return err
	}
	report := func(line string, files []*os.File) error {
		var rights []byte
		if len(files) > 0 {
			fds := make([]int, len(files))
			for i, x := range files {
				fds[i] = int(x.Fd())
			}
			rights = unix.UnixRights(fds...)
		}
		if err := unix.Sendmsg(int(f.Report.Fd()), []byte(line+"\n"), rights, nil, 0); err != nil {
			return fmt.Errorf("report to the monitor: %w", err)
		}
		return nil
	}
	fail := func(err error) error {
		msg := strings.ReplaceAll(err.Error(), "\n", " ")
		_ = report(fmt.Sprintf("%s %d %s", ReportError, spine.ExitCode(err), msg), nil)
		if restart {
			// The restart failed: the container ends here, and says why.
			if st, rerr := e.Store.ReadState(id); rerr == nil {
				st.Status, st.Error, st.ExitCode, st.FinishedAt = store.Exited, err.Error(), spine.ExitCode(err), time.Now()
				_ = e.Store.WriteState(id, st)
			}
		}
		return err
	}
	if restart {
		unlock, err := e.Store.Lock(id)
		if err != nil {
			_ = report(ReportStop, nil)
			return nil
		}
		defer unlock()
		st, err := e.Store.ReadState(id)
		if err != nil || st.Status != store.Restarting || st.ManuallyStopped {
			_ = report(ReportStop, nil)
			return nil
		}
	}
	rec, err := e.Store.Get(id)
	if err != nil {
		return fail(err)
	}
	cfg, err := ConfigOf(rec)
	if err != nil {
		return fail(err)
	}
	if err := e.prepareNetwork(cfg); err != nil {
		return fail(err)
	}
	// Each published port is a socket the monitor holds; they all go to it
	// in one message (one more for slirp4netns's pipe).
	if n := len(cfg.Settings.Network.Ports); n >= maxHeld {
		return fail(&spine.ExitError{Code: spine.ExitRuntime, Err: fmt.Errorf("%d published ports: at most %d (each is a socket the container's monitor holds, passed to it in one message)", n, maxHeld-1)})
	}
	steps, err := Steps(cfg)
	if err != nil {
		return fail(err)
	}
	if cfg.Settings.Network.Name != "" {
		// A user network's name server answers before the command runs.
		dropGate, err := e.ensureDNS(&cfg.Settings.Network)
		if err != nil {
			return fail(err)
		}
		defer dropGate()
	}
	c := SpineContainer(rec.ID, cfg, e.DataRoot, e.StateRoot, steps)
	c.Verbose = e.Verbose
	p, err := spine.Create(c, spine.CreateOptions{
		Detached: true, ConsoleSocket: f.Console,
		Stdin: f.Stdio[0], Stdout: f.Stdio[1], Stderr: f.Stdio[2],
	})
	if err != nil {
		return fail(err)
	}
	start, err := proc.StartTime(p.Pid())
	if err != nil {
		return fail(err)
	}
	held := p.Held()
	rerr := report(fmt.Sprintf("%s %d %d", ReportOK, p.Pid(), start), held)
	for _, h := range held {
		h.Close()
	}
	p.Release()
	if rerr != nil {
		return rerr
	}
	if !restart {
		return nil
	}
	startErr := spine.Start(e.SpineDir(id), p.Pid())
	st, err := e.Store.ReadState(id)
	if err != nil {
		return err
	}
	st.Status, st.Pid, st.PidStart, st.BootID = store.Running, p.Pid(), start, proc.BootID()
	st.StartedAt, st.RestartCount, st.Error = time.Now(), st.RestartCount+1, ""
	if startErr != nil {
		st.Error = startErr.Error() // the init died: its exit is on its way
	}
	if err := e.Store.WriteState(id, st); err != nil {
		return err
	}
	if rec, err := e.Store.Get(id); err == nil {
		e.event(rec, "start", nil)
	}
	return nil
}
