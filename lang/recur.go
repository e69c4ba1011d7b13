package lang

import (
	"fmt"
	"strconv"

	"github.com/attnc/attnc/ir"
)

// recur elaborates recur(cell, init, args…, over: xs, axis: 1) or
// recur(cell, init, args…, steps: n): the block cell, instantiated once
// (its weights are shared by every step), becomes the body of a recur
// op. The block is called as cell(state, x_t, args…) (without x_t when
// steps is given) and must return the next state, of the state's type.
//
// The body is built in a builder of its own. Weights the block creates
// go to the model (newParam uses the model's builder); every value of the
// model the body reads (weights, and tensors among args) becomes one of
// its inputs c0, c1, … and an operand of the recur op, so the body is
// closed.
func (e *elab) recur(call *CallExpr, sc *env) value {
	b, ok := bindArgs(e.diags, call, "recur", builtinFormals(builtins["recur"]))
	if !ok {
		return errVal{}
	}
	cellArg := b.args["cell"]
	id, _ := cellArg.Value.(*Ident)
	var def *BlockDef
	if id != nil {
		def = e.prog.Blocks[id.Name]
	}
	if def == nil {
		return e.errorf(cellArg.Value, "recur: cell must name a block, as in recur(lstm_cell, h0, over: x)")
	}
	initV := e.expr(b.args["init"].Value, sc)
	init, isT := initV.(tensorVal)
	if !isT {
		if _, bad := initV.(errVal); bad {
			return initV
		}
		return e.errorf(b.args["init"].Value, "recur: init must be a tensor (the first state), got %s", describe(initV))
	}
	if init.in.Type.DType != ir.F32 {
		return e.errorf(b.args["init"].Value, "recur: the state must be f32, got %s", init.in.Type)
	}
	axis := int64(1)
	if a := b.args["axis"]; a != nil {
		v, isInt := e.expr(a.Value, sc).(intVal)
		c, isConst := v.isConst()
		if !isInt || !isConst {
			return e.errorf(a.Value, "recur: axis must be an integer known at compile time")
		}
		axis = c
	}
	if axis < 0 || int(axis) > init.in.Type.Rank() {
		return e.errorf(call, "recur: axis %d is out of range for the state %s (0 to %d: where the steps go in the result)", axis, init.in.Type, init.in.Type.Rank())
	}
	overArg, stepsArg := b.args["over"], b.args["steps"]
	var xs *ir.Instr
	var steps ir.Dim
	switch {
	case overArg != nil && stepsArg != nil:
		return e.errorf(stepsArg.Value, "recur: give over (a sequence) or steps (a count), not both")
	case overArg != nil:
		v := e.expr(overArg.Value, sc)
		t, isT := v.(tensorVal)
		if !isT {
			if _, bad := v.(errVal); bad {
				return v
			}
			return e.errorf(overArg.Value, "recur: over must be a tensor, got %s", describe(v))
		}
		if int(axis) >= t.in.Type.Rank() {
			return e.errorf(overArg.Value, "recur: over is %s, which has no axis %d to step along", t.in.Type, axis)
		}
		xs = t.in
	case stepsArg != nil:
		d, ok := e.dimOf(stepsArg.Value, sc)
		if !ok {
			return errVal{}
		}
		steps = d
	default:
		return e.errorf(call, "recur: say what to step over (over: a sequence) or how many steps to take (steps: n)")
	}

	// The block's arguments, evaluated here, bound to names no user
	// name can take, and passed by a call made for the purpose.
	scope := newEnv(sc)
	syn := &CallExpr{Span: call.Span, Fn: &Ident{Span: id.Span, Name: def.Name.Name}}
	pass := func(name string, v value, at Expr) {
		scope.vars[name] = v
		syn.Args = append(syn.Args, &Arg{Span: spanOf(at), Value: &Ident{Span: spanOf(at), Name: name}})
	}
	outer := e.b
	bb := ir.NewBuilder("", outer.M.Syms...)
	state := bb.MustGiven(ir.OpInput, init.in.Type, ir.Attrs{"name": ir.StringAttr("state")})
	pass("$state", tensorVal{state}, b.args["init"].Value)
	if xs != nil {
		x := bb.MustGiven(ir.OpInput, ir.RecurStepType(xs.Type, int(axis)), ir.Attrs{"name": ir.StringAttr("x")})
		pass("$x", tensorVal{x}, overArg.Value)
	}
	for i, r := range b.rest {
		v := e.expr(r.Value, sc)
		if _, bad := v.(errVal); bad {
			return v
		}
		pass("$"+strconv.Itoa(i), v, r.Value)
	}
	if err := bb.Err(); err != nil {
		return e.errorf(call, "recur: %v", err)
	}
	e.b = bb
	ret := e.instantiateBlock(syn, def, scope)
	e.b = outer
	if _, bad := ret.(errVal); bad {
		return ret
	}
	next, isT := ret.(tensorVal)
	if !isT || !next.in.Type.Equal(init.in.Type) {
		return e.errorf(call, "recur: the cell %s must return the next state, %s like init, but returns %s", def.Name.Name, init.in.Type, describe(ret))
	}
	for _, in := range bb.M.Instrs {
		if in.Op == ir.OpAttention {
			return e.errorf(call, "recur: the cell %s calls attend, which a cell cannot (it runs one step at a time); attend over the whole sequence outside recur, or write the step's attention with einsum and softmax", def.Name.Name)
		}
	}
	body, caps := closeBody(bb.M, next.in)
	attrs := ir.Attrs{"axis": ir.IntAttr(axis), "body": ir.ModuleAttr(body), "cell": ir.StringAttr(def.Name.Name)}
	args := []*ir.Instr{init.in}
	if xs != nil {
		args = append(args, xs)
	} else {
		attrs["steps"] = ir.DimAttr(steps)
	}
	return e.op(call, ir.OpRecur, attrs, append(args, caps...)...)
}

// closeBody makes m, a body built with references to the model's values,
// a closed module: each model value it reads becomes an input c0, c1, …
// (in the order first read), placed after its other inputs, and is
// returned in caps. next becomes its output "next".
func closeBody(m *ir.Module, next *ir.Instr) (*ir.Module, []*ir.Instr) {
	local := map[*ir.Instr]bool{}
	maxID := 0
	for _, in := range m.Instrs {
		local[in] = true
		maxID = max(maxID, in.ID)
	}
	var caps, capIns []*ir.Instr
	capIn := map[*ir.Instr]*ir.Instr{}
	capture := func(a *ir.Instr) *ir.Instr {
		if local[a] {
			return a
		}
		if c := capIn[a]; c != nil {
			return c
		}
		maxID++
		c := &ir.Instr{ID: maxID, Op: ir.OpInput, Type: a.Type, Attrs: ir.Attrs{"name": ir.StringAttr(fmt.Sprintf("c%d", len(caps)))}}
		capIn[a] = c
		caps = append(caps, a)
		capIns = append(capIns, c)
		return c
	}
	for _, in := range m.Instrs {
		for j, a := range in.Args {
			in.Args[j] = capture(a)
		}
	}
	next = capture(next)
	var ins, rest []*ir.Instr
	for _, in := range m.Instrs {
		if in.Op == ir.OpInput {
			ins = append(ins, in)
		} else {
			rest = append(rest, in)
		}
	}
	m.Instrs = append(append(ins, capIns...), rest...)
	m.Outputs = []ir.Output{{Kind: ir.OutValue, Name: "next", Value: next}}
	return m, caps
}

// spanOf is the source span of an expression.
func spanOf(x Expr) Span { return Span{Pos: x.Start(), EndPos: x.End()} }
