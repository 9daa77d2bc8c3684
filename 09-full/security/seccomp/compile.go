//go:build linux

// Package seccomp compiles the OCI runtime spec's seccomp section
// (linux.seccomp: a default action, and rules naming system calls, their
// arguments and an action) into the classic BPF program the kernel runs
// on every system call, and loads it.
//
// It is a small compiler written for berth rather than libseccomp through
// cgo (what runc uses): the program it writes is short enough to read in
// full, so the chapter can show how a profile becomes a filter, and the
// init stays a pure Go binary. The shape of the program:
//
//	ld  arch                          which ABI made the call
//	jeq AUDIT_ARCH_X86_64 -> x86_64   one block per architecture
//	jeq AUDIT_ARCH_I386   -> x86
//	ret KILL_PROCESS                  an ABI the profile does not name
//	x86_64:
//	ld  nr
//	jset 0x40000000 -> ENOSYS         x32 calls: no table for them
//	jgt  LAST       -> ENOSYS         newer than any call the profile names
//	...binary search on nr...         ranges of calls with one action
//	ret  ALLOW | ERRNO(EPERM) | ...   or argument checks, then a ret
//
// Rules of one system call are tried in the profile's order; the first
// whose argument conditions all hold decides, and a call no rule matches
// gets the default action. As in runc, conditions of one rule are all
// required, except when two of them test the same argument: then each
// condition is a rule of its own (either may hold). A system call newer
// than every call the profile names returns ENOSYS instead of the default
// action, as runc does, so that a C library falls back to an older call
// (glibc tries clone3, then clone) instead of failing with EPERM.
package seccomp

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sort"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Offsets in struct seccomp_data: int nr; u32 arch; u64 ip; u64 args[6].
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// x32Bit marks a system call made through the x32 ABI on x86_64.
const x32Bit = 0x40000000

// maxInstructions is the kernel's limit (BPF_MAXINSNS).
const maxInstructions = 4096

// maxRules bounds the work a hostile profile can ask for before the
// instruction limit would refuse it anyway.
const maxRules = 1 << 16

// archInfo is what the compiler needs to know of an architecture.
type archInfo struct {
	audit uint32 // AUDIT_ARCH_*, what seccomp_data.arch holds
}

var arches = map[specs.Arch]archInfo{
	specs.ArchX86_64:  {unix.AUDIT_ARCH_X86_64},
	specs.ArchX86:     {unix.AUDIT_ARCH_I386},
	specs.ArchAARCH64: {unix.AUDIT_ARCH_AARCH64},
	specs.ArchARM:     {unix.AUDIT_ARCH_ARM},
}

// compat lists, for a native architecture, the ABIs its CPU also runs
// and the compiler has tables for.
var compat = map[specs.Arch][]specs.Arch{
	specs.ArchX86_64:  {specs.ArchX86},
	specs.ArchAARCH64: {specs.ArchARM},
}

// known are the SCMP_ARCH_* names the spec allows; a profile may name
// architectures this machine cannot run, which are then ignored.
var known = map[specs.Arch]bool{
	specs.ArchX86: true, specs.ArchX86_64: true, specs.ArchX32: true, specs.ArchARM: true,
	specs.ArchAARCH64: true, specs.ArchMIPS: true, specs.ArchMIPS64: true, specs.ArchMIPS64N32: true,
	specs.ArchMIPSEL: true, specs.ArchMIPSEL64: true, specs.ArchMIPSEL64N32: true, specs.ArchPPC: true,
	specs.ArchPPC64: true, specs.ArchPPC64LE: true, specs.ArchS390: true, specs.ArchS390X: true,
	specs.ArchPARISC: true, specs.ArchPARISC64: true, specs.ArchRISCV64: true, specs.ArchLOONGARCH64: true,
}

// Native is the architecture berth was built for.
func Native() (specs.Arch, error) {
	switch runtime.GOARCH {
	case "amd64":
		return specs.ArchX86_64, nil
	case "386":
		return specs.ArchX86, nil
	case "arm64":
		return specs.ArchAARCH64, nil
	case "arm":
		return specs.ArchARM, nil
	}
	return "", fmt.Errorf("seccomp: berth has no system call table for %s", runtime.GOARCH)
}

// A Program is a compiled filter.
type Program struct {
	Instructions []bpf.Instruction
	Flags        uintptr // SECCOMP_FILTER_FLAG_* for seccomp(2)
}

// Compile turns a profile into a filter for the machine berth runs on.
func Compile(s *specs.LinuxSeccomp) (*Program, error) {
	native, err := Native()
	if err != nil {
		return nil, err
	}
	return CompileFor(s, native)
}

type cond struct {
	arg   uint // 0..5
	op    specs.LinuxSeccompOperator
	v, v2 uint64
}

type rule struct {
	conds []cond
	ret   uint32
}

// decision is what a system call number gets: its rules in order, then
// fallback. With no rules, fallback alone (an unconditional action).
type decision struct {
	rules    []rule
	fallback uint32
}

func (d decision) unconditional() bool { return len(d.rules) == 0 }

// CompileFor compiles for a given native architecture (tests compile for
// others than the one they run on).
func CompileFor(s *specs.LinuxSeccomp, native specs.Arch) (*Program, error) {
	if s == nil {
		return nil, errors.New("seccomp: no profile")
	}
	if s.ListenerPath != "" || s.ListenerMetadata != "" {
		return nil, errors.New("seccomp: listenerPath (a seccomp agent for SCMP_ACT_NOTIFY) is not supported by berth")
	}
	def, err := action(s.DefaultAction, s.DefaultErrnoRet, "defaultAction")
	if err != nil {
		return nil, err
	}
	p := &Program{Flags: unix.SECCOMP_FILTER_FLAG_TSYNC}
	for _, f := range s.Flags {
		switch f {
		case specs.LinuxSeccompFlagLog:
			p.Flags |= unix.SECCOMP_FILTER_FLAG_LOG
		case specs.LinuxSeccompFlagSpecAllow:
			p.Flags |= unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW
		case "SECCOMP_FILTER_FLAG_TSYNC":
			// always set: every thread of the init gets the filter
		default:
			return nil, fmt.Errorf("seccomp: flag %q is not supported", f)
		}
	}
	// Which blocks to write: the native ABI always (libseccomp does the
	// same), and the compatible ones the profile names.
	blocks := []specs.Arch{native}
	for _, a := range s.Architectures {
		if !known[a] {
			return nil, fmt.Errorf("seccomp: unknown architecture %q", a)
		}
		for _, c := range compat[native] {
			if a == c && !contains(blocks, c) {
				blocks = append(blocks, c)
			}
		}
	}
	rules, err := parseRules(s)
	if err != nil {
		return nil, err
	}
	enosys := !allowLike(def)

	var a asm
	enosysLabel := a.newLabel()
	labels := make([]label, len(blocks))
	a.load(offArch)
	for i, arch := range blocks {
		labels[i] = a.newLabel()
		a.branch(bpf.JumpEqual, arches[arch].audit, labels[i], next)
	}
	a.ret(unix.SECCOMP_RET_KILL_PROCESS) // an ABI the profile does not cover
	for i, arch := range blocks {
		a.place(labels[i])
		table, ok := sysnums[arch]
		if !ok {
			return nil, fmt.Errorf("seccomp: no system call table for %s", arch)
		}
		byNr, last, found := resolve(rules, table, def)
		a.load(offNr)
		if arch == specs.ArchX86_64 {
			// x32 programs share the x86_64 ABI number with bit 30 set;
			// berth has no x32 table, and without this check such a call
			// would dodge every rule (its number is no x86_64 number).
			a.branch(bpf.JumpBitsSet, x32Bit, enosysLabel, next)
		}
		top := uint64(math.MaxUint32)
		if enosys && found {
			a.branch(bpf.JumpGreaterThan, last, enosysLabel, next)
			top = uint64(last)
		}
		tree(&a, ranges(byNr, def, top))
	}
	a.place(enosysLabel)
	a.ret(unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS))

	ins, err := a.resolve()
	if err != nil {
		return nil, err
	}
	if len(ins) > maxInstructions {
		return nil, fmt.Errorf("seccomp: the profile compiles to %d instructions; the kernel takes at most %d", len(ins), maxInstructions)
	}
	p.Instructions = ins
	return p, nil
}

// parsed is a profile rule with its names still unresolved.
type parsed struct {
	names []string
	rules []rule // one, or several under runc's same-argument rule
}

func parseRules(s *specs.LinuxSeccomp) ([]parsed, error) {
	var out []parsed
	n := 0
	for i, sc := range s.Syscalls {
		where := fmt.Sprintf("syscalls[%d]", i)
		if len(sc.Names) == 0 {
			return nil, fmt.Errorf("seccomp: %s names no system call", where)
		}
		for _, name := range sc.Names {
			if name == "" {
				return nil, fmt.Errorf("seccomp: %s has an empty system call name", where)
			}
		}
		ret, err := action(sc.Action, sc.ErrnoRet, where+".action")
		if err != nil {
			return nil, err
		}
		var conds []cond
		seen := map[uint]int{}
		for j, a := range sc.Args {
			if a.Index > 5 {
				return nil, fmt.Errorf("seccomp: %s.args[%d]: index %d (a system call has arguments 0-5)", where, j, a.Index)
			}
			switch a.Op {
			case specs.OpEqualTo, specs.OpNotEqual, specs.OpGreaterThan, specs.OpGreaterEqual,
				specs.OpLessThan, specs.OpLessEqual, specs.OpMaskedEqual:
			default:
				return nil, fmt.Errorf("seccomp: %s.args[%d]: unknown operator %q", where, j, a.Op)
			}
			seen[a.Index]++
			conds = append(conds, cond{arg: a.Index, op: a.Op, v: a.Value, v2: a.ValueTwo})
		}
		p := parsed{names: sc.Names}
		repeated := false
		for _, c := range seen {
			repeated = repeated || c > 1
		}
		if repeated {
			// runc (and so every profile written for it): conditions on
			// the same argument are alternatives, each a rule.
			for _, c := range conds {
				p.rules = append(p.rules, rule{conds: []cond{c}, ret: ret})
			}
		} else {
			p.rules = []rule{{conds: conds, ret: ret}}
		}
		n += len(sc.Names) * len(p.rules)
		if n > maxRules {
			return nil, fmt.Errorf("seccomp: the profile has more than %d rules", maxRules)
		}
		out = append(out, p)
	}
	return out, nil
}

// resolve gives each system call number of the table its decision, and
// returns the largest number the profile names (found is false when it
// names none on this architecture: then there is no ENOSYS cut-off). Names the table lacks
// (calls of other architectures, or newer than x/sys) are skipped, as
// runc and libseccomp do.
func resolve(ps []parsed, table []sysnum, def uint32) (byNr map[uint32]decision, last uint32, found bool) {
	byNr = map[uint32]decision{}
	for _, p := range ps {
		for _, name := range p.names {
			nr, ok := lookup(table, name)
			if !ok {
				continue
			}
			last, found = max(last, nr), true
			d, seen := byNr[nr]
			if !seen {
				d = decision{fallback: def}
			}
			if d.closed() {
				continue // an earlier unconditional rule decides
			}
			for _, r := range p.rules {
				if len(r.conds) == 0 {
					// Unconditional: it ends the list.
					d.fallback = r.ret
					d.rules = append(d.rules, rule{ret: r.ret})
					break
				}
				d.rules = append(d.rules, r)
			}
			byNr[nr] = d
		}
	}
	for nr, d := range byNr {
		// A trailing unconditional rule is the fallback itself.
		if n := len(d.rules); n > 0 && len(d.rules[n-1].conds) == 0 {
			d.rules = d.rules[:n-1]
		}
		byNr[nr] = d
	}
	return byNr, last, found
}

// closed: the list ends in an unconditional rule, so later ones never run.
func (d decision) closed() bool {
	n := len(d.rules)
	return n > 0 && len(d.rules[n-1].conds) == 0
}

// action turns a spec action into the filter's return value.
func action(act specs.LinuxSeccompAction, errno *uint, where string) (uint32, error) {
	data := uint32(unix.EPERM)
	if errno != nil {
		if *errno > 4095 {
			return 0, fmt.Errorf("seccomp: %s: errnoRet %d is not an errno (1-4095)", where, *errno)
		}
		data = uint32(*errno)
	}
	switch act {
	case specs.ActAllow:
		return unix.SECCOMP_RET_ALLOW, nil
	case specs.ActErrno:
		return unix.SECCOMP_RET_ERRNO | data, nil
	case specs.ActKill, specs.ActKillThread:
		return unix.SECCOMP_RET_KILL_THREAD, nil
	case specs.ActKillProcess:
		return unix.SECCOMP_RET_KILL_PROCESS, nil
	case specs.ActTrap:
		return unix.SECCOMP_RET_TRAP, nil
	case specs.ActTrace:
		return unix.SECCOMP_RET_TRACE | data, nil
	case specs.ActLog:
		return unix.SECCOMP_RET_LOG, nil
	case specs.ActNotify:
		return 0, fmt.Errorf("seccomp: %s: SCMP_ACT_NOTIFY needs a seccomp agent, which berth does not support", where)
	case "":
		return 0, fmt.Errorf("seccomp: %s is empty", where)
	}
	return 0, fmt.Errorf("seccomp: %s: unknown action %q", where, act)
}

// allowLike: with such a default, a call the profile does not know runs
// (no ENOSYS): TRACE and LOG let it through too, as in runc.
func allowLike(ret uint32) bool {
	switch ret & unix.SECCOMP_RET_ACTION_FULL {
	case unix.SECCOMP_RET_ALLOW, unix.SECCOMP_RET_LOG, unix.SECCOMP_RET_TRACE:
		return true
	}
	return false
}

type sysnum struct {
	name string
	nr   uint32
}

// lookup finds a system call by name in a table sorted by name.
func lookup(table []sysnum, name string) (uint32, bool) {
	i := sort.Search(len(table), func(i int) bool { return table[i].name >= name })
	if i < len(table) && table[i].name == name {
		return table[i].nr, true
	}
	return 0, false
}

// Number returns the number of a system call on an architecture.
func Number(arch specs.Arch, name string) (uint32, bool) { return lookup(sysnums[arch], name) }

func contains(list []specs.Arch, a specs.Arch) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}
