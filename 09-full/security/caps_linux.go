//go:build linux

package security

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Capabilities are set by hand with three system calls rather than
// through github.com/moby/sys/capability (what runc uses): the library is
// well kept, but here the lesson is the kernel's own interface, and it is
// small: prctl(PR_CAPBSET_DROP) per capability for the bounding set,
// capset(2) with three 64-bit masks (split in two 32-bit words each) for
// the effective, permitted and inheritable sets, and prctl(PR_CAP_AMBIENT)
// for the ambient set. The masks are exactly what /proc/PID/status shows.
// All three act on the calling thread only: the spine's init runs them
// on its locked main thread, the one that calls execve.

// capSets are a process's capability sets as bit masks.
type capSets struct {
	bounding, effective, permitted, inheritable, ambient uint64
}

// dropBounding removes every capability outside keep from the bounding
// set: the limit of what this process or any program it executes (setuid
// root or with file capabilities) can ever hold. It needs CAP_SETPCAP,
// so it comes first, while the init is still root with every capability.
func dropBounding(keep uint64, last int) error {
	for c := 0; c <= last; c++ {
		if keep&(1<<uint(c)) != 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			return fmt.Errorf("prctl(PR_CAPBSET_DROP, %s): %w", capName(c), err)
		}
	}
	return nil
}

// capset sets the effective, permitted and inheritable sets. A set can
// only shrink (permitted), or stay within permitted (effective) and
// within bounding (inheritable).
func capset(effective, permitted, inheritable uint64) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3} // Pid 0: this thread
	data := [2]unix.CapUserData{
		{Effective: uint32(effective), Permitted: uint32(permitted), Inheritable: uint32(inheritable)},
		{Effective: uint32(effective >> 32), Permitted: uint32(permitted >> 32), Inheritable: uint32(inheritable >> 32)},
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset(effective %#x, permitted %#x, inheritable %#x): %w", effective, permitted, inheritable, err)
	}
	return nil
}

// setAmbient makes the ambient set exactly amb. Ambient capabilities are
// how a non-root process passes capabilities through execve to a program
// without file capabilities; each must be permitted and inheritable.
func setAmbient(amb uint64, last int) error {
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_CAP_AMBIENT_CLEAR_ALL): %w", err)
	}
	for c := 0; c <= last; c++ {
		if amb&(1<<uint(c)) == 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(c), 0, 0); err != nil {
			return fmt.Errorf("prctl(PR_CAP_AMBIENT_RAISE, %s): %w", capName(c), err)
		}
	}
	return nil
}

func capName(c int) string {
	if c < len(capNames) {
		return capNames[c]
	}
	return fmt.Sprintf("capability %d", c)
}
