package passes

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/attnc/attnc/ir"
	"github.com/attnc/attnc/ir/eval"
)

// A gradCase builds a small module around one op whose differentiable
// operands are params; the loss is Σ y·w for a random input w, so every
// element of y gets its own weight.
type gradCase struct {
	name  string
	syms  map[string]int64
	build func(c *gc) *ir.Instr
}

// gc helps build a gradCase.
type gc struct {
	b      *ir.Builder
	params map[string]*eval.Tensor
	inputs map[string]*eval.Tensor
	rng    *rand.Rand
	syms   map[string]int64
}

func shape(dims ...any) ir.Shape {
	var s ir.Shape
	for _, d := range dims {
		switch d := d.(type) {
		case int:
			s = append(s, ir.ConstDim(int64(d)))
		case string:
			s = append(s, ir.SymDim(d))
		}
	}
	return s
}

func (c *gc) concrete(s ir.Shape) []int {
	out, err := s.Eval(c.syms)
	if err != nil {
		panic(err)
	}
	return out
}

// param makes an f32 param with values from gen (normal by default).
func (c *gc) param(s ir.Shape, gen func() float64) *ir.Instr {
	name := fmt.Sprintf("p%d", len(c.params))
	in := c.b.MustGiven(ir.OpParam, ir.Type{DType: ir.F32, Shape: s}, ir.Attrs{"name": ir.StringAttr(name), "init": ir.WordAttr("zeros")})
	t := eval.NewTensor(ir.F32, c.concrete(s)...)
	if gen == nil {
		gen = c.rng.NormFloat64
	}
	for i := range t.Data {
		t.Data[i] = gen()
	}
	c.params[name] = t
	return in
}

func (c *gc) positive() float64 { return 0.5 + 1.5*c.rng.Float64() }
func (c *gc) unit() float64     { return 0.1 + 0.8*c.rng.Float64() }

// input makes an input with the given values generator.
func (c *gc) input(dt ir.DType, s ir.Shape, gen func() float64) *ir.Instr {
	name := fmt.Sprintf("x%d", len(c.inputs))
	in := c.b.MustGiven(ir.OpInput, ir.Type{DType: dt, Shape: s}, ir.Attrs{"name": ir.StringAttr(name)})
	t := eval.NewTensor(dt, c.concrete(s)...)
	for i := range t.Data {
		t.Data[i] = gen()
	}
	c.inputs[name] = t
	return in
}

func (c *gc) ints(s ir.Shape, lo, hi int) *ir.Instr {
	return c.input(ir.I32, s, func() float64 { return float64(lo + c.rng.IntN(hi-lo)) })
}

func (c *gc) op(op ir.Op, attrs ir.Attrs, args ...*ir.Instr) *ir.Instr {
	return c.b.Must(op, attrs, args...)
}

// cell builds a recur body.
type cell struct{ *ir.Builder }

func newCell(syms []string) cell { return cell{ir.NewBuilder("", syms...)} }

func (b cell) in(name string, s ir.Shape) *ir.Instr {
	return b.inT(name, ir.Type{DType: ir.F32, Shape: s})
}

func (b cell) inT(name string, t ir.Type) *ir.Instr {
	return b.MustGiven(ir.OpInput, t, ir.Attrs{"name": ir.StringAttr(name)})
}

func (b cell) op(op ir.Op, attrs ir.Attrs, args ...*ir.Instr) *ir.Instr {
	return b.Must(op, attrs, args...)
}

func (b cell) out(v *ir.Instr) { b.Output(ir.OutValue, "next", v) }

func ax(name string, v int64) ir.Attrs { return ir.Attrs{name: ir.IntAttr(v)} }

func unaryCases() []gradCase {
	var out []gradCase
	for _, op := range []ir.Op{ir.OpNeg, ir.OpAbs, ir.OpExp, ir.OpLog, ir.OpSqrt, ir.OpRsqrt, ir.OpTanh, ir.OpSigmoid, ir.OpRelu, ir.OpGelu, ir.OpGeluDeriv, ir.OpSilu, ir.OpSin, ir.OpCos} {
		op := op
		out = append(out, gradCase{name: op.String(), build: func(c *gc) *ir.Instr {
			var gen func() float64
			if op == ir.OpLog || op == ir.OpSqrt || op == ir.OpRsqrt {
				gen = c.positive
			}
			return c.op(op, nil, c.param(shape(2, 3), gen))
		}})
	}
	return out
}

func binaryCases() []gradCase {
	var out []gradCase
	for _, op := range []ir.Op{ir.OpAdd, ir.OpSub, ir.OpMul, ir.OpDiv, ir.OpMax, ir.OpMin, ir.OpPow} {
		op := op
		out = append(out, gradCase{name: op.String() + " broadcast", build: func(c *gc) *ir.Instr {
			var gen func() float64
			if op == ir.OpPow || op == ir.OpDiv {
				gen = c.positive
			}
			return c.op(op, nil, c.param(shape(2, 3), gen), c.param(shape(3), gen))
		}}, gradCase{name: op.String() + " keepdim broadcast", build: func(c *gc) *ir.Instr {
			var gen func() float64
			if op == ir.OpPow || op == ir.OpDiv {
				gen = c.positive
			}
			return c.op(op, nil, c.param(shape(2, 1), gen), c.param(shape(2, 3), gen))
		}})
	}
	return out
}

func attentionCases() []gradCase {
	qkv := func(c *gc) (q, k, v *ir.Instr) {
		return c.param(shape(1, 2, 4, 3), nil), c.param(shape(1, 2, 4, 3), nil), c.param(shape(1, 2, 4, 2), nil)
	}
	expr := func(s string) ir.Attr {
		e, err := ir.ParseExpr(s)
		if err != nil {
			panic(err)
		}
		return ir.ExprAttr(e)
	}
	return []gradCase{
		{name: "attention out", build: func(c *gc) *ir.Instr {
			q, k, v := qkv(c)
			return c.op(ir.OpAttention, ir.Attrs{"scale": ir.FloatAttr(0.5)}, q, k, v)
		}},
		{name: "attention causal", build: func(c *gc) *ir.Instr {
			q, k, v := qkv(c)
			return c.op(ir.OpAttention, ir.Attrs{"scale": ir.FloatAttr(0.5), "mask": expr("k <= q")}, q, k, v)
		}},
		{name: "attention relative bias reaches the bias", build: func(c *gc) *ir.Instr {
			q, k, v := qkv(c)
			bias := c.param(shape(2, 4), nil)
			return c.op(ir.OpAttention, ir.Attrs{"scale": ir.FloatAttr(0.5), "mask": expr("k <= q"),
				"score": expr("s + $0[h, clamp(q - k, 0, 3)]")}, q, k, v, bias)
		}},
		{name: "attention softcap and a bias read twice", build: func(c *gc) *ir.Instr {
			q, k, v := qkv(c)
			bias := c.param(shape(2, 4), nil)
			return c.op(ir.OpAttention, ir.Attrs{"scale": ir.FloatAttr(0.7),
				"score": expr("3.0 * tanh(s / 3.0) + $0[h, k] * $0[h, q]")}, q, k, v, bias)
		}},
		{name: "attention score through sin, cos, exp, log, floor and -inf", build: func(c *gc) *ir.Instr {
			q, k, v := qkv(c)
			return c.op(ir.OpAttention, ir.Attrs{"scale": ir.FloatAttr(0.6), "mask": expr("cos(0.9 * (q - k)) > -0.8"),
				"score": expr("where(k > q + 2, -inf, s + 0.5 * sin(s) * cos(0.3 * (q - k)) + 0.3 * log(1.0 + exp(s)) + 0.1 * floor(q / 2))")}, q, k, v)
		}},
		{name: "attention probs with a data mask", build: func(c *gc) *ir.Instr {
			q, k, _ := qkv(c)
			doc := c.ints(shape(1, 4), 0, 2)
			return c.op(ir.OpAttention, ir.Attrs{"scale": ir.FloatAttr(0.5), "returns": ir.WordAttr("probs"),
				"mask": expr("$0[b, q] == $0[b, k] || k == q")}, q, k, doc)
		}},
		{name: "attention logprobs", build: func(c *gc) *ir.Instr {
			q, k, _ := qkv(c)
			return c.op(ir.OpAttention, ir.Attrs{"scale": ir.FloatAttr(0.5), "returns": ir.WordAttr("logprobs")}, q, k)
		}},
		{name: "attention masked logprobs into cross_entropy (a pointer network)", build: func(c *gc) *ir.Instr {
			// Masked keys have log-probability -inf; the targets (k = q)
			// are always admitted, so the loss is finite.
			q, k, _ := qkv(c)
			logp := c.op(ir.OpAttention, ir.Attrs{"scale": ir.FloatAttr(0.5), "returns": ir.WordAttr("logprobs"),
				"mask": expr("k >= q - 1")}, q, k)
			flat := c.b.MustGiven(ir.OpReshape, ir.TensorOf(ir.F32, shape(8, 4)...), nil, logp)
			n := 0
			targets := c.input(ir.I32, shape(8), func() float64 { n++; return float64((n - 1) % 4) })
			return c.op(ir.OpCrossEntropy, nil, flat, targets)
		}},
		{name: "attention cross, Nq != Nk", build: func(c *gc) *ir.Instr {
			q := c.param(shape(2, 1, 3, 4), nil)
			k := c.param(shape(2, 1, 5, 4), nil)
			v := c.param(shape(2, 1, 5, 2), nil)
			return c.op(ir.OpAttention, ir.Attrs{"scale": ir.FloatAttr(0.5)}, q, k, v)
		}},
	}
}

func otherCases() []gradCase {
	red := func(op ir.Op, keep bool, axes ...int64) gradCase {
		return gradCase{name: fmt.Sprintf("%s %v keepdims=%v", op, axes, keep), build: func(c *gc) *ir.Instr {
			return c.op(op, ir.Attrs{"axes": ir.IntsAttr(axes...), "keepdims": ir.BoolAttr(keep)}, c.param(shape(2, 3, 4), nil))
		}}
	}
	return []gradCase{
		{name: "cast f32", build: func(c *gc) *ir.Instr {
			return c.op(ir.OpCast, ir.Attrs{"to": ir.DTypeAttr(ir.F32)}, c.param(shape(3), nil))
		}},
		{name: "select", build: func(c *gc) *ir.Instr {
			cond := c.input(ir.Bool, shape(2, 3), func() float64 { return float64(c.rng.IntN(2)) })
			return c.op(ir.OpSelect, nil, cond, c.param(shape(2, 3), nil), c.param(shape(3), nil))
		}},
		red(ir.OpReduceSum, false, 1), red(ir.OpReduceSum, true, 0, 2),
		red(ir.OpReduceMean, false, 0, 1), red(ir.OpReduceMean, true, 2),
		red(ir.OpReduceMax, false, 1), red(ir.OpReduceMax, true, 0, 2),
		red(ir.OpLogSumExp, false, 2), red(ir.OpLogSumExp, true, 0, 1),
		{name: "reduce_mean over a symbolic axis", syms: map[string]int64{"N": 5}, build: func(c *gc) *ir.Instr {
			return c.op(ir.OpReduceMean, ir.Attrs{"axes": ir.IntsAttr(0)}, c.param(shape("N", 2), nil))
		}},
		{name: "matmul batch broadcast", build: func(c *gc) *ir.Instr {
			return c.op(ir.OpMatMul, nil, c.param(shape(2, 3, 4), nil), c.param(shape(4, 5), nil))
		}},
		{name: "matmul both batched", build: func(c *gc) *ir.Instr {
			return c.op(ir.OpMatMul, nil, c.param(shape(2, 1, 3, 4), nil), c.param(shape(3, 4, 2), nil))
		}},
		{name: "einsum linear", build: func(c *gc) *ir.Instr {
			return c.op(ir.OpEinsum, ir.Attrs{"spec": ir.StringAttr("bnd,de->bne")}, c.param(shape(2, 3, 4), nil), c.param(shape(4, 2), nil))
		}},
		{name: "einsum with a letter summed away", build: func(c *gc) *ir.Instr {
			return c.op(ir.OpEinsum, ir.Attrs{"spec": ir.StringAttr("ij,jk->i")}, c.param(shape(2, 3), nil), c.param(shape(3, 4), nil))
		}},
		{name: "reshape", build: func(c *gc) *ir.Instr {
			return c.b.MustGiven(ir.OpReshape, ir.TensorOf(ir.F32, shape(3, 2)...), nil, c.param(shape(2, 3), nil))
		}},
		{name: "transpose", build: func(c *gc) *ir.Instr {
			return c.op(ir.OpTranspose, ir.Attrs{"perm": ir.IntsAttr(2, 0, 1)}, c.param(shape(2, 3, 4), nil))
		}},
		{name: "slice symbolic", syms: map[string]int64{"N": 5}, build: func(c *gc) *ir.Instr {
			return c.op(ir.OpSlice, ir.Attrs{"axis": ir.IntAttr(1), "start": ir.DimAttr(ir.ConstDim(1)), "end": ir.DimAttr(ir.SymDim("N").Sub(ir.ConstDim(1)))},
				c.param(shape(2, "N"), nil))
		}},
		{name: "pad", build: func(c *gc) *ir.Instr {
			return c.op(ir.OpPad, ir.Attrs{"axis": ir.IntAttr(0), "before": ir.DimAttr(ir.ConstDim(2)), "after": ir.DimAttr(ir.ConstDim(1))}, c.param(shape(2, 3), nil))
		}},
		{name: "concat", build: func(c *gc) *ir.Instr {
			return c.op(ir.OpConcat, ax("axis", 1), c.param(shape(2, 1), nil), c.param(shape(2, 3), nil))
		}},
		{name: "broadcast", build: func(c *gc) *ir.Instr {
			return c.b.MustGiven(ir.OpBroadcast, ir.TensorOf(ir.F32, shape(2, 3, 4)...), nil, c.param(shape(3, 1), nil))
		}},
		{name: "gather embedding with repeats", build: func(c *gc) *ir.Instr {
			return c.op(ir.OpGather, ax("axis", 0), c.param(shape(5, 3), nil), c.ints(shape(2, 4), 0, 5))
		}},
		{name: "gather batched", build: func(c *gc) *ir.Instr {
			return c.op(ir.OpGather, ir.Attrs{"axis": ir.IntAttr(1), "batch_dims": ir.IntAttr(1)}, c.param(shape(2, 4, 3), nil), c.ints(shape(2, 5), 0, 4))
		}},
		{name: "scatter_add", build: func(c *gc) *ir.Instr {
			return c.b.MustGiven(ir.OpScatterAdd, ir.TensorOf(ir.F32, shape(2, 4, 3)...), ir.Attrs{"axis": ir.IntAttr(1), "batch_dims": ir.IntAttr(1)},
				c.param(shape(2, 5, 3), nil), c.ints(shape(2, 5), 0, 4))
		}},
		{name: "softmax", build: func(c *gc) *ir.Instr {
			return c.op(ir.OpSoftmax, ax("axis", 0), c.param(shape(3, 4), nil))
		}},
		{name: "layer_norm", build: func(c *gc) *ir.Instr {
			return c.op(ir.OpLayerNorm, ir.Attrs{"eps": ir.FloatAttr(1e-5)}, c.param(shape(2, 5), nil))
		}},
		{name: "rms_norm", build: func(c *gc) *ir.Instr {
			return c.op(ir.OpRMSNorm, ir.Attrs{"eps": ir.FloatAttr(1e-6)}, c.param(shape(2, 5), nil))
		}},
		{name: "cross_entropy", build: func(c *gc) *ir.Instr {
			return c.op(ir.OpCrossEntropy, nil, c.param(shape(2, 3, 5), nil), c.ints(shape(2, 3), 0, 5))
		}},
		{name: "cross_entropy ignore_index", build: func(c *gc) *ir.Instr {
			// Two of the four positions are ignored, whatever the seed.
			n := 0
			targets := c.input(ir.I32, shape(4), func() float64 { n++; return []float64{-1, 2, 4, -1}[n-1] })
			return c.op(ir.OpCrossEntropy, ax("ignore_index", -1), c.param(shape(4, 5), nil), targets)
		}},
		{name: "scan forward", build: func(c *gc) *ir.Instr {
			return c.op(ir.OpScan, ax("axis", 1), c.param(shape(2, 5, 3), c.unit), c.param(shape(2, 5, 3), nil))
		}},
		{name: "scan reverse", build: func(c *gc) *ir.Instr {
			return c.op(ir.OpScan, ir.Attrs{"axis": ir.IntAttr(0), "reverse": ir.BoolAttr(true)}, c.param(shape(4, 2), c.unit), c.param(shape(4, 2), nil))
		}},
		// A gated cell: tanh(s·W + x·U) ⊙ σ(s), over 5 steps of a
		// sequence, every operand a param.
		{name: "recur gated cell", build: func(c *gc) *ir.Instr {
			body := newCell(c.b.M.Syms)
			st, x := body.in("state", shape(2, 3)), body.in("x", shape(2, 2))
			w, u := body.in("c0", shape(3, 3)), body.in("c1", shape(2, 3))
			pre := body.op(ir.OpAdd, nil, body.op(ir.OpMatMul, nil, st, w), body.op(ir.OpMatMul, nil, x, u))
			body.out(body.op(ir.OpMul, nil, body.op(ir.OpTanh, nil, pre), body.op(ir.OpSigmoid, nil, st)))
			return c.op(ir.OpRecur, ir.Attrs{"axis": ir.IntAttr(1), "body": ir.ModuleAttr(body.M)},
				c.param(shape(2, 3), nil), c.param(shape(2, 5, 2), nil), c.param(shape(3, 3), c.unit), c.param(shape(2, 3), nil))
		}},
		// A fixed number of steps, no sequence, stacked first.
		{name: "recur steps", build: func(c *gc) *ir.Instr {
			body := newCell(c.b.M.Syms)
			st, w := body.in("state", shape(3)), body.in("c0", shape(3))
			body.out(body.op(ir.OpAdd, nil, body.op(ir.OpMul, nil, st, w), body.op(ir.OpMul, nil, body.op(ir.OpSin, nil, st), st)))
			return c.op(ir.OpRecur, ir.Attrs{"axis": ir.IntAttr(0), "steps": ir.DimAttr(ir.ConstDim(4)), "body": ir.ModuleAttr(body.M)},
				c.param(shape(3), nil), c.param(shape(3), c.unit))
		}},
		// Token ids as the sequence: the cell embeds them from a
		// captured table, so only the table and the state get gradients.
		{name: "recur over token ids", syms: map[string]int64{"N": 4}, build: func(c *gc) *ir.Instr {
			body := newCell(c.b.M.Syms)
			st, x, e := body.in("state", shape(2, 3)), body.inT("x", ir.Type{DType: ir.I32, Shape: shape(2)}), body.in("c0", shape(5, 3))
			emb := body.op(ir.OpGather, ir.Attrs{"axis": ir.IntAttr(0), "batch_dims": ir.IntAttr(0)}, e, x)
			body.out(body.op(ir.OpTanh, nil, body.op(ir.OpAdd, nil, st, emb)))
			return c.op(ir.OpRecur, ir.Attrs{"axis": ir.IntAttr(1), "body": ir.ModuleAttr(body.M), "cell": ir.StringAttr("embed_cell")},
				c.param(shape(2, 3), nil), c.ints(shape(2, "N"), 0, 5), c.param(shape(5, 3), nil))
		}},
	}
}

func allGradCases() []gradCase {
	return append(append(append(unaryCases(), binaryCases()...), attentionCases()...), otherCases()...)
}

// build makes a gradCase's module: the op, then loss = Σ y·w.
func (tc gradCase) module(seed uint64) (*ir.Module, *gc, *ir.Instr) {
	var syms []string
	for s := range tc.syms {
		syms = append(syms, s)
	}
	c := &gc{b: ir.NewBuilder("grad", syms...), params: map[string]*eval.Tensor{}, inputs: map[string]*eval.Tensor{},
		rng: rand.New(rand.NewPCG(seed, 99)), syms: tc.syms}
	y := tc.build(c)
	if c.b.Err() != nil {
		return nil, c, nil
	}
	w := c.input(ir.F32, y.Type.Shape, c.rng.NormFloat64)
	all := make([]int64, y.Type.Rank())
	for i := range all {
		all[i] = int64(i)
	}
	loss := c.op(ir.OpReduceSum, ir.Attrs{"axes": ir.IntsAttr(all...)}, c.op(ir.OpMul, nil, y, w))
	c.b.Output(ir.OutLoss, "loss", loss)
	return c.b.M, c, y
}

func TestGradients(t *testing.T) {
	for _, tc := range allGradCases() {
		t.Run(tc.name, func(t *testing.T) {
			m, c, _ := tc.module(1)
			if err := c.b.Err(); err != nil {
				t.Fatalf("building: %v", err)
			}
			checkGradient(t, m, c.inputs, c.params, 1e-6)
		})
	}
}

// checkGradient runs Autodiff on m and compares every param's gradient,
// element by element, with central finite differences of the loss in
// float64. The relative error ‖ad - fd‖ / ‖fd‖ of each param must be at
// most tol.
func checkGradient(t *testing.T, m *ir.Module, inputs, params map[string]*eval.Tensor, tol float64) {
	t.Helper()
	forward := cloneModule(t, m)
	if err := Autodiff(m); err != nil {
		t.Fatalf("autodiff: %v", err)
	}
	if err := ir.Verify(m); err != nil {
		t.Fatalf("after autodiff: %v", err)
	}
	res, err := eval.Run(m, eval.Env{Inputs: inputs, Params: params})
	if err != nil {
		t.Fatalf("eval: %v", err)
	}
	loss := func() float64 {
		r, err := eval.Run(forward, eval.Env{Inputs: inputs, Params: params})
		if err != nil {
			t.Fatalf("eval: %v", err)
		}
		l, _ := r.Loss()
		return l
	}
	const h = 1e-6
	for _, o := range m.Outputs {
		if o.Kind != ir.OutGrad {
			continue
		}
		ad := res.Values[o.Value.ID]
		p := params[o.Name]
		var num, den float64
		for i := range p.Data {
			orig := p.Data[i]
			p.Data[i] = orig + h
			up := loss()
			p.Data[i] = orig - h
			down := loss()
			p.Data[i] = orig
			fd := (up - down) / (2 * h)
			num += (ad.Data[i] - fd) * (ad.Data[i] - fd)
			den += fd * fd
		}
		rel := math.Sqrt(num) / math.Max(math.Sqrt(den), 1e-12)
		if math.Sqrt(den) < 1e-9 && math.Sqrt(num) < 1e-9 {
			rel = 0 // a zero gradient, correctly zero
		}
		if rel > tol || math.IsNaN(rel) {
			t.Errorf("grad %s: relative error %.3g > %g\nautodiff %v\n", o.Name, rel, tol, ad)
		}
	}
}

func cloneModule(t *testing.T, m *ir.Module) *ir.Module {
	t.Helper()
	c, err := ir.Parse("clone.ir", ir.Print(m))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Every op has a gradient rule or is declared non-differentiable, and
// every rule has a finite-difference case.
func TestEveryOpHasAGradientRule(t *testing.T) {
	tested := map[ir.Op]bool{}
	for _, tc := range allGradCases() {
		_, _, y := tc.module(1)
		if y != nil {
			tested[y.Op] = true
		}
	}
	for _, op := range ir.AllOps() {
		_, rule := gradRules[op]
		_, none := nonDifferentiable[op]
		switch {
		case rule && none:
			t.Errorf("%s has a gradient rule and is listed as non-differentiable", op)
		case !rule && !none:
			t.Errorf("%s has no gradient rule; add one to gradRules or say why in nonDifferentiable", op)
		case rule && !tested[op]:
			t.Errorf("%s has a gradient rule but no finite-difference case", op)
		}
	}
}

// A module without a loss (a decode step, for inference) has nothing to
// differentiate: autodiff leaves it as it is.
func TestAutodiffWithoutALoss(t *testing.T) {
	b := ir.NewBuilder("noloss")
	c := b.MustGiven(ir.OpConst, ir.Type{DType: ir.F32}, ir.Attrs{"value": ir.FloatAttr(1)})
	b.Output(ir.OutValue, "c", c)
	before := ir.Print(b.M)
	if err := Autodiff(b.M); err != nil {
		t.Fatal(err)
	}
	if after := ir.Print(b.M); after != before {
		t.Errorf("autodiff changed a module without a loss:\n%s", after)
	}
}

// A param the loss does not use gets a zero gradient, and integer paths
// get none.
func TestUnusedParamGetsZeros(t *testing.T) {
	c := &gc{b: ir.NewBuilder("m"), params: map[string]*eval.Tensor{}, inputs: map[string]*eval.Tensor{}, rng: rand.New(rand.NewPCG(1, 2))}
	used := c.param(shape(3), nil)
	c.param(shape(2, 2), nil)
	loss := c.op(ir.OpReduceSum, ir.Attrs{"axes": ir.IntsAttr(0)}, used)
	c.b.Output(ir.OutLoss, "loss", loss)
	checkGradient(t, c.b.M, c.inputs, c.params, 1e-6)
	var grads int
	for _, o := range c.b.M.Outputs {
		if o.Kind == ir.OutGrad {
			grads++
		}
	}
	if grads != 2 {
		t.Errorf("%d gradients, want 2", grads)
	}
}

// TestAttentionBackwardIsOneOp: the gradient of an attention op with
// respect to q, k, v and a captured bias is one attention_grad, with the
// lse it needs from the forward op itself (now returning the pair), never
// from a second forward; the user's value becomes extract 0 of the pair.
func TestAttentionBackwardIsOneOp(t *testing.T) {
	c := &gc{b: ir.NewBuilder("m", "N"), params: map[string]*eval.Tensor{}, inputs: map[string]*eval.Tensor{}, rng: rand.New(rand.NewPCG(1, 2)),
		syms: map[string]int64{"N": 3}}
	q, k, v := c.param(shape(1, 2, 3, 4), nil), c.param(shape(1, 2, 3, 4), nil), c.param(shape(1, 2, 3, 2), nil)
	bias := c.param(shape(2, 4), nil)
	score, err := ir.ParseExpr("s + $0[h, clamp(q - k, 0, 3)]")
	if err != nil {
		t.Fatal(err)
	}
	y := c.op(ir.OpAttention, ir.Attrs{"scale": ir.FloatAttr(0.5), "score": ir.ExprAttr(score)}, q, k, v, bias)
	c.b.Output(ir.OutLoss, "loss", c.op(ir.OpReduceSum, ir.Attrs{"axes": ir.IntsAttr(0, 1, 2, 3)}, c.op(ir.OpMul, nil, y, y)))
	if err := Autodiff(c.b.M); err != nil {
		t.Fatal(err)
	}
	if err := ir.Verify(c.b.M); err != nil {
		t.Fatal(err)
	}
	count := map[ir.Op]int{}
	for _, in := range c.b.M.Instrs {
		count[in.Op]++
		if in.Op == ir.OpAttentionGrad {
			if w := in.Attrs.Ints("wrt"); fmt.Sprint(w) != "[0 1 2 3]" {
				t.Errorf("attention_grad wrt %v, want [0 1 2 3]", w)
			}
		}
	}
	if count[ir.OpAttention] != 1 || count[ir.OpAttentionGrad] != 1 {
		t.Errorf("%d attention and %d attention_grad ops, want 1 and 1:\n%s", count[ir.OpAttention], count[ir.OpAttentionGrad], ir.Print(c.b.M))
	}
	if y.Op != ir.OpExtract || !y.Args[0].Attrs.Bool("with_lse") {
		t.Errorf("the forward value is %s, want an extract of attention with_lse", y)
	}

	// with_lse is autodiff's own form: a module that has it is refused
	// rather than silently given no gradient.
	if err := Autodiff(withLSEModule(t)); err == nil {
		t.Error("differentiating through attention with_lse must be refused")
	}
}

func withLSEModule(t *testing.T) *ir.Module {
	b := ir.NewBuilder("m")
	q := b.MustGiven(ir.OpParam, ir.TensorOf(ir.F32, ir.ConstDim(1), ir.ConstDim(1), ir.ConstDim(2), ir.ConstDim(2)), ir.Attrs{"name": ir.StringAttr("q"), "init": ir.WordAttr("zeros")})
	pair := b.Must(ir.OpAttention, ir.Attrs{"scale": ir.FloatAttr(1), "with_lse": ir.BoolAttr(true)}, q, q, q)
	y := b.Must(ir.OpExtract, ir.Attrs{"index": ir.IntAttr(0)}, pair)
	b.Output(ir.OutLoss, "loss", b.Must(ir.OpReduceSum, ir.Attrs{"axes": ir.IntsAttr(0, 1, 2, 3)}, y))
	if err := b.Err(); err != nil {
		t.Fatal(err)
	}
	return b.M
}

// TestStopGradient: loss = Σ sg(w²)·w has gradient sg(w²) = w² (w² is a
// constant to it), not 3w², and the nograd pass then removes the op.
func TestStopGradient(t *testing.T) {
	b := ir.NewBuilder("m")
	w := b.MustGiven(ir.OpParam, ir.TensorOf(ir.F32, ir.ConstDim(3)), ir.Attrs{"name": ir.StringAttr("w"), "init": ir.WordAttr("normal")})
	sq := b.Must(ir.OpMul, nil, w, w)
	y := b.Must(ir.OpMul, nil, b.Must(ir.OpStopGradient, nil, sq), w)
	b.Output(ir.OutLoss, "loss", b.Must(ir.OpReduceSum, ir.Attrs{"axes": ir.IntsAttr(0)}, y))
	m := b.M
	if err := Autodiff(m); err != nil {
		t.Fatal(err)
	}
	if err := NoGrad(m); err != nil {
		t.Fatal(err)
	}
	if err := ir.Verify(m); err != nil {
		t.Fatal(err)
	}
	for _, in := range m.Instrs {
		if in.Op == ir.OpStopGradient {
			t.Fatalf("nograd left %%%d = stop_gradient", in.ID)
		}
	}
	wv := eval.FromData(ir.F32, []int{3}, []float64{1.5, -2, 0.5})
	res, err := eval.Run(m, eval.Env{Params: map[string]*eval.Tensor{"w": wv}})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range m.Outputs {
		if o.Kind != ir.OutGrad {
			continue
		}
		g := res.Values[o.Value.ID]
		for i, x := range wv.Data {
			if math.Abs(g.Data[i]-x*x) > 1e-12 {
				t.Errorf("grad[%d] = %v, want w² = %v", i, g.Data[i], x*x)
			}
		}
	}
}
