//go:build linux

package security

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth/09-full/security/seccomp"
)

const capSysAdmin = 21

// Finalize turns the calling thread into the process p describes, inside
// a container whose spec is spec (for its seccomp profile): the last
// thing before execve, for the container's init (Step.PreExec) and for a
// process exec'd into a running container alike. The order is the lesson:
//
//  1. rlimits and oom_score_adj, while still privileged: raising a hard
//     limit or lowering the OOM score needs CAP_SYS_RESOURCE.
//  2. the bounding set, which needs CAP_SETPCAP, so before anything
//     lowers the effective set.
//  3. the user switch. setuid from root to another user would clear
//     every capability; PR_SET_KEEPCAPS keeps the permitted set across
//     it, and the next step picks from it.
//  4. the effective, permitted, inheritable and ambient sets.
//  5. no_new_privs: from here on no execve (setuid bit, file
//     capabilities) can gain privileges.
//  6. seccomp, last: every system call the runtime still makes after it
//     must pass the filter, so the fewer the better. Installing a filter
//     needs no_new_privs or CAP_SYS_ADMIN: without no_new_privs (Docker's
//     default) the thread keeps CAP_SYS_ADMIN through step 4 just for
//     this, and one more capset drops it right after. (runc installs the
//     filter before the user switch instead, when no_new_privs is off.)
//
// It returns with the thread ready for execve; on error the caller must
// not execute the command.
func Finalize(spec *specs.Spec, p *specs.Process) error {
	return finalize(spec, p, nil, func(string, ...any) {})
}

// finalize is Finalize with the filter already compiled (nil: compile
// it here) and a logger for --verbose.
func finalize(spec *specs.Spec, p *specs.Process, prog *seccomp.Program, logf func(string, ...any)) error {
	if p == nil {
		return errors.New("security: no process")
	}
	if prog == nil && spec.Linux != nil && spec.Linux.Seccomp != nil {
		var err error
		start := time.Now()
		if prog, err = seccomp.Compile(spec.Linux.Seccomp); err != nil {
			return err
		}
		logf("security: seccomp profile compiled to %d BPF instructions in %v", len(prog.Instructions), time.Since(start).Round(time.Microsecond))
	}
	if err := setRlimits(p.Rlimits); err != nil {
		return err
	}
	if p.OOMScoreAdj != nil {
		if err := writeOOMScoreAdj(*p.OOMScoreAdj); err != nil {
			return err
		}
	}
	last, err := LastCap()
	if err != nil {
		return err
	}
	var sets *capSets
	if p.Capabilities != nil {
		s, err := masks(p.Capabilities)
		if err != nil {
			return err
		}
		sets = &s
		if err := dropBounding(s.bounding, last); err != nil {
			return err
		}
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_KEEPCAPS): %w", err)
	}
	if err := switchUser(p.User); err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_KEEPCAPS, 0): %w", err)
	}
	// Keep CAP_SYS_ADMIN for the filter, if the kernel will want it.
	borrowed := false
	if sets != nil {
		eff, perm := sets.effective, sets.permitted
		if prog != nil && !p.NoNewPrivileges && eff&(1<<capSysAdmin) == 0 {
			eff, perm = eff|1<<capSysAdmin, perm|1<<capSysAdmin
			borrowed = true
		}
		if err := capset(eff, perm, sets.inheritable); err != nil {
			return err
		}
		if err := setAmbient(sets.ambient, last); err != nil {
			return err
		}
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", err)
		}
	}
	if prog != nil {
		start := time.Now()
		if err := prog.Load(); err != nil {
			return err
		}
		logf("security: filter loaded in %v", time.Since(start).Round(time.Microsecond))
	}
	if borrowed {
		if err := capset(sets.effective, sets.permitted, sets.inheritable); err != nil {
			return fmt.Errorf("%w (after the seccomp filter is loaded: the profile must allow capset, or set no-new-privileges)", err)
		}
	}
	return nil
}

func masks(c *specs.LinuxCapabilities) (capSets, error) {
	var s capSets
	var err error
	for _, f := range []struct {
		dst  *uint64
		list []string
	}{{&s.bounding, c.Bounding}, {&s.effective, c.Effective}, {&s.permitted, c.Permitted},
		{&s.inheritable, c.Inheritable}, {&s.ambient, c.Ambient}} {
		if *f.dst, err = Mask(f.list); err != nil {
			return s, err
		}
	}
	return s, nil
}

// rlimitTypes are the spec's names of setrlimit's resources.
var rlimitTypes = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE,
	"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK": unix.RLIMIT_STACK,
}

// setRlimits applies process.rlimits. syscall.Setrlimit, not the raw
// call: the Go runtime raises its own RLIMIT_NOFILE soft limit at start
// and puts the old one back before an execve, unless the program set the
// limit itself through syscall.Setrlimit, which it then leaves alone.
func setRlimits(list []specs.POSIXRlimit) error {
	for _, r := range list {
		res, ok := rlimitTypes[r.Type]
		if !ok {
			return fmt.Errorf("process.rlimits: unknown type %q", r.Type)
		}
		lim := syscall.Rlimit{Cur: r.Soft, Max: r.Hard}
		if err := syscall.Setrlimit(res, &lim); err != nil {
			return fmt.Errorf("setrlimit(%s, soft %d, hard %d): %w", r.Type, r.Soft, r.Hard, err)
		}
	}
	return nil
}

// writeOOMScoreAdj makes the kernel's OOM killer prefer (up to 1000) or
// spare (down to -1000) this process; children inherit it.
func writeOOMScoreAdj(v int) error {
	if err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(v)), 0); err != nil {
		return fmt.Errorf("write %d to /proc/self/oom_score_adj: %w", v, err)
	}
	return nil
}
