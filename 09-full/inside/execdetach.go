//go:build linux

package inside

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"berth/01-uts/spine"
	"berth/09-full/clikit"
)

// A detached exec (-d) needs someone to wait for it: the exec'd process is
// the child of the process that started it (CLONE_PARENT, execin.Start),
// and only its parent learns its exit code. Docker's daemon is that
// parent; berth has no daemon, so `berth exec -d` starts a keeper — the
// same verb, re-executed in a session of its own with stdio on /dev/null
// and keeperEnv naming the pipe on fd 3 — and returns once the keeper
// reports that the command runs (or why not). The keeper then waits for
// it, records its exit code in the exec's record (Running=false,
// ExitCode) and the exec_die event, and with -t holds the pty's master,
// reading and dropping its output, as dockerd does for a detached
// terminal nobody attaches to.
const keeperEnv = "_BERTH_EXEC_KEEPER"

// keeperReport is the keeper's report pipe, or nil when this process is
// not a keeper.
func keeperReport() *os.File {
	if os.Getenv(keeperEnv) != "3" {
		return nil
	}
	os.Unsetenv(keeperEnv)
	return os.NewFile(3, "keeper-report")
}

// report tells the CLI the outcome of the start: "0" or "CODE MESSAGE".
func report(w *os.File, err error) {
	if w == nil {
		return
	}
	if err == nil {
		fmt.Fprintln(w, "0")
	} else {
		fmt.Fprintf(w, "%d %s\n", clikit.ExitCode(err), strings.ReplaceAll(err.Error(), "\n", " "))
	}
	w.Close()
}

// spawnKeeper starts the keeper and waits for its report.
func spawnKeeper() error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("exec -d: find berth: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("exec -d: %w", err)
	}
	defer r.Close()
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		w.Close()
		return err
	}
	defer devnull.Close()
	cmd := exec.Command(self, os.Args[1:]...)
	cmd.Env = append(os.Environ(), keeperEnv+"=3")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return fmt.Errorf("exec -d: start the keeper: %w", err)
	}
	// Not waited for: it outlives us, and init (or a subreaper) reaps it.
	_ = cmd.Process.Release()
	line, err := bufio.NewReader(io.LimitReader(r, 64*1024)).ReadString('\n')
	if err != nil {
		return fmt.Errorf("exec -d: the keeper ended without a word: %v", err)
	}
	codeStr, msg, _ := strings.Cut(strings.TrimSpace(line), " ")
	code, err := strconv.Atoi(codeStr)
	if err != nil {
		return fmt.Errorf("exec -d: the keeper said %q", line)
	}
	if code == 0 {
		return nil
	}
	return spine.Exitf(code, "%s", msg)
}
