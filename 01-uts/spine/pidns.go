package spine

import (
	"fmt"
	"os/exec"
	"runtime"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// startInPidns starts the init. When the spec names a PID namespace by
// path (a pod's containers sharing their sandbox's, as containerd's CRI
// plugin asks for with the pod's shareProcessNamespace), the init must be
// born in it: setns(CLONE_NEWPID) never moves the caller, only the
// children it makes afterwards (its pid_for_children), so the init
// cannot join it itself as it joins the others (joinNamespaces). The
// parent's thread enters it, forks the init from that very thread, and
// goes back to its own PID namespace; setns into a PID namespace works
// in a multithreaded process, and only into the caller's own or one
// below it, which is how the kernel keeps a container from reaching up.
func startInPidns(c *Container, cmd *exec.Cmd) error {
	path := ""
	for _, ns := range c.Spec.Linux.Namespaces {
		if ns.Type == specs.PIDNamespace {
			path = ns.Path
		}
	}
	if path == "" {
		return cmd.Start()
	}
	// The namespace belongs to this thread: keep the goroutine on it from
	// the setns to the fork and back.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	own, err := unix.Open("/proc/thread-self/ns/pid", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open our pid namespace: %w", err)
	}
	defer unix.Close(own)
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open pid namespace %s: %w", path, err)
	}
	// CLONE_NEWPID makes the kernel check that fd is a PID namespace.
	err = unix.Setns(fd, unix.CLONE_NEWPID)
	unix.Close(fd)
	if err != nil {
		return fmt.Errorf("setns pid %s: %w", path, err)
	}
	startErr := cmd.Start()
	if err := unix.Setns(own, unix.CLONE_NEWPID); err != nil {
		// The thread would make its next children in the container's
		// namespace: the runtime must not go on with it.
		panic(fmt.Sprintf("spine: back to our own pid namespace: %v", err))
	}
	if startErr == nil {
		c.Logf("joined pid namespace %s", path)
	}
	return startErr
}
