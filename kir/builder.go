package kir

import (
	"fmt"

	"github.com/attnc/attnc/ir"
)

// A Builder makes a kernel instruction by instruction, inferring result
// types from the op table, for passes and tests. Its methods panic on an
// ill-typed instruction (a bug in the pass calling it); Verify checks the
// finished kernel as a whole.
type Builder struct {
	K    *Kernel
	cur  *Block
	next int
}

// NewKernel starts a kernel named name over grid.
func NewKernel(name string, grid ...*ir.Expr) *Builder {
	k := &Kernel{Name: name, Grid: grid, Body: &Block{}}
	return &Builder{K: k, cur: k.Body}
}

// Param adds a buffer parameter.
func (b *Builder) Param(name string, dt ir.DType, dims ir.Shape) *Value {
	v := &Value{ID: -1, Name: name, Type: Buffer(dt, dims...)}
	b.K.Params = append(b.K.Params, v)
	return v
}

// Op appends an instruction of op with one result and returns it; given
// is the result type for the ops whose type is given (const, load…) and
// ignored otherwise.
func (b *Builder) Op(op Op, attrs ir.Attrs, given Type, args ...*Value) *Value {
	return b.add(&Instr{Op: op, Attrs: attrs, Args: args}, given)
}

// Elem appends the graph IR's elementwise function e.
func (b *Builder) Elem(e ir.Op, args ...*Value) *Value {
	return b.add(&Instr{Op: OpElem, Elem: e, Args: args}, Type{})
}

// Effect appends an instruction without results (store, call).
func (b *Builder) Effect(op Op, attrs ir.Attrs, args ...*Value) {
	in := &Instr{Op: op, Attrs: attrs, Args: args}
	b.infer(in, nil)
	b.cur.Instrs = append(b.cur.Instrs, in)
}

func (b *Builder) add(in *Instr, given Type) *Value {
	t := b.infer(in, []Type{given})
	v := &Value{ID: b.next, Type: t[0], Def: in}
	b.next++
	in.Results = []*Value{v}
	b.cur.Instrs = append(b.cur.Instrs, in)
	return v
}

func (b *Builder) infer(in *Instr, given []Type) []Type {
	info := in.Op.Info()
	args := make([]Type, len(in.Args))
	for i, a := range in.Args {
		args[i] = a.Type
	}
	if err := checkAttrs(info, in.Attrs); err != nil {
		panic(fmt.Sprintf("kir.Builder: %s: %v", in.Name(), err))
	}
	if !info.Given {
		given = nil
		if info.Results > 0 {
			given = make([]Type, info.Results)
		}
	}
	ts, err := info.Infer(&inferCtx{in: in, args: args, given: given})
	if err != nil {
		panic(fmt.Sprintf("kir.Builder: %s: %v", in.Name(), err))
	}
	return ts
}

// Index returns an index constant.
func (b *Builder) Index(v int64) *Value {
	return b.Op(OpConst, ir.Attrs{"value": ir.FloatAttr(float64(v))}, Index)
}

// Dim returns the run-time value of an affine dim: its terms' symbols
// times their coefficients plus its constant.
func (b *Builder) Dim(d ir.Dim) *Value {
	var acc *Value
	for _, t := range d.Terms {
		v := b.Op(OpSym, ir.Attrs{"name": ir.WordAttr(t.Sym)}, Index)
		if t.Coef != 1 {
			v = b.Elem(ir.OpMul, v, b.Index(t.Coef))
		}
		if acc == nil {
			acc = v
		} else {
			acc = b.Elem(ir.OpAdd, acc, v)
		}
	}
	if acc == nil {
		return b.Index(d.Const)
	}
	if d.Const != 0 {
		acc = b.Elem(ir.OpAdd, acc, b.Index(d.Const))
	}
	return acc
}
