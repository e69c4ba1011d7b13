package tests

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/attnc/attnc/ir"
	"github.com/attnc/attnc/ir/eval"
	"github.com/attnc/attnc/passes"
)

// An opCase is a small module built around one or a few ops, run by the
// generated Go code and by the reference on several input sets (trials).
// Each op gets its own output (named after it) and, where it has a
// gradient, its own weights, so a failure names the op.
type opCase struct {
	name string
	// ops lists the ops this case is for: each must appear in a generated
	// function, and, unless it has no gradient, on a path from a weight
	// to the loss in LossAndGrad.
	ops    []ir.Op
	build  func(c *caseBuilder)
	trials []trial
	tol    float64 // 0 means 1e-4
}

// A trial is one input set: symbol sizes and how to fill the inputs.
type trial struct {
	syms map[string]int64
	// special names f32 inputs that get +Inf, -Inf and NaN at scattered
	// places.
	special []string
	// nanAt puts one NaN into an f32 input, at a flat index.
	nanAt map[string]int
}

// caseBuilder builds a case's module: inputs, weights, the ops under
// test. Every value passed to out becomes an output; the loss is the sum
// of squares of their finite f32 elements, so gradients stay meaningful
// where some elements are NaN or infinite.
type caseBuilder struct {
	*ir.Builder
	outs []*ir.Instr
	// ints gives the range [lo, hi) of an i32 input's values; hi may
	// name a symbol (its size in the trial). Default [0, 3).
	ints map[string][2]any
	// gen fills an f32 or i32 input specially (default N(0, 1) and the
	// range in ints).
	gen map[string]func(r *rand.Rand, shape []int, syms map[string]int64) []float64
}

func dims(ds ...any) []ir.Dim {
	var out []ir.Dim
	for _, d := range ds {
		switch d := d.(type) {
		case int:
			out = append(out, ir.ConstDim(int64(d)))
		case string:
			out = append(out, ir.SymDim(d))
		case ir.Dim:
			out = append(out, d)
		default:
			panic(fmt.Sprintf("dim %v", d))
		}
	}
	return out
}

func (c *caseBuilder) in(name string, dt ir.DType, ds ...any) *ir.Instr {
	for _, d := range dims(ds...) {
		for _, s := range d.Syms() {
			c.AddSym(s)
		}
	}
	return c.MustGiven(ir.OpInput, ir.TensorOf(dt, dims(ds...)...), ir.Attrs{"name": ir.StringAttr(name)})
}

func (c *caseBuilder) param(name string, ds ...int) *ir.Instr {
	var d []any
	for _, x := range ds {
		d = append(d, x)
	}
	return c.MustGiven(ir.OpParam, ir.TensorOf(ir.F32, dims(d...)...), ir.Attrs{"name": ir.StringAttr(name), "init": ir.WordAttr("normal")})
}

func (c *caseBuilder) konst(dt ir.DType, v float64) *ir.Instr {
	return c.MustGiven(ir.OpConst, ir.Type{DType: dt}, ir.Attrs{"value": ir.FloatAttr(v)})
}

func (c *caseBuilder) op(op ir.Op, attrs ir.Attrs, args ...*ir.Instr) *ir.Instr {
	return c.Must(op, attrs, args...)
}

func (c *caseBuilder) bin(op ir.Op, x, y *ir.Instr) *ir.Instr { return c.Must(op, nil, x, y) }

// out makes v an output named name.
func (c *caseBuilder) out(name string, v *ir.Instr) {
	if v == nil {
		return // the builder's error says why
	}
	c.Output(ir.OutValue, name, v)
	c.outs = append(c.outs, v)
}

// finish adds the loss.
func (c *caseBuilder) finish() {
	var loss *ir.Instr
	for _, y := range c.outs {
		if y.Type.DType != ir.F32 {
			continue
		}
		fin := c.op(ir.OpSelect, nil, c.bin(ir.OpLt, c.op(ir.OpAbs, nil, y), c.konst(ir.F32, 1e30)), y, c.konst(ir.F32, 0))
		// (y + 0.1·Σ_a c_a·index_a)²: the offsets differ along every
		// axis, so no gradient vanishes by symmetry (the sum of a
		// softmax or of a normalised row is constant).
		for a := range y.Type.Rank() {
			pos := f32(c, c.MustGiven(ir.OpIota, ir.Type{DType: ir.I32, Shape: y.Type.Shape}, ir.Attrs{"axis": ir.IntAttr(int64(a))}))
			if a == 0 {
				if r := c.rowPositions(y.Type); r != nil {
					pos = r
				}
			}
			fin = c.bin(ir.OpAdd, fin, c.bin(ir.OpMul, pos, c.konst(ir.F32, 0.1*[]float64{0.31, 0.53, 0.71, 0.97, 1.13}[a%5])))
		}
		sq := c.bin(ir.OpMul, fin, fin)
		if y.Type.Rank() > 0 {
			axes := make([]int64, y.Type.Rank())
			for i := range axes {
				axes[i] = int64(i)
			}
			sq = c.op(ir.OpReduceSum, ir.Attrs{"axes": ir.IntsAttr(axes...)}, sq)
		}
		if loss == nil {
			loss = sq
		} else {
			loss = c.bin(ir.OpAdd, loss, sq)
		}
	}
	if loss == nil {
		loss = c.konst(ir.F32, 0)
	}
	c.Output(ir.OutLoss, "loss", loss)
}

// rowPositions returns, for a value whose first dim is a symbol, its
// index along that dim as an f32 tensor that broadcasts to it: an input
// "rows_S" of type f32[S] (filled with 0, 1, …), reshaped to [S, 1, …].
// An iota along the first axis would say the same, but a batch's shards
// each count from 0: read from an input, the positions travel with the
// rows, and the shard pass can run the case on shards of its batch.
func (c *caseBuilder) rowPositions(t ir.Type) *ir.Instr {
	d := t.Shape[0]
	if len(d.Terms) != 1 || d.Terms[0].Coef != 1 || d.Const != 0 {
		return nil
	}
	name := "rows_" + d.Terms[0].Sym
	var in *ir.Instr
	for _, x := range c.M.Inputs() {
		if x.Name() == name {
			in = x
		}
	}
	if in == nil {
		in = c.in(name, ir.F32, d.Terms[0].Sym)
		if c.gen == nil {
			c.gen = map[string]func(*rand.Rand, []int, map[string]int64) []float64{}
		}
		c.gen[name] = func(_ *rand.Rand, shape []int, _ map[string]int64) []float64 {
			out := make([]float64, shape[0])
			for i := range out {
				out[i] = float64(i)
			}
			return out
		}
	}
	shape := make(ir.Shape, t.Rank())
	shape[0] = d
	for i := 1; i < len(shape); i++ {
		shape[i] = ir.ConstDim(1)
	}
	return c.MustGiven(ir.OpReshape, ir.Type{DType: ir.F32, Shape: shape}, nil, in)
}

// fill makes a trial's environment: inputs by their dtype and the case's
// ranges and generators, weights N(0, 1).
func (c *caseBuilder) fill(m *ir.Module, tr trial, rng *rand.Rand) (eval.Env, error) {
	env := eval.Env{Inputs: map[string]*eval.Tensor{}, Params: map[string]*eval.Tensor{}}
	special := map[string]bool{}
	for _, s := range tr.special {
		special[s] = true
	}
	for _, in := range m.Inputs() {
		shape, err := in.Type.Shape.Eval(tr.syms)
		if err != nil {
			return env, err
		}
		t := eval.NewTensor(in.Type.DType, shape...)
		name := in.Name()
		switch in.Type.DType {
		case ir.F32:
			if g := c.gen[name]; g != nil {
				copy(t.Data, g(rng, shape, tr.syms))
				break
			}
			for i := range t.Data {
				t.Data[i] = rng.NormFloat64()
			}
		case ir.I32:
			if g := c.gen[name]; g != nil {
				copy(t.Data, g(rng, shape, tr.syms))
				break
			}
			lo, hi := int64(0), int64(3)
			if r, ok := c.ints[name]; ok {
				lo, hi = bound(r[0], tr.syms), bound(r[1], tr.syms)
			}
			for i := range t.Data {
				t.Data[i] = float64(lo + rng.Int64N(hi-lo))
			}
		default:
			for i := range t.Data {
				t.Data[i] = float64(rng.IntN(2))
			}
		}
		if special[name] {
			for i := range t.Data {
				switch {
				case i%11 == 3:
					t.Data[i] = math.Inf(1)
				case i%11 == 7:
					t.Data[i] = math.Inf(-1)
				case i%13 == 5:
					t.Data[i] = math.NaN()
				}
			}
		}
		if i, ok := tr.nanAt[name]; ok {
			t.Data[i] = math.NaN()
		}
		env.Inputs[name] = t
	}
	for _, p := range append(m.Params(), m.Buffers()...) {
		shape, _ := p.Type.Shape.Eval(nil)
		t := eval.NewTensor(ir.F32, shape...)
		for i := range t.Data {
			t.Data[i] = rng.NormFloat64()
		}
		env.Params[p.Name()] = t
	}
	return env, nil
}

func bound(v any, syms map[string]int64) int64 {
	if s, ok := v.(string); ok {
		return syms[s]
	}
	return int64(v.(int))
}

func syms(kv ...any) map[string]int64 {
	out := map[string]int64{}
	for i := 0; i < len(kv); i += 2 {
		out[kv[i].(string)] = int64(kv[i+1].(int))
	}
	return out
}

// plus returns x + a new weight of the given shape (broadcast): the way
// cases put a weight in front of an op so its gradient is checked.
func (c *caseBuilder) plus(x *ir.Instr, name string, ds ...int) *ir.Instr {
	return c.bin(ir.OpAdd, x, c.param(name, ds...))
}

func f32(c *caseBuilder, x *ir.Instr) *ir.Instr {
	return c.op(ir.OpCast, ir.Attrs{"to": ir.DTypeAttr(ir.F32)}, x)
}

func axes(xs ...int64) ir.Attrs { return ir.Attrs{"axes": ir.IntsAttr(xs...)} }

// Index expressions for attention masks and scores.
var (
	eq, ek, eh, eb, es = ir.Var("q"), ir.Var("k"), ir.Var("h"), ir.Var("b"), ir.Var("s")
	negInfByDivision   = ir.Bin(ir.EDiv, &ir.Expr{Kind: ir.ENeg, Args: []*ir.Expr{ir.Float(1)}}, ir.Float(0)) // -1.0 / 0.0
)

// attn builds q, k, v from inputs times weights (so attention_grad runs
// for each) and returns them: q f32[B, 2, nq, 4], k f32[B, 2, nk, 4],
// v f32[B, 2, nk, 3].
func (c *caseBuilder) qkv(prefix string, nq, nk string) (q, k, v *ir.Instr) {
	q = c.bin(ir.OpMul, c.in(prefix+"xq", ir.F32, "B", 2, nq, 4), c.param(prefix+"wq", 4))
	k = c.bin(ir.OpMul, c.in(prefix+"xk", ir.F32, "B", 2, nk, 4), c.param(prefix+"wk", 4))
	v = c.bin(ir.OpMul, c.in(prefix+"xv", ir.F32, "B", 2, nk, 3), c.param(prefix+"wv", 3))
	return q, k, v
}

// mustExpr parses an index expression of a case.
func mustExpr(src string) *ir.Expr {
	e, err := ir.ParseExpr(src)
	if err != nil {
		panic(fmt.Sprintf("%s: %v", src, err))
	}
	return e
}

func attnAttrs(kv ...any) ir.Attrs {
	a := ir.Attrs{"scale": ir.FloatAttr(0.5)}
	for i := 0; i < len(kv); i += 2 {
		switch v := kv[i+1].(type) {
		case *ir.Expr:
			a[kv[i].(string)] = ir.ExprAttr(v)
		case string:
			a[kv[i].(string)] = ir.WordAttr(v)
		}
	}
	return a
}

var unaryF32 = []ir.Op{ir.OpNeg, ir.OpAbs, ir.OpExp, ir.OpLog, ir.OpSqrt, ir.OpRsqrt, ir.OpTanh, ir.OpSigmoid,
	ir.OpRelu, ir.OpGelu, ir.OpGeluDeriv, ir.OpSilu, ir.OpSin, ir.OpCos}

var binaryF32 = []ir.Op{ir.OpAdd, ir.OpSub, ir.OpMul, ir.OpDiv, ir.OpMax, ir.OpMin, ir.OpPow}

var compares = []ir.Op{ir.OpEq, ir.OpNe, ir.OpLt, ir.OpLe, ir.OpGt, ir.OpGe}

var reductions = []ir.Op{ir.OpReduceSum, ir.OpReduceMax, ir.OpReduceMean, ir.OpLogSumExp}

// Sizes: 1, small odd ones, and ones past the kernels' tiles (64 for
// attention and matmul rows, 128 for matmul's inner dimension, 256 for
// reduction columns).
var opCases = []opCase{
	{
		name: "sources",
		ops:  []ir.Op{ir.OpParam, ir.OpInput, ir.OpConst, ir.OpIota},
		build: func(c *caseBuilder) {
			x := c.in("x", ir.F32, "B", 3)
			w := c.param("w", 3)
			c.out("input", x)
			c.out("param", w)
			c.out("const", c.bin(ir.OpAdd, c.bin(ir.OpMul, x, w), c.konst(ir.F32, 2.5)))
			c.out("const_inf", c.bin(ir.OpMul, w, c.konst(ir.F32, math.Inf(-1))))
			c.out("const_nan", c.bin(ir.OpAdd, w, c.konst(ir.F32, math.NaN())))
			c.out("const_i32", c.bin(ir.OpAdd, c.in("i", ir.I32, "B", 3), c.konst(ir.I32, -7)))
			c.out("input_bool", c.in("bl", ir.Bool, "B", 3))
			c.out("iota0", c.MustGiven(ir.OpIota, ir.TensorOf(ir.I32, dims("B", 4)...), ir.Attrs{"axis": ir.IntAttr(0)}))
			c.out("iota1", c.MustGiven(ir.OpIota, ir.TensorOf(ir.I32, dims("B", 4, 2)...), ir.Attrs{"axis": ir.IntAttr(1)}))
		},
		trials: []trial{{syms: syms("B", 1)}, {syms: syms("B", 5)}},
	},
	{
		name: "unary_f32",
		ops:  unaryF32,
		build: func(c *caseBuilder) {
			x := c.in("x", ir.F32, "B", 7)
			for _, op := range unaryF32 {
				w := c.param(op.String()+".w", 7)
				a := c.bin(ir.OpAdd, x, w)
				switch op {
				case ir.OpLog, ir.OpSqrt, ir.OpRsqrt:
					// Mostly inside the domain: x² + w² + 1/4.
					a = c.bin(ir.OpAdd, c.bin(ir.OpAdd, c.bin(ir.OpMul, x, x), c.bin(ir.OpMul, w, w)), c.konst(ir.F32, 0.25))
				}
				c.out(op.String(), c.op(op, nil, a))
			}
		},
		trials: []trial{{syms: syms("B", 1)}, {syms: syms("B", 9)}, {syms: syms("B", 6), special: []string{"x"}}},
	},
	{
		name: "unary_int_bool_cast",
		ops:  []ir.Op{ir.OpNot, ir.OpCast},
		build: func(c *caseBuilder) {
			i := c.in("i", ir.I32, "B", 5)
			c.out("neg_i32", c.op(ir.OpNeg, nil, i))
			c.out("abs_i32", c.op(ir.OpAbs, nil, i))
			bl := c.in("bl", ir.Bool, "B", 5)
			c.out("not", c.op(ir.OpNot, nil, bl))
			x := c.plus(c.bin(ir.OpMul, c.in("x", ir.F32, "B", 5), c.konst(ir.F32, 3)), "cast.w", 5)
			cast := func(to ir.DType, v *ir.Instr) *ir.Instr {
				return c.op(ir.OpCast, ir.Attrs{"to": ir.DTypeAttr(to)}, v)
			}
			c.out("cast_f32_f32", cast(ir.F32, x))
			c.out("cast_f32_i32", cast(ir.I32, x))
			c.out("cast_f32_bool", cast(ir.Bool, cast(ir.I32, x)))
			c.out("cast_i32_f32", cast(ir.F32, i))
			c.out("cast_i32_bool", cast(ir.Bool, i))
			c.out("cast_bool_f32", cast(ir.F32, bl))
			c.out("cast_bool_i32", cast(ir.I32, bl))
		},
		trials: []trial{{syms: syms("B", 1)}, {syms: syms("B", 7)}},
	},
	{
		name: "binary_f32",
		ops:  binaryF32,
		build: func(c *caseBuilder) {
			x := c.in("x", ir.F32, "B", 1, 5)
			for _, op := range binaryF32 {
				a := c.plus(x, op.String()+".u", 5)
				if op == ir.OpPow {
					a = c.bin(ir.OpAdd, c.bin(ir.OpMul, a, a), c.konst(ir.F32, 0.5))
				}
				c.out(op.String(), c.bin(op, a, c.param(op.String()+".w", 4, 1)))
			}
		},
		trials: []trial{{syms: syms("B", 1)}, {syms: syms("B", 3)}, {syms: syms("B", 4), special: []string{"x"}}},
	},
	{
		name: "binary_int_bool",
		ops:  append([]ir.Op{ir.OpAnd, ir.OpOr, ir.OpMod}, compares...),
		build: func(c *caseBuilder) {
			c.ints = map[string][2]any{"i": {-9, 10}, "dp": {1, 5}, "dn": {-5, 0}}
			i, j := c.in("i", ir.I32, "B", 1, 4), c.in("j", ir.I32, 3, 1)
			for _, op := range []ir.Op{ir.OpAdd, ir.OpSub, ir.OpMul, ir.OpMax, ir.OpMin} {
				c.out(op.String()+"_i32", c.bin(op, i, j))
			}
			// Floor division and modulo by positive and negative
			// divisors (never 0: that is an error on both sides).
			for _, d := range []*ir.Instr{c.in("dp", ir.I32, 3, 1), c.in("dn", ir.I32, 1, 4)} {
				c.out("div_i32_"+d.Name(), c.bin(ir.OpDiv, i, d))
				c.out("mod_i32_"+d.Name(), c.bin(ir.OpMod, i, d))
			}
			for _, op := range compares {
				c.out(op.String()+"_i32", c.bin(op, i, j))
			}
			// Floats that are often equal, and some NaN and infinities.
			x, y := f32(c, c.in("xi", ir.I32, "B", 6)), c.in("y", ir.F32, 1, 6)
			z := c.bin(ir.OpAdd, x, c.in("z", ir.F32, "B", 6))
			yi := f32(c, c.in("yi", ir.I32, 1, 6))
			for _, op := range compares {
				c.out(op.String()+"_f32", c.bin(op, x, yi))
				c.out(op.String()+"_f32_special", c.bin(op, z, y))
			}
			a, b := c.in("a", ir.Bool, "B", 4), c.in("b", ir.Bool, 1, 4)
			for _, op := range []ir.Op{ir.OpAnd, ir.OpOr, ir.OpEq, ir.OpNe} {
				c.out(op.String()+"_bool", c.bin(op, a, b))
			}
		},
		trials: []trial{{syms: syms("B", 1)}, {syms: syms("B", 5), special: []string{"y", "z"}}},
	},
	{
		name: "select",
		ops:  []ir.Op{ir.OpSelect},
		build: func(c *caseBuilder) {
			cond := c.in("c", ir.Bool, "B", 5)
			c.out("select", c.op(ir.OpSelect, nil, cond, c.param("x", 5), c.plus(c.in("y", ir.F32, "B", 1), "y.w", 1)))
			c.out("select_scalar", c.op(ir.OpSelect, nil, c.in("c0", ir.Bool), c.param("s", 2, 1), c.param("t", 3)))
			c.out("select_i32", c.op(ir.OpSelect, nil, cond, c.in("i", ir.I32, "B", 5), c.konst(ir.I32, -1)))
		},
		trials: []trial{{syms: syms("B", 1)}, {syms: syms("B", 6)}, {syms: syms("B", 4), special: []string{"y"}}},
	},
	{
		name: "reductions",
		ops:  reductions,
		build: func(c *caseBuilder) {
			x := c.in("x", ir.F32, "B", "N", 5)
			for _, op := range reductions {
				a := c.plus(x, op.String()+".w", 5)
				c.out(op.String()+"_n_keep", c.op(op, ir.Attrs{"axes": ir.IntsAttr(1), "keepdims": ir.BoolAttr(true)}, a))
				c.out(op.String()+"_b_last", c.op(op, axes(0, 2), a))
				c.out(op.String()+"_all", c.op(op, axes(0, 1, 2), a))
				c.out(op.String()+"_last", c.op(op, axes(2), a))
			}
			// Rows that are entirely -Inf.
			m := c.in("m", ir.F32, "B", 4)
			c.out("logsumexp_neginf_rows", c.op(ir.OpLogSumExp, axes(1), m))
			c.out("reduce_max_neginf_rows", c.op(ir.OpReduceMax, axes(1), m))
			i := c.in("i", ir.I32, "B", "N")
			c.out("reduce_sum_i32", c.op(ir.OpReduceSum, axes(1), i))
			c.out("reduce_max_i32", c.op(ir.OpReduceMax, axes(0), i))
		},
		trials: []trial{{syms: syms("B", 1, "N", 1)}, {syms: syms("B", 2, "N", 300)}, {syms: syms("B", 3, "N", 7), special: []string{"x"}}, {syms: syms("B", 2, "N", 0)}},
	},
	{
		name: "argmax",
		ops:  []ir.Op{ir.OpArgMax},
		build: func(c *caseBuilder) {
			c.out("argmax_f32", c.op(ir.OpArgMax, ir.Attrs{"axis": ir.IntAttr(1)}, c.in("x", ir.F32, "B", "N")))
			c.out("argmax_f32_axis0", c.op(ir.OpArgMax, ir.Attrs{"axis": ir.IntAttr(0)}, c.in("y", ir.F32, "B", "N", 2)))
			// Ties go to the first.
			c.out("argmax_i32", c.op(ir.OpArgMax, ir.Attrs{"axis": ir.IntAttr(1)}, c.in("i", ir.I32, "B", "N")))
		},
		trials: []trial{{syms: syms("B", 1, "N", 1)}, {syms: syms("B", 3, "N", 9)}, {syms: syms("B", 2, "N", 70), special: []string{"x", "y"}}},
	},
	{
		name: "matmul",
		ops:  []ir.Op{ir.OpMatMul},
		build: func(c *caseBuilder) {
			x := c.in("x", ir.F32, "B", "M", 130)
			c.out("matmul_batched", c.op(ir.OpMatMul, nil, x, c.param("w", 130, 5)))
			c.out("matmul_broadcast", c.op(ir.OpMatMul, nil, c.param("p", 2, 1, 3, 4), c.param("r", 5, 4, 6)))
			c.out("matmul_2d", c.op(ir.OpMatMul, nil, c.plus(c.in("y", ir.F32, "M", 3), "y.w", 3), c.param("s", 3, 1)))
		},
		trials: []trial{{syms: syms("B", 1, "M", 1)}, {syms: syms("B", 2, "M", 70)}, {syms: syms("B", 2, "M", 0)}, {syms: syms("B", 1, "M", 3), special: []string{"x", "y"}}},
		tol:    2e-4,
	},
	{
		name: "einsum",
		ops:  []ir.Op{ir.OpEinsum},
		build: func(c *caseBuilder) {
			es := func(spec string, xs ...*ir.Instr) *ir.Instr {
				return c.op(ir.OpEinsum, ir.Attrs{"spec": ir.StringAttr(spec)}, xs...)
			}
			x := c.in("x", ir.F32, "B", "N", 4)
			c.out("einsum_project", es("bnd,de->bne", x, c.param("w", 4, 3)))
			c.out("einsum_state", es("bhnd,bhne->bhde", c.param("p", 2, 2, 5, 3), c.param("r", 2, 2, 5, 4)))
			c.out("einsum_sum", es("ij->j", c.param("s", 3, 4)))
			c.out("einsum_transpose", es("ij->ji", c.param("t", 3, 4)))
			c.out("einsum_dot", es("bnd,d->bn", c.plus(x, "u", 4), c.param("d", 4)))
			c.out("einsum_three", es("bn,n,n->b", c.plus(c.in("y", ir.F32, "B", 3), "y.w", 3), c.param("y2", 3), c.param("y3", 3)))
			// Bias adds the epilogue pass folds into the product: a row
			// of the result (the GEMM adds into the bias rows), and one
			// whose product is permuted (added after it).
			c.out("einsum_bias", c.bin(ir.OpAdd, es("bnd,de->bne", c.plus(x, "xb", 4), c.param("wb", 4, 3)), c.param("bb", 3)))
			c.out("einsum_bias_permuted", c.bin(ir.OpAdd, es("bnd,de->ben", c.plus(x, "xp", 4), c.param("wp", 4, 3)), c.plus(c.in("bn", ir.F32, "N"), "bnw", 1)))
		},
		trials: []trial{{syms: syms("B", 1, "N", 1)}, {syms: syms("B", 2, "N", 9)}, {syms: syms("B", 2, "N", 0)}, {syms: syms("B", 2, "N", 3), special: []string{"x", "y"}}},
	},
	{
		name: "layout",
		ops:  []ir.Op{ir.OpReshape, ir.OpTranspose, ir.OpSlice, ir.OpConcat, ir.OpBroadcast, ir.OpPad},
		build: func(c *caseBuilder) {
			x := c.plus(c.in("x", ir.F32, "B", "N", 6), "x.w", 6)
			n := ir.SymDim("N")
			c.out("reshape", c.MustGiven(ir.OpReshape, ir.TensorOf(ir.F32, dims("B", "N", 2, 3)...), nil, x))
			c.out("reshape_flat", c.MustGiven(ir.OpReshape, ir.TensorOf(ir.F32, dims("B", n.Scale(6))...), nil, c.plus(x, "r.w", 6)))
			c.out("transpose", c.op(ir.OpTranspose, ir.Attrs{"perm": ir.IntsAttr(2, 0, 1)}, c.plus(x, "t.w", 6)))
			sl := func(v *ir.Instr, axis int64, start, end ir.Dim) *ir.Instr {
				return c.op(ir.OpSlice, ir.Attrs{"axis": ir.IntAttr(axis), "start": ir.DimAttr(start), "end": ir.DimAttr(end)}, v)
			}
			c.out("slice_shift", sl(c.plus(x, "s.w", 6), 1, ir.ConstDim(1), n))
			c.out("slice_last", sl(c.plus(x, "s2.w", 6), 2, ir.ConstDim(2), ir.ConstDim(5)))
			c.out("concat", c.op(ir.OpConcat, ir.Attrs{"axis": ir.IntAttr(1)},
				c.plus(x, "c.w", 6), c.plus(c.in("y", ir.F32, "B", 2, 6), "c2.w", 6), c.MustGiven(ir.OpBroadcast, ir.TensorOf(ir.F32, dims("B", 1, 6)...), nil, c.param("c3", 6))))
			c.out("concat_one", c.op(ir.OpConcat, ir.Attrs{"axis": ir.IntAttr(0)}, c.plus(x, "c4.w", 6)))
			c.out("broadcast", c.MustGiven(ir.OpBroadcast, ir.TensorOf(ir.F32, dims("B", 4, 5)...), nil, c.param("b", 1, 5)))
			c.out("broadcast_scalar", c.MustGiven(ir.OpBroadcast, ir.TensorOf(ir.F32, dims("N", 2)...), nil, c.konst(ir.F32, 1.5)))
			pad := func(v *ir.Instr, axis int64, before, after ir.Dim) *ir.Instr {
				return c.op(ir.OpPad, ir.Attrs{"axis": ir.IntAttr(axis), "before": ir.DimAttr(before), "after": ir.DimAttr(after)}, v)
			}
			c.out("pad", pad(c.plus(x, "p.w", 6), 1, ir.ConstDim(2), n))
			c.out("pad_last", pad(c.plus(x, "p2.w", 6), 2, ir.ConstDim(0), ir.ConstDim(3)))
		},
		trials: []trial{{syms: syms("B", 1, "N", 1)}, {syms: syms("B", 3, "N", 5)}, {syms: syms("B", 2, "N", 4), special: []string{"x", "y"}}},
	},
	{
		name: "gather_scatter",
		ops:  []ir.Op{ir.OpGather, ir.OpScatterAdd},
		build: func(c *caseBuilder) {
			c.ints = map[string][2]any{"tok": {0, 10}, "ptr": {0, "N"}, "idx": {0, 4}}
			tok := c.in("tok", ir.I32, "B", "N")
			c.out("gather_embed", c.op(ir.OpGather, ir.Attrs{"axis": ir.IntAttr(0)}, c.param("table", 10, 4), tok))
			x := c.plus(c.in("x", ir.F32, "B", "N", 3), "x.w", 3)
			c.out("gather_batch", c.op(ir.OpGather, ir.Attrs{"axis": ir.IntAttr(1), "batch_dims": ir.IntAttr(1)}, x, c.in("ptr", ir.I32, "B", 5)))
			c.out("gather_inner", c.op(ir.OpGather, ir.Attrs{"axis": ir.IntAttr(2)}, c.plus(c.in("y", ir.F32, "B", 2, 4), "y.w", 4), c.in("idx", ir.I32, 3)))
			upd := c.plus(c.in("u", ir.F32, "B", "N", 4), "u.w", 4)
			c.out("scatter_add", c.MustGiven(ir.OpScatterAdd, ir.TensorOf(ir.F32, dims(10, 4)...), ir.Attrs{"axis": ir.IntAttr(0)}, upd, tok))
		},
		trials: []trial{{syms: syms("B", 1, "N", 1)}, {syms: syms("B", 3, "N", 8)}, {syms: syms("B", 2, "N", 5), special: []string{"x", "y", "u"}}},
	},
	{
		name: "composites",
		ops:  []ir.Op{ir.OpSoftmax, ir.OpLayerNorm, ir.OpRMSNorm, ir.OpCrossEntropy, ir.OpLayerNormGrad, ir.OpRMSNormGrad, ir.OpCrossEntropyGrad},
		build: func(c *caseBuilder) {
			c.ints = map[string][2]any{"t": {0, 7}, "ti": {-1, 7}}
			x := c.in("x", ir.F32, "B", "N", 7)
			c.out("softmax_last", c.op(ir.OpSoftmax, ir.Attrs{"axis": ir.IntAttr(2)}, c.plus(x, "sm.w", 7)))
			c.out("softmax_mid", c.op(ir.OpSoftmax, ir.Attrs{"axis": ir.IntAttr(1)}, c.bin(ir.OpMul, x, c.param("sm2.w", 7))))
			c.out("layer_norm", c.op(ir.OpLayerNorm, ir.Attrs{"eps": ir.FloatAttr(0.25)}, c.plus(x, "ln.w", 7)))
			c.out("rms_norm", c.op(ir.OpRMSNorm, ir.Attrs{"eps": ir.FloatAttr(0.25)}, c.plus(x, "rms.w", 7)))
			// Norms with an affine weight: their gradients get the weight
			// folded in (the normscale pass, scale = true).
			c.out("layer_norm_affine", c.bin(ir.OpMul, c.op(ir.OpLayerNorm, ir.Attrs{"eps": ir.FloatAttr(0.25)}, c.plus(x, "lna.w", 7)), c.param("lna.g", 7)))
			c.out("rms_norm_affine", c.bin(ir.OpMul, c.op(ir.OpRMSNorm, ir.Attrs{"eps": ir.FloatAttr(0.25)}, c.plus(x, "rmsa.w", 7)), c.param("rmsa.g", 7)))
			// With a bias too: the normparams pass folds the weight and bias
			// into the norm (layer_norm {affine = true}) and their gradients'
			// sums into the norm's gradient (params = true); the rms norm
			// above gets both for its weight, the layer norm above the
			// gradient's alone (its product stays outside: no bias add).
			c.out("layer_norm_affine_bias", c.bin(ir.OpAdd, c.param("lnb.b", 7), c.bin(ir.OpMul, c.param("lnb.g", 7), c.op(ir.OpLayerNorm, ir.Attrs{"eps": ir.FloatAttr(0.25)}, c.plus(x, "lnb.w", 7)))))
			// A pre-norm residual, x + γ·norm(x) + β: the residual
			// path's gradient is added into the norm gradient's dx
			// (accumulate = true).
			xr := c.plus(x, "res.w", 7)
			c.out("layer_norm_residual", c.bin(ir.OpAdd, xr, c.bin(ir.OpAdd, c.param("res.b", 7), c.bin(ir.OpMul, c.param("res.g", 7), c.op(ir.OpLayerNorm, ir.Attrs{"eps": ir.FloatAttr(0.25)}, xr)))))
			c.out("cross_entropy", c.op(ir.OpCrossEntropy, nil, c.plus(x, "ce.w", 7), c.in("t", ir.I32, "B", "N")))
			c.out("cross_entropy_ignore", c.op(ir.OpCrossEntropy, ir.Attrs{"ignore_index": ir.IntAttr(-1)}, c.plus(x, "ce2.w", 7), c.in("ti", ir.I32, "B", "N")))
			// Rows that are entirely -Inf.
			c.out("softmax_neginf_rows", c.op(ir.OpSoftmax, ir.Attrs{"axis": ir.IntAttr(1)}, c.in("m", ir.F32, "B", 4)))
		},
		trials: []trial{{syms: syms("B", 1, "N", 1)}, {syms: syms("B", 2, "N", 9)}, {syms: syms("B", 2, "N", 4), special: []string{"x"}}, {syms: syms("B", 2, "N", 0)}},
	},
	{
		name: "scan",
		ops:  []ir.Op{ir.OpScan},
		build: func(c *caseBuilder) {
			a := c.op(ir.OpSigmoid, nil, c.plus(c.in("a", ir.F32, "B", "N", 3), "a.w", 3))
			x := c.plus(c.in("x", ir.F32, "B", "N", 3), "x.w", 3)
			c.out("scan", c.op(ir.OpScan, ir.Attrs{"axis": ir.IntAttr(1)}, a, x))
			c.out("scan_reverse", c.op(ir.OpScan, ir.Attrs{"axis": ir.IntAttr(1), "reverse": ir.BoolAttr(true)}, a, c.plus(x, "r.w", 3)))
			c.out("scan_axis0", c.op(ir.OpScan, ir.Attrs{"axis": ir.IntAttr(0)}, a, c.plus(x, "z.w", 3)))
		},
		trials: []trial{{syms: syms("B", 1, "N", 1)}, {syms: syms("B", 2, "N", 70)}, {syms: syms("B", 2, "N", 6), special: []string{"a", "x"}}, {syms: syms("B", 2, "N", 0)}},
	},
	{
		name: "dim_size",
		ops:  []ir.Op{ir.OpDimSize},
		build: func(c *caseBuilder) {
			x := c.plus(c.in("x", ir.F32, "B", "N"), "x.w", 1)
			n := ir.SymDim("N")
			c.out("dim_size", c.bin(ir.OpMul, x, c.op(ir.OpDimSize, ir.Attrs{"dim": ir.DimAttr(n.Scale(2).Add(ir.ConstDim(1)))})))
			c.out("dim_size_sum", c.op(ir.OpDimSize, ir.Attrs{"dim": ir.DimAttr(n.Add(ir.SymDim("B")))}))
			// The mean over a symbolic axis divides by dim_size in its
			// gradient.
			c.out("mean_n", c.op(ir.OpReduceMean, axes(1), c.plus(x, "m.w", 1)))
		},
		trials: []trial{{syms: syms("B", 1, "N", 1)}, {syms: syms("B", 2, "N", 5)}},
	},
	{
		// Self-attention: no mask, causal (tiles classified by the
		// sparsity pass, so N = 70 skips and fills tiles), and a strict
		// mask whose row 0 is fully masked.
		name: "attention_self",
		ops:  []ir.Op{ir.OpAttention, ir.OpAttentionGrad, ir.OpExtract},
		build: func(c *caseBuilder) {
			q, k, v := c.qkv("", "N", "N")
			c.out("full", c.op(ir.OpAttention, attnAttrs(), q, k, v))
			c.out("causal", c.op(ir.OpAttention, attnAttrs("mask", ir.Bin(ir.ELe, ek, eq)), q, k, v))
			c.out("strict", c.op(ir.OpAttention, attnAttrs("mask", ir.Bin(ir.ELt, ek, eq)), q, k, v))
			c.out("window", c.op(ir.OpAttention, attnAttrs("mask", ir.Bin(ir.EAnd, ir.Bin(ir.ELe, ek, eq), ir.Bin(ir.ELt, ir.Bin(ir.ESub, eq, ek), ir.Int(3)))), q, k, v))
		},
		trials: []trial{{syms: syms("B", 1, "N", 1)}, {syms: syms("B", 2, "N", 5)}, {syms: syms("B", 1, "N", 70)}, {syms: syms("B", 2, "N", 0)}},
	},
	{
		// Cross-attention with a learned relative bias read by the score:
		// the gradient of a captured tensor. Nk = 0 gives empty rows.
		name: "attention_cross_bias",
		ops:  []ir.Op{ir.OpAttention, ir.OpAttentionGrad},
		build: func(c *caseBuilder) {
			q, k, v := c.qkv("", "S", "T")
			bias := c.param("bias", 2, 16)
			rel := ir.Bin(ir.EAdd, es, ir.Capture(0, eh, ir.Call("clamp", ir.Bin(ir.ESub, eq, ek), ir.Int(0), ir.Int(15))))
			c.out("rel", c.op(ir.OpAttention, attnAttrs("mask", ir.Bin(ir.ELe, ek, ir.Bin(ir.EAdd, eq, ir.Int(2))), "score", rel), q, k, v, bias))
			capped := ir.Bin(ir.EMul, ir.Float(2), ir.Call("tanh", ir.Bin(ir.EDiv, rel, ir.Float(2))))
			c.out("rel_tanh", c.op(ir.OpAttention, attnAttrs("score", capped), q, k, v, c.param("bias2", 2, 16)))
		},
		trials: []trial{{syms: syms("B", 1, "S", 3, "T", 4)}, {syms: syms("B", 2, "S", 66, "T", 70)}, {syms: syms("B", 1, "S", 2, "T", 0)}, {syms: syms("B", 2, "S", 0, "T", 3)}},
	},
	{
		// The distribution itself, with a mask that reads a captured
		// tensor (document ids) and a soft-capped score.
		name: "attention_probs",
		ops:  []ir.Op{ir.OpAttention, ir.OpAttentionGrad},
		build: func(c *caseBuilder) {
			c.ints = map[string][2]any{"doc": {0, 2}}
			q, k, _ := c.qkv("", "N", "N")
			doc := c.in("doc", ir.I32, "B", "N")
			same := ir.Bin(ir.EEq, ir.Capture(0, eb, eq), ir.Capture(0, eb, ek))
			softcap := ir.Bin(ir.EMul, ir.Float(5), ir.Call("tanh", ir.Bin(ir.EDiv, es, ir.Float(5))))
			c.out("probs", c.op(ir.OpAttention, attnAttrs("mask", same, "score", softcap, "returns", "probs"), q, k, doc))
			c.out("logprobs", c.op(ir.OpAttention, attnAttrs("mask", ir.Bin(ir.ELt, ek, eq), "returns", "logprobs"), q, k))
		},
		trials: []trial{{syms: syms("B", 1, "N", 1)}, {syms: syms("B", 2, "N", 6)}, {syms: syms("B", 1, "N", 70)}},
	},
	{
		// Masks that are no union of key spans, which partial tiles
		// evaluate a row at a time (AttnSpec.MaskRow): document ids,
		// padding lengths, strides, a block mask read from a tensor,
		// reads indexed by the query alone mixed with reads by key, and
		// reads that are out of range only where && or where skips them
		// (the row falls back to the mask pair by pair there).
		name: "attention_row_masks",
		ops:  []ir.Op{ir.OpAttention, ir.OpAttentionGrad},
		build: func(c *caseBuilder) {
			c.ints = map[string][2]any{"doc": {0, 2}, "lens": {0, "N"}}
			// Documents as packed sequences have them: runs of one id,
			// some shorter and some longer than a 64-key tile, so that
			// the run-time tile classification (rt.IvCapture) finds empty,
			// full and partial tiles.
			if c.gen == nil {
				c.gen = map[string]func(*rand.Rand, []int, map[string]int64) []float64{}
			}
			c.gen["docs"] = func(r *rand.Rand, shape []int, _ map[string]int64) []float64 {
				out := make([]float64, 0, shape[0]*shape[1])
				for range shape[0] {
					id, left := 0.0, 0
					for range shape[1] {
						if left == 0 {
							id, left = id+1, 1+r.IntN(100)
						}
						out = append(out, id)
						left--
					}
				}
				return out
			}
			q, k, v := c.qkv("", "N", "N")
			doc := c.in("doc", ir.I32, "B", "N")
			docs := c.in("docs", ir.I32, "B", "N")
			lens := c.in("lens", ir.I32, "B")
			blocks := c.in("blocks", ir.Bool, "B", 3, 3)
			gate := c.in("gate", ir.F32, 2, "N")
			docQ, docK := ir.Capture(0, eb, eq), ir.Capture(0, eb, ek)
			causal := ir.Bin(ir.ELe, ek, eq)
			mod := func(x *ir.Expr, m int64) *ir.Expr { return ir.Bin(ir.EMod, x, ir.Int(m)) }
			for _, m := range []struct {
				name string
				mask *ir.Expr
				caps []*ir.Instr
			}{
				{"doc", ir.Bin(ir.EEq, docQ, docK), []*ir.Instr{doc}},
				{"packed_docs", ir.Bin(ir.EEq, docQ, docK), []*ir.Instr{docs}},
				{"causal_packed_docs", ir.Bin(ir.EAnd, causal, ir.Bin(ir.EEq, docQ, docK)), []*ir.Instr{docs}},
				{"causal_doc", ir.Bin(ir.EAnd, causal, ir.Bin(ir.EEq, docQ, docK)), []*ir.Instr{doc}},
				{"padding", ir.Bin(ir.ELt, ek, ir.Capture(0, eb)), []*ir.Instr{lens}},
				{"padding_both", ir.Bin(ir.EAnd, ir.Bin(ir.ELt, ek, ir.Capture(0, eb)), ir.Bin(ir.ELt, eq, ir.Capture(0, eb))), []*ir.Instr{lens}},
				{"prefix_lm", ir.Bin(ir.EOr, ir.Bin(ir.ELt, ek, ir.Capture(0, eb)), causal), []*ir.Instr{lens}},
				{"strided", ir.Bin(ir.EAnd, causal, ir.Bin(ir.EEq, mod(ir.Bin(ir.ESub, eq, ek), 3), ir.Int(0))), nil},
				{"pairs_of_keys", ir.Bin(ir.EEq, ir.Bin(ir.EDiv, ek, ir.Int(2)), ir.Bin(ir.EDiv, eq, ir.Int(2))), nil},
				{"by_size", ir.Bin(ir.ELt, ir.Bin(ir.EMod, ir.Bin(ir.EAdd, eq, ek), ir.Var("N")), ir.Bin(ir.EDiv, ir.Var("N"), ir.Int(2))), nil},
				{"blocks", ir.Capture(0, eb, ir.Bin(ir.EDiv, eq, ir.Int(64)), ir.Bin(ir.EDiv, ek, ir.Int(64))), []*ir.Instr{blocks}},
				{"doc_gate", ir.Bin(ir.EAnd, ir.Bin(ir.EAnd, causal, ir.Bin(ir.EEq, docQ, docK)),
					ir.Bin(ir.EGt, ir.Capture(1, eh, ir.Bin(ir.ESub, eq, ek)), ir.Float(-0.5))), []*ir.Instr{doc, gate}},
				{"prev_doc", ir.Bin(ir.EOr, ir.Bin(ir.EEq, eq, ir.Int(0)), ir.Bin(ir.EEq, ir.Capture(0, eb, ir.Bin(ir.ESub, eq, ir.Int(1))), docK)), []*ir.Instr{doc}},
				{"prev_key", ir.Bin(ir.EAnd, ir.Bin(ir.EGt, ek, ir.Int(0)), ir.Bin(ir.EEq, ir.Capture(0, eb, ir.Bin(ir.ESub, ek, ir.Int(1))), docQ)), []*ir.Instr{doc}},
				{"where_gate", ir.Call("where", causal, ir.Bin(ir.EGt, ir.Capture(0, eh, ir.Bin(ir.ESub, eq, ek)), ir.Float(0)), ir.Bin(ir.EEq, ek, ir.Bin(ir.EAdd, eq, ir.Int(1)))), []*ir.Instr{gate}},
			} {
				args := append([]*ir.Instr{q, k, v}, m.caps...)
				c.out(m.name, c.op(ir.OpAttention, attnAttrs("mask", m.mask), args...))
			}
		},
		trials: []trial{{syms: syms("B", 1, "N", 1)}, {syms: syms("B", 2, "N", 5)}, {syms: syms("B", 2, "N", 70)}, {syms: syms("B", 1, "N", 130)}},
	},
	{
		// Every index-expression function and the inf literal, in masks
		// the sparsity pass leaves to the tile classifier (the runtime's
		// interval rules, at N = 70 and 130 past a tile) and in scores
		// that autodiff differentiates; integer / and % with negative
		// and ranging divisors.
		name: "attention_expr_funcs",
		ops:  []ir.Op{ir.OpAttention, ir.OpAttentionGrad},
		build: func(c *caseBuilder) {
			q, k, v := c.qkv("", "N", "N")
			for i, m := range []struct{ mask, score string }{
				{"k <= q && cos(0.4 * (q - k)) > -0.5", "s + 0.5 * sin(s) + 0.25 * cos(0.3 * (q - k))"},
				{"k <= q && floor(sin(0.1 * q) * 2.0) == floor(sin(0.1 * k) * 2.0) || k == q", "exp(0.5 * s) - log(1.0 + exp(s)) + floor(s)"},
				{"(q - k) % (-5) > -3 && (k - q) / (-4) >= 0", "where(k > q + 1, -(inf), s + log(1.0 + abs(s)))"},
				{"(q + 1) % (k + 1) <= 2 || floor(q / 9) == floor(k / 9)", "tanh(s) * sigmoid(s) + clamp(s, -1.0, 1.0) * max(min(s, 2.0), -2.0)"},
				{"exp(0.05 * (k - q)) >= 0.3 && log(1.0 + k) <= log(1.0 + q) + 0.7", "min(s, inf)"},
			} {
				c.out(fmt.Sprintf("f%d", i), c.op(ir.OpAttention, attnAttrs("mask", mustExpr(m.mask), "score", mustExpr(m.score)), q, k, v))
			}
		},
		// Not N = 1: one key per row makes the gradients of q exactly 0
		// in the reference and float32 rounding noise in the kernels.
		trials: []trial{{syms: syms("B", 1, "N", 2)}, {syms: syms("B", 2, "N", 6)}, {syms: syms("B", 1, "N", 70)}, {syms: syms("B", 1, "N", 130)}},
	},
	{
		// Masking by score: -1.0 / 0.0 and -inf in the score, a row all
		// of whose scores are -inf, and lse, which has no gradient.
		name: "attention_neginf_scores",
		ops:  []ir.Op{ir.OpAttention, ir.OpAttentionGrad},
		build: func(c *caseBuilder) {
			q, k, v := c.qkv("", "N", "N")
			byDiv := ir.Call("where", ir.Bin(ir.EEq, ek, ir.Int(0)), negInfByDivision, es)
			c.out("div_inf", c.op(ir.OpAttention, attnAttrs("mask", ir.Bin(ir.ELe, ek, eq), "score", byDiv), q, k, v))
			keep := c.in("keep", ir.Bool, "B", "N")
			byCapture := ir.Call("where", ir.Capture(0, eb, ek), es, ir.Float(math.Inf(-1)))
			c.out("capture_inf", c.op(ir.OpAttention, attnAttrs("score", byCapture, "returns", "logprobs"), q, k, keep))
			c.out("lse", c.op(ir.OpAttention, attnAttrs("mask", ir.Bin(ir.ELt, ek, eq), "score", byDiv, "returns", "lse"),
				c.in("lq", ir.F32, "B", 2, "N", 4), c.in("lk", ir.F32, "B", 2, "N", 4)))
		},
		trials: []trial{{syms: syms("B", 1, "N", 1)}, {syms: syms("B", 2, "N", 6)}, {syms: syms("B", 1, "N", 67)}},
	},
	{
		// NaN and infinite scores from the data (issue 7, item 10): a
		// NaN makes its row NaN, it does not mask the key.
		name: "attention_nan",
		ops:  []ir.Op{ir.OpAttention, ir.OpAttentionGrad},
		build: func(c *caseBuilder) {
			q, k, v := c.qkv("", "N", "N")
			c.out("nan", c.op(ir.OpAttention, attnAttrs("mask", ir.Bin(ir.ELe, ek, eq)), q, k, v))
			scaled := ir.Bin(ir.EMul, es, ir.Capture(0, eh))
			c.out("nan_score", c.op(ir.OpAttention, attnAttrs("score", scaled, "returns", "probs"), q, k, c.in("g", ir.F32, 2)))
			// Masked keys of a NaN row keep their -inf log-probability.
			c.out("nan_logprobs", c.op(ir.OpAttention, attnAttrs("mask", ir.Bin(ir.ELe, ek, eq), "returns", "logprobs"), q, k))
			// +Inf scores: the row's lse is +Inf.
			c.out("inf_lse", c.op(ir.OpAttention, attnAttrs("mask", ir.Bin(ir.ELe, ek, eq), "returns", "lse"),
				c.in("lq", ir.F32, "B", 2, "N", 4), c.in("lk", ir.F32, "B", 2, "N", 4)))
		},
		trials: []trial{{syms: syms("B", 2, "N", 5), special: []string{"xq", "lq"}}, {syms: syms("B", 1, "N", 70), special: []string{"xk", "lk"}},
			{syms: syms("B", 1, "N", 4), nanAt: map[string]int{"g": 1}},
			// One NaN in query 10 of head 0: that row only is NaN, and
			// so is the gradient of every key it admits.
			{syms: syms("B", 1, "N", 70), nanAt: map[string]int{"xq": 10*4 + 1}},
			// NaN in the values and keys of the last key, which only the
			// last query admits.
			{syms: syms("B", 1, "N", 70), nanAt: map[string]int{"xv": 69*3 + 2, "xk": 69*4 + 1}}},
	},
	{
		// Heads split from [B, N, H, D] by a transpose, as split_heads
		// writes them: the layout pass runs these in the bnhd layout
		// (attention {layout = bnhd}), reading the rows in place. The
		// first output is merged back (its transpose cancels), the
		// second is read as it is (the pass transposes it back), so dy
		// comes both ways; a document mask and a learned bias read by
		// the score (a capture gradient) ride along.
		name: "attention_layout",
		ops:  []ir.Op{ir.OpAttention, ir.OpAttentionGrad, ir.OpTranspose},
		build: func(c *caseBuilder) {
			c.ints = map[string][2]any{"doc": {0, 2}}
			heads := func(name string, d int) *ir.Instr {
				x := c.bin(ir.OpMul, c.in("x"+name, ir.F32, "B", "N", 2, d), c.param("w"+name, d))
				return c.op(ir.OpTranspose, ir.Attrs{"perm": ir.IntsAttr(0, 2, 1, 3)}, x)
			}
			q, k, v := heads("q", 4), heads("k", 4), heads("v", 3)
			y := c.op(ir.OpAttention, attnAttrs("mask", ir.Bin(ir.ELe, ek, eq)), q, k, v)
			c.out("causal_merged", c.op(ir.OpTranspose, ir.Attrs{"perm": ir.IntsAttr(0, 2, 1, 3)}, y))
			doc := c.in("doc", ir.I32, "B", "N")
			rel := ir.Bin(ir.EAdd, es, ir.Capture(1, eh, ir.Call("clamp", ir.Bin(ir.ESub, eq, ek), ir.Int(0), ir.Int(15))))
			same := ir.Bin(ir.EEq, ir.Capture(0, eb, eq), ir.Capture(0, eb, ek))
			c.out("doc_rel", c.op(ir.OpAttention, attnAttrs("mask", same, "score", rel), q, k, v, doc, c.param("bias", 2, 16)))
		},
		trials: []trial{{syms: syms("B", 1, "N", 1)}, {syms: syms("B", 2, "N", 5)}, {syms: syms("B", 2, "N", 70)}, {syms: syms("B", 1, "N", 130)},
			{syms: syms("B", 2, "N", 6), special: []string{"xk"}},
			{syms: syms("B", 1, "N", 70), nanAt: map[string]int{"xv": (69*2+1)*3 + 1}}},
	},
	{
		// attention_grad on its own, with a dy that autodiff would never
		// make: non-zero at keys whose score is -inf, which count as
		// masked and get no gradient.
		name: "attention_grad_direct",
		ops:  []ir.Op{ir.OpAttentionGrad, ir.OpExtract},
		build: func(c *caseBuilder) {
			q, k, v := c.in("q", ir.F32, "B", 2, "N", 4), c.in("k", ir.F32, "B", 2, "N", 4), c.in("v", ir.F32, "B", 2, "N", 3)
			keep := c.in("keep", ir.Bool, "B", "N")
			bias := c.in("bias", ir.F32, 2, 16)
			byCapture := ir.Call("where", ir.Capture(0, eb, ek), ir.Bin(ir.EAdd, es, ir.Capture(1, eh, ir.Call("clamp", ir.Bin(ir.ESub, eq, ek), ir.Int(0), ir.Int(15)))), ir.Float(math.Inf(-1)))
			mask := ir.Bin(ir.ELe, ek, ir.Bin(ir.EAdd, eq, ir.Int(1)))
			for _, returns := range []string{"out", "probs", "logprobs"} {
				lse := c.op(ir.OpAttention, attnAttrs("mask", mask, "score", byCapture, "returns", "lse"), q, k, keep, bias)
				args := []*ir.Instr{q, k}
				// Every subset that runs a different set of passes: all,
				// q alone (the query pass), k or v alone (the key pass),
				// the capture alone (from the query pass).
				wrts := [][]int64{{0, 1, 3}, {0}, {1}, {3}}
				var dy *ir.Instr
				if returns == "out" {
					args = append(args, v)
					dy = c.in("dy_out", ir.F32, "B", 2, "N", 3)
					wrts = [][]int64{{0, 1, 2, 4}, {0}, {1}, {2}, {4}}
				} else {
					dy = c.in("dy_"+returns, ir.F32, "B", 2, "N", "N")
				}
				// Row sums made up, as dy is: the op takes them as given.
				rs := c.in("rs_"+returns, ir.F32, "B", 2, "N")
				args = append(args, keep, bias, lse, rs, dy)
				for _, wrt := range wrts {
					a := attnAttrs("mask", mask, "score", byCapture, "returns", returns)
					a["wrt"] = ir.IntsAttr(wrt...)
					g := c.op(ir.OpAttentionGrad, a, args...)
					name := returns + "_wrt"
					for _, w := range wrt {
						name += fmt.Sprint(w)
					}
					for i, w := range wrt {
						c.out(fmt.Sprintf("%s_%d", name, w), c.op(ir.OpExtract, ir.Attrs{"index": ir.IntAttr(int64(i))}, g))
					}
				}
			}
		},
		trials: []trial{{syms: syms("B", 1, "N", 1)}, {syms: syms("B", 2, "N", 6)}, {syms: syms("B", 1, "N", 70)},
			{syms: syms("B", 1, "N", 5), nanAt: map[string]int{"q": 2*4 + 1}},
			// NaN at key 4, which rows 0 to 2 do not admit: their results
			// stay finite.
			{syms: syms("B", 1, "N", 5), nanAt: map[string]int{"v": 4*3 + 1}},
			{syms: syms("B", 1, "N", 5), nanAt: map[string]int{"k": 4*4 + 2}},
			{syms: syms("B", 1, "N", 70), nanAt: map[string]int{"v": 69*3 + 1, "k": 68*4 + 2}},
			// NaN in dy at a masked pair, and in a whole row of dy.
			{syms: syms("B", 1, "N", 5), nanAt: map[string]int{"dy_out": 1*3 + 0, "dy_probs": 0*5 + 4, "dy_logprobs": 0*5 + 4}}},
	},
	{
		// stop_gradient: w's gradient flows through the second factor
		// only, and the op is gone from the kernels (the nograd pass).
		name: "stop_gradient",
		ops:  []ir.Op{ir.OpStopGradient},
		build: func(c *caseBuilder) {
			a := c.plus(c.in("x", ir.F32, "B", 4), "sg.w", 4)
			c.out("stop_gradient", c.bin(ir.OpMul, c.op(ir.OpStopGradient, nil, a), a))
			c.out("stop_gradient_i32", c.op(ir.OpStopGradient, nil, c.in("i", ir.I32, "B", 4)))
		},
		trials: []trial{{syms: syms("B", 1)}, {syms: syms("B", 6)}},
	},
	{
		// argsort along the last axis, both ways, f32 (with ties and,
		// in a trial, NaN and infinities) and i32; the values through a
		// gather, so the gradient flows back to where each came from.
		name: "argsort",
		ops:  []ir.Op{ir.OpArgSort},
		build: func(c *caseBuilder) {
			x := c.plus(c.in("x", ir.F32, "B", 9), "as.w", 9)
			up := c.op(ir.OpArgSort, nil, x)
			down := c.op(ir.OpArgSort, ir.Attrs{"descending": ir.BoolAttr(true)}, x)
			c.out("argsort", up)
			c.out("argsort_desc", down)
			c.out("sorted", c.op(ir.OpGather, ir.Attrs{"axis": ir.IntAttr(1), "batch_dims": ir.IntAttr(1)}, x, down))
			c.out("argsort_i32", c.op(ir.OpArgSort, nil, c.in("i", ir.I32, "B", 9)))
		},
		trials: []trial{{syms: syms("B", 1)}, {syms: syms("B", 5)}, {syms: syms("B", 3), special: []string{"x"}}},
	},
	{
		// recur with a nonlinear cell over a sequence (weights read
		// whole), over token ids (the cell embeds them), and for a fixed
		// number of steps stacked first; recur_grad is their gradient.
		name: "recur",
		ops:  []ir.Op{ir.OpRecur, ir.OpRecurGrad},
		build: func(c *caseBuilder) {
			x := c.plus(c.in("x", ir.F32, "B", "N", 3), "x.w", 3)
			s0 := c.plus(c.in("s0", ir.F32, "B", 4), "s0.w", 4)
			w, u := c.param("cell.w", 4, 4), c.param("cell.u", 3, 4)
			gated := newBody(c)
			st, xt, cw, cu := gated.in("state", s0.Type), gated.in("x", ir.TensorOf(ir.F32, dims("B", 3)...)), gated.in("c0", w.Type), gated.in("c1", u.Type)
			pre := gated.bin(ir.OpAdd, gated.bin(ir.OpMatMul, st, cw), gated.bin(ir.OpMatMul, xt, cu))
			half := gated.MustGiven(ir.OpConst, ir.Type{DType: ir.F32}, ir.Attrs{"value": ir.FloatAttr(0.5)})
			gated.next(gated.bin(ir.OpAdd, gated.bin(ir.OpMul, gated.op(ir.OpTanh, nil, pre), gated.op(ir.OpSigmoid, nil, st)), gated.bin(ir.OpMul, st, half)))
			c.out("recur", c.op(ir.OpRecur, ir.Attrs{"axis": ir.IntAttr(1), "body": ir.ModuleAttr(gated.M), "cell": ir.StringAttr("gated")}, s0, x, w, u))

			c.ints = map[string][2]any{"tok": {0, 5}}
			c.ints = map[string][2]any{"tok": {0, 5}}
			tok := c.in("tok", ir.I32, "B", "N")
			e := c.param("cell.e", 5, 4)
			emb := newBody(c)
			es, et, ee := emb.in("state", s0.Type), emb.in("x", ir.TensorOf(ir.I32, dims("B")...)), emb.in("c0", e.Type)
			emb.next(emb.op(ir.OpTanh, nil, emb.bin(ir.OpAdd, es, emb.op(ir.OpGather, ir.Attrs{"axis": ir.IntAttr(0), "batch_dims": ir.IntAttr(0)}, ee, et))))
			c.out("recur_tokens", c.op(ir.OpRecur, ir.Attrs{"axis": ir.IntAttr(1), "body": ir.ModuleAttr(emb.M)}, c.plus(s0, "s1.w", 4), tok, e))

			k := c.param("cell.k", 4)
			fixed := newBody(c)
			fs, fk := fixed.in("state", s0.Type), fixed.in("c0", k.Type)
			fixed.next(fixed.bin(ir.OpAdd, fixed.bin(ir.OpMul, fs, fk), fixed.op(ir.OpSin, nil, fs)))
			c.out("recur_steps", c.op(ir.OpRecur, ir.Attrs{"axis": ir.IntAttr(1), "steps": ir.DimAttr(ir.ConstDim(3)), "body": ir.ModuleAttr(fixed.M)}, c.plus(s0, "s2.w", 4), k))
		},
		trials: []trial{{syms: syms("B", 1, "N", 1)}, {syms: syms("B", 2, "N", 7)}, {syms: syms("B", 3, "N", 0)}},
	},
	{
		// A buffer read by the step, and its update rule (a running
		// average of the batch's rows): LossAndGrad leaves the buffer at
		// the reference's update.
		name: "buffer",
		ops:  []ir.Op{ir.OpBuffer},
		build: func(c *caseBuilder) {
			x := c.plus(c.in("x", ir.F32, "B", 4), "x.w", 4)
			ema := c.MustGiven(ir.OpBuffer, ir.TensorOf(ir.F32, dims(4)...), ir.Attrs{"name": ir.StringAttr("ema"), "init": ir.WordAttr("zeros")})
			c.out("buffer", c.bin(ir.OpMul, x, ema))
			avg := c.op(ir.OpReduceMean, axes(0), x)
			c.Output(ir.OutUpdate, "ema", c.bin(ir.OpAdd, c.bin(ir.OpMul, ema, c.konst(ir.F32, 0.9)), c.bin(ir.OpMul, avg, c.konst(ir.F32, 0.1))))
		},
		trials: []trial{{syms: syms("B", 1)}, {syms: syms("B", 5)}},
	},
	{
		// States stacked first, ahead of the batch: a step the shard
		// pass keeps whole.
		name: "recur_axis0",
		ops:  []ir.Op{ir.OpRecur, ir.OpRecurGrad},
		build: func(c *caseBuilder) {
			s0 := c.plus(c.in("s0", ir.F32, "B", 4), "s0.w", 4)
			k := c.param("cell.k", 4)
			fixed := newBody(c)
			fs, fk := fixed.in("state", s0.Type), fixed.in("c0", k.Type)
			fixed.next(fixed.op(ir.OpTanh, nil, fixed.bin(ir.OpAdd, fixed.bin(ir.OpMul, fs, fk), fixed.op(ir.OpCos, nil, fs))))
			c.out("recur_axis0", c.op(ir.OpRecur, ir.Attrs{"axis": ir.IntAttr(0), "steps": ir.DimAttr(ir.ConstDim(5)), "body": ir.ModuleAttr(fixed.M)}, s0, k))
		},
		trials: []trial{{syms: syms("B", 1)}, {syms: syms("B", 4)}},
	},
}

// body builds a recur body with the case's symbols.
type body struct{ *caseBuilder }

func newBody(c *caseBuilder) body {
	return body{&caseBuilder{Builder: ir.NewBuilder("", c.M.Syms...)}}
}

func (b body) in(name string, t ir.Type) *ir.Instr {
	return b.MustGiven(ir.OpInput, t, ir.Attrs{"name": ir.StringAttr(name)})
}

func (b body) next(v *ir.Instr) { b.Output(ir.OutValue, "next", v) }

// negInfRows fills a [B, C] tensor whose first row is all -Inf.
func negInfRows(r *rand.Rand, shape []int, _ map[string]int64) []float64 {
	out := make([]float64, shape[0]*shape[1])
	for i := range out {
		out[i] = r.NormFloat64()
		if i < shape[1] {
			out[i] = math.Inf(-1)
		}
	}
	return out
}

// noGradient lists the ops that carry no gradient (sources, integer and
// bool results, and attention_grad itself): for the others, the every-op
// test insists on a weight upstream of the op.
// removedByPasses lists the ops the passes remove before the kernels:
// a case checks they are gone rather than run.
var removedByPasses = map[ir.Op]string{
	ir.OpStopGradient: "the nograd pass makes its readers read its operand",
}

var noGradient = map[ir.Op]bool{
	ir.OpParam: true, ir.OpInput: true, ir.OpConst: true, ir.OpIota: true, ir.OpDimSize: true,
	ir.OpNot: true, ir.OpEq: true, ir.OpNe: true, ir.OpLt: true, ir.OpLe: true, ir.OpGt: true, ir.OpGe: true,
	ir.OpAnd: true, ir.OpOr: true, ir.OpArgMax: true, ir.OpArgSort: true, ir.OpAttentionGrad: true, ir.OpExtract: true, ir.OpMod: true, ir.OpRecurGrad: true, ir.OpBuffer: true,
}

// TestEveryOp generates, compiles and runs every op of the op table with
// the Go backend, forward and (for ops with a gradient) backward, on
// awkward sizes (1, odd sizes, sizes past the kernels' tiles), with
// infinities and NaNs where they mean something and fully masked and
// empty attention rows, and compares every output and gradient with the
// float64 reference. All cases are built into one program with one go
// build. An op of the table without a case fails the test: a new op needs
// one.
func TestEveryOp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a Go program")
	}
	var units []*unit
	var all []built
	covered := map[ir.Op][]string{}
	for ci, c := range opCases {
		cb := &caseBuilder{Builder: ir.NewBuilder(c.name), gen: map[string]func(*rand.Rand, []int, map[string]int64) []float64{"m": negInfRows}}
		c.build(cb)
		cb.finish()
		require.NoError(t, cb.Err(), "building case %s", c.name)
		m := cb.M
		prog, err := passes.Run(m, passes.Options{VerifyEach: true})
		require.NoError(t, err, "case %s", c.name)
		rng := rand.New(rand.NewPCG(uint64(ci), 77))
		var envs []eval.Env
		for _, tr := range c.trials {
			env, err := cb.fill(m, tr, rng)
			require.NoError(t, err)
			envs = append(envs, env)
		}
		name := "op_" + strings.ReplaceAll(c.name, "_", "")
		units = append(units, &unit{name: name, prog: prog, envs: envs})
		all = append(all, built{c, m, prog.IR, envs, c.trials})
		for _, op := range c.ops {
			covered[op] = append(covered[op], c.name)
			assertExercised(t, c.name, op, prog.IR)
		}
	}
	for _, op := range ir.AllOps() {
		assert.NotEmpty(t, covered[op], "op %s has no case in the every-op test: add one to opCases", op)
	}

	// Whole, and on shards of the batch where the shard pass lets a case
	// run so (its inputs lead with one size): 2, and 3 (uneven or capped
	// by the batch).
	runs := []string{"", " on 2 shards", " on 3 shards"}
	sharded := 0
	for _, u := range units {
		if u.prog.Shards["Forward"] != nil || u.prog.Shards["LossAndGrad"] != nil {
			sharded++
		}
	}
	t.Logf("%d of %d cases run on shards of their batch", sharded, len(units))
	results := runUnitsEnvs(t, units, [][]string{{"ATTNC_SHARDS=1"}, {"GOMAXPROCS=2", "ATTNC_SHARDS=2"}, {"GOMAXPROCS=3", "ATTNC_SHARDS=3"}})
	for i, b := range all {
		t.Run(b.c.name, func(t *testing.T) {
			tol := b.c.tol
			if tol == 0 {
				tol = 1e-4
			}
			for k, run := range runs {
				res := results[k][units[i].name]
				require.Len(t, res, len(b.envs))
				b.compare(t, res, tol, run)
			}
		})
	}
}

// compare checks a case's results from one run of the harness against the
// reference, trial by trial; run names the run in messages.
func (b built) compare(t *testing.T, res []runResult, tol float64, run string) {
	t.Helper()
	for j, env := range b.envs {
		ref, err := eval.Run(b.m, env)
		require.NoError(t, err, "reference, trial %d", j)
		what := fmt.Sprintf("trial %d %v%s", j, b.trials[j].syms, run)
		if len(b.trials[j].special) > 0 {
			what += fmt.Sprintf(" (±Inf, NaN in %v)", b.trials[j].special)
		}
		if len(b.trials[j].nanAt) > 0 {
			what += fmt.Sprintf(" (NaN at %v)", b.trials[j].nanAt)
		}
		if res[j].Err != "" {
			t.Errorf("%s: the generated code failed: %s", what, res[j].Err)
			continue
		}
		for _, d := range compareOutputs(b.m, ref, res[j], tol) {
			t.Errorf("%s: %s", what, d)
		}
	}
}

// built is an every-op case as TestEveryOp compiled it, with its input sets.
type built struct {
	c      opCase
	m      *ir.Module
	prog   *ir.Program
	envs   []eval.Env
	trials []trial
}

// assertExercised checks that op appears in the generated functions of a
// case and, if it has a gradient, that LossAndGrad differentiates through
// it (an instance of it depends on a weight).
func assertExercised(t *testing.T, name string, op ir.Op, prog *ir.Program) {
	t.Helper()
	if why, ok := removedByPasses[op]; ok {
		for _, f := range prog.Funcs {
			for _, in := range f.Body {
				assert.NotEqual(t, op, in.Op, "case %s: %s should be gone from the generated code (%s)", name, op, why)
			}
		}
		return
	}
	dep := map[*ir.Instr]bool{}
	for _, in := range prog.Module.Instrs {
		if in.Op == ir.OpParam {
			dep[in] = true
		}
		for _, a := range in.Args {
			if dep[a] && (in.Type.DType == ir.F32 || in.Type.IsTuple()) {
				dep[in] = true
			}
		}
	}
	found, differentiated := false, false
	for _, f := range prog.Funcs {
		for _, in := range f.Body {
			if in.Op != op {
				continue
			}
			found = true
			if f.Name == "LossAndGrad" && dep[in] {
				differentiated = true
			}
		}
	}
	assert.True(t, found, "case %s claims op %s, which its generated code does not run", name, op)
	if !noGradient[op] {
		assert.True(t, differentiated, "case %s claims op %s but does not differentiate through it", name, op)
	}
}

// TestEveryExprFuncHasACase: every function of the index-expression
// table is called by a mask or score of some case, so TestEveryOp runs
// its Go spelling, interval function and derivative against the
// reference (also in -short runs).
func TestEveryExprFuncHasACase(t *testing.T) {
	used := map[string]bool{}
	for _, c := range opCases {
		cb := &caseBuilder{Builder: ir.NewBuilder(c.name)}
		c.build(cb)
		for _, in := range cb.M.Instrs {
			for _, attr := range []string{"mask", "score"} {
				in.Attrs.Expr(attr).Walk(func(x *ir.Expr) {
					if x.Kind == ir.ECall {
						used[x.Name] = true
					}
				})
			}
		}
	}
	for _, name := range ir.ExprFuncNames() {
		assert.True(t, used[name], "index function %s has no case in the every-op test: add it to attention_expr_funcs", name)
	}
}

// TestEveryOpCasesAreSound keeps the case list honest without building
// anything: each op of the table has a case (also in -short runs).
func TestEveryOpCasesAreSound(t *testing.T) {
	have := map[ir.Op]bool{}
	for _, c := range opCases {
		for _, op := range c.ops {
			have[op] = true
		}
	}
	var missing []string
	for _, op := range ir.AllOps() {
		if !have[op] {
			missing = append(missing, op.String())
		}
	}
	sort.Strings(missing)
	assert.Empty(t, missing, "ops without a case in the every-op test")
}
