//go:build linux

package seccomp

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Raw assembles the program into the kernel's struct sock_filter array.
func (p *Program) Raw() ([]unix.SockFilter, error) {
	raw, err := bpf.Assemble(p.Instructions)
	if err != nil {
		return nil, fmt.Errorf("seccomp: assemble: %w", err)
	}
	out := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		out[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return out, nil
}

// Load installs the filter on every thread of the calling process
// (SECCOMP_FILTER_FLAG_TSYNC): from here on the kernel runs it on each
// system call, and it survives execve. The kernel accepts it only from a
// process with no_new_privs set or with CAP_SYS_ADMIN in its user
// namespace: otherwise a filter could make a setuid program fail in ways
// its author never planned for, and so subvert it.
func (p *Program) Load() error {
	raw, err := p.Raw()
	if err != nil {
		return err
	}
	if len(raw) == 0 {
		return fmt.Errorf("seccomp: empty program")
	}
	prog := unix.SockFprog{Len: uint16(len(raw)), Filter: &raw[0]}
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, p.Flags, uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(raw)
	if errno != 0 {
		if errno == unix.EACCES {
			return fmt.Errorf("seccomp(SECCOMP_SET_MODE_FILTER): %w (needs no_new_privs or CAP_SYS_ADMIN)", errno)
		}
		return fmt.Errorf("seccomp(SECCOMP_SET_MODE_FILTER): %w", errno)
	}
	if r != 0 {
		// With TSYNC, a positive return names a thread that could not
		// take the filter.
		return fmt.Errorf("seccomp: thread %d could not be synchronised to the filter", r)
	}
	return nil
}

// MarshalBinary is the filter as the kernel takes it: struct sock_filter
// after struct sock_filter, in the machine's byte order. The runtime
// compiles the profile once, in the parent, and hands the child these
// bytes to load.
func (p *Program) MarshalBinary() ([]byte, error) {
	raw, err := p.Raw()
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, 8*len(raw))
	for _, r := range raw {
		out = binary.NativeEndian.AppendUint16(out, r.Code)
		out = append(out, r.Jt, r.Jf)
		out = binary.NativeEndian.AppendUint32(out, r.K)
	}
	return out, nil
}

// UnmarshalProgram reads what MarshalBinary wrote.
func UnmarshalProgram(b []byte, flags uintptr) (*Program, error) {
	if len(b)%8 != 0 || len(b) == 0 || len(b)/8 > maxInstructions {
		return nil, fmt.Errorf("seccomp: a filter of %d bytes is not a program", len(b))
	}
	raw := make([]bpf.RawInstruction, len(b)/8)
	for i := range raw {
		r := b[8*i:]
		raw[i] = bpf.RawInstruction{Op: binary.NativeEndian.Uint16(r), Jt: r[2], Jf: r[3], K: binary.NativeEndian.Uint32(r[4:])}
	}
	ins, ok := bpf.Disassemble(raw)
	if !ok {
		return nil, fmt.Errorf("seccomp: the filter holds an instruction berth does not write")
	}
	return &Program{Instructions: ins, Flags: flags}, nil
}
