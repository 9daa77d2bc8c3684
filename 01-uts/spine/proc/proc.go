// Package proc names a process for as long as it lives. A pid alone does
// not: once the process exits, the kernel may give the number to another.
// A process is its pid plus its start time (field 22 of /proc/PID/stat, in
// clock ticks since boot), and a start time means something only within
// one boot (/proc/sys/kernel/random/boot_id). That triple is how berth
// judges whether a detached container, or its monitor, still lives, with
// no process of berth's holding anything. It imports only the standard
// library, so the smallest programs (stage 09's monitor) can use it.
package proc

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
)

// StartTime returns the start time of process pid (see above).
func StartTime(pid int) (uint64, error) {
	f, err := stat(pid)
	if err != nil {
		return 0, err
	}
	// f[0] is field 3 (state): the start time, field 22, is f[19].
	if len(f) < 20 {
		return 0, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(f)+2)
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse /proc/%d/stat start time %q: %w", pid, f[19], err)
	}
	return start, nil
}

// stat returns the fields of /proc/PID/stat after the command name, which
// may hold spaces and parentheses: it ends at the last ')'.
func stat(pid int) ([]string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, fmt.Errorf("read /proc/%d/stat: %w", pid, err)
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("parse /proc/%d/stat: %q", pid, b)
	}
	return strings.Fields(string(b[i+1:])), nil
}

// Alive reports whether pid is still the process that started at start
// (0 accepts any). A zombie still counts: it has died, but whoever waits
// for it has not yet collected its status, and will.
func Alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	got, err := StartTime(pid)
	return err == nil && (start == 0 || got == start)
}

// Zombie reports whether pid has exited but not yet been waited for.
func Zombie(pid int) bool {
	f, err := stat(pid)
	return err == nil && len(f) > 0 && f[0] == "Z"
}

var bootID = sync.OnceValue(func() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
})

// BootID is this boot's random id: a start time from another boot means
// nothing in this one.
func BootID() string { return bootID() }

// Same reports whether the process recorded as pid, start, boot (as
// StartTime and BootID gave them then) is the one alive now.
func Same(pid int, start uint64, boot string) bool {
	if boot != "" && boot != BootID() {
		return false
	}
	return Alive(pid, start)
}

// Running is Same without zombies: a process that has exited but whose
// parent has not collected it yet (or never will: an init that does not
// reap) can do nothing more.
func Running(pid int, start uint64, boot string) bool {
	return Same(pid, start, boot) && !Zombie(pid)
}
