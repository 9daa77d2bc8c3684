//go:build linux

// Command gosetns tries what package nsenter exists for, without it:
// joining another process's namespaces from Go code, after the Go
// runtime has started its threads. It is the demonstration of
// docs/09-exec.md ("Why Go cannot setns").
//
//	gosetns PID
//
// For each try it prints what setns(2) answered, from a goroutine locked
// to its thread (runtime.LockOSThread), as a Go program would do it.
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gosetns PID")
		os.Exit(2)
	}
	pid, err := strconv.Atoi(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "gosetns: PID:", err)
		os.Exit(2)
	}
	fmt.Printf("threads of this process: %s\n", threads())
	for _, try := range []struct {
		ns        string
		flag      int
		unshareFS bool
	}{
		{"net", unix.CLONE_NEWNET, false},
		{"mnt", unix.CLONE_NEWNS, false},
		{"mnt", unix.CLONE_NEWNS, true},
		{"user", unix.CLONE_NEWUSER, false},
		{"user", unix.CLONE_NEWUSER, true},
	} {
		how := "from a locked thread"
		if try.unshareFS {
			how = "after unshare(CLONE_FS)"
		}
		fmt.Printf("setns(%-4s) %-24s %s\n", try.ns, how, describe(join(pid, try.ns, try.flag, try.unshareFS)))
	}
}

// join tries setns on a thread of its own, which it never unlocks: a
// thread in other namespaces must end with its goroutine.
func join(pid int, ns string, flag int, unshareFS bool) error {
	fd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/%s", pid, ns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	errc := make(chan error)
	go func() {
		runtime.LockOSThread()
		if unshareFS {
			if err := unix.Unshare(unix.CLONE_FS); err != nil {
				errc <- fmt.Errorf("unshare(CLONE_FS): %w", err)
				return
			}
		}
		errc <- unix.Setns(fd, flag)
	}()
	return <-errc
}

func describe(err error) string {
	var errno unix.Errno
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &errno):
		return fmt.Sprintf("%v (%s)", err, unix.ErrnoName(errno))
	}
	return err.Error()
}

func threads() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return err.Error()
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}
