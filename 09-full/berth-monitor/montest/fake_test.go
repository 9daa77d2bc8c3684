//go:build linux

package montest

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// fakeBerth is this test binary re-executed by the monitor as its
// "berth" (MONTEST_DIR set): internal create starts $MONTEST_SCRIPT with
// sh as the container's init, on the stdio the monitor passed, and
// reports it; internal exit answers from $MONTEST_DIR/answers; internal
// healthcheck leaves a line in $MONTEST_DIR/health. Each records its
// arguments and its open descriptors.
func fakeBerth() int {
	dir := os.Getenv("MONTEST_DIR")
	// The descriptors it was given, before the Go runtime opens any:
	// readlink opens none.
	var fds []string
	for fd := 0; fd < 64; fd++ {
		if l, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd)); err == nil {
			fds = append(fds, strconv.Itoa(fd)+"="+l)
		}
	}
	for fd := 3; fd <= 7; fd++ {
		unix.CloseOnExec(fd) // the init gets its stdio, no more
	}
	verb := os.Args[2]
	appendLine(dir+"/calls", strings.Join(os.Args[1:], " "))
	appendLine(dir+"/fds-"+verb, strings.Join(fds, " "))
	switch verb {
	case "create":
		return fakeCreate(dir)
	case "exit":
		ans := "done"
		if b, err := os.ReadFile(dir + "/answers"); err == nil {
			lines := strings.SplitN(string(b), "\n", 2)
			ans = lines[0]
			rest := ""
			if len(lines) > 1 {
				rest = lines[1]
			}
			_ = os.WriteFile(dir+"/answers", []byte(rest), 0o600)
		}
		if ans == "" {
			ans = "done"
		}
		if _, err := os.Stat(dir + "/live/exit"); err != nil {
			appendLine(dir+"/calls", "no exit file when the exit command ran")
		}
		fmt.Println(ans)
		return 0
	case "healthcheck":
		appendLine(dir+"/health", "check")
		return 0
	}
	return 3
}

func fakeCreate(dir string) int {
	report := os.NewFile(3, "report")
	if r := os.Getenv("MONTEST_REPORT"); r != "" {
		_ = unix.Sendmsg(3, []byte(r+"\n"), nil, nil, 0)
		return 0
	}
	cmd := exec.Command("sh", "-c", os.Getenv("MONTEST_SCRIPT"))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.NewFile(5, "stdin"), os.NewFile(6, "stdout"), os.NewFile(7, "stderr")
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var rights []byte
	if n, _ := strconv.Atoi(os.Getenv("MONTEST_HELD")); n > 0 {
		var held []int
		for range n {
			f, err := os.Open(os.DevNull)
			if err != nil {
				return 1
			}
			held = append(held, int(f.Fd()))
		}
		rights = unix.UnixRights(held...)
	}
	if err := unix.Sendmsg(int(report.Fd()), []byte(fmt.Sprintf("ok %d 1\n", cmd.Process.Pid)), rights, nil, 0); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0 // the init is the monitor's now (its subreaper)
}

func appendLine(path, line string) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintln(f, line)
}
