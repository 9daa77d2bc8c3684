//go:build linux

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

// positions maps each label to the index of its instruction (-1: never
// placed).
func (a *asm) positions() ([]int, error) {
	if len(a.pending) > 0 {
		return nil, errors.New("seccomp: label placed after the last instruction")
	}
	pos := make([]int, a.nlabels+1)
	for i := range pos {
		pos[i] = -1
	}
	for i, in := range a.code {
		for _, l := range in.labels {
			pos[l] = i
		}
	}
	return pos, nil
}

// resolve inserts the long jumps the layout needs and returns the
// program with every jump as a relative skip. Each pass puts a ja after
// every branch whose target is too far; inserting moves later code, so
// passes repeat until every branch fits.
func (a *asm) resolve() ([]bpf.Instruction, error) {
	for {
		pos, err := a.positions()
		if err != nil {
			return nil, err
		}
		out := make([]insn, 0, len(a.code)+len(a.code)/8)
		changed := false
		for i, in := range a.code {
			var tramps []insn
			if in.cond {
				for _, t := range []*label{&in.jt, &in.jf} {
					p := pos[*t]
					if p < 0 {
						return nil, fmt.Errorf("seccomp: jump to a label never placed (%d)", *t)
					}
					if p <= i {
						return nil, fmt.Errorf("seccomp: backward jump at %d", i)
					}
					if p-(i+1) > 255-2 { // room for the two ja this branch may get
						l := a.newLabel()
						tramps = append(tramps, insn{ja: true, target: *t, labels: []label{l}})
						*t = l
						changed = true
					}
				}
			}
			out = append(out, in)
			out = append(out, tramps...)
		}
		a.code = out
		if !changed {
			break
		}
	}
	pos, err := a.positions()
	if err != nil {
		return nil, err
	}
	res := make([]bpf.Instruction, len(a.code))
	for i, in := range a.code {
		switch {
		case in.cond:
			jt, jf := pos[in.jt]-(i+1), pos[in.jf]-(i+1)
			if jt < 0 || jf < 0 || jt > 255 || jf > 255 {
				return nil, fmt.Errorf("seccomp: branch at %d out of range", i)
			}
			res[i] = bpf.JumpIf{Cond: in.test, Val: in.val, SkipTrue: uint8(jt), SkipFalse: uint8(jf)}
		case in.ja:
			d := pos[in.target] - (i + 1)
			if d < 0 {
				return nil, fmt.Errorf("seccomp: backward jump at %d", i)
			}
			res[i] = bpf.Jump{Skip: uint32(d)}
		default:
			res[i] = in.ins
		}
	}
	return res, nil
}
