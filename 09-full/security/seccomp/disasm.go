//go:build linux

package seccomp

import (
	"fmt"
	"strings"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// String disassembles the program in the notation of libseccomp's
// scmp_bpf_disasm: one line per instruction, its number, and jumps as
// absolute targets; loads name the field of struct seccomp_data, and
// returns their action.
func (p *Program) String() string {
	var b strings.Builder
	for i, in := range p.Instructions {
		fmt.Fprintf(&b, "%4d: %s\n", i, Describe(i, in))
	}
	return b.String()
}

// Describe renders instruction in at position i.
func Describe(i int, in bpf.Instruction) string {
	switch in := in.(type) {
	case bpf.LoadAbsolute:
		return "ld  " + field(in.Off)
	case bpf.ALUOpConstant:
		return fmt.Sprintf("and %#x", in.Val)
	case bpf.JumpIf:
		op := map[bpf.JumpTest]string{bpf.JumpEqual: "jeq", bpf.JumpNotEqual: "jne", bpf.JumpGreaterThan: "jgt",
			bpf.JumpLessThan: "jlt", bpf.JumpGreaterOrEqual: "jge", bpf.JumpLessOrEqual: "jle",
			bpf.JumpBitsSet: "jset", bpf.JumpBitsNotSet: "jnset"}[in.Cond]
		return fmt.Sprintf("%-4s %-10s true:%d false:%d", op, fmt.Sprintf("%#x", in.Val), i+1+int(in.SkipTrue), i+1+int(in.SkipFalse))
	case bpf.Jump:
		return fmt.Sprintf("ja   %d", i+1+int(in.Skip))
	case bpf.RetConstant:
		return "ret " + ActionName(in.Val)
	}
	return fmt.Sprintf("%v", in)
}

func field(off uint32) string {
	switch {
	case off == offNr:
		return "nr"
	case off == offArch:
		return "arch"
	case off >= offArgs && off < offArgs+48:
		half := "lo"
		if (off-offArgs)%8 == 4 {
			half = "hi"
		}
		return fmt.Sprintf("args[%d].%s", (off-offArgs)/8, half)
	}
	return fmt.Sprintf("[%d]", off)
}

// ActionName names a filter return value: ALLOW, ERRNO(1), KILL_PROCESS...
func ActionName(v uint32) string {
	data := v & unix.SECCOMP_RET_DATA
	switch v & unix.SECCOMP_RET_ACTION_FULL {
	case unix.SECCOMP_RET_ALLOW:
		return "ALLOW"
	case unix.SECCOMP_RET_ERRNO:
		return fmt.Sprintf("ERRNO(%d)", data)
	case unix.SECCOMP_RET_KILL_PROCESS:
		return "KILL_PROCESS"
	case unix.SECCOMP_RET_KILL_THREAD:
		return "KILL_THREAD"
	case unix.SECCOMP_RET_TRAP:
		return "TRAP"
	case unix.SECCOMP_RET_TRACE:
		return fmt.Sprintf("TRACE(%d)", data)
	case unix.SECCOMP_RET_LOG:
		return "LOG"
	}
	return fmt.Sprintf("%#x", v)
}
