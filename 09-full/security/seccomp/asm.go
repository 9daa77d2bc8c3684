package seccomp

import (
	"errors"
	"fmt"

	"golang.org/x/net/bpf"
)

// The classic BPF that seccomp runs has one accumulator (A), loads from
// the struct seccomp_data the kernel fills for each system call, and only
// forward jumps: a conditional jump skips at most 255 instructions, an
// unconditional one (ja) up to 2^32. The compiler writes jumps to labels;
// this small assembler places them and, where a conditional target is too
// far, points the branch at an unconditional "ja" put right after it.

type label int

// insn is one instruction before its jumps are resolved: either a plain
// instruction (ins), a conditional jump to two labels, or a ja to one.
type insn struct {
	ins    bpf.Instruction
	cond   bool
	test   bpf.JumpTest // JumpEqual, JumpGreaterThan, JumpGreaterOrEqual, JumpBitsSet
	val    uint32
	jt, jf label
	ja     bool
	target label
	labels []label // labels that name this instruction
}

type asm struct {
	code    []insn
	pending []label // placed, waiting for the next instruction
	nlabels label
}

func (a *asm) newLabel() label {
	a.nlabels++
	return a.nlabels
}

// place makes l name the next instruction emitted.
func (a *asm) place(l label) { a.pending = append(a.pending, l) }

func (a *asm) add(in insn) {
	in.labels = append(in.labels, a.pending...)
	a.pending = nil
	a.code = append(a.code, in)
}

func (a *asm) load(off uint32) { a.add(insn{ins: bpf.LoadAbsolute{Off: off, Size: 4}}) }
func (a *asm) and(mask uint32) { a.add(insn{ins: bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: mask}}) }
func (a *asm) ret(v uint32)    { a.add(insn{ins: bpf.RetConstant{Val: v}}) }
func (a *asm) jump(l label)    { a.add(insn{ja: true, target: l}) }

// next, as a branch target, is the instruction that follows the branch.
const next label = 0

func (a *asm) branch(t bpf.JumpTest, v uint32, jt, jf label) {
	var after label
	for _, l := range []*label{&jt, &jf} {
		if *l == next {
			if after == next {
				after = a.newLabel()
			}
			*l = after
		}
	}
	a.add(insn{cond: true, test: t, val: v, jt: jt, jf: jf})
	if after != next {
		a.place(after)
	}
}

// positions maps each label to the index of its instruction.
func (a *asm) positions() (map[label]int, error) {
	pos := map[label]int{}
	for i, in := range a.code {
		for _, l := range in.labels {
			pos[l] = i
		}
	}
	if len(a.pending) > 0 {
		return nil, errors.New("seccomp: label placed after the last instruction")
	}
	return pos, nil
}

// resolve inserts the long jumps the layout needs and returns the
// program with every jump as a relative skip.
func (a *asm) resolve() ([]bpf.Instruction, error) {
	for {
		pos, err := a.positions()
		if err != nil {
			return nil, err
		}
		inserted := false
		for i := 0; i < len(a.code) && !inserted; i++ {
			in := &a.code[i]
			if !in.cond {
				continue
			}
			for _, t := range []*label{&in.jt, &in.jf} {
				p, ok := pos[*t]
				if !ok {
					return nil, fmt.Errorf("seccomp: jump to a label never placed (%d)", *t)
				}
				if d := p - (i + 1); d < 0 {
					return nil, fmt.Errorf("seccomp: backward jump at %d", i)
				} else if d > 255 {
					// Too far for 8 bits: jump to a ja just after us.
					tramp := a.newLabel()
					ja := insn{ja: true, target: *t, labels: []label{tramp}}
					*t = tramp
					a.code = append(a.code[:i+1], append([]insn{ja}, a.code[i+1:]...)...)
					inserted = true
					break
				}
			}
		}
		if !inserted {
			break
		}
	}
	pos, err := a.positions()
	if err != nil {
		return nil, err
	}
	out := make([]bpf.Instruction, len(a.code))
	for i, in := range a.code {
		switch {
		case in.cond:
			out[i] = bpf.JumpIf{Cond: in.test, Val: in.val,
				SkipTrue: uint8(pos[in.jt] - (i + 1)), SkipFalse: uint8(pos[in.jf] - (i + 1))}
		case in.ja:
			d := pos[in.target] - (i + 1)
			if d < 0 {
				return nil, fmt.Errorf("seccomp: backward jump at %d", i)
			}
			out[i] = bpf.Jump{Skip: uint32(d)}
		default:
			out[i] = in.ins
		}
	}
	return out, nil
}
