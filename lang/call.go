package lang

import (
	"fmt"
	"strconv"
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
	if fn.Name == "recur" {
		return e.recur(x, sc)
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
// too many, unknown, duplicate and missing arguments. The resolver calls
// it too, so a wrong call is reported in a block no model instantiates.
func bindArgs(diags *diagSink, call *CallExpr, what string, params []formal) (*bound, bool) {
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
			diags.errorf(a, "too many arguments to %s: want at most %d (%s)", what, len(params), strings.Join(names, ", "))
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
			hint := didYouMean(a.Name.Name, names)
			if hint == "" {
				hint = " (parameters: " + strings.Join(names, ", ") + ")"
			}
			diags.errorf(a.Name, "%s has no parameter %s%s", what, a.Name.Name, hint)
			ok = false
		case b.args[a.Name.Name] != nil:
			if b.named[a.Name.Name] {
				diags.errorf(a.Name, "argument %s given twice", a.Name.Name)
			} else {
				diags.errorf(a.Name, "argument %s given twice: it is also argument %d, by position", a.Name.Name, idx+1)
			}
			ok = false
		default:
			b.args[a.Name.Name] = a
			b.named[a.Name.Name] = true
		}
	}
	for _, p := range params {
		if p.required && b.args[p.name] == nil && !p.variadic {
			diags.errorf(call, "missing argument %s to %s (parameters: %s)", p.name, what, strings.Join(names, ", "))
			ok = false
		}
	}
	return b, ok
}

func blockFormals(def *BlockDef) []formal {
	var params []formal
	for _, p := range def.Params {
		params = append(params, formal{name: p.Name.Name, required: p.Default == nil})
	}
	return params
}

func funcFormals(def *FuncDef) []formal {
	var params []formal
	for _, p := range def.Params {
		params = append(params, formal{name: p.Name.Name, required: p.Default == nil})
	}
	return params
}

func builtinFormals(def *builtinDef) []formal {
	var formals []formal
	for _, p := range def.params {
		formals = append(formals, formal{name: p.name, required: p.def == nil && !p.variadic, variadic: p.variadic})
	}
	return formals
}

// enter counts one more block, mask or score instance, nested one level
// deeper, reporting at call when that crosses a limit. The caller
// decrements blockDepth when the instance is done, if enter succeeded.
// A block expansion may emit no instruction (a block that only calls
// others), so the instruction limit alone would not stop 2^40 of them.
func (e *elab) enter(call *CallExpr, name string) bool {
	if e.tooBig {
		return false
	}
	if e.blockDepth >= e.limits.BlockDepth {
		e.tooBig = true
		e.errorf(call, "blocks, masks and scores nested more than %d deep (at %s)", e.limits.BlockDepth, name)
		return false
	}
	if e.blockCalls >= e.limits.BlockCalls {
		e.tooBig = true
		e.errorf(call, "block calls expand more than %d times; the limit is %d block calls (block, mask and score instances all count)", e.limits.BlockCalls, e.limits.BlockCalls)
		return false
	}
	e.blockCalls++
	e.blockDepth++
	return true
}

// instantiateBlock elaborates a block body with the call's arguments:
// binds tensor shapes, checks kinds, names weights under a new segment.
func (e *elab) instantiateBlock(call *CallExpr, def *BlockDef, sc *env) value {
	b, ok := bindArgs(e.diags, call, "block "+def.Name.Name, blockFormals(def))
	if !ok {
		return errVal{}
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
	if !e.enter(call, def.Name.Name) {
		return errVal{}
	}
	defer func() { e.blockDepth-- }()
	seg = e.segment(seg)
	e.push(seg)
	e.frames = append(e.frames, frame{block: def.Name.Name, call: call, def: def.Span})
	defer func() { e.pop(); e.frames = e.frames[:len(e.frames)-1] }()
	okAll := true
	from := map[string]string{} // dimension name → the parameter that bound it
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
		where := fmt.Sprintf("%s of %s", p.Name.Name, def.Name.Name)
		if p.Type != nil && !e.bindParam(at, where, p.Name.Name, p.Type, v, inner, from) {
			okAll = false
			continue
		}
		inner.vars[p.Name.Name] = asDeclared(p.Type, v)
	}
	if !okAll {
		return errVal{}
	}
	ret := e.stmts(def.Body, newEnv(inner))
	if ret == nil {
		return e.errorf(def.Name, "block %s ends without return", def.Name.Name)
	}
	if tv, isTuple := ret.(tupleVal); isTuple && def.Result != nil {
		return e.errorf(def.Result, "block %s declares one result (-> %s) but returns %d values; leave the result type out", def.Name.Name, typeString(def.Result), len(tv.vals))
	}
	if def.Result != nil && !e.tooBig {
		// A result that breaks the declared type is the block's mistake:
		// report it at the return, not at the call.
		at := Node(call)
		if r := lastReturn(def.Body); r != nil {
			at = r.Value
		}
		if _, bad := ret.(errVal); !bad && !e.bindParam(at, "the result of "+def.Name.Name, "", def.Result, ret, inner, from) {
			return errVal{}
		}
	}
	return ret
}

// lastReturn returns the return statement that ends a block body, or nil.
func lastReturn(body []Stmt) *ReturnStmt {
	if len(body) == 0 {
		return nil
	}
	r, _ := body[len(body)-1].(*ReturnStmt)
	return r
}

// asDeclared converts v to the kind its parameter declares: an int given
// to a float parameter becomes a float, so r / 2 divides exactly.
func asDeclared(t *TypeExpr, v value) value {
	if t != nil && !t.Shaped && t.Name != nil && t.Name.Name == "float" {
		if iv, ok := v.(intVal); ok {
			if c, ok := iv.isConst(); ok {
				return floatVal{float64(c)}
			}
		}
	}
	return v
}

// bindParam checks v against a declared type t (of the parameter param,
// or of the result when param is "") and binds the dimension names of a
// tensor type (x: [B, N, D] binds D), recording in from which parameter
// bound each, for messages. where names the checked value in messages.
func (e *elab) bindParam(at Node, where, param string, t *TypeExpr, v value, inner *env, from map[string]string) bool {
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
		d, ok := parseDType(e.diags, t.Name)
		if !ok {
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
		e.errorf(at, "%s must be %s (rank %d), got %s", where, typeString(t), len(t.Dims), ty)
		return false
	}
	for i, d := range t.Dims {
		got := ty.Shape[i]
		if id, ok := d.(*Ident); ok {
			if prev, bound := inner.vars[id.Name]; bound {
				pd, isInt := prev.(intVal)
				source := from[id.Name]
				if source == "" {
					source = "parameter " + id.Name
				}
				if !isInt {
					e.errorf(at, "%s: the dimension %s of %s is %s (from %s), not a size", where, id.Name, typeString(t), describe(prev), source)
					return false
				}
				if !pd.d.Equal(got) {
					e.errorf(at, "shape mismatch: %s must be %s with %s = %s (from %s), got %s", where, typeString(t), id.Name, pd.d, source, ty)
					return false
				}
			} else {
				inner.vars[id.Name] = intVal{got}
				if param != "" {
					from[id.Name] = param
				}
			}
			continue
		}
		wantDim, ok := e.dimOf(d, inner)
		if !ok {
			return false
		}
		if !wantDim.Equal(got) {
			e.errorf(at, "shape mismatch: %s must be %s, whose axis %d is %s here, got %s", where, typeString(t), i, wantDim, ty)
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
	b, ok := bindArgs(e.diags, call, what, funcFormals(def))
	if !ok {
		return errVal{}
	}
	// Arguments belong to the caller; defaults are evaluated inside the
	// instance, so a default that leads back to its own mask is stopped
	// by the depth limit even if the resolver missed it.
	given := map[string]value{}
	for _, p := range def.Params {
		if a := b.args[p.Name.Name]; a != nil {
			v := e.expr(a.Value, sc)
			if _, bad := v.(errVal); bad {
				return v
			}
			given[p.Name.Name] = v
		}
	}
	if !e.enter(call, def.Name.Name) {
		return errVal{}
	}
	defer func() { e.blockDepth-- }()
	args := map[string]value{}
	for _, p := range def.Params {
		v, ok := given[p.Name.Name]
		if !ok {
			v = e.expr(p.Default, newEnv(nil))
			if _, bad := v.(errVal); bad {
				return v
			}
		}
		if p.Type != nil {
			at := Node(p)
			if a := b.args[p.Name.Name]; a != nil {
				at = a.Value
			}
			if !e.bindParam(at, fmt.Sprintf("%s of %s", p.Name.Name, what), p.Name.Name, p.Type, v, newEnv(nil), map[string]string{}) {
				return errVal{}
			}
			v = asDeclared(p.Type, v)
		}
		args[p.Name.Name] = v
	}
	e.frames = append(e.frames, frame{block: def.Name.Name, call: call, def: def.Span})
	defer func() { e.frames = e.frames[:len(e.frames)-1] }()
	c := &indexConv{e: e, def: def, args: args}
	x, ok := c.conv(def.Body)
	if !ok {
		return errVal{}
	}
	n := exprSize(x)
	if limit := e.limits.ExprNodes; n > limit {
		return e.errorf(def.Body, "%s is too large: %d nodes once the masks it uses are inlined; the limit is %d nodes", what, n, limit)
	}
	if !e.countMaskNodes(call, n) {
		return errVal{}
	}
	ev := exprVal{score: def.Kind == "score", e: x, caps: c.caps, vecs: c.vecs}
	if !e.checkIndexExpr(def.Body, what, ev) || !c.checkDivisors(what) || !c.checkOverflow(def.Body, what, x) {
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
		e.errorf(at, "%s: %s", what, nameCaptures(err.Error(), ev.caps))
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

// nameCaptures rewrites the IR's $i in an error message about a mask or
// score as the tensor the user passed: an input or weight by its name,
// another tensor by its type.
func nameCaptures(msg string, caps []*ir.Instr) string {
	for i := len(caps) - 1; i >= 0; i-- { // $10 before $1
		c := caps[i]
		label := "the tensor " + c.Type.String()
		if (c.Op == ir.OpInput || c.Op == ir.OpParam) && c.Name() != "" {
			label = c.Name()
		}
		msg = strings.ReplaceAll(msg, "$"+strconv.Itoa(i), label)
	}
	return msg
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
	return rewriteCaptures(e, func(c *ir.Expr) { c.Int = remap[c.Int] })
}

// rewriteCaptures returns a copy of e in which f has changed the copy of
// every capture read (its number, its indices).
func rewriteCaptures(e *ir.Expr, f func(c *ir.Expr)) *ir.Expr {
	if e == nil {
		return nil
	}
	out := *e
	out.Args = make([]*ir.Expr, len(e.Args))
	for i, a := range e.Args {
		out.Args[i] = rewriteCaptures(a, f)
	}
	if e.Kind == ir.ECapture {
		f(&out)
	}
	return &out
}
