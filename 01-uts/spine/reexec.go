//go:build linux

package spine

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth/01-uts/spine/sealexe"
)

// The init executes itself again inside a new user namespace (stage 05),
// and it is a sealed copy of the binary (sealexe), never the host's file,
// which it must neither hold open nor expose while it runs inside the
// container (its /proc files, a core dump).

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
