package ir

import (
	"fmt"
	"slices"
)

// A Builder appends instructions to a module, inferring each result type
// from the op's rule. The first error sticks: later calls return nil and
// Err reports it, so a sequence of calls needs one check at the end.
type Builder struct {
	M     *Module
	syms  map[string]bool
	err   error
	maxID int // the largest ID handed out or found in M, -1 for none
}

// NewBuilder starts an empty module with the given symbols.
func NewBuilder(name string, syms ...string) *Builder {
	b := &Builder{M: &Module{Name: name}, syms: map[string]bool{}, maxID: -1}
	for _, s := range syms {
		b.AddSym(s)
	}
	return b
}

// AddSym declares a symbolic dimension if it is new.
func (b *Builder) AddSym(s string) {
	if !b.syms[s] {
		b.syms[s] = true
		b.M.Syms = append(b.M.Syms, s)
	}
}

// Err returns the first error any call met.
func (b *Builder) Err() error { return b.err }

// nextID returns an ID no instruction has: one past the largest handed
// out (instructions placed by Before need not be last) or the last
// instruction's, for modules extended by hand.
func (b *Builder) nextID() int {
	id := b.maxID + 1
	if n := len(b.M.Instrs); n > 0 {
		id = max(id, b.M.Instrs[n-1].ID+1)
	}
	return id
}

// Op appends op applied to args with attrs; the type is inferred. For ops
// whose row says Given, use Given instead.
func (b *Builder) Op(op Op, attrs Attrs, args ...*Instr) (*Instr, error) {
	return b.emit(op, attrs, Type{}, args)
}

// Given appends an op whose result type the caller states (param, input,
// const, iota, reshape, broadcast, scatter_add).
func (b *Builder) Given(op Op, t Type, attrs Attrs, args ...*Instr) (*Instr, error) {
	return b.emit(op, attrs, t, args)
}

func (b *Builder) emit(op Op, attrs Attrs, t Type, args []*Instr) (*Instr, error) {
	if b.err != nil {
		return nil, b.err
	}
	if attrs == nil {
		attrs = Attrs{}
	}
	for _, a := range args {
		if a == nil {
			return nil, fmt.Errorf("%s: missing operand", op)
		}
	}
	in := &Instr{ID: b.nextID(), Op: op, Args: args, Attrs: attrs, Type: t}
	if !op.Info().Given {
		inferred, err := infer(in, b.syms)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		in.Type = inferred
	}
	if err := VerifyInstr(in, b.syms); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	b.M.Instrs = append(b.M.Instrs, in)
	b.maxID = max(b.maxID, in.ID)
	return in, nil
}

// Before is Op (with sticky errors, like Must) for an instruction placed
// just before at, which must be in the module: a pass that rewrites at in
// terms of a new instruction (autodiff turning an attention op into an
// extract of one that also returns lse) puts the new one first, so every
// value stays defined before its uses.
func (b *Builder) Before(at *Instr, op Op, attrs Attrs, args ...*Instr) *Instr {
	in := b.Must(op, attrs, args...)
	if in == nil {
		return nil
	}
	idx := slices.Index(b.M.Instrs, at)
	if idx < 0 {
		b.err = fmt.Errorf("%s: %%%d is not in the module", op, at.ID)
		return nil
	}
	last := len(b.M.Instrs) - 1
	copy(b.M.Instrs[idx+1:], b.M.Instrs[idx:last])
	b.M.Instrs[idx] = in
	return in
}

// Must is Op for callers that build known-good IR (tests, passes): an
// error is recorded and nil returned.
func (b *Builder) Must(op Op, attrs Attrs, args ...*Instr) *Instr {
	in, err := b.Op(op, attrs, args...)
	if err != nil && b.err == nil {
		b.err = err
	}
	return in
}

// MustGiven is Given with sticky errors, like Must.
func (b *Builder) MustGiven(op Op, t Type, attrs Attrs, args ...*Instr) *Instr {
	in, err := b.Given(op, t, attrs, args...)
	if err != nil && b.err == nil {
		b.err = err
	}
	return in
}

// Output names a value as a module output.
func (b *Builder) Output(kind OutputKind, name string, v *Instr) {
	b.M.Outputs = append(b.M.Outputs, Output{Kind: kind, Name: name, Value: v})
}

// Continue returns a builder that appends to m, for passes that extend a
// module (autodiff appends the backward pass).
func Continue(m *Module) *Builder {
	b := &Builder{M: m, syms: map[string]bool{}, maxID: -1}
	for _, s := range m.Syms {
		b.syms[s] = true
	}
	for _, in := range m.Instrs {
		b.maxID = max(b.maxID, in.ID)
	}
	return b
}
