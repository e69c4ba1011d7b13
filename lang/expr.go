package lang

import (
	"fmt"
	"math"
	"strings"

	"github.com/attnc/attnc/ir"
)

// expr evaluates x in scope sc. Errors are reported and yield errVal.
func (e *elab) expr(x Expr, sc *env) value {
	if e.tooBig {
		return errVal{}
	}
	switch x := x.(type) {
	case *IntLit:
		return constInt(x.Value)
	case *FloatLit:
		return floatVal{x.Value}
	case *StringLit:
		return stringVal{x.Value}
	case *BoolLit:
		return boolVal{x.Value}
	case *ParenExpr:
		return e.expr(x.X, sc)
	case *Ident:
		return e.ident(x, sc)
	case *UnaryExpr:
		return e.unary(x, e.expr(x.X, sc))
	case *BinaryExpr:
		return e.binary(x, x.Op, e.expr(x.X, sc), e.expr(x.Y, sc))
	case *IfExpr:
		c := e.expr(x.Cond, sc)
		switch c := c.(type) {
		case boolVal:
			if c.v {
				return e.expr(x.Then, sc)
			}
			return e.expr(x.Else, sc)
		case errVal:
			return c
		}
		hint := ""
		if _, ok := c.(tensorVal); ok {
			hint = " (for tensors use where(c, a, b))"
		}
		return e.errorf(x.Cond, "if needs a compile-time bool, got %s%s", describe(c), hint)
	case *IndexExpr:
		return e.index(x, sc)
	case *CallExpr:
		return e.call(x, sc)
	}
	return e.errorf(x, "unsupported expression")
}

func (e *elab) ident(x *Ident, sc *env) value {
	if v, ok := sc.lookup(x.Name); ok {
		return v
	}
	if x.Name == "none" {
		return noneVal{}
	}
	if f, ok := e.prog.Funcs[x.Name]; ok {
		if len(f.Params) > 0 && f.Params[0].Default == nil {
			return e.errorf(x, "%s %s needs arguments: %s(%s)", f.Kind, x.Name, x.Name, paramList(f.Params))
		}
		return e.instantiateFunc(x, f, &CallExpr{Span: x.Span, Fn: x}, sc)
	}
	if _, ok := e.prog.Blocks[x.Name]; ok {
		return e.errorf(x, "block %s must be called: %s(...)", x.Name, x.Name)
	}
	if _, ok := builtins[x.Name]; ok {
		return e.errorf(x, "built-in %s must be called: %s(...)", x.Name, x.Name)
	}
	return e.errorf(x, "unknown name %s%s", x.Name, didYouMean(x.Name, append(sc.names(), e.prog.names()...)))
}

func paramList(ps []*Param) string {
	s := ""
	for i, p := range ps {
		if i > 0 {
			s += ", "
		}
		s += p.Name.Name
	}
	return s
}

func (e *elab) unary(x *UnaryExpr, v value) value {
	switch v := v.(type) {
	case errVal:
		return v
	case intVal:
		if x.Op == "-" {
			d, err := v.d.ScaleChecked(-1)
			if err != nil {
				return e.errorf(x, "integer overflow: -(%s) does not fit in 64 bits", v.d)
			}
			return intVal{d}
		}
	case floatVal:
		if x.Op == "-" {
			return floatVal{-v.v}
		}
	case boolVal:
		if x.Op == "!" {
			return boolVal{!v.v}
		}
	case exprVal:
		if x.Op == "!" && !v.score {
			if size, limit := exprSize(v.e)+1, e.limits.ExprNodes; size > limit {
				return e.errorf(x, "the negated mask is too large: %d nodes; the limit is %d nodes", size, limit)
			}
			if !e.countMaskNodes(x, 1) {
				return errVal{}
			}
			return exprVal{e: &ir.Expr{Kind: ir.ENot, Args: []*ir.Expr{v.e}}, caps: v.caps}
		}
	case tensorVal:
		switch {
		case x.Op == "-" && v.in.Type.DType != ir.Bool:
			return e.op(x, ir.OpNeg, nil, v.in)
		case x.Op == "!" && v.in.Type.DType == ir.Bool:
			return e.op(x, ir.OpNot, nil, v.in)
		}
	}
	return e.errorf(x, "cannot apply %s to %s", x.Op, describe(v))
}

var tensorBinOps = map[string]ir.Op{
	"+": ir.OpAdd, "-": ir.OpSub, "*": ir.OpMul, "/": ir.OpDiv, "%": ir.OpMod,
	"==": ir.OpEq, "!=": ir.OpNe, "<": ir.OpLt, "<=": ir.OpLe, ">": ir.OpGt, ">=": ir.OpGe,
	"&&": ir.OpAnd, "||": ir.OpOr,
}

var opVerbs = map[string]string{"+": "add", "-": "subtract", "*": "multiply", "/": "divide", "%": "take the remainder of"}

// binary applies op to two values: tensors (broadcasting), compile-time
// numbers, bools, or masks (&&, ||).
func (e *elab) binary(n Node, op string, x, y value) value {
	if _, bad := x.(errVal); bad {
		return x
	}
	if _, bad := y.(errVal); bad {
		return y
	}
	xt, xIsT := x.(tensorVal)
	yt, yIsT := y.(tensorVal)
	if xIsT || yIsT {
		// The other operand must be a tensor or a number: a mask or a
		// string is a mistake to name as such, not to convert.
		for _, v := range []value{x, y} {
			switch v.(type) {
			case tensorVal, intVal, floatVal, boolVal:
			default:
				return e.errorf(n, "cannot %s %s and %s", opVerb(op), describe(x), describe(y))
			}
		}
		var a, b *ir.Instr
		switch {
		case xIsT && yIsT:
			a, b = xt.in, yt.in
		case xIsT:
			a, b = xt.in, e.scalarFor(n, xt.in.Type.DType, y)
		default:
			a, b = e.scalarFor(n, yt.in.Type.DType, x), yt.in
		}
		if a == nil || b == nil {
			return errVal{}
		}
		irop, ok := tensorBinOps[op]
		if !ok {
			return e.errorf(n, "%s is not defined on tensors", op)
		}
		if a.Type.DType != b.Type.DType {
			return e.errorf(n, "cannot %s %s and %s: dtypes differ (convert with float() or int())", opVerb(op), a.Type, b.Type)
		}
		in := e.must(n, func() (*ir.Instr, error) {
			in, err := e.b.Op(irop, nil, a, b)
			if err != nil {
				return nil, shapeError(op, a.Type, b.Type, err)
			}
			return in, nil
		})
		if in == nil {
			return errVal{}
		}
		return tensorVal{in}
	}
	if xe, ok := x.(exprVal); ok {
		if ye, ok := y.(exprVal); ok && !xe.score && !ye.score && (op == "&&" || op == "||") {
			// Both sides are copied whole, so m = m && m in a loop
			// doubles: bound the result.
			if size, limit := exprSize(xe.e)+exprSize(ye.e)+1, e.limits.ExprNodes; size > limit {
				return e.errorf(n, "the combined mask is too large: %d nodes; the limit is %d nodes", size, limit)
			}
			if !e.countMaskNodes(n, exprSize(ye.e)+1) { // y is copied, x shared
				return errVal{}
			}
			return combineMasks(op, xe, ye)
		}
	}
	// none is the mask that admits every key: none && m is m, and
	// none || m admits everything, so optional masks combine.
	if op == "&&" || op == "||" {
		_, xNone := x.(noneVal)
		_, yNone := y.(noneVal)
		xm, xMask := x.(exprVal)
		ym, yMask := y.(exprVal)
		switch {
		case xNone && (yNone || yMask && !ym.score):
			if op == "&&" {
				return y
			}
			return x
		case yNone && xMask && !xm.score:
			if op == "&&" {
				return x
			}
			return y
		}
	}
	switch xv := x.(type) {
	case intVal:
		switch yv := y.(type) {
		case intVal:
			return e.intArith(n, op, xv, yv)
		case floatVal:
			if c, ok := xv.isConst(); ok {
				return e.floatArith(n, op, float64(c), yv.v)
			}
		}
	case floatVal:
		switch yv := y.(type) {
		case intVal:
			if c, ok := yv.isConst(); ok {
				return e.floatArith(n, op, xv.v, float64(c))
			}
		case floatVal:
			return e.floatArith(n, op, xv.v, yv.v)
		}
	case boolVal:
		if yv, ok := y.(boolVal); ok {
			switch op {
			case "&&":
				return boolVal{xv.v && yv.v}
			case "||":
				return boolVal{xv.v || yv.v}
			case "==":
				return boolVal{xv.v == yv.v}
			case "!=":
				return boolVal{xv.v != yv.v}
			}
		}
	case stringVal:
		if yv, ok := y.(stringVal); ok {
			switch op {
			case "==":
				return boolVal{xv.v == yv.v}
			case "!=":
				return boolVal{xv.v != yv.v}
			}
		}
	}
	return e.errorf(n, "cannot %s %s and %s", opVerb(op), describe(x), describe(y))
}

func opVerb(op string) string {
	if v, ok := opVerbs[op]; ok {
		return v
	}
	return "apply " + op + " to"
}

func shapeError(op string, a, b ir.Type, err error) error {
	return &shapeErr{op: op, a: a, b: b, err: err}
}

type shapeErr struct {
	op   string
	a, b ir.Type
	err  error
}

func (s *shapeErr) Error() string {
	if s.a.DType == s.b.DType && s.a.Shape.Equal(s.b.Shape) || !strings.Contains(s.err.Error(), "broadcast") {
		// Not a shape problem: the operator does not take these dtypes.
		hint := ""
		if s.op == "%" && s.a.DType == ir.F32 {
			hint = " (% is the integer modulo: convert with int() first)"
		}
		return fmt.Sprintf("cannot apply %s to %s and %s: %s%s", s.op, s.a, s.b, stripOpPrefix(s.err.Error()), hint)
	}
	head := "shape mismatch: " + s.a.String() + " " + s.op + " " + s.b.String()
	// Name the first axis (aligned from the right, as broadcasting
	// does) where the sizes differ and neither is 1.
	ra, rb := s.a.Rank(), s.b.Rank()
	for i := max(ra, rb) - 1; i >= 0; i-- {
		ia, ib := i-(max(ra, rb)-ra), i-(max(ra, rb)-rb)
		if ia < 0 || ib < 0 {
			break
		}
		da, db := s.a.Shape[ia], s.b.Shape[ib]
		if da.Equal(db) || isOneDim(da) || isOneDim(db) {
			continue
		}
		if ra == rb {
			return fmt.Sprintf("%s: axis %d is %s on the left but %s on the right (sizes must match or be 1)", head, ia, da, db)
		}
		return fmt.Sprintf("%s: %s on the left does not match %s on the right (sizes align from the last axis and must match or be 1)", head, da, db)
	}
	return head + ": " + stripOpPrefix(s.err.Error())
}

func isOneDim(d ir.Dim) bool {
	c, ok := d.IsConst()
	return ok && c == 1
}

// stripOpPrefix drops the "add: " the builder puts before its messages.
func stripOpPrefix(msg string) string {
	for i := 0; i < len(msg) && i < 16; i++ {
		if msg[i] == ':' && i+1 < len(msg) && msg[i+1] == ' ' {
			return msg[i+2:]
		}
		if msg[i] == ' ' {
			break
		}
	}
	return msg
}

// scalarFor turns a compile-time number into a constant of dtype dt for
// arithmetic with a tensor.
func (e *elab) scalarFor(n Node, dt ir.DType, v value) *ir.Instr {
	switch v := v.(type) {
	case intVal:
		c, ok := v.isConst()
		if !ok {
			e.errorf(n, "cannot mix the run-time dimension %s with a tensor", v.d)
			return nil
		}
		if dt == ir.Bool {
			break
		}
		if dt == ir.I32 && (c < math.MinInt32 || c > math.MaxInt32) {
			e.errorf(n, "%d does not fit in an i32 (the range is %d to %d)", c, math.MinInt32, math.MaxInt32)
			return nil
		}
		return e.constant(n, dt, float64(c))
	case floatVal:
		if dt != ir.F32 {
			e.errorf(n, "cannot combine %s with %s tensor (convert the tensor with float(...))", describe(v), dtypeArticle(dt))
			return nil
		}
		return e.constant(n, dt, v.v)
	case boolVal:
		if dt == ir.Bool {
			return e.constant(n, dt, b2f(v.v))
		}
	}
	e.errorf(n, "cannot combine %s with %s tensor", describe(v), dtypeArticle(dt))
	return nil
}

// dtypeArticle is "an f32", "an i32" or "a bool", as read aloud.
func dtypeArticle(dt ir.DType) string {
	if dt == ir.Bool {
		return "a bool"
	}
	return "an " + dt.String()
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// intArith applies op to two compile-time integers, which may be
// symbolic dimensions. Arithmetic is checked: a result that does not fit
// in an int64 is an error where it is written, never a wrapped size.
func (e *elab) intArith(n Node, op string, x, y intVal) value {
	xc, xok := x.isConst()
	yc, yok := y.isConst()
	var d ir.Dim
	var err error
	switch op {
	case "+":
		d, err = x.d.AddChecked(y.d)
	case "-":
		d, err = x.d.SubChecked(y.d)
	case "*":
		switch {
		case yok:
			d, err = x.d.ScaleChecked(yc)
		case xok:
			d, err = y.d.ScaleChecked(xc)
		default:
			return e.errorf(n, "cannot multiply the dimensions %s and %s: shapes must stay affine in their symbols", x.d, y.d)
		}
	}
	switch op {
	case "+", "-", "*":
		if err != nil {
			return e.errorf(n, "integer overflow: %s %s %s does not fit in 64 bits", x.d, op, y.d)
		}
		return intVal{d}
	}
	if !xok || !yok {
		if op == "==" || op == "!=" {
			eq := x.d.Equal(y.d)
			return boolVal{eq == (op == "==")}
		}
		return e.errorf(n, "cannot %s %s and %s: one is a dimension known only at run time", opVerb(op), x.d, y.d)
	}
	switch op {
	case "/", "%":
		v, err := floorDivMod(op == "%", xc, yc)
		if err != nil {
			return e.errorf(n, "%v", err)
		}
		return constInt(v)
	case "==":
		return boolVal{xc == yc}
	case "!=":
		return boolVal{xc != yc}
	case "<":
		return boolVal{xc < yc}
	case "<=":
		return boolVal{xc <= yc}
	case ">":
		return boolVal{xc > yc}
	case ">=":
		return boolVal{xc >= yc}
	}
	return e.errorf(n, "cannot %s ints", opVerb(op))
}

// floorDivMod returns x / y, or x % y when mod, rounded toward negative
// infinity as in index expressions, or an error for a zero divisor or a
// quotient that does not fit in 64 bits (the smallest int divided by -1).
func floorDivMod(mod bool, x, y int64) (int64, error) {
	switch {
	case y == 0:
		return 0, fmt.Errorf("division by zero")
	case y == -1:
		if mod {
			return 0, nil
		}
		if x == math.MinInt64 {
			return 0, fmt.Errorf("integer overflow: %d / %d does not fit in 64 bits", x, y)
		}
	}
	q, r := x/y, x%y
	if r != 0 && (r < 0) != (y < 0) {
		q--
		r += y
	}
	if mod {
		return r, nil
	}
	return q, nil
}

func (e *elab) floatArith(n Node, op string, x, y float64) value {
	switch op {
	case "+":
		return floatVal{x + y}
	case "-":
		return floatVal{x - y}
	case "*":
		return floatVal{x * y}
	case "/":
		return floatVal{x / y}
	case "%":
		// Floor modulo, as for ints: the result has the divisor's sign.
		m := math.Mod(x, y)
		if m != 0 && (m < 0) != (y < 0) {
			m += y
		}
		return floatVal{m}
	case "==":
		return boolVal{x == y}
	case "!=":
		return boolVal{x != y}
	case "<":
		return boolVal{x < y}
	case "<=":
		return boolVal{x <= y}
	case ">":
		return boolVal{x > y}
	case ">=":
		return boolVal{x >= y}
	}
	return e.errorf(n, "cannot %s floats", opVerb(op))
}

// index evaluates x[items]: each item indexes (drops the axis) or slices
// one axis, from the left; negative bounds count from the end.
func (e *elab) index(x *IndexExpr, sc *env) value {
	base := e.expr(x.X, sc)
	t, ok := base.(tensorVal)
	if !ok {
		if _, bad := base.(errVal); bad {
			return base
		}
		return e.errorf(x.X, "cannot index %s", describe(base))
	}
	cur := t.in
	if len(x.Items) > cur.Type.Rank() {
		return e.errorf(x, "too many subscripts: %s has %d axes, got %d", cur.Type, cur.Type.Rank(), len(x.Items))
	}
	var drop []int
	for axis, it := range x.Items {
		size := cur.Type.Shape[axis]
		start, end := ir.ConstDim(0), size
		bound := func(b Expr) (ir.Dim, bool) {
			v := e.expr(b, sc)
			iv, ok := v.(intVal)
			if !ok {
				if _, bad := v.(errVal); !bad {
					e.errorf(b, "a subscript must be an integer, got %s (use gather to index with a tensor)", describe(v))
				}
				return ir.Dim{}, false
			}
			if c, ok := iv.isConst(); ok && c < 0 {
				d, err := size.AddChecked(iv.d) // -1 is the last
				if err != nil {
					e.errorf(b, "subscript %d is out of range for axis %d of size %s", c, axis, size)
					return ir.Dim{}, false
				}
				return d, true
			}
			return iv.d, true
		}
		if it.Lo != nil {
			d, ok := bound(it.Lo)
			if !ok {
				return errVal{}
			}
			start = d
		}
		if !it.Slice {
			var err error
			if end, err = start.AddChecked(ir.ConstDim(1)); err != nil {
				e.errorf(it, "index %s is out of range for axis %d of size %s", FormatExpr(it.Lo), axis, size)
				return errVal{}
			}
			drop = append(drop, axis)
		} else if it.Hi != nil {
			d, ok := bound(it.Hi)
			if !ok {
				return errVal{}
			}
			end = d
		}
		if !e.checkSubscript(it, axis, size, start, end) {
			return errVal{}
		}
		if start.Equal(ir.ConstDim(0)) && end.Equal(size) {
			continue
		}
		in := e.must(it, func() (*ir.Instr, error) {
			return e.b.Op(ir.OpSlice, ir.Attrs{"axis": ir.IntAttr(int64(axis)), "start": ir.DimAttr(start), "end": ir.DimAttr(end)}, cur)
		})
		if in == nil {
			return errVal{}
		}
		cur = in
	}
	if len(drop) == 0 {
		return tensorVal{cur}
	}
	var shape ir.Shape
	for i, d := range cur.Type.Shape {
		if !containsInt(drop, i) {
			shape = append(shape, d)
		}
	}
	return e.given(x, ir.OpReshape, ir.Type{DType: cur.Type.DType, Shape: shape}, nil, cur)
}

// checkSubscript reports a subscript that falls outside its axis, as
// far as the sizes are known at compile time: an index must name an
// element, a slice must lie within the axis and not run backwards.
func (e *elab) checkSubscript(it *IndexItem, axis int, size, start, end ir.Dim) bool {
	written := FormatExpr(it.Lo)
	if it.Slice {
		lo, hi := "", ""
		if it.Lo != nil {
			lo = FormatExpr(it.Lo)
		}
		if it.Hi != nil {
			hi = FormatExpr(it.Hi)
		}
		written = lo + ":" + hi
	}
	negative := func(d ir.Dim) bool { c, ok := d.IsConst(); return ok && c < 0 }
	// A difference that overflows is as far out of range as can be.
	past, errPast := size.SubChecked(end)
	length, errLength := end.SubChecked(start)
	switch {
	case negative(start) || errPast != nil || negative(past):
		if !it.Slice {
			if n, ok := size.IsConst(); ok {
				e.errorf(it, "index %s is out of range for axis %d of size %d (valid: %d to %d)", written, axis, n, -n, n-1)
				return false
			}
			e.errorf(it, "index %s is out of range for axis %d of size %s", written, axis, size)
			return false
		}
		e.errorf(it, "slice %s is out of range for axis %d of size %s", written, axis, size)
		return false
	case errLength != nil || negative(length):
		e.errorf(it, "slice %s of axis %d ends before it starts", written, axis)
		return false
	}
	return true
}

func containsInt(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
