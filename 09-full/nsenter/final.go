//go:build linux

package nsenter

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The final process's side. Its main() starts as usual; Joined tells it
// that it was started by a Cmd and is inside the target's namespaces (and
// cgroup, if the caller put it there). What follows is the engine's: read
// its orders from Conn, set the user, capabilities, seccomp and working
// directory (Chdir), close what must not leak (CloseExtraFDs), execve. Until
// that execve the process is not dumpable (the constructor made it so):
// nothing in between may set it dumpable again.

var final *os.File

func init() {
	fd := finalFd()
	if fd < 0 {
		return
	}
	// The socket never reaches the command, whatever the engine forgets;
	// and the caller reads EOF when the command's execve succeeds.
	unix.CloseOnExec(fd)
	final = os.NewFile(uintptr(fd), "nsenter")
	// Nor does the variable: a command that is this binary again would
	// take it for orders.
	_ = os.Unsetenv(envName)
}

// Joined reports whether this process is the final process of a Cmd.
func Joined() bool { return final != nil }

// Conn is the final process's end of the socket to its caller (the file
// Continue returned there); nil unless Joined.
func Conn() *os.File { return final }

// CloseExtraFDs marks every descriptor from 3+keep up close-on-exec, so
// that the command's execve closes them: descriptors 0-2 and the keep
// descriptors the caller passed on purpose (Cmd.ExtraFiles, OCI's
// --preserve-fds) are all the command gets. Not only what this process
// opened: a caller started with a descriptor open (its own parent's, a
// leaked one, CVE-2024-21626's cgroup directory) passes it to every child
// that Go starts, since Go marks close-on-exec only the files it opens.
// Marking instead of closing leaves the Go runtime's own descriptors
// working until execve. Call it last before execve.
func CloseExtraFDs(keep int) error {
	if keep < 0 {
		return fmt.Errorf("close extra fds: keep %d", keep)
	}
	first := 3 + keep
	err := unix.CloseRange(uint(first), math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("close_range(%d, CLOEXEC): %w", first, err)
	}
	// Before Linux 5.11: one by one, as /proc/self/fd lists them.
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("close extra fds: %w", err)
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < first {
			continue
		}
		unix.CloseOnExec(fd) // the directory's own fd is gone: EBADF, fine
	}
	return nil
}

// Chdir changes to dir and checks that the working directory is inside
// this process's root. A path can leave the root: /proc/self/fd/N names a
// descriptor's directory wherever it is, and a descriptor the caller
// leaked (CVE-2024-21626) is a directory of the host. The kernel then
// answers getcwd(2) with "(unreachable)/..." instead of an absolute path.
func Chdir(dir string) error {
	if err := unix.Chdir(dir); err != nil {
		return fmt.Errorf("chdir %s: %w", dir, err)
	}
	buf := make([]byte, unix.PathMax)
	n, err := unix.Getcwd(buf)
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("getcwd after chdir %s: %w", dir, err)
	}
	if err != nil {
		return fmt.Errorf("working directory %s: removed while we entered it", dir)
	}
	if n < 1 || !strings.HasPrefix(string(buf[:n]), "/") {
		return fmt.Errorf("working directory %s is outside the container's root", dir)
	}
	return nil
}
