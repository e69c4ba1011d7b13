package lang

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/attnc/attnc/ir"
)

// A builtinDef is a primitive of the language: a row of the table below,
// with its parameters (nil default = required), whether it creates
// weights, and its elaboration.
type builtinDef struct {
	params  []bparam
	creates bool
	doc     string
	fn      func(a *bargs) value
}

type bparam struct {
	name     string
	def      value // nil: required
	variadic bool  // collects the remaining positional arguments
}

func req(name string) bparam          { return bparam{name: name} }
func opt(name string, v value) bparam { return bparam{name: name, def: v} }
func rest(name string) bparam         { return bparam{name: name, variadic: true} }

var builtins map[string]*builtinDef

// constUnary are the unary built-ins that a compile-time number takes
// too, giving a float.
var constUnary = map[ir.Op]func(float64) float64{
	ir.OpExp: math.Exp, ir.OpLog: math.Log, ir.OpSqrt: math.Sqrt,
	ir.OpRsqrt: func(x float64) float64 { return 1 / math.Sqrt(x) },
	ir.OpTanh:  math.Tanh, ir.OpSin: math.Sin, ir.OpCos: math.Cos, ir.OpAbs: math.Abs,
	ir.OpSigmoid: func(x float64) float64 { return 1 / (1 + math.Exp(-x)) },
}

func init() {
	unary := func(op ir.Op, doc string) *builtinDef {
		return &builtinDef{params: []bparam{req("x")}, doc: doc, fn: func(a *bargs) value {
			if f, isConst := constUnary[op]; isConst {
				// A compile-time number: 1.0 / sqrt(float(D)).
				var v float64
				switch c := a.vals["x"].(type) {
				case floatVal:
					v = c.v
				case intVal:
					n, ok := c.isConst()
					if !ok {
						return a.fail("x", "%s: x is the size %s, known only at run time; use float(%s) in a tensor expression", a.name, c.d, c.d)
					}
					v = float64(n)
				default:
					goto tensor
				}
				r := f(v)
				if math.IsNaN(r) || math.IsInf(r, 0) {
					return a.fail("x", "%s(%v) is not a finite number", a.name, v)
				}
				return floatVal{r}
			}
		tensor:
			x, ok := a.floatTensor("x")
			if !ok {
				return errVal{}
			}
			return a.e.op(a.call, op, nil, x)
		}}
	}
	builtins = map[string]*builtinDef{
		"linear": {params: []bparam{req("x"), req("out"), opt("bias", boolVal{true})}, creates: true,
			doc: "x·W + b over the last axis; W [in, out] ~ U(±1/√in), b zeros", fn: biLinear},
		"embed": {params: []bparam{req("ids"), req("vocab"), req("dim")}, creates: true,
			doc: "rows of a [vocab, dim] table ~ N(0, 0.02²) at i32 ids", fn: biEmbed},
		"layer_norm": {params: []bparam{req("x"), opt("eps", floatVal{1e-5})},
			doc: "(x - mean) / √(var + eps) over the last axis, no learned part (see norm in layers.attn)", fn: normFn(ir.OpLayerNorm)},
		"rms_norm": {params: []bparam{req("x"), opt("eps", floatVal{1e-6})},
			doc: "x / √(mean(x²) + eps) over the last axis, no learned part (see rmsnorm in layers.attn)", fn: normFn(ir.OpRMSNorm)},
		"param": {params: []bparam{rest("dims"), opt("init", stringVal{"normal"}), opt("scale", floatVal{0.02})}, creates: true,
			doc: `a learned tensor of the given dims; init "normal" (N(0, scale²)), "uniform" (U(±scale)), "zeros" or "ones"`, fn: biParam},
		"buffer": {params: []bparam{rest("dims"), opt("init", stringVal{"zeros"}), opt("scale", floatVal{0.02})}, creates: true,
			doc: `state of the given dims that is saved with the weights but not trained: update(b, v) sets it after each training step; init as for param (default "zeros")`, fn: biBuffer},
		"update": {params: []bparam{req("b"), req("value")},
			doc: "makes value (of b's type) the buffer b's value after each training step (a running average, a k-means step); returns value", fn: biUpdate},
		"split_heads": {params: []bparam{req("x"), req("heads")},
			doc: "[B, N, D] → [B, heads, N, D/heads]", fn: biSplitHeads},
		"merge_heads": {params: []bparam{req("x")},
			doc: "[B, H, N, Dh] → [B, N, H·Dh]", fn: biMergeHeads},
		"attend": {params: []bparam{req("q"), req("k"), opt("v", noneVal{}), opt("mask", noneVal{}), opt("score", noneVal{}), opt("scale", noneVal{}), opt("returns", stringVal{"out"})},
			doc: `softmax(score(scale·q·kᵀ)) masked, applied to v; returns "out", "probs" or "logprobs" ([B, H, Nq, Nk])`, fn: biAttend},
		"recur": {params: []bparam{req("cell"), req("init"), rest("args"), opt("over", noneVal{}), opt("axis", constInt(1)), opt("steps", noneVal{})}, creates: true,
			doc: "the states s_t = cell(s_{t-1}, x_t, args…) from init over the sequence over along axis (or cell(s_{t-1}, args…) for steps steps), stacked along axis; cell names a block, whose weights every step shares"},
		"scan": {params: []bparam{req("a"), req("x"), opt("axis", constInt(1)), opt("reverse", boolVal{false})},
			doc: "h_t = a_t ⊙ h_{t-1} + x_t along axis (a broadcasts to x)", fn: biScan},
		"gather": {params: []bparam{req("x"), req("idx")},
			doc: "x [B, N, ...] at i32 idx [B, T] along axis 1 → [B, T, ...]", fn: biGather},
		"take": {params: []bparam{req("table"), req("idx")},
			doc: "rows of table at i32 idx (axis 0)", fn: biTake},
		"scatter": {params: []bparam{req("x"), req("idx"), req("n")},
			doc: "adds x [B, T, ...] into zeros [B, n, ...] at idx [B, T]: gather's adjoint", fn: biScatter},
		"shift": {params: []bparam{req("x"), opt("n", constInt(1)), opt("axis", constInt(1))},
			doc: "x moved n positions later along axis (default 1, the sequence), zeros coming in: y[t] = x[t − n]; a decode step carries shift(x) by one as a state", fn: biShift},
		"concat": {params: []bparam{rest("xs"), opt("axis", constInt(1))},
			doc: "the tensors joined along axis (default 1, the sequence)", fn: biConcat},
		"unsqueeze": {params: []bparam{req("x"), req("axis")}, doc: "x with a new axis of size 1", fn: biUnsqueeze},
		"reshape": {params: []bparam{req("x"), rest("dims")},
			doc: "x's elements in row-major order with the given dims (ints or sizes; one may be -1, worked out from the others when they are constants)", fn: biReshape},
		"squeeze":   {params: []bparam{req("x"), req("axis")}, doc: "x without an axis of size 1", fn: biSqueeze},
		"positions": {params: []bparam{req("x")}, doc: "i32 [B, N]: the position of each element along axis 1 of x", fn: biPositions},
		"range":     {params: []bparam{req("n")}, doc: "i32 [n]: 0, 1, …, n − 1 (n a size, known at compile time or not)", fn: biRange},
		"full_like": {params: []bparam{req("x"), req("value")}, doc: "a tensor shaped and typed like x, filled with value", fn: biFullLike},
		"relu":      unary(ir.OpRelu, "max(x, 0)"),
		"gelu":      unary(ir.OpGelu, "GELU (tanh approximation)"),
		"silu":      unary(ir.OpSilu, "x·sigmoid(x)"),
		"tanh":      unary(ir.OpTanh, "tanh"),
		"sigmoid":   unary(ir.OpSigmoid, "1/(1+e^-x)"),
		"exp":       unary(ir.OpExp, "e^x"),
		"log":       unary(ir.OpLog, "natural log"),
		"sqrt":      unary(ir.OpSqrt, "√x"),
		"rsqrt":     unary(ir.OpRsqrt, "1/√x"),
		"abs":       unary(ir.OpAbs, "|x|"),
		"sin":       unary(ir.OpSin, "sin"),
		"cos":       unary(ir.OpCos, "cos"),
		"exp2":      {params: []bparam{req("x")}, doc: "2^x", fn: biExp2},
		"argsort": {params: []bparam{req("x"), opt("descending", boolVal{false})},
			doc: "i32 positions along the last axis that sort each row (increasing, or decreasing with descending: true; ties in order)", fn: sortFn(false, false)},
		"sort": {params: []bparam{req("x"), opt("descending", boolVal{false})},
			doc: "each row sorted along the last axis (its gradient goes back to where each value came from)", fn: sortFn(true, false)},
		"topk": {params: []bparam{req("x"), req("k")},
			doc: "the k largest values of each row along the last axis, largest first", fn: sortFn(true, true)},
		"argtopk": {params: []bparam{req("x"), req("k")},
			doc: "i32 positions of the k largest values of each row along the last axis, largest first (ties: the earlier)", fn: sortFn(false, true)},
		"softplus": {params: []bparam{req("x")}, doc: "log(1 + e^x), computed without overflow", fn: biSoftplus},
		"elu": {params: []bparam{req("x"), opt("alpha", floatVal{1})},
			doc: "x where x > 0, else alpha·(e^x - 1)", fn: biElu},
		"stop_gradient": {params: []bparam{req("x")}, doc: "x, as a constant to the gradient: no gradient flows back through it", fn: func(a *bargs) value {
			x, ok := a.tensor("x")
			if !ok {
				return errVal{}
			}
			return wrap(a.op(ir.OpStopGradient, nil, x))
		}},
		"softmax": {params: []bparam{req("x"), opt("axis", constInt(-1))}, doc: "softmax along axis", fn: biSoftmax},
		"log_softmax": {params: []bparam{req("x"), opt("axis", constInt(-1))},
			doc: "x - logsumexp(x) along axis", fn: biLogSoftmax},
		"sum":       {params: []bparam{req("x"), opt("axis", noneVal{})}, doc: "sum over axis (all axes when omitted)", fn: reduceFn(ir.OpReduceSum)},
		"mean":      {params: []bparam{req("x"), opt("axis", noneVal{})}, doc: "mean over axis (all axes when omitted)", fn: reduceFn(ir.OpReduceMean)},
		"amax":      {params: []bparam{req("x"), opt("axis", noneVal{})}, doc: "maximum over axis (all axes when omitted)", fn: reduceFn(ir.OpReduceMax)},
		"logsumexp": {params: []bparam{req("x"), opt("axis", constInt(-1))}, doc: "log Σ e^x over axis", fn: reduceFn(ir.OpLogSumExp)},
		"argmax":    {params: []bparam{req("x"), opt("axis", constInt(-1))}, doc: "i32 index of the maximum along axis", fn: biArgMax},
		"maximum":   {params: []bparam{req("x"), req("y")}, doc: "elementwise max", fn: binaryFn(ir.OpMax)},
		"minimum":   {params: []bparam{req("x"), req("y")}, doc: "elementwise min", fn: binaryFn(ir.OpMin)},
		"pow":       {params: []bparam{req("x"), req("y")}, doc: "x^y elementwise", fn: binaryFn(ir.OpPow)},
		"where":     {params: []bparam{req("cond"), req("x"), req("y")}, doc: "cond ? x : y elementwise", fn: biWhere},
		"matmul":    {params: []bparam{req("x"), req("y")}, doc: "batched matrix product", fn: biMatMul},
		"einsum":    {params: []bparam{req("spec"), rest("xs")}, doc: `Einstein summation, einsum("bnd,de->bne", x, w)`, fn: biEinsum},
		"transpose": {params: []bparam{req("x"), req("a"), req("b")}, doc: "x with axes a and b swapped", fn: biTranspose},
		"cross_entropy": {params: []bparam{req("logits"), req("targets"), opt("ignore_index", noneVal{})},
			doc: "mean cross-entropy of logits [..., C] against i32 targets [...]", fn: biCrossEntropy},
		"accuracy": {params: []bparam{req("logits"), req("targets"), opt("ignore_index", noneVal{})},
			doc: "fraction of positions where argmax(logits) == targets, leaving out targets equal to ignore_index", fn: biAccuracy},
		"float": {params: []bparam{req("x")}, doc: "x as f32", fn: castFn(ir.F32)},
		"int":   {params: []bparam{req("x")}, doc: "x as i32 (truncating)", fn: castFn(ir.I32)},
		"dim":   {params: []bparam{req("x"), req("axis")}, doc: "the size of axis of x, as a dimension", fn: biDim},
	}
}

// BuiltinNames returns the names of the built-in functions, sorted.
func BuiltinNames() []string {
	var out []string
	for n := range builtins {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// bargs holds a built-in call's evaluated arguments.
type bargs struct {
	e     *elab
	call  *CallExpr
	name  string
	vals  map[string]value
	nodes map[string]Node
	rest  []value
	restN []Node
	seg   string // naming segment, for weight-creating built-ins
}

func (e *elab) builtin(call *CallExpr, name string, def *builtinDef, sc *env) value {
	b, ok := bindArgs(e.diags, call, name, builtinFormals(def))
	if !ok {
		return errVal{}
	}
	a := &bargs{e: e, call: call, name: name, vals: map[string]value{}, nodes: map[string]Node{}}
	for _, p := range def.params {
		if p.variadic {
			for _, r := range b.rest {
				v := e.expr(r.Value, sc)
				if _, bad := v.(errVal); bad {
					return v
				}
				a.rest = append(a.rest, v)
				a.restN = append(a.restN, r.Value)
			}
			continue
		}
		if arg := b.args[p.name]; arg != nil {
			v := e.expr(arg.Value, sc)
			if _, bad := v.(errVal); bad {
				return v
			}
			a.vals[p.name] = v
			a.nodes[p.name] = arg.Value
		} else {
			a.vals[p.name] = p.def
			a.nodes[p.name] = call
		}
	}
	if def.creates {
		seg := e.stmtName
		e.stmtName = ""
		if seg == "" {
			seg = name
		}
		a.seg = e.segment(seg)
	}
	return def.fn(a)
}

func (a *bargs) fail(param, format string, args ...any) value {
	n := a.nodes[param]
	if n == nil {
		n = a.call
	}
	return a.e.errorf(n, format, args...)
}

func (a *bargs) tensor(param string) (*ir.Instr, bool) {
	t, ok := a.vals[param].(tensorVal)
	if !ok {
		a.fail(param, "%s: %s must be a tensor, got %s", a.name, param, describe(a.vals[param]))
		return nil, false
	}
	return t.in, true
}

func (a *bargs) floatTensor(param string) (*ir.Instr, bool) {
	t, ok := a.tensor(param)
	if ok && t.Type.DType != ir.F32 {
		a.fail(param, "%s: %s must be an f32 tensor, got %s", a.name, param, t.Type)
		return nil, false
	}
	return t, ok
}

func (a *bargs) intConst(param string) (int64, bool) {
	if iv, ok := a.vals[param].(intVal); ok {
		if c, ok := iv.isConst(); ok {
			return c, true
		}
	}
	a.fail(param, "%s: %s must be a compile-time int, got %s", a.name, param, describe(a.vals[param]))
	return 0, false
}

func (a *bargs) dim(param string) (ir.Dim, bool) {
	if iv, ok := a.vals[param].(intVal); ok {
		if c, ok := iv.isConst(); ok && c <= 0 {
			a.fail(param, "%s: %s must be positive, got %d", a.name, param, c)
			return ir.Dim{}, false
		}
		return iv.d, true
	}
	a.fail(param, "%s: %s must be a size, got %s", a.name, param, describe(a.vals[param]))
	return ir.Dim{}, false
}

func (a *bargs) float(param string) (float64, bool) {
	switch v := a.vals[param].(type) {
	case floatVal:
		return v.v, true
	case intVal:
		if c, ok := v.isConst(); ok {
			return float64(c), true
		}
	}
	a.fail(param, "%s: %s must be a number, got %s", a.name, param, describe(a.vals[param]))
	return 0, false
}

func (a *bargs) boolean(param string) (bool, bool) {
	if v, ok := a.vals[param].(boolVal); ok {
		return v.v, true
	}
	a.fail(param, "%s: %s must be true or false, got %s", a.name, param, describe(a.vals[param]))
	return false, false
}

func (a *bargs) str(param string, allowed ...string) (string, bool) {
	v, ok := a.vals[param].(stringVal)
	if !ok {
		a.fail(param, "%s: %s must be a string, got %s", a.name, param, describe(a.vals[param]))
		return "", false
	}
	if len(allowed) > 0 && !contains(allowed, v.v) {
		a.fail(param, "%s: %s must be one of %q, got %q%s", a.name, param, allowed, v.v, didYouMean(v.v, allowed))
		return "", false
	}
	return v.v, true
}

func (a *bargs) isNone(param string) bool {
	_, ok := a.vals[param].(noneVal)
	return ok
}

// axis reads an axis argument for a tensor of the given rank; negative
// axes count from the end.
func (a *bargs) axis(param string, rank int) (int, bool) {
	c, ok := a.intConst(param)
	if !ok {
		return 0, false
	}
	ax := int(c)
	if ax < 0 {
		ax += rank
	}
	if ax < 0 || ax >= rank {
		a.fail(param, "%s: axis %d is out of range for a rank-%d tensor", a.name, c, rank)
		return 0, false
	}
	return ax, true
}

// op builds an IR op for the built-in. A builder error names the IR op
// ("matmul: ..."), which may not be the built-in the user called (linear),
// so it is reported under the built-in's name.
func (a *bargs) op(op ir.Op, attrs ir.Attrs, args ...*ir.Instr) *ir.Instr {
	return a.e.must(a.call, func() (*ir.Instr, error) { return a.builderErr(a.e.b.Op(op, attrs, args...)) })
}

func (a *bargs) given(op ir.Op, t ir.Type, attrs ir.Attrs, args ...*ir.Instr) *ir.Instr {
	return a.e.must(a.call, func() (*ir.Instr, error) { return a.builderErr(a.e.b.Given(op, t, attrs, args...)) })
}

func (a *bargs) builderErr(in *ir.Instr, err error) (*ir.Instr, error) {
	if err != nil {
		msg := strings.TrimPrefix(stripOpPrefix(err.Error()), a.name+" ") // "einsum: einsum spec …"
		return nil, fmt.Errorf("%s: %s", a.name, msg)
	}
	return in, nil
}

func (a *bargs) param(local string, shape ir.Shape, init string, scale float64) *ir.Instr {
	segs := []string{a.seg}
	if local != "" {
		segs = append(segs, local)
	}
	v := a.e.newParam(a.call, shape, init, scale, segs...)
	if t, ok := v.(tensorVal); ok {
		return t.in
	}
	return nil
}

func wrap(in *ir.Instr) value {
	if in == nil {
		return errVal{}
	}
	return tensorVal{in}
}

func lastDim(t *ir.Instr) ir.Dim { return t.Type.Shape[t.Type.Rank()-1] }

func biLinear(a *bargs) value {
	x, ok := a.floatTensor("x")
	if !ok {
		return errVal{}
	}
	out, ok1 := a.dim("out")
	bias, ok2 := a.boolean("bias")
	if !ok1 || !ok2 {
		return errVal{}
	}
	if x.Type.Rank() < 2 {
		return a.fail("x", "linear: x must have rank ≥ 2, got %s", x.Type)
	}
	in := lastDim(x)
	n, isConst := in.IsConst()
	if !isConst {
		return a.fail("x", "linear: the last dim of x (%s) must be a compile-time size to make a weight", in)
	}
	w := a.param("weight", ir.Shape{in, out}, "uniform", 1/math.Sqrt(float64(n)))
	if w == nil {
		return errVal{}
	}
	y := a.op(ir.OpMatMul, nil, x, w)
	if y == nil || !bias {
		return wrap(y)
	}
	b := a.param("bias", ir.Shape{out}, "zeros", 0)
	if b == nil {
		return errVal{}
	}
	return wrap(a.op(ir.OpAdd, nil, y, b))
}

func biEmbed(a *bargs) value {
	ids, ok := a.tensor("ids")
	if !ok {
		return errVal{}
	}
	if ids.Type.DType != ir.I32 {
		return a.fail("ids", "embed: ids must be i32 token ids, got %s", ids.Type)
	}
	vocab, ok1 := a.dim("vocab")
	dim, ok2 := a.dim("dim")
	if !ok1 || !ok2 {
		return errVal{}
	}
	w := a.param("weight", ir.Shape{vocab, dim}, "normal", 0.02)
	if w == nil {
		return errVal{}
	}
	return wrap(a.op(ir.OpGather, ir.Attrs{"axis": ir.IntAttr(0)}, w, ids))
}

func normFn(op ir.Op) func(a *bargs) value {
	return func(a *bargs) value {
		x, ok := a.floatTensor("x")
		eps, ok2 := a.float("eps")
		if !ok || !ok2 {
			return errVal{}
		}
		if x.Type.Rank() < 1 {
			return a.fail("x", "%s of a scalar", a.name)
		}
		return wrap(a.op(op, ir.Attrs{"eps": ir.FloatAttr(eps)}, x))
	}
}

func biParam(a *bargs) value {
	shape, init, scale, ok := a.storage()
	if !ok {
		return errVal{}
	}
	return wrap(a.param("", shape, init, scale))
}

// storage reads param's and buffer's arguments: the dims (positive
// compile-time ints), init and scale.
func (a *bargs) storage() (ir.Shape, string, float64, bool) {
	var shape ir.Shape
	for i, v := range a.rest {
		iv, ok := v.(intVal)
		c, isConst := iv.isConst()
		if !ok || !isConst || c <= 0 {
			a.e.errorf(a.restN[i], "%s: dims must be positive compile-time ints, got %s", a.name, describe(v))
			return nil, "", 0, false
		}
		shape = append(shape, iv.d)
	}
	init, ok1 := a.str("init", "normal", "uniform", "zeros", "ones")
	scale, ok2 := a.float("scale")
	return shape, init, scale, ok1 && ok2
}

func biBuffer(a *bargs) value {
	shape, init, scale, ok := a.storage()
	if !ok {
		return errVal{}
	}
	return a.e.newStorage(ir.OpBuffer, a.call, shape, init, scale, a.seg)
}

func biUpdate(a *bargs) value {
	b, ok1 := a.tensor("b")
	v, ok2 := a.floatTensor("value")
	if !ok1 || !ok2 {
		return errVal{}
	}
	switch {
	case b.Op != ir.OpBuffer:
		return a.fail("b", "update: b must be a buffer (made by buffer(...)), got %s", describe(tensorVal{b}))
	case a.e.b != a.e.root:
		return a.fail("b", "update: a recur cell cannot update a buffer; update it outside the recurrence")
	case !v.Type.Equal(b.Type):
		return a.fail("value", "update: the new value of %s is %s, but the buffer is %s", b.Name(), v.Type, b.Type)
	}
	for _, u := range a.e.updates {
		if u.buffer == b {
			return a.fail("b", "update: buffer %s already has an update, at line %d", b.Name(), u.at.Start().Line)
		}
	}
	a.e.updates = append(a.e.updates, bufferUpdate{buffer: b, value: v, at: a.call})
	return tensorVal{v}
}

func biSplitHeads(a *bargs) value {
	x, ok := a.tensor("x")
	heads, ok2 := a.intConst("heads")
	if !ok || !ok2 {
		return errVal{}
	}
	if x.Type.Rank() != 3 {
		return a.fail("x", "split_heads: x must be [B, N, D], got %s", x.Type)
	}
	if heads <= 0 {
		return a.fail("heads", "split_heads: heads must be positive, got %d", heads)
	}
	d := x.Type.Shape[2]
	dc, isConst := d.IsConst()
	if !isConst || dc%heads != 0 {
		return a.fail("heads", "split_heads: %d heads do not divide the model dim %s", heads, d)
	}
	sh := x.Type.Shape
	r := a.given(ir.OpReshape, ir.Type{DType: x.Type.DType, Shape: ir.Shape{sh[0], sh[1], ir.ConstDim(heads), ir.ConstDim(dc / heads)}}, nil, x)
	if r == nil {
		return errVal{}
	}
	return wrap(a.op(ir.OpTranspose, ir.Attrs{"perm": ir.IntsAttr(0, 2, 1, 3)}, r))
}

func biMergeHeads(a *bargs) value {
	x, ok := a.tensor("x")
	if !ok {
		return errVal{}
	}
	if x.Type.Rank() != 4 {
		return a.fail("x", "merge_heads: x must be [B, H, N, Dh], got %s", x.Type)
	}
	t := a.op(ir.OpTranspose, ir.Attrs{"perm": ir.IntsAttr(0, 2, 1, 3)}, x)
	if t == nil {
		return errVal{}
	}
	sh := x.Type.Shape
	h, ok1 := sh[1].IsConst()
	if !ok1 {
		return a.fail("x", "merge_heads: the head count %s must be a compile-time size", sh[1])
	}
	d, err := sh[3].ScaleChecked(h)
	if err != nil {
		return a.fail("x", "merge_heads: %v", err)
	}
	return wrap(a.given(ir.OpReshape, ir.Type{DType: x.Type.DType, Shape: ir.Shape{sh[0], sh[2], d}}, nil, t))
}

func biAttend(a *bargs) value {
	q, ok1 := a.floatTensor("q")
	k, ok2 := a.floatTensor("k")
	returns, ok3 := a.str("returns", "out", "probs", "logprobs")
	if !ok1 || !ok2 || !ok3 {
		return errVal{}
	}
	for _, p := range []struct {
		name string
		t    *ir.Instr
	}{{"q", q}, {"k", k}} {
		if p.t.Type.Rank() != 4 {
			return a.fail(p.name, "attend: %s must be [B, H, N, D] (use split_heads), got %s", p.name, p.t.Type)
		}
	}
	if !q.Type.Shape[3].Equal(k.Type.Shape[3]) {
		return a.fail("k", "attend: q and k head dims differ: q is %s, k is %s", q.Type, k.Type)
	}
	args := []*ir.Instr{q, k}
	if returns == "out" {
		if a.isNone("v") {
			return a.fail("v", `attend: v is required unless returns is "probs" or "logprobs"`)
		}
		v, ok := a.floatTensor("v")
		if !ok {
			return errVal{}
		}
		args = append(args, v)
	} else if !a.isNone("v") {
		return a.fail("v", "attend: returns %q takes no v", returns)
	}
	attrs := ir.Attrs{}
	if returns != "out" {
		attrs["returns"] = ir.WordAttr(returns)
	}
	if a.isNone("scale") {
		dk, ok := q.Type.Shape[3].IsConst()
		if !ok {
			return a.fail("q", "attend: the head dim %s must be a compile-time size (or pass scale:)", q.Type.Shape[3])
		}
		attrs["scale"] = ir.FloatAttr(1 / math.Sqrt(float64(dk)))
	} else {
		s, ok := a.float("scale")
		if !ok {
			return errVal{}
		}
		attrs["scale"] = ir.FloatAttr(s)
	}
	var caps []*ir.Instr
	if !a.isNone("mask") {
		m, ok := a.vals["mask"].(exprVal)
		if !ok || m.score {
			return a.fail("mask", "attend: mask must be a mask, got %s", describe(a.vals["mask"]))
		}
		attrs["mask"] = ir.ExprAttr(m.e)
		caps = m.caps
	}
	if !a.isNone("score") {
		s, ok := a.vals["score"].(exprVal)
		if !ok || !s.score {
			return a.fail("score", "attend: score must be a score modification, got %s", describe(a.vals["score"]))
		}
		s, ok = lowerVecReads(a, s, args[0], args[1])
		if !ok {
			return errVal{}
		}
		se, joint := shiftCaptures(s.e, s.caps, caps)
		attrs["score"] = ir.ExprAttr(se)
		caps = joint
	}
	args = append(args, caps...)
	return wrap(a.op(ir.OpAttention, attrs, args...))
}

func biScan(a *bargs) value {
	coef, ok1 := a.floatTensor("a")
	x, ok2 := a.floatTensor("x")
	if !ok1 || !ok2 {
		return errVal{}
	}
	axis, ok3 := a.axis("axis", x.Type.Rank())
	reverse, ok4 := a.boolean("reverse")
	if !ok3 || !ok4 {
		return errVal{}
	}
	if !coef.Type.Shape.Equal(x.Type.Shape) {
		coef = a.given(ir.OpBroadcast, x.Type, nil, coef)
		if coef == nil {
			return errVal{}
		}
	}
	attrs := ir.Attrs{"axis": ir.IntAttr(int64(axis))}
	if reverse {
		attrs["reverse"] = ir.BoolAttr(true)
	}
	return wrap(a.op(ir.OpScan, attrs, coef, x))
}

func biGather(a *bargs) value {
	x, ok1 := a.tensor("x")
	idx, ok2 := a.tensor("idx")
	if !ok1 || !ok2 {
		return errVal{}
	}
	if x.Type.Rank() < 2 || idx.Type.Rank() != 2 {
		return a.fail("x", "gather: x must be [B, N, ...] and idx [B, T], got %s and %s", x.Type, idx.Type)
	}
	return wrap(a.op(ir.OpGather, ir.Attrs{"axis": ir.IntAttr(1), "batch_dims": ir.IntAttr(1)}, x, idx))
}

func biTake(a *bargs) value {
	t, ok1 := a.tensor("table")
	idx, ok2 := a.tensor("idx")
	if !ok1 || !ok2 {
		return errVal{}
	}
	return wrap(a.op(ir.OpGather, ir.Attrs{"axis": ir.IntAttr(0)}, t, idx))
}

func biScatter(a *bargs) value {
	x, ok1 := a.tensor("x")
	idx, ok2 := a.tensor("idx")
	n, ok3 := a.dim("n")
	if !ok1 || !ok2 || !ok3 {
		return errVal{}
	}
	if x.Type.Rank() < 2 || idx.Type.Rank() != 2 {
		return a.fail("x", "scatter: x must be [B, T, ...] and idx [B, T], got %s and %s", x.Type, idx.Type)
	}
	shape := append(ir.Shape{x.Type.Shape[0], n}, x.Type.Shape[2:]...)
	return wrap(a.given(ir.OpScatterAdd, ir.Type{DType: x.Type.DType, Shape: shape}, ir.Attrs{"axis": ir.IntAttr(1), "batch_dims": ir.IntAttr(1)}, x, idx))
}

func biShift(a *bargs) value {
	x, ok1 := a.tensor("x")
	n, ok2 := a.intConst("n")
	if !ok1 || !ok2 {
		return errVal{}
	}
	axis, ok := a.axis("axis", x.Type.Rank())
	if !ok {
		return errVal{}
	}
	if n < 0 {
		return a.fail("n", "shift: n must not be negative, got %d (a shift earlier would read past the end)", n)
	}
	if n == 0 {
		return tensorVal{x}
	}
	size := x.Type.Shape[axis]
	if c, isConst := size.IsConst(); isConst && n > c {
		return a.fail("n", "shift: n = %d is more than the %d positions along axis %d", n, c, axis)
	}
	padded := a.op(ir.OpPad, ir.Attrs{"axis": ir.IntAttr(int64(axis)), "before": ir.DimAttr(ir.ConstDim(n)), "after": ir.DimAttr(ir.ConstDim(0))}, x)
	if padded == nil {
		return errVal{}
	}
	return wrap(a.op(ir.OpSlice, ir.Attrs{"axis": ir.IntAttr(int64(axis)), "start": ir.DimAttr(ir.ConstDim(0)), "end": ir.DimAttr(size)}, padded))
}

func biConcat(a *bargs) value {
	if len(a.rest) == 0 {
		return a.e.errorf(a.call, "concat needs at least one tensor")
	}
	var xs []*ir.Instr
	for i, v := range a.rest {
		t, ok := v.(tensorVal)
		if !ok {
			return a.e.errorf(a.restN[i], "concat: argument %d must be a tensor, got %s", i+1, describe(v))
		}
		xs = append(xs, t.in)
	}
	axis, ok := a.axis("axis", xs[0].Type.Rank())
	if !ok {
		return errVal{}
	}
	for i, x := range xs[1:] {
		first := xs[0].Type
		same := x.Type.DType == first.DType && x.Type.Rank() == first.Rank()
		for j := 0; same && j < first.Rank(); j++ {
			same = j == axis || x.Type.Shape[j].Equal(first.Shape[j])
		}
		if !same {
			return a.e.errorf(a.restN[i+1], "concat: tensor %d is %s but tensor 1 is %s; along axis %d, all other axes and the dtype must match", i+2, x.Type, first, axis)
		}
	}
	return wrap(a.op(ir.OpConcat, ir.Attrs{"axis": ir.IntAttr(int64(axis))}, xs...))
}

func biUnsqueeze(a *bargs) value {
	x, ok := a.tensor("x")
	if !ok {
		return errVal{}
	}
	axis, ok := a.axis("axis", x.Type.Rank()+1)
	if !ok {
		return errVal{}
	}
	shape := append(append(append(ir.Shape{}, x.Type.Shape[:axis]...), ir.ConstDim(1)), x.Type.Shape[axis:]...)
	return wrap(a.given(ir.OpReshape, ir.Type{DType: x.Type.DType, Shape: shape}, nil, x))
}

func biSqueeze(a *bargs) value {
	x, ok := a.tensor("x")
	if !ok {
		return errVal{}
	}
	axis, ok := a.axis("axis", x.Type.Rank())
	if !ok {
		return errVal{}
	}
	if c, ok := x.Type.Shape[axis].IsConst(); !ok || c != 1 {
		return a.fail("axis", "squeeze: axis %d of %s is not of size 1", axis, x.Type)
	}
	shape := append(append(ir.Shape{}, x.Type.Shape[:axis]...), x.Type.Shape[axis+1:]...)
	return wrap(a.given(ir.OpReshape, ir.Type{DType: x.Type.DType, Shape: shape}, nil, x))
}

func biPositions(a *bargs) value {
	x, ok := a.tensor("x")
	if !ok {
		return errVal{}
	}
	if x.Type.Rank() < 2 {
		return a.fail("x", "positions: x must have rank ≥ 2 ([B, N, ...]), got %s", x.Type)
	}
	return wrap(a.given(ir.OpIota, ir.Type{DType: ir.I32, Shape: x.Type.Shape[:2]}, ir.Attrs{"axis": ir.IntAttr(1)}))
}

func biRange(a *bargs) value {
	n, ok := a.dim("n")
	if !ok {
		return errVal{}
	}
	return wrap(a.given(ir.OpIota, ir.Type{DType: ir.I32, Shape: ir.Shape{n}}, ir.Attrs{"axis": ir.IntAttr(0)}))
}

func biFullLike(a *bargs) value {
	x, ok := a.tensor("x")
	if !ok {
		return errVal{}
	}
	c := a.e.scalarFor(a.nodes["value"], x.Type.DType, a.vals["value"])
	if c == nil {
		return errVal{}
	}
	if x.Type.Rank() == 0 {
		return wrap(c) // a scalar: the constant itself
	}
	return wrap(a.given(ir.OpBroadcast, x.Type, nil, c))
}

func biSoftmax(a *bargs) value {
	x, ok := a.floatTensor("x")
	if !ok {
		return errVal{}
	}
	axis, ok := a.axis("axis", x.Type.Rank())
	if !ok {
		return errVal{}
	}
	return wrap(a.op(ir.OpSoftmax, ir.Attrs{"axis": ir.IntAttr(int64(axis))}, x))
}

func biLogSoftmax(a *bargs) value {
	x, ok := a.floatTensor("x")
	if !ok {
		return errVal{}
	}
	axis, ok := a.axis("axis", x.Type.Rank())
	if !ok {
		return errVal{}
	}
	lse := a.op(ir.OpLogSumExp, ir.Attrs{"axes": ir.IntsAttr(int64(axis)), "keepdims": ir.BoolAttr(true)}, x)
	if lse == nil {
		return errVal{}
	}
	return wrap(a.op(ir.OpSub, nil, x, lse))
}

func reduceFn(op ir.Op) func(a *bargs) value {
	return func(a *bargs) value {
		x, ok := a.tensor("x")
		if !ok {
			return errVal{}
		}
		var axes []int64
		if a.isNone("axis") {
			for i := 0; i < x.Type.Rank(); i++ {
				axes = append(axes, int64(i))
			}
		} else {
			ax, ok := a.axis("axis", x.Type.Rank())
			if !ok {
				return errVal{}
			}
			axes = []int64{int64(ax)}
		}
		return wrap(a.op(op, ir.Attrs{"axes": ir.IntsAttr(axes...)}, x))
	}
}

func biArgMax(a *bargs) value {
	x, ok := a.tensor("x")
	if !ok {
		return errVal{}
	}
	axis, ok := a.axis("axis", x.Type.Rank())
	if !ok {
		return errVal{}
	}
	return wrap(a.op(ir.OpArgMax, ir.Attrs{"axis": ir.IntAttr(int64(axis))}, x))
}

func binaryFn(op ir.Op) func(a *bargs) value {
	return func(a *bargs) value {
		x, ok1 := a.tensor("x")
		y, ok2 := a.tensor("y")
		if !ok1 || !ok2 {
			return errVal{}
		}
		return wrap(a.op(op, nil, x, y))
	}
}

func biWhere(a *bargs) value {
	c, ok1 := a.tensor("cond")
	x, ok2 := a.tensor("x")
	y, ok3 := a.tensor("y")
	if !ok1 || !ok2 || !ok3 {
		return errVal{}
	}
	return wrap(a.op(ir.OpSelect, nil, c, x, y))
}

func biMatMul(a *bargs) value {
	x, ok1 := a.floatTensor("x")
	y, ok2 := a.floatTensor("y")
	if !ok1 || !ok2 {
		return errVal{}
	}
	if x.Type.Rank() < 2 || y.Type.Rank() < 2 {
		return a.e.errorf(a.call, "matmul: x and y must have rank ≥ 2, got %s and %s", x.Type, y.Type)
	}
	if k1, k2 := lastDim(x), y.Type.Shape[y.Type.Rank()-2]; !k1.Equal(k2) {
		return a.e.errorf(a.call, "matmul: inner dims differ: %s · %s (the last axis of x is %s, the next-to-last of y is %s)", x.Type, y.Type, k1, k2)
	}
	return wrap(a.op(ir.OpMatMul, nil, x, y))
}

func biEinsum(a *bargs) value {
	spec, ok := a.str("spec")
	if !ok {
		return errVal{}
	}
	var xs []*ir.Instr
	for i, v := range a.rest {
		t, ok := v.(tensorVal)
		if !ok {
			return a.e.errorf(a.restN[i], "einsum: operand %d must be a tensor, got %s", i+1, describe(v))
		}
		xs = append(xs, t.in)
	}
	if len(xs) == 0 {
		return a.e.errorf(a.call, "einsum needs at least one operand")
	}
	return wrap(a.op(ir.OpEinsum, ir.Attrs{"spec": ir.StringAttr(spec)}, xs...))
}

func biTranspose(a *bargs) value {
	x, ok := a.tensor("x")
	if !ok {
		return errVal{}
	}
	i, ok1 := a.axis("a", x.Type.Rank())
	j, ok2 := a.axis("b", x.Type.Rank())
	if !ok1 || !ok2 {
		return errVal{}
	}
	perm := make([]int64, x.Type.Rank())
	for n := range perm {
		perm[n] = int64(n)
	}
	perm[i], perm[j] = perm[j], perm[i]
	return wrap(a.op(ir.OpTranspose, ir.Attrs{"perm": ir.IntsAttr(perm...)}, x))
}

func biCrossEntropy(a *bargs) value {
	logits, ok1 := a.floatTensor("logits")
	t, ok2 := a.tensor("targets")
	if !ok1 || !ok2 {
		return errVal{}
	}
	if t.Type.DType != ir.I32 {
		return a.fail("targets", "cross_entropy: targets must be i32 class ids, got %s", t.Type)
	}
	attrs := ir.Attrs{}
	if !a.isNone("ignore_index") {
		ig, ok := a.intConst("ignore_index")
		if !ok {
			return errVal{}
		}
		attrs["ignore_index"] = ir.IntAttr(ig)
	}
	return wrap(a.op(ir.OpCrossEntropy, attrs, logits, t))
}

func biAccuracy(a *bargs) value {
	logits, ok1 := a.floatTensor("logits")
	t, ok2 := a.tensor("targets")
	if !ok1 || !ok2 {
		return errVal{}
	}
	if logits.Type.Rank() < 1 {
		return a.fail("logits", "accuracy: logits must have a class axis")
	}
	pred := a.op(ir.OpArgMax, ir.Attrs{"axis": ir.IntAttr(int64(logits.Type.Rank() - 1))}, logits)
	if pred == nil {
		return errVal{}
	}
	if t.Type.DType != ir.I32 || !pred.Type.Shape.Equal(t.Type.Shape) {
		return a.fail("targets", "accuracy: logits %s need i32 targets of shape %s, got %s", logits.Type, pred.Type.Shape, t.Type)
	}
	eq := a.op(ir.OpEq, nil, pred, t)
	if eq == nil {
		return errVal{}
	}
	hit := a.op(ir.OpCast, ir.Attrs{"to": ir.DTypeAttr(ir.F32)}, eq)
	var axes []int64
	for i := 0; i < t.Type.Rank(); i++ {
		axes = append(axes, int64(i))
	}
	all := ir.Attrs{"axes": ir.IntsAttr(axes...)}
	if a.isNone("ignore_index") {
		return wrap(a.op(ir.OpReduceMean, all, hit))
	}
	ig, ok := a.intConst("ignore_index")
	if !ok {
		return errVal{}
	}
	// Σ hit·keep / max(Σ keep, 1): positions whose target is ignore_index
	// count for nothing, and a batch with none scored gives 0, not NaN.
	keep := a.op(ir.OpCast, ir.Attrs{"to": ir.DTypeAttr(ir.F32)}, a.op(ir.OpNe, nil, t, a.e.constant(a.call, ir.I32, float64(ig))))
	hits := a.op(ir.OpReduceSum, all, a.op(ir.OpMul, nil, hit, keep))
	count := a.op(ir.OpMax, nil, a.op(ir.OpReduceSum, all, keep), a.e.constant(a.call, ir.F32, 1))
	return wrap(a.op(ir.OpDiv, nil, hits, count))
}

func castFn(dt ir.DType) func(a *bargs) value {
	return func(a *bargs) value {
		switch v := a.vals["x"].(type) {
		case tensorVal:
			if v.in.Type.DType == dt {
				return v
			}
			return wrap(a.op(ir.OpCast, ir.Attrs{"to": ir.DTypeAttr(dt)}, v.in))
		case intVal:
			if c, ok := v.isConst(); ok {
				if dt == ir.F32 {
					return floatVal{float64(c)}
				}
				return v
			}
		case floatVal:
			if dt == ir.I32 {
				// Go's conversion of a float out of int64's range is
				// not defined; the language's is an error.
				switch {
				case math.IsNaN(v.v):
					return a.fail("x", "%s(%s) is not a number", a.name, ir.FormatFloat(v.v))
				case !(v.v >= -(1<<63) && v.v < 1<<63):
					return a.fail("x", "%s(%s) does not fit in 64 bits", a.name, ir.FormatFloat(v.v))
				}
				return constInt(int64(v.v))
			}
			return v
		}
		return a.fail("x", "%s: cannot convert %s", a.name, describe(a.vals["x"]))
	}
}

func biDim(a *bargs) value {
	x, ok := a.tensor("x")
	if !ok {
		return errVal{}
	}
	axis, ok := a.axis("axis", x.Type.Rank())
	if !ok {
		return errVal{}
	}
	return intVal{x.Type.Shape[axis]}
}

// The composite built-ins are made of other ops, so their gradients,
// reference semantics and every lowering come with those.

func biExp2(a *bargs) value {
	x, ok := a.floatTensor("x")
	if !ok {
		return errVal{}
	}
	ln2 := a.e.constant(a.call, ir.F32, math.Ln2)
	return wrap(a.opN(ir.OpExp, nil, a.opN(ir.OpMul, nil, x, ln2)))
}

// biSoftplus is log(1 + e^x) as x·m + log(1 + e^(-|x|)) with m = [x > 0]
// and |x| = x·(2m - 1): e^(-|x|) never overflows, and since one mask
// makes both the relu part and the absolute value, the gradient is
// sigmoid(x) everywhere, 0.5 at 0 included.
func biSoftplus(a *bargs) value {
	x, ok := a.floatTensor("x")
	if !ok {
		return errVal{}
	}
	zero, one, two := a.e.constant(a.call, ir.F32, 0), a.e.constant(a.call, ir.F32, 1), a.e.constant(a.call, ir.F32, 2)
	m := a.opN(ir.OpCast, ir.Attrs{"to": ir.DTypeAttr(ir.F32)}, a.opN(ir.OpGt, nil, x, zero))
	abs := a.opN(ir.OpMul, nil, x, a.opN(ir.OpSub, nil, a.opN(ir.OpMul, nil, m, two), one))
	tail := a.opN(ir.OpLog, nil, a.opN(ir.OpAdd, nil, one, a.opN(ir.OpExp, nil, a.opN(ir.OpNeg, nil, abs))))
	return wrap(a.opN(ir.OpAdd, nil, a.opN(ir.OpMul, nil, x, m), tail))
}

// biElu is where(x > 0, x, alpha·(e^min(x, 0) - 1)): the exponential of
// the branch not taken cannot overflow, so its zero gradient stays zero.
func biElu(a *bargs) value {
	x, ok := a.floatTensor("x")
	if !ok {
		return errVal{}
	}
	alpha, ok := a.float("alpha")
	if !ok {
		return errVal{}
	}
	zero, one, al := a.e.constant(a.call, ir.F32, 0), a.e.constant(a.call, ir.F32, 1), a.e.constant(a.call, ir.F32, alpha)
	neg := a.opN(ir.OpMul, nil, al, a.opN(ir.OpSub, nil, a.opN(ir.OpExp, nil, a.opN(ir.OpMin, nil, x, zero)), one))
	return wrap(a.opN(ir.OpSelect, nil, a.opN(ir.OpGt, nil, x, zero), x, neg))
}

// opN is a.op that passes a failure on: nil when an operand is nil (an
// earlier op failed and reported why).
func (a *bargs) opN(op ir.Op, attrs ir.Attrs, args ...*ir.Instr) *ir.Instr {
	for _, x := range args {
		if x == nil {
			return nil
		}
	}
	return a.op(op, attrs, args...)
}

// sortFn makes sort, argsort, topk and argtopk: an argsort along the last
// axis (decreasing for the top k), cut to k positions for the top k, and
// for the values a gather of x at them, whose gradient is a scatter.
func sortFn(values, top bool) func(a *bargs) value {
	return func(a *bargs) value {
		x, ok := a.tensor("x")
		if !ok {
			return errVal{}
		}
		if x.Type.DType != ir.F32 && x.Type.DType != ir.I32 {
			return a.fail("x", "%s: x must be f32 or i32, got %s", a.name, x.Type)
		}
		r := x.Type.Rank()
		if r == 0 {
			return a.fail("x", "%s: x is a scalar; it sorts along the last axis", a.name)
		}
		desc := true
		if !top {
			if desc, ok = a.boolean("descending"); !ok {
				return errVal{}
			}
		}
		idx := a.op(ir.OpArgSort, ir.Attrs{"descending": ir.BoolAttr(desc)}, x)
		if top {
			k, ok := a.intConst("k")
			if !ok {
				return errVal{}
			}
			last := x.Type.Shape[r-1]
			if n, known := last.IsConst(); k < 1 || known && k > n {
				return a.fail("k", "%s: k must be between 1 and the last axis's size %s, got %d", a.name, last, k)
			}
			idx = a.opN(ir.OpSlice, ir.Attrs{"axis": ir.IntAttr(int64(r - 1)), "start": ir.DimAttr(ir.ConstDim(0)), "end": ir.DimAttr(ir.ConstDim(k))}, idx)
		}
		if !values {
			return wrap(idx)
		}
		return wrap(a.opN(ir.OpGather, ir.Attrs{"axis": ir.IntAttr(int64(r - 1)), "batch_dims": ir.IntAttr(int64(r - 1))}, x, idx))
	}
}

// biReshape is reshape(x, dims...): the element count must be the same,
// as polynomials over the sizes (B·N·64 = B·N·4·16); a -1 dim is the
// count divided by the product of the others when that is one term and
// the quotient a size (B·N·64 / (B·N) = 64, B·N·64 / (B·16) = 4·N).
func biReshape(a *bargs) value {
	x, ok := a.tensor("x")
	if !ok {
		return errVal{}
	}
	if len(a.rest) == 0 {
		return a.fail("x", "reshape: give the dims of the result")
	}
	shape := make(ir.Shape, len(a.rest))
	infer := -1
	for i, v := range a.rest {
		iv, ok := v.(intVal)
		if !ok {
			return a.e.errorf(a.restN[i], "reshape: a dim must be an int or a size, got %s", describe(v))
		}
		if c, isConst := iv.isConst(); isConst {
			switch {
			case c == -1 && infer < 0:
				infer = i
				continue
			case c == -1:
				return a.e.errorf(a.restN[i], "reshape: only one dim may be -1")
			case c <= 0:
				return a.e.errorf(a.restN[i], "reshape: dims must be positive (or one -1), got %d", c)
			}
		}
		shape[i] = iv.d
	}
	total := x.Type.Shape.NumElements()
	if infer >= 0 {
		others := append(append(ir.Shape{}, shape[:infer]...), shape[infer+1:]...)
		d, ok := divideDim(total, others.NumElements())
		if !ok {
			return a.e.errorf(a.restN[infer], "reshape: cannot work out the -1 dim: %s elements divided by the other dims is not a size (give every dim)", x.Type.Shape)
		}
		shape[infer] = d
	}
	if !shape.NumElements().Equal(total) {
		return a.fail("x", "reshape: x is %s, which has a different number of elements than %s", x.Type, shape)
	}
	return wrap(a.given(ir.OpReshape, ir.Type{DType: x.Type.DType, Shape: shape}, nil, x))
}

// divideDim returns p / q as a dim, when q is one term (c·B·N…), each
// term of p is a multiple of it, and the quotient is affine (no product
// of sizes).
func divideDim(p, q ir.Poly) (ir.Dim, bool) {
	if len(q) != 1 {
		return ir.Dim{}, false
	}
	var qm string
	var qc int64
	for m, c := range q {
		qm, qc = m, c
	}
	var qsyms []string
	if qm != "" {
		qsyms = strings.Split(qm, "*")
	}
	terms := make([]string, 0, len(p))
	for m := range p {
		terms = append(terms, m)
	}
	sort.Strings(terms)
	var d ir.Dim
	for _, m := range terms {
		v := p[m]
		if qc == 0 || v%qc != 0 {
			return ir.Dim{}, false
		}
		var rest []string
		if m != "" {
			rest = strings.Split(m, "*")
		}
		for _, s := range qsyms {
			i := slices.Index(rest, s)
			if i < 0 {
				return ir.Dim{}, false
			}
			rest = slices.Delete(rest, i, i+1)
		}
		switch len(rest) {
		case 0:
			d = d.Add(ir.ConstDim(v / qc))
		case 1:
			d = d.Add(ir.SymDim(rest[0]).Scale(v / qc))
		default:
			return ir.Dim{}, false
		}
	}
	return d, true
}
