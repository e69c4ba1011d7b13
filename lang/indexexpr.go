package lang

import (
	"fmt"
	"math"

	"github.com/attnc/attnc/ir"
)

// indexConv converts the body of a mask or score definition, with its
// parameters bound to values, into an ir.Expr. Tensor parameters become
// captures, read only at index expressions: bias[h, q - k].
type indexConv struct {
	e    *elab
	def  *FuncDef
	args map[string]value
	caps []*ir.Instr
	// inlined counts the nodes of the masks inlined so far, which
	// Limits.ExprNodes bounds before they are copied.
	inlined int
	// divs are the divisions and modulos written in the body, which
	// checkDivisors looks at once the expression's kinds are known.
	divs []divSite
	// sites maps the operations written in the body to where they are
	// written, so checkOverflow can point at one.
	sites map[*ir.Expr]Node
	// vecs are the score's vector reads (qdot, kdot), by placeholder.
	vecs map[*ir.Instr]vecRead
}

// divSite is a / or % of an index expression and where it is written.
type divSite struct {
	e  *ir.Expr
	at Node
}

var indexBinary = map[string]ir.ExprKind{
	"+": ir.EAdd, "-": ir.ESub, "*": ir.EMul, "/": ir.EDiv, "%": ir.EMod,
	"<": ir.ELt, "<=": ir.ELe, ">": ir.EGt, ">=": ir.EGe, "==": ir.EEq, "!=": ir.ENe,
	"&&": ir.EAnd, "||": ir.EOr,
}

func (c *indexConv) fail(n Node, format string, args ...any) (*ir.Expr, bool) {
	c.e.errorf(n, format, args...)
	return nil, false
}

func (c *indexConv) capture(t *ir.Instr) int64 {
	for i, x := range c.caps {
		if x == t {
			return int64(i)
		}
	}
	c.caps = append(c.caps, t)
	return int64(len(c.caps) - 1)
}

func (c *indexConv) conv(x Expr) (*ir.Expr, bool) {
	switch x := x.(type) {
	case *IntLit:
		return ir.Int(x.Value), true
	case *FloatLit:
		return ir.Float(x.Value), true
	case *BoolLit:
		v := int64(0)
		if x.Value {
			v = 1
		}
		return &ir.Expr{Kind: ir.EBool, Int: v}, true
	case *ParenExpr:
		return c.conv(x.X)
	case *Ident:
		return c.ident(x)
	case *UnaryExpr:
		a, ok := c.conv(x.X)
		if !ok {
			return nil, false
		}
		if x.Op == "-" {
			if a.Kind == ir.EInt {
				if a.Int == math.MinInt64 {
					return c.fail(x, "integer overflow: -(%d) does not fit in 64 bits", a.Int)
				}
				return ir.Int(-a.Int), true
			}
			return c.site(&ir.Expr{Kind: ir.ENeg, Args: []*ir.Expr{a}}, x), true
		}
		return &ir.Expr{Kind: ir.ENot, Args: []*ir.Expr{a}}, true
	case *BinaryExpr:
		a, ok1 := c.conv(x.X)
		b, ok2 := c.conv(x.Y)
		if !ok1 || !ok2 {
			return nil, false
		}
		kind := indexBinary[x.Op]
		if a.Kind == ir.EInt && b.Kind == ir.EInt {
			// Integer constants are folded, with the same checks as
			// compile-time arithmetic: the kernels compute in int64 (or
			// float64), where an overflow would wrap or round silently.
			v, folded, err := foldInt(kind, a.Int, b.Int)
			if err != nil {
				return c.fail(x, "%v", err)
			}
			if folded {
				return ir.Int(v), true
			}
		}
		out := c.site(ir.Bin(kind, a, b), x)
		if kind == ir.EDiv || kind == ir.EMod {
			c.divs = append(c.divs, divSite{out, x})
		}
		return out, true
	case *IfExpr:
		cond, ok1 := c.conv(x.Cond)
		a, ok2 := c.conv(x.Then)
		b, ok3 := c.conv(x.Else)
		if !ok1 || !ok2 || !ok3 {
			return nil, false
		}
		return ir.Call("where", cond, a, b), true
	case *CallExpr:
		fn, ok := x.Fn.(*Ident)
		if !ok {
			return c.fail(x.Fn, "expected a function name")
		}
		if fn.Name == "qdot" || fn.Name == "kdot" {
			return c.vecRead(x, fn.Name)
		}
		n, ok := indexFuncs[fn.Name]
		if !ok {
			return c.fail(fn, "unknown function %s in an index expression%s", fn.Name, didYouMean(fn.Name, sortedIndexFuncs()))
		}
		if len(x.Args) != n {
			return c.fail(x, "%s takes %d arguments, got %d", fn.Name, n, len(x.Args))
		}
		var args []*ir.Expr
		for _, a := range x.Args {
			if a.Name != nil {
				return c.fail(a.Name, "index functions take positional arguments")
			}
			v, ok := c.conv(a.Value)
			if !ok {
				return nil, false
			}
			args = append(args, v)
		}
		return c.site(ir.Call(fn.Name, args...), x), true
	case *IndexExpr:
		id, ok := x.X.(*Ident)
		var t tensorVal
		if ok {
			t, ok = c.args[id.Name].(tensorVal)
		}
		if !ok {
			if id != nil {
				if v, isParam := c.args[id.Name]; isParam {
					return c.fail(x.X, "%s is %s, which a %s cannot index; pass a tensor", id.Name, describe(v), c.def.Kind)
				}
			}
			return c.fail(x.X, "only a tensor parameter can be indexed in a %s", c.def.Kind)
		}
		if len(x.Items) != t.in.Type.Rank() {
			return c.fail(x, "%s is %s: it needs %d indices, got %d", id.Name, t.in.Type, t.in.Type.Rank(), len(x.Items))
		}
		var idx []*ir.Expr
		for _, it := range x.Items {
			if it.Slice || it.Lo == nil {
				return c.fail(it, "slices are not allowed in a %s; index with one position", c.def.Kind)
			}
			v, ok := c.conv(it.Lo)
			if !ok {
				return nil, false
			}
			idx = append(idx, v)
		}
		return ir.Capture(int(c.capture(t.in)), idx...), true
	}
	return c.fail(x, "not allowed in a %s", c.def.Kind)
}

// site records that x is written at n.
func (c *indexConv) site(x *ir.Expr, n Node) *ir.Expr {
	if c.sites == nil {
		c.sites = map[*ir.Expr]Node{}
	}
	c.sites[x] = n
	return x
}

// indexRange is the range checkOverflow gives q, k, b, h and the
// module's symbols: sequences (and batches, heads, dimensions) of 2^31
// or more are not supported.
var indexRange = ir.Interval{Lo: 0, Hi: math.MaxInt32}

// checkOverflow reports integer arithmetic in the expression x that can
// go past ±ir.MaxExactInt for some positions: the kernels would wrap or
// round differently from the reference, silently, and the tile analysis
// would classify tiles by values the kernels never compute. Positions,
// batch and head indices and symbols range over indexRange, captured i32
// values over their type. It runs after Check, which types the nodes.
func (c *indexConv) checkOverflow(at Node, what string, x *ir.Expr) bool {
	vars := map[string]ir.Interval{"q": indexRange, "k": indexRange, "b": indexRange, "h": indexRange}
	for _, s := range c.e.b.M.Syms {
		vars[s] = indexRange
	}
	op, iv := x.Overflow(vars)
	if op == nil {
		return true
	}
	text := op.String()
	if n, ok := c.sites[op]; ok {
		at = n
		src := FormatExpr(n.(Expr))
		if len(op.Captures()) > 0 {
			text = src
		} else if src != text {
			text = src + " (= " + text + ")"
		}
	}
	reach := ""
	if v := iv.Hi; iv.Hi <= ir.MaxExactInt && iv.Lo >= -ir.MaxExactInt {
		reach = "an operand is past ±2^53" // a large literal
	} else {
		if -iv.Lo > iv.Hi {
			v = iv.Lo
		}
		reach = fmt.Sprintf("it can reach %.3g", v)
	}
	c.e.errorf(at, "%s: %s can overflow for positions up to 2^31: %s, and integer arithmetic in a %s must stay within ±2^53, where the kernels and the reference agree", what, text, reach, c.def.Kind)
	return false
}

func readsCapture(e *ir.Expr) bool { return len(e.Captures()) > 0 }

// foldInt computes a op b for two integer constants when op is
// arithmetic, reporting whether it did. A division by zero is left
// unfolded for checkDivisors, which reports every zero divisor alike.
func foldInt(op ir.ExprKind, a, b int64) (int64, bool, error) {
	var v int64
	ok := true
	sym := map[ir.ExprKind]string{ir.EAdd: "+", ir.ESub: "-", ir.EMul: "*"}[op]
	switch op {
	case ir.EAdd:
		v, ok = ir.AddInt64(a, b)
	case ir.ESub:
		v, ok = ir.SubInt64(a, b)
	case ir.EMul:
		v, ok = ir.MulInt64(a, b)
	case ir.EDiv, ir.EMod:
		if b == 0 {
			return 0, false, nil
		}
		v, err := floorDivMod(op == ir.EMod, a, b)
		if err != nil {
			return 0, false, err
		}
		return v, true, nil
	default:
		return 0, false, nil
	}
	if !ok {
		return 0, false, fmt.Errorf("integer overflow: %d %s %d does not fit in 64 bits", a, sym, b)
	}
	return v, true, nil
}

// checkDivisors reports an integer / or % whose divisor is a constant
// zero. Such a mask would pass every check and then fail every forward
// pass; float division by zero is left alone (-1.0 / 0.0 is -inf). It
// runs after Check, which decides which divisions are integer ones.
func (c *indexConv) checkDivisors(what string) bool {
	ok := true
	for _, d := range c.divs {
		div := d.e.Args[1]
		if d.e.Kind == ir.EDiv && d.e.ValueKind() != ir.KInt || !ground(div) {
			continue
		}
		if v, err := div.Eval(nil, nil); err == nil && v == 0 {
			verb := "division"
			if d.e.Kind == ir.EMod {
				verb = "modulo"
			}
			c.e.errorf(d.at, "integer %s by zero in %s", verb, what)
			ok = false
		}
	}
	return ok
}

// ground reports whether e reads no variable and no captured tensor, so
// its value is known when the mask is made.
func ground(e *ir.Expr) bool {
	g := true
	e.Walk(func(x *ir.Expr) { g = g && x.Kind != ir.EVar && x.Kind != ir.ECapture })
	return g
}

func (c *indexConv) ident(x *Ident) (*ir.Expr, bool) {
	if v, ok := c.args[x.Name]; ok {
		switch v := v.(type) {
		case intVal:
			return dimExpr(v.d), true
		case floatVal:
			return ir.Float(v.v), true
		case boolVal:
			return &ir.Expr{Kind: ir.EBool, Int: int64(b2f(v.v))}, true
		case exprVal:
			if v.score {
				return c.fail(x, "a score cannot be used inside a %s", c.def.Kind)
			}
			// A mask passed to a mask: inline it, sharing captures.
			// Each use copies it, so a mask that uses its argument
			// twice doubles: count before copying.
			c.inlined += exprSize(v.e)
			if limit := c.e.limits.ExprNodes; c.inlined > limit {
				return c.fail(x, "%s %s is too large: more than %d nodes once the masks it uses are inlined; the limit is %d nodes", c.def.Kind, c.def.Name.Name, limit, limit)
			}
			shifted, caps := shiftCaptures(v.e, v.caps, c.caps)
			c.caps = caps
			return shifted, true
		case tensorVal:
			return c.fail(x, "tensor %s (%s) used where an index is needed; read one element, like %s[b, q]", x.Name, v.in.Type, x.Name)
		}
		return c.fail(x, "%s is %s, which a %s cannot use", x.Name, describe(v), c.def.Kind)
	}
	switch x.Name {
	case indexInf:
		return ir.Float(math.Inf(1)), true
	case "q", "k", "h", "b":
		return ir.Var(x.Name), true
	case "s":
		if c.def.Kind == "score" {
			return ir.Var("s"), true
		}
		return c.fail(x, "s (the raw score) is only available in a score, not a mask")
	}
	return c.fail(x, "unknown name %s in %s %s (masks see q, k, h, b and their parameters)", x.Name, c.def.Kind, c.def.Name.Name)
}

// dimExpr writes an affine dim as an index expression.
func dimExpr(d ir.Dim) *ir.Expr {
	var out *ir.Expr
	add := func(t *ir.Expr) {
		if out == nil {
			out = t
		} else {
			out = ir.Bin(ir.EAdd, out, t)
		}
	}
	for _, t := range d.Terms {
		v := ir.Var(t.Sym)
		if t.Coef != 1 {
			v = ir.Bin(ir.EMul, ir.Int(t.Coef), v)
		}
		add(v)
	}
	if d.Const != 0 || out == nil {
		add(ir.Int(d.Const))
	}
	return out
}

// countMaskNodes adds n nodes of a new mask or score to the model's
// total, reporting at `at` when that crosses Limits.MaskNodes. Each mask
// is small, but a loop can make thousands of them.
func (e *elab) countMaskNodes(at Node, n int) bool {
	e.maskNodes += n
	if limit := e.limits.MaskNodes; e.maskNodes > limit {
		e.tooBig = true
		e.errorf(at, "the masks and scores of this model grow past %d nodes in all; the limit is %d nodes per model", limit, limit)
		return false
	}
	return true
}

// exprSize counts the nodes of x.
func exprSize(x *ir.Expr) int {
	n := 0
	x.Walk(func(*ir.Expr) { n++ })
	return n
}
