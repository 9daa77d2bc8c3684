//go:build linux

package seccomp

import (
	"sort"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
)

// The code generator: a binary search over the system call numbers, and
// at its leaves the argument checks of one call.

type span struct {
	lo, hi uint64
	d      decision
}

// ranges cuts [0, top] into spans of one decision: a run of numbers with
// the same unconditional action is one span, a number with argument rules
// is a span of its own.
func ranges(byNr map[uint32]decision, def uint32, top uint64) []span {
	nrs := make([]uint32, 0, len(byNr))
	for nr := range byNr {
		nrs = append(nrs, nr)
	}
	sort.Slice(nrs, func(i, j int) bool { return nrs[i] < nrs[j] })
	var out []span
	add := func(lo, hi uint64, d decision) {
		if lo > hi {
			return
		}
		if n := len(out); n > 0 && d.unconditional() && out[n-1].d.unconditional() &&
			out[n-1].d.fallback == d.fallback && out[n-1].hi+1 == lo {
			out[n-1].hi = hi
			return
		}
		out = append(out, span{lo, hi, d})
	}
	next := uint64(0)
	for _, nr := range nrs {
		if uint64(nr) > top {
			break
		}
		if uint64(nr) > next {
			add(next, uint64(nr)-1, decision{fallback: def})
		}
		add(uint64(nr), uint64(nr), byNr[nr])
		next = uint64(nr) + 1
	}
	add(next, top, decision{fallback: def})
	return out
}

// tree writes a binary search over the spans: at each node, one jge on
// the first number of the upper half.
func tree(a *asm, s []span) {
	if len(s) == 1 {
		leaf(a, s[0].d)
		return
	}
	mid := len(s) / 2
	upper := a.newLabel()
	a.branch(bpf.JumpGreaterOrEqual, uint32(s[mid].lo), upper, next)
	tree(a, s[:mid])
	a.place(upper)
	tree(a, s[mid:])
}

// leaf writes the rules of one system call: for each rule its argument
// checks, each failing to the next rule; then the fallback.
func leaf(a *asm, d decision) {
	for _, r := range d.rules {
		fail := a.newLabel()
		for _, c := range r.conds {
			compare(a, c, fail)
		}
		a.ret(r.ret)
		a.place(fail)
	}
	a.ret(d.fallback)
}

// compare checks one 64-bit argument against a value, 32 bits at a time
// (the accumulator is 32 bits wide): continue with the next instruction
// when it holds, jump to fail when it does not. Comparisons are unsigned,
// as in libseccomp. The high half of a little-endian u64 is the second
// word.
func compare(a *asm, c cond, fail label) {
	lo, hi := offArgs+8*uint32(c.arg), offArgs+8*uint32(c.arg)+4
	pass := a.newLabel()
	vlo, vhi := uint32(c.v), uint32(c.v>>32)
	switch c.op {
	case specs.OpEqualTo:
		a.load(hi)
		a.branch(bpf.JumpEqual, vhi, next, fail)
		a.load(lo)
		a.branch(bpf.JumpEqual, vlo, pass, fail)
	case specs.OpNotEqual:
		a.load(hi)
		a.branch(bpf.JumpEqual, vhi, next, pass)
		a.load(lo)
		a.branch(bpf.JumpEqual, vlo, fail, pass)
	case specs.OpMaskedEqual: // (arg & value) == valueTwo
		a.load(hi)
		a.and(vhi)
		a.branch(bpf.JumpEqual, uint32(c.v2>>32), next, fail)
		a.load(lo)
		a.and(vlo)
		a.branch(bpf.JumpEqual, uint32(c.v2), pass, fail)
	case specs.OpGreaterThan, specs.OpGreaterEqual:
		a.load(hi)
		a.branch(bpf.JumpGreaterThan, vhi, pass, next)
		a.branch(bpf.JumpEqual, vhi, next, fail)
		a.load(lo)
		t := bpf.JumpGreaterThan
		if c.op == specs.OpGreaterEqual {
			t = bpf.JumpGreaterOrEqual
		}
		a.branch(t, vlo, pass, fail)
	case specs.OpLessThan, specs.OpLessEqual: // not (>=), not (>)
		a.load(hi)
		a.branch(bpf.JumpGreaterThan, vhi, fail, next)
		a.branch(bpf.JumpEqual, vhi, next, pass)
		a.load(lo)
		t := bpf.JumpGreaterOrEqual
		if c.op == specs.OpLessEqual {
			t = bpf.JumpGreaterThan
		}
		a.branch(t, vlo, fail, pass)
	}
	a.place(pass)
}
