package lang

import (
	"fmt"
	"strings"

	"github.com/attnc/attnc/ir"
)

// call evaluates fn(args): a block instance, a mask or score, or a
// built-in.
func (e *elab) call(x *CallExpr, sc *env) value {
	fn, ok := x.Fn.(*Ident)
	if !ok {
		return e.errorf(x.Fn, "only a named block, mask, score or built-in can be called")
	}
	if _, shadowed := sc.lookup(fn.Name); shadowed {
		return e.errorf(fn, "%s is a value, not a function", fn.Name)
	}
	if b, ok := e.prog.Blocks[fn.Name]; ok {
		return e.instantiateBlock(x, b, sc)
	}
	if f, ok := e.prog.Funcs[fn.Name]; ok {
		return e.instantiateFunc(x, f, x, sc)
	}
	if b, ok := builtins[fn.Name]; ok {
		return e.builtin(x, fn.Name, b, sc)
	}
	return e.errorf(fn, "unknown function %s%s", fn.Name, didYouMean(fn.Name, e.prog.names()))
}

// formal describes one parameter for argument binding.
type formal struct {
	name     string
	required bool
	variadic bool // collects the remaining positional arguments
}

// bound is the result of binding a call's arguments to parameters.
type bound struct {
	args  map[string]*Arg // by parameter name
	rest  []*Arg          // variadic arguments
	named map[string]bool // given by name
	call  *CallExpr
}

// bindArgs matches positional then named arguments to params, reporting
// too many, unknown, duplicate and missing arguments.
func (e *elab) bindArgs(call *CallExpr, what string, params []formal) (*bound, bool) {
	b := &bound{args: map[string]*Arg{}, named: map[string]bool{}, call: call}
	ok := true
	pos := 0
	var names []string
	for _, p := range params {
		names = append(names, p.name)
	}
	for _, a := range call.Args {
		if a.Name != nil {
			continue
		}
		if pos >= len(params) {
			e.errorf(a, "too many arguments to %s: want at most %d (%s)", what, len(params), strings.Join(names, ", "))
			return b, false
		}
		p := params[pos]
		if p.variadic {
			b.rest = append(b.rest, a)
			continue
		}
		b.args[p.name] = a
		pos++
	}
	for _, a := range call.Args {
		if a.Name == nil {
			continue
		}
		idx := -1
		for i, p := range params {
			if p.name == a.Name.Name && !p.variadic {
				idx = i
			}
		}
		switch {
		case idx < 0:
			e.errorf(a.Name, "%s has no parameter %s%s", what, a.Name.Name, didYouMean(a.Name.Name, names))
			ok = false
		case b.args[a.Name.Name] != nil:
			e.errorf(a.Name, "argument %s given twice", a.Name.Name)
			ok = false
		default:
			b.args[a.Name.Name] = a
			b.named[a.Name.Name] = true
		}
	}
	for _, p := range params {
		if p.required && b.args[p.name] == nil && !p.variadic {
			e.errorf(call, "missing argument %s to %s", p.name, what)
			ok = false
		}
	}
	return b, ok
}

// instantiateBlock elaborates a block body with the call's arguments:
// binds tensor shapes, checks kinds, names weights under a new segment.
func (e *elab) instantiateBlock(call *CallExpr, def *BlockDef, sc *env) value {
	what := "block " + def.Name.Name
	var params []formal
	for _, p := range def.Params {
		params = append(params, formal{name: p.Name.Name, required: p.Default == nil})
	}
	b, ok := e.bindArgs(call, what, params)
	if !ok {
		return errVal{}
	}
	if e.blockDepth >= maxBlockDepth {
		e.tooBig = true
		return e.errorf(call, "blocks nested more than %d deep", maxBlockDepth)
	}
	// Arguments are evaluated in the caller's scope, before the block's
	// naming segment is entered: a weight made by an argument belongs to
	// the caller.
	inner := newEnv(nil)
	vals := map[string]value{}
	for _, p := range def.Params {
		if a := b.args[p.Name.Name]; a != nil {
			vals[p.Name.Name] = e.expr(a.Value, sc)
		}
	}
	seg := e.stmtName
	e.stmtName = ""
	if seg == "" {
		seg = def.Name.Name
	}
	seg = e.segment(seg)
	e.push(seg)
	e.blockDepth++
	defer func() { e.blockDepth--; e.pop() }()
	okAll := true
	for _, p := range def.Params {
		v, given := vals[p.Name.Name]
		at := Node(p)
		if a := b.args[p.Name.Name]; a != nil {
			at = a.Value
		}
		if !given {
			// Defaults are evaluated in the block's scope, after the
			// parameters before them.
			v = e.expr(p.Default, inner)
		}
		if _, bad := v.(errVal); bad {
			okAll = false
			continue
		}
		if p.Type != nil && !e.bindParam(at, def, p, v, inner) {
			okAll = false
			continue
		}
		inner.vars[p.Name.Name] = v
	}
	if !okAll {
		return errVal{}
	}
	ret := e.stmts(def.Body, newEnv(inner))
	if ret == nil {
		return e.errorf(def.Name, "block %s ends without return", def.Name.Name)
	}
	if def.Result != nil && !e.tooBig {
		if _, bad := ret.(errVal); !bad && !e.bindParam(call, def, &Param{Span: def.Result.Span, Name: &Ident{Name: "result"}, Type: def.Result}, ret, inner) {
			return errVal{}
		}
	}
	return ret
}

// bindParam checks v against a parameter's declared type and binds the
// dimension names of a tensor type (x: [B, N, D] binds D).
func (e *elab) bindParam(at Node, def *BlockDef, p *Param, v value, inner *env) bool {
	t := p.Type
	where := fmt.Sprintf("%s of %s", p.Name.Name, def.Name.Name)
	if p.Name.Name == "result" {
		where = "result of " + def.Name.Name
	}
	if !t.Shaped {
		want := t.Name.Name
		okKind := false
		switch want {
		case "int":
			iv, isInt := v.(intVal)
			if isInt {
				_, okKind = iv.isConst()
			}
		case "dim":
			_, okKind = v.(intVal)
		case "float":
			switch v := v.(type) {
			case floatVal:
				okKind = true
			case intVal:
				_, okKind = v.isConst()
			}
		case "bool":
			_, okKind = v.(boolVal)
		case "string":
			_, okKind = v.(stringVal)
		case "mask", "score":
			if _, none := v.(noneVal); none {
				okKind = true
			} else if ev, isExpr := v.(exprVal); isExpr {
				okKind = ev.score == (want == "score")
			}
		case "tensor":
			_, okKind = v.(tensorVal)
		default:
			e.errorf(t.Name, "unknown type %s (want a shape like [B, N, D], or int, float, bool, string, mask, score, tensor)", want)
			return false
		}
		if !okKind {
			e.errorf(at, "%s must be %s, got %s", where, article(want), describe(v))
		}
		return okKind
	}
	tv, isT := v.(tensorVal)
	if !isT {
		e.errorf(at, "%s must be a tensor %s, got %s", where, typeString(t), describe(v))
		return false
	}
	ty := tv.in.Type
	want := ir.F32
	if t.Name != nil {
		d, ok := ir.ParseDType(t.Name.Name)
		if !ok {
			e.errorf(t.Name, "unknown dtype %s (want f32, i32 or bool)", t.Name.Name)
			return false
		}
		want = d
	}
	if ty.DType != want {
		hint := ""
		if want == ir.I32 && ty.DType == ir.F32 {
			hint = " (token ids are i32; convert with int() if you mean it)"
		}
		e.errorf(at, "%s must be %s%s, got %s%s", where, want, typeString(t), ty, hint)
		return false
	}
	if len(t.Dims) != ty.Rank() {
		e.errorf(at, "%s must have rank %d %s, got %s", where, len(t.Dims), typeString(t), ty)
		return false
	}
	for i, d := range t.Dims {
		got := ty.Shape[i]
		if id, ok := d.(*Ident); ok {
			if prev, bound := inner.vars[id.Name]; bound {
				pd, isInt := prev.(intVal)
				if !isInt || !pd.d.Equal(got) {
					e.errorf(at, "shape mismatch: %s has %s = %s in %s, but %s was bound to %s earlier", where, id.Name, got, ty, id.Name, describe(prev))
					return false
				}
			} else {
				inner.vars[id.Name] = intVal{got}
			}
			continue
		}
		wantDim, ok := e.dimOf(d, inner)
		if !ok {
			return false
		}
		if !wantDim.Equal(got) {
			e.errorf(at, "shape mismatch: %s must have dim %d = %s, got %s", where, i, wantDim, ty)
			return false
		}
	}
	return true
}

func article(kind string) string {
	if strings.ContainsAny(kind[:1], "aeiou") {
		return "an " + kind
	}
	return "a " + kind
}

func typeString(t *TypeExpr) string {
	var parts []string
	for _, d := range t.Dims {
		parts = append(parts, FormatExpr(d))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// instantiateFunc turns a mask or score definition applied to arguments
// into an index expression.
func (e *elab) instantiateFunc(at Node, def *FuncDef, call *CallExpr, sc *env) value {
	what := def.Kind + " " + def.Name.Name
	var params []formal
	for _, p := range def.Params {
		params = append(params, formal{name: p.Name.Name, required: p.Default == nil})
	}
	b, ok := e.bindArgs(call, what, params)
	if !ok {
		return errVal{}
	}
	args := map[string]value{}
	for _, p := range def.Params {
		var v value
		if a := b.args[p.Name.Name]; a != nil {
			v = e.expr(a.Value, sc)
		} else {
			v = e.expr(p.Default, newEnv(nil))
		}
		if _, bad := v.(errVal); bad {
			return v
		}
		args[p.Name.Name] = v
	}
	c := &indexConv{e: e, def: def, args: args}
	x, ok := c.conv(def.Body)
	if !ok {
		return errVal{}
	}
	ev := exprVal{score: def.Kind == "score", e: x, caps: c.caps}
	if !e.checkIndexExpr(def.Body, what, ev) {
		return errVal{}
	}
	return ev
}

// checkIndexExpr type-checks an instantiated mask or score.
func (e *elab) checkIndexExpr(at Node, what string, ev exprVal) bool {
	env := ir.ExprEnv{Vars: map[string]ir.ScalarKind{}}
	for _, v := range indexVars {
		env.Vars[v] = ir.KInt
	}
	for _, s := range e.b.M.Syms {
		env.Vars[s] = ir.KInt
	}
	if ev.score {
		env.Vars["s"] = ir.KFloat
	}
	for _, c := range ev.caps {
		env.Captures = append(env.Captures, c.Type)
	}
	k, err := ev.e.Check(env)
	if err != nil {
		e.errorf(at, "%s: %v", what, err)
		return false
	}
	if !ev.score && k != ir.KBool {
		e.errorf(at, "%s must be a condition (bool), but it is %s", what, k)
		return false
	}
	if ev.score && k == ir.KBool {
		e.errorf(at, "%s must be a number, but it is a condition (write it as a mask)", what)
		return false
	}
	return true
}

// combineMasks joins two masks with && or ||, renumbering captures.
func combineMasks(op string, x, y exprVal) exprVal {
	kind := ir.EAnd
	if op == "||" {
		kind = ir.EOr
	}
	ye, caps := shiftCaptures(y.e, y.caps, x.caps)
	return exprVal{e: ir.Bin(kind, x.e, ye), caps: caps}
}

// shiftCaptures appends caps2 to caps1 (sharing identical tensors) and
// rewrites e's capture indices from caps2's numbering to the joint one.
func shiftCaptures(e *ir.Expr, caps2, caps1 []*ir.Instr) (*ir.Expr, []*ir.Instr) {
	joint := append([]*ir.Instr(nil), caps1...)
	remap := map[int64]int64{}
	for i, c := range caps2 {
		j := -1
		for k, d := range joint {
			if d == c {
				j = k
			}
		}
		if j < 0 {
			joint = append(joint, c)
			j = len(joint) - 1
		}
		remap[int64(i)] = int64(j)
	}
	return remapCaptures(e, remap), joint
}

func remapCaptures(e *ir.Expr, remap map[int64]int64) *ir.Expr {
	if e == nil {
		return nil
	}
	out := *e
	out.Args = make([]*ir.Expr, len(e.Args))
	for i, a := range e.Args {
		out.Args[i] = remapCaptures(a, remap)
	}
	if e.Kind == ir.ECapture {
		out.Int = remap[e.Int]
	}
	return &out
}
