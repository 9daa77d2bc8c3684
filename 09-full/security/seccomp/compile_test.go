//go:build linux

package seccomp

import (
	"encoding/binary"
	"fmt"
	"math/rand"
	"strings"
	"testing"

	mobyseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// call is one system call as seccomp sees it.
type call struct {
	arch uint32
	nr   uint32
	args [6]uint64
}

// data lays out struct seccomp_data for x/net/bpf's VM. The VM loads words
// big-endian (it is made for packets), the kernel in the machine's order:
// writing each 32-bit word big-endian makes the VM read the value the
// kernel would.
func (c call) data() []byte {
	b := make([]byte, 64)
	put := func(off int, v uint32) { binary.BigEndian.PutUint32(b[off:], v) }
	put(offNr, c.nr)
	put(offArch, c.arch)
	for i, a := range c.args {
		put(offArgs+8*i, uint32(a))       // low word first (little-endian u64)
		put(offArgs+8*i+4, uint32(a>>32)) // then the high word
	}
	return b
}

func dockerProfile(t testing.TB, caps []string) *specs.LinuxSeccomp {
	t.Helper()
	spec := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps}}}
	p, err := mobyseccomp.GetDefaultProfile(spec)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var dockerCaps = []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}

func nr(t *testing.T, arch specs.Arch, name string) uint32 {
	t.Helper()
	n, ok := Number(arch, name)
	if !ok {
		t.Fatalf("no %s on %s", name, arch)
	}
	return n
}

func TestDockerProfile(t *testing.T) {
	prof := dockerProfile(t, dockerCaps)
	p, err := CompileFor(prof, specs.ArchX86_64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Docker's default profile: %d instructions", len(p.Instructions))
	x86_64 := uint32(unix.AUDIT_ARCH_X86_64)
	i386 := uint32(unix.AUDIT_ARCH_I386)
	sys := func(name string) uint32 { return nr(t, specs.ArchX86_64, name) }
	allow, eperm, enosys := uint32(unix.SECCOMP_RET_ALLOW), uint32(unix.SECCOMP_RET_ERRNO|1), uint32(unix.SECCOMP_RET_ERRNO|38)
	for _, tc := range []struct {
		what string
		c    call
		want uint32
	}{
		{"read", call{arch: x86_64, nr: sys("read")}, allow},
		{"execve", call{arch: x86_64, nr: sys("execve")}, allow},
		{"capset (needed after the filter)", call{arch: x86_64, nr: sys("capset")}, allow},
		{"keyctl", call{arch: x86_64, nr: sys("keyctl")}, eperm},
		{"add_key", call{arch: x86_64, nr: sys("add_key")}, eperm},
		{"mount without CAP_SYS_ADMIN", call{arch: x86_64, nr: sys("mount")}, eperm},
		{"unshare without CAP_SYS_ADMIN", call{arch: x86_64, nr: sys("unshare")}, eperm},
		{"finit_module", call{arch: x86_64, nr: sys("finit_module")}, eperm},
		{"clone3: ENOSYS so glibc falls back to clone", call{arch: x86_64, nr: sys("clone3")}, enosys},
		{"clone(SIGCHLD)", call{arch: x86_64, nr: sys("clone"), args: [6]uint64{uint64(unix.SIGCHLD)}}, allow},
		{"clone(CLONE_NEWUSER)", call{arch: x86_64, nr: sys("clone"), args: [6]uint64{unix.CLONE_NEWUSER}}, eperm},
		{"clone(CLONE_NEWNS) in the high bits too", call{arch: x86_64, nr: sys("clone"), args: [6]uint64{1<<32 | unix.CLONE_NEWNS}}, eperm},
		{"personality(PER_LINUX)", call{arch: x86_64, nr: sys("personality"), args: [6]uint64{0}}, allow},
		{"personality(0xffffffff) queries", call{arch: x86_64, nr: sys("personality"), args: [6]uint64{0xffffffff}}, allow},
		{"personality(ADDR_NO_RANDOMIZE)", call{arch: x86_64, nr: sys("personality"), args: [6]uint64{0x0040000}}, eperm},
		{"personality(1<<32): the high word counts", call{arch: x86_64, nr: sys("personality"), args: [6]uint64{1 << 32}}, eperm},
		{"socket(AF_INET)", call{arch: x86_64, nr: sys("socket"), args: [6]uint64{unix.AF_INET}}, allow},
		{"socket(AF_VSOCK)", call{arch: x86_64, nr: sys("socket"), args: [6]uint64{unix.AF_VSOCK}}, eperm},
		{"a number no kernel has yet", call{arch: x86_64, nr: 1000}, enosys},
		{"nr -1 (as ptrace sets it)", call{arch: x86_64, nr: 0xffffffff}, enosys},
		{"x32 read", call{arch: x86_64, nr: x32Bit | sys("read")}, enosys},
		{"x32 keyctl", call{arch: x86_64, nr: x32Bit | sys("keyctl")}, enosys},
		{"i386 read", call{arch: i386, nr: nr(t, specs.ArchX86, "read")}, allow},
		{"i386 keyctl", call{arch: i386, nr: nr(t, specs.ArchX86, "keyctl")}, eperm},
		{"i386 socketcall", call{arch: i386, nr: nr(t, specs.ArchX86, "socketcall")}, allow},
		{"arm on x86_64: an ABI the filter does not know", call{arch: unix.AUDIT_ARCH_ARM, nr: 3}, unix.SECCOMP_RET_KILL_PROCESS},
	} {
		if got := verdict(t, p, tc.c); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.what, ActionName(got), ActionName(tc.want))
		}
	}

	// With CAP_SYS_ADMIN in the bounding set, Docker's profile opens
	// mount, unshare and namespace flags of clone.
	p, err = CompileFor(dockerProfile(t, append(dockerCaps, "CAP_SYS_ADMIN")), specs.ArchX86_64)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"mount", "unshare", "setns", "clone3"} {
		if got := verdict(t, p, call{arch: x86_64, nr: sys(name)}); got != allow {
			t.Errorf("with CAP_SYS_ADMIN, %s: got %s", name, ActionName(got))
		}
	}
	if got := verdict(t, p, call{arch: x86_64, nr: sys("clone"), args: [6]uint64{unix.CLONE_NEWUSER}}); got != allow {
		t.Errorf("with CAP_SYS_ADMIN, clone(CLONE_NEWUSER): got %s", ActionName(got))
	}
}

func TestArm64(t *testing.T) {
	p, err := CompileFor(dockerProfile(t, dockerCaps), specs.ArchAARCH64)
	if err != nil {
		t.Fatal(err)
	}
	a := uint32(unix.AUDIT_ARCH_AARCH64)
	if got := verdict(t, p, call{arch: a, nr: nr(t, specs.ArchAARCH64, "openat")}); got != unix.SECCOMP_RET_ALLOW {
		t.Errorf("openat: %s", ActionName(got))
	}
	if got := verdict(t, p, call{arch: a, nr: nr(t, specs.ArchAARCH64, "keyctl")}); got != unix.SECCOMP_RET_ERRNO|1 {
		t.Errorf("keyctl: %s", ActionName(got))
	}
	if got := verdict(t, p, call{arch: unix.AUDIT_ARCH_X86_64, nr: 0}); got != unix.SECCOMP_RET_KILL_PROCESS {
		t.Errorf("x86_64 call on arm64: %s", ActionName(got))
	}
}

// verdict runs the program and returns the full 32-bit ret value. The VM
// of x/net/bpf returns min(ret, len(packet)), so the program's returns are
// read by running it once per ret instruction it holds: a copy whose ret
// instructions return their index decides which one fired.
func verdict(t *testing.T, p *Program, c call) uint32 {
	t.Helper()
	marked := make([]bpf.Instruction, len(p.Instructions))
	copy(marked, p.Instructions)
	for i, in := range marked {
		if _, ok := in.(bpf.RetConstant); ok {
			marked[i] = bpf.RetConstant{Val: uint32(i + 1)}
		}
	}
	vm, err := bpf.NewVM(marked)
	if err != nil {
		t.Fatalf("the program does not verify: %v\n%s", err, p)
	}
	packet := append(c.data(), make([]byte, len(marked)+1)...)
	n, err := vm.Run(packet)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if n < 1 || n > len(marked) {
		t.Fatalf("the program returned %d, not one of its rets", n)
	}
	return p.Instructions[n-1].(bpf.RetConstant).Val
}

func u(v uint) *uint { return &v }

func TestActionsAndErrors(t *testing.T) {
	x86_64 := uint32(unix.AUDIT_ARCH_X86_64)
	mkdir := nr(t, specs.ArchX86_64, "mkdir")
	for _, tc := range []struct {
		act  specs.LinuxSeccompAction
		ret  *uint
		want uint32
	}{
		{specs.ActErrno, nil, unix.SECCOMP_RET_ERRNO | 1},
		{specs.ActErrno, u(13), unix.SECCOMP_RET_ERRNO | 13},
		{specs.ActKill, nil, unix.SECCOMP_RET_KILL_THREAD},
		{specs.ActKillThread, nil, unix.SECCOMP_RET_KILL_THREAD},
		{specs.ActKillProcess, nil, unix.SECCOMP_RET_KILL_PROCESS},
		{specs.ActTrap, nil, unix.SECCOMP_RET_TRAP},
		{specs.ActTrace, nil, unix.SECCOMP_RET_TRACE | 1},
		{specs.ActLog, nil, unix.SECCOMP_RET_LOG},
	} {
		prof := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: tc.act, ErrnoRet: tc.ret}}}
		p, err := CompileFor(prof, specs.ArchX86_64)
		if err != nil {
			t.Fatal(err)
		}
		if got := verdict(t, p, call{arch: x86_64, nr: mkdir}); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.act, ActionName(got), ActionName(tc.want))
		}
		// Default allow: an unknown call runs (no ENOSYS cut-off)...
		if got := verdict(t, p, call{arch: x86_64, nr: 1000}); got != unix.SECCOMP_RET_ALLOW {
			t.Errorf("default allow, unknown call: %s", ActionName(got))
		}
		// ...but never an x32 one, which would dodge the rules.
		if got := verdict(t, p, call{arch: x86_64, nr: x32Bit | mkdir}); got != unix.SECCOMP_RET_ERRNO|38 {
			t.Errorf("default allow, x32 mkdir: %s", ActionName(got))
		}
	}

	for _, tc := range []struct {
		what string
		prof specs.LinuxSeccomp
		err  string
	}{
		{"notify", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActNotify}}}, "SCMP_ACT_NOTIFY"},
		{"listener", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/run/agent.sock"}, "listenerPath"},
		{"no default", specs.LinuxSeccomp{}, "defaultAction is empty"},
		{"bad action", specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_MAYBE"}, `unknown action "SCMP_ACT_MAYBE"`},
		{"bad op", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 0, Op: "SCMP_CMP_ROUGHLY"}}}}}, "unknown operator"},
		{"bad index", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}}}}, "index 6"},
		{"no names", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Action: specs.ActErrno}}}, "names no system call"},
		{"errno too big", specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: u(70000)}, "errnoRet 70000"},
		{"bad arch", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{"SCMP_ARCH_Z80"}}, "unknown architecture"},
		{"bad flag", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_NEW_LISTENER"}}, "not supported"},
	} {
		_, err := CompileFor(&tc.prof, specs.ArchX86_64)
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: got %v, want an error with %q", tc.what, err, tc.err)
		}
	}
}

// eval is the meaning of a profile, written plainly: the compiled program
// must agree with it on every call.
func eval(prof *specs.LinuxSeccomp, arch specs.Arch, c call) uint32 {
	def, _ := action(prof.DefaultAction, prof.DefaultErrnoRet, "")
	if arch == specs.ArchX86_64 && c.nr&x32Bit != 0 {
		return unix.SECCOMP_RET_ERRNO | 38
	}
	var last uint32
	found := false
	for _, sc := range prof.Syscalls {
		for _, n := range sc.Names {
			if v, ok := Number(arch, n); ok {
				last, found = max(last, v), true
			}
		}
	}
	if !allowLike(def) && found && c.nr > last {
		return unix.SECCOMP_RET_ERRNO | 38
	}
	holds := func(a specs.LinuxSeccompArg) bool {
		x := c.args[a.Index]
		switch a.Op {
		case specs.OpEqualTo:
			return x == a.Value
		case specs.OpNotEqual:
			return x != a.Value
		case specs.OpGreaterThan:
			return x > a.Value
		case specs.OpGreaterEqual:
			return x >= a.Value
		case specs.OpLessThan:
			return x < a.Value
		case specs.OpLessEqual:
			return x <= a.Value
		case specs.OpMaskedEqual:
			return x&a.Value == a.ValueTwo
		}
		panic(a.Op)
	}
	for _, sc := range prof.Syscalls {
		named := false
		for _, n := range sc.Names {
			if v, ok := Number(arch, n); ok && v == c.nr {
				named = true
			}
		}
		if !named {
			continue
		}
		ret, _ := action(sc.Action, sc.ErrnoRet, "")
		count := map[uint]int{}
		for _, a := range sc.Args {
			count[a.Index]++
		}
		anyRepeated := false
		for _, n := range count {
			anyRepeated = anyRepeated || n > 1
		}
		match := !anyRepeated
		for _, a := range sc.Args {
			if anyRepeated {
				match = match || holds(a)
			} else {
				match = match && holds(a)
			}
		}
		if match {
			return ret
		}
	}
	return def
}

// TestAgainstMeaning compiles random profiles and checks random calls
// against eval: 64-bit comparisons at the edges, rule order, long jumps.
func TestAgainstMeaning(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	names := []string{"read", "write", "mkdir", "personality", "socket", "clone", "ioctl", "keyctl", "mount", "openat"}
	ops := []specs.LinuxSeccompOperator{specs.OpEqualTo, specs.OpNotEqual, specs.OpGreaterThan, specs.OpGreaterEqual,
		specs.OpLessThan, specs.OpLessEqual, specs.OpMaskedEqual}
	vals := []uint64{0, 1, 2, 0xffffffff, 1 << 32, 1<<32 + 1, 0xffffffff00000000, 0xffffffffffffffff, 0x7fffffff, 0x80000000}
	pick := func() uint64 { return vals[rng.Intn(len(vals))] }
	acts := []specs.LinuxSeccompAction{specs.ActAllow, specs.ActErrno, specs.ActKillProcess, specs.ActLog}
	for round := 0; round < 300; round++ {
		prof := &specs.LinuxSeccomp{DefaultAction: acts[rng.Intn(len(acts))]}
		// Sometimes a long list, so that jumps pass 255 instructions.
		n := 1 + rng.Intn(6)
		if round%10 == 0 {
			n = 120
		}
		for i := 0; i < n; i++ {
			sc := specs.LinuxSyscall{Names: []string{names[rng.Intn(len(names))]}, Action: acts[rng.Intn(len(acts))]}
			if sc.Action == specs.ActErrno {
				sc.ErrnoRet = u(uint(1 + rng.Intn(100)))
			}
			for j := rng.Intn(3); j > 0; j-- {
				sc.Args = append(sc.Args, specs.LinuxSeccompArg{Index: uint(rng.Intn(2)), Op: ops[rng.Intn(len(ops))], Value: pick(), ValueTwo: pick()})
			}
			prof.Syscalls = append(prof.Syscalls, sc)
		}
		p, err := CompileFor(prof, specs.ArchX86_64)
		if err != nil {
			t.Fatal(err)
		}
		for k := 0; k < 40; k++ {
			c := call{arch: unix.AUDIT_ARCH_X86_64, args: [6]uint64{pick(), pick()}}
			if k%7 == 0 {
				c.nr = uint32(rng.Intn(600))
			} else {
				c.nr = nr(t, specs.ArchX86_64, names[rng.Intn(len(names))])
			}
			if got, want := verdict(t, p, c), eval(prof, specs.ArchX86_64, c); got != want {
				t.Fatalf("round %d, call %+v: program says %s, profile (%d rules) means %s", round, c, ActionName(got), len(prof.Syscalls), ActionName(want))
			}
		}
	}
}

func TestDisassembly(t *testing.T) {
	prof := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno}}}
	p, err := CompileFor(prof, specs.ArchX86_64)
	if err != nil {
		t.Fatal(err)
	}
	s := p.String()
	for _, want := range []string{"ld  arch", fmt.Sprintf("jeq  %#x", unix.AUDIT_ARCH_X86_64), "ld  nr", "ret ERRNO(1)", "ret ALLOW", "ret KILL_PROCESS"} {
		if !strings.Contains(s, want) {
			t.Errorf("disassembly lacks %q:\n%s", want, s)
		}
	}
}
