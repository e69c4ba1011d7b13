package passes

import (
	"fmt"
	"math"
	"strings"

	"github.com/attnc/attnc/ir"
)

// Autodiff appends the gradient of the loss with respect to every param.
//
// Requires: a verified module with a loss (an f32 scalar).
//
// Guarantees: for every param p, an output `grad "p" = %g` with p's type
// (zeros for a param the loss does not depend on); the forward
// instructions come first and compute what they did, but each attention
// op that is differentiated becomes an extract of `attention {with_lse}`
// placed before it (same value number, so its users are untouched). Gradients are computed in
// reverse mode, one rule per op (gradRules); an operand gets a gradient
// only if it depends on a param, so integer paths and inputs cost nothing.
//
// Why: training needs ∂loss/∂params. Attention's backward is its own op,
// attention_grad, one per attention op for all the operands that need a
// gradient, that recomputes probabilities from the row log-sum-exp the
// forward returned alongside its result, as FlashAttention-2 does, instead
// of storing the N×N probabilities; gradients reach tensors captured by
// score expressions (a relative-position bias indexed by q - k). scan's
// backward is a reverse scan.
//
// Requires also: no attention op with with_lse (autodiff's own form).
//
// Example (y = x·w, loss = sum(y)):
//
//	%2 = matmul %0, %1 : f32[B, 4]              %4 = const {value = 1.0} : f32[]
//	%3 = reduce_sum %2 {axes = [0, 1]} : f32[]  %5 = broadcast %4 : f32[B, 4]
//	loss %3                              ⟶     %6 = transpose %0 {perm = [1, 0]} : f32[3, B]
//	                                            %7 = matmul %6, %5 : f32[3, 4]
//	                                            grad "w" = %7
func Autodiff(m *ir.Module) error {
	loss := m.Loss()
	if loss == nil {
		// Nothing to differentiate: an inference module (a model's decode
		// step) has a forward function only.
		return nil
	}
	for _, o := range m.Outputs {
		if o.Kind == ir.OutGrad {
			return fmt.Errorf("autodiff: module %s already has gradients", m.Name)
		}
	}
	a := &adjoints{b: ir.Continue(m), adj: map[*ir.Instr]*ir.Instr{}}
	a.relevant = dependsOnParams(m)
	forward := append([]*ir.Instr(nil), m.Instrs...)
	if a.relevant[loss] {
		a.adj[loss] = a.constant(1)
	}
	if err := a.sweep(forward); err != nil {
		return err
	}
	for _, p := range m.Params() {
		g := a.adj[p]
		if g == nil {
			g = a.given(ir.OpBroadcast, p.Type, nil, a.constant(0))
		}
		a.b.Output(ir.OutGrad, p.Name(), g)
	}
	if err := a.b.Err(); err != nil {
		return fmt.Errorf("autodiff: %w", err)
	}
	return nil
}

// sweep runs the reverse pass over forward, from the adjoints set so far
// (the loss's, or a body's output's) to the leaves: params and inputs
// keep theirs in a.adj.
func (a *adjoints) sweep(forward []*ir.Instr) error {
	for i := len(forward) - 1; i >= 0; i-- {
		in := forward[i]
		dy := a.adj[in]
		if dy == nil || in.Op == ir.OpParam || in.Op == ir.OpInput {
			continue
		}
		rule, ok := gradRules[in.Op]
		if !ok {
			return fmt.Errorf("autodiff: %s has no gradient rule (%%%d = %s)", in.Op, in.ID, in.Op)
		}
		// A rule may rewrite in (attention becomes an extract of a pair):
		// the gradients are for the operands it had.
		args := in.Args
		need := make([]bool, len(args))
		for j, x := range args {
			need[j] = a.relevant[x]
		}
		grads, err := rule(a, in, dy, need)
		if err == nil {
			err = a.b.Err()
		}
		if err != nil {
			return fmt.Errorf("autodiff: gradient of %%%d = %s: %w", in.ID, in.Op, err)
		}
		for j, g := range grads {
			if g == nil || !need[j] {
				continue
			}
			x := args[j]
			if !g.Type.Equal(x.Type) {
				return fmt.Errorf("autodiff: internal error: gradient of %%%d = %s for operand %d is %s, want %s", in.ID, in.Op, j, g.Type, x.Type)
			}
			if prev := a.adj[x]; prev != nil {
				g = a.op(ir.OpAdd, nil, prev, g)
			}
			a.adj[x] = g
		}
	}
	return nil
}

// dependsOnParams marks the f32 values that depend on a param: only they
// need gradients.
func dependsOnParams(m *ir.Module) map[*ir.Instr]bool {
	return dependsOn(m, func(in *ir.Instr) bool { return in.Op == ir.OpParam })
}

// dependsOn marks the f32 values of m that depend on a source (an
// instruction for which source is true).
func dependsOn(m *ir.Module, source func(*ir.Instr) bool) map[*ir.Instr]bool {
	dep := map[*ir.Instr]bool{}
	for _, in := range m.Instrs {
		if in.Type.DType != ir.F32 && !in.Type.IsTuple() {
			continue
		}
		if source(in) {
			dep[in] = true
			continue
		}
		if in.Op == ir.OpStopGradient {
			continue // no gradient flows through it
		}
		for _, x := range in.Args {
			if dep[x] {
				dep[in] = true
				break
			}
		}
	}
	return dep
}

// adjoints builds the backward pass.
type adjoints struct {
	b        *ir.Builder
	adj      map[*ir.Instr]*ir.Instr // ∂loss/∂value, accumulated
	relevant map[*ir.Instr]bool
}

func (a *adjoints) op(op ir.Op, attrs ir.Attrs, args ...*ir.Instr) *ir.Instr {
	return a.b.Must(op, attrs, args...)
}

func (a *adjoints) given(op ir.Op, t ir.Type, attrs ir.Attrs, args ...*ir.Instr) *ir.Instr {
	return a.b.MustGiven(op, t, attrs, args...)
}

func (a *adjoints) constant(v float64) *ir.Instr {
	return a.given(ir.OpConst, ir.Type{DType: ir.F32}, ir.Attrs{"value": ir.FloatAttr(v)})
}

func (a *adjoints) mul(x, y *ir.Instr) *ir.Instr { return a.op(ir.OpMul, nil, x, y) }
func (a *adjoints) add(x, y *ir.Instr) *ir.Instr { return a.op(ir.OpAdd, nil, x, y) }
func (a *adjoints) sub(x, y *ir.Instr) *ir.Instr { return a.op(ir.OpSub, nil, x, y) }
func (a *adjoints) div(x, y *ir.Instr) *ir.Instr { return a.op(ir.OpDiv, nil, x, y) }
func (a *adjoints) neg(x *ir.Instr) *ir.Instr    { return a.op(ir.OpNeg, nil, x) }
func (a *adjoints) scale(x *ir.Instr, c float64) *ir.Instr {
	return a.mul(x, a.constant(c))
}

// zerosLike returns zeros of x's type... broadcast from a scalar.
func (a *adjoints) zerosLike(x *ir.Instr) *ir.Instr {
	return a.given(ir.OpBroadcast, x.Type, nil, a.constant(0))
}

func (a *adjoints) selectOr0(cond, x *ir.Instr, whenTrue bool) *ir.Instr {
	z := a.constant(0)
	if whenTrue {
		return a.op(ir.OpSelect, nil, cond, x, z)
	}
	return a.op(ir.OpSelect, nil, cond, z, x)
}

// unbroadcast sums g (a broadcast result) back to the type t of the
// operand that was broadcast: leading axes, then axes where t has 1.
func (a *adjoints) unbroadcast(g *ir.Instr, t ir.Type) *ir.Instr {
	if g.Type.Shape.Equal(t.Shape) {
		return g
	}
	lead := g.Type.Rank() - t.Rank()
	if lead > 0 {
		axes := make([]int64, lead)
		for i := range axes {
			axes[i] = int64(i)
		}
		g = a.op(ir.OpReduceSum, ir.Attrs{"axes": ir.IntsAttr(axes...)}, g)
	}
	var ones []int64
	for i, d := range t.Shape {
		if c, ok := d.IsConst(); ok && c == 1 {
			if gc, ok := g.Type.Shape[i].IsConst(); !ok || gc != 1 {
				ones = append(ones, int64(i))
			}
		}
	}
	if len(ones) > 0 {
		g = a.op(ir.OpReduceSum, ir.Attrs{"axes": ir.IntsAttr(ones...), "keepdims": ir.BoolAttr(true)}, g)
	}
	return g
}

// keep reshapes a reduction result y back to rank with 1s at axes, so it
// broadcasts against the reduction's operand.
func (a *adjoints) keep(y *ir.Instr, x ir.Type, axes []int, keepdims bool) *ir.Instr {
	if keepdims {
		return y
	}
	shape := append(ir.Shape{}, x.Shape...)
	for _, ax := range axes {
		shape[ax] = ir.ConstDim(1)
	}
	return a.given(ir.OpReshape, ir.Type{DType: y.Type.DType, Shape: shape}, nil, y)
}

func (a *adjoints) bcast(y *ir.Instr, t ir.Type) *ir.Instr {
	if y.Type.Shape.Equal(t.Shape) {
		return y
	}
	return a.given(ir.OpBroadcast, ir.Type{DType: y.Type.DType, Shape: t.Shape}, nil, y)
}

// count returns the number of elements over the axes of x as an f32
// scalar, through dim_size when a dim is symbolic.
func (a *adjoints) count(x ir.Type, axes []int) *ir.Instr {
	c := 1.0
	var out *ir.Instr
	for _, ax := range axes {
		d := x.Shape[ax]
		if v, ok := d.IsConst(); ok {
			c *= float64(v)
			continue
		}
		n := a.op(ir.OpDimSize, ir.Attrs{"dim": ir.DimAttr(d)})
		if out == nil {
			out = n
		} else {
			out = a.mul(out, n)
		}
	}
	switch {
	case out == nil:
		return a.constant(c)
	case c != 1:
		return a.scale(out, c)
	}
	return out
}

// meanKeep is the mean over the last axis, kept for broadcasting.
func (a *adjoints) meanKeep(x *ir.Instr) *ir.Instr {
	return a.op(ir.OpReduceMean, ir.Attrs{"axes": ir.IntsAttr(int64(x.Type.Rank() - 1)), "keepdims": ir.BoolAttr(true)}, x)
}

func (a *adjoints) sumKeep(x *ir.Instr, axis int) *ir.Instr {
	return a.op(ir.OpReduceSum, ir.Attrs{"axes": ir.IntsAttr(int64(axis)), "keepdims": ir.BoolAttr(true)}, x)
}

func lastTwoSwapped(rank int) []int64 {
	perm := make([]int64, rank)
	for i := range perm {
		perm[i] = int64(i)
	}
	perm[rank-1], perm[rank-2] = perm[rank-2], perm[rank-1]
	return perm
}

// A gradRule returns, for each operand of in that need marks, the
// gradient of the loss with respect to it given dy, the gradient with
// respect to in's result. Entries may be nil where need is false.
type gradRule func(a *adjoints, in, dy *ir.Instr, need []bool) ([]*ir.Instr, error)

// gradRules has a rule for every op that can carry a gradient;
// nonDifferentiable lists the rest. TestEveryOpHasAGradientRule keeps the
// two covering ir.AllOps.
var gradRules map[ir.Op]gradRule

// nonDifferentiable ops produce no f32 value that depends on a param
// (sources, comparisons, logic, argmax), or have no second derivative.
var nonDifferentiable = map[ir.Op]string{
	ir.OpParam:            "a leaf: its gradient is the output",
	ir.OpBuffer:           "state, not trained: its update rule sets it",
	ir.OpInput:            "inputs are data",
	ir.OpConst:            "constant",
	ir.OpIota:             "integer",
	ir.OpDimSize:          "a size",
	ir.OpNot:              "bool",
	ir.OpStopGradient:     "its value is a constant to autodiff (dependsOnParams stops at it)",
	ir.OpEq:               "bool",
	ir.OpNe:               "bool",
	ir.OpLt:               "bool",
	ir.OpLe:               "bool",
	ir.OpGt:               "bool",
	ir.OpGe:               "bool",
	ir.OpAnd:              "bool",
	ir.OpOr:               "bool",
	ir.OpArgMax:           "integer",
	ir.OpArgSort:          "integer",
	ir.OpMod:              "integer",
	ir.OpAttentionGrad:    "second derivatives are not supported",
	ir.OpLayerNormGrad:    "second derivatives are not supported",
	ir.OpRMSNormGrad:      "second derivatives are not supported",
	ir.OpCrossEntropyGrad: "second derivatives are not supported",
	ir.OpRecurGrad:        "second derivatives are not supported",
	ir.OpExtract:          "projects a multi-result op, which only autodiff creates (attention with_lse, attention_grad)",
}

func one(g *ir.Instr) []*ir.Instr { return []*ir.Instr{g} }

func init() {
	unary := func(f func(a *adjoints, x, y, dy *ir.Instr) *ir.Instr) gradRule {
		return func(a *adjoints, in, dy *ir.Instr, need []bool) ([]*ir.Instr, error) {
			return one(f(a, in.Args[0], in, dy)), nil
		}
	}
	gradRules = map[ir.Op]gradRule{
		ir.OpNeg: unary(func(a *adjoints, x, y, dy *ir.Instr) *ir.Instr { return a.neg(dy) }),
		ir.OpAbs: unary(func(a *adjoints, x, y, dy *ir.Instr) *ir.Instr {
			return a.op(ir.OpSelect, nil, a.op(ir.OpLt, nil, x, a.constant(0)), a.neg(dy), dy)
		}),
		ir.OpExp:  unary(func(a *adjoints, x, y, dy *ir.Instr) *ir.Instr { return a.mul(dy, y) }),
		ir.OpLog:  unary(func(a *adjoints, x, y, dy *ir.Instr) *ir.Instr { return a.div(dy, x) }),
		ir.OpSqrt: unary(func(a *adjoints, x, y, dy *ir.Instr) *ir.Instr { return a.div(a.scale(dy, 0.5), y) }),
		ir.OpRsqrt: unary(func(a *adjoints, x, y, dy *ir.Instr) *ir.Instr {
			return a.mul(a.scale(dy, -0.5), a.mul(y, a.mul(y, y)))
		}),
		ir.OpTanh: unary(func(a *adjoints, x, y, dy *ir.Instr) *ir.Instr {
			return a.mul(dy, a.sub(a.constant(1), a.mul(y, y)))
		}),
		ir.OpSigmoid: unary(func(a *adjoints, x, y, dy *ir.Instr) *ir.Instr {
			return a.mul(dy, a.mul(y, a.sub(a.constant(1), y)))
		}),
		ir.OpRelu: unary(func(a *adjoints, x, y, dy *ir.Instr) *ir.Instr {
			return a.selectOr0(a.op(ir.OpGt, nil, x, a.constant(0)), dy, true)
		}),
		ir.OpGelu: unary(geluGrad),
		ir.OpGeluDeriv: unary(func(a *adjoints, x, y, dy *ir.Instr) *ir.Instr {
			// gelu'' = (1 - t²)(u' - x·t·u'² + 0.5x·u''), t = tanh u,
			// u = c(x + kx³): a second derivative, rarely wanted, so
			// written plainly.
			const k = 0.044715
			c := math.Sqrt(2 / math.Pi)
			x2 := a.mul(x, x)
			t := a.op(ir.OpTanh, nil, a.scale(a.add(x, a.scale(a.mul(x2, x), k)), c))
			du := a.scale(a.add(a.constant(1), a.scale(x2, 3*k)), c)
			inner := a.add(a.sub(du, a.mul(a.mul(x, t), a.mul(du, du))), a.scale(x2, 3*c*k))
			return a.mul(dy, a.mul(a.sub(a.constant(1), a.mul(t, t)), inner))
		}),
		ir.OpSilu: unary(func(a *adjoints, x, y, dy *ir.Instr) *ir.Instr {
			s := a.op(ir.OpSigmoid, nil, x)
			// d/dx x·s(x) = s (1 + x (1 - s))
			return a.mul(dy, a.mul(s, a.add(a.constant(1), a.mul(x, a.sub(a.constant(1), s)))))
		}),
		ir.OpSin: unary(func(a *adjoints, x, y, dy *ir.Instr) *ir.Instr { return a.mul(dy, a.op(ir.OpCos, nil, x)) }),
		ir.OpCos: unary(func(a *adjoints, x, y, dy *ir.Instr) *ir.Instr {
			return a.neg(a.mul(dy, a.op(ir.OpSin, nil, x)))
		}),
		ir.OpCast: func(a *adjoints, in, dy *ir.Instr, need []bool) ([]*ir.Instr, error) {
			// Only f32 → f32 carries a gradient; casts to integers are
			// piecewise constant.
			return one(dy), nil
		},
		ir.OpAdd: func(a *adjoints, in, dy *ir.Instr, need []bool) ([]*ir.Instr, error) {
			return []*ir.Instr{a.grad(need[0], dy, in.Args[0]), a.grad(need[1], dy, in.Args[1])}, nil
		},
		ir.OpSub: func(a *adjoints, in, dy *ir.Instr, need []bool) ([]*ir.Instr, error) {
			return []*ir.Instr{a.grad(need[0], dy, in.Args[0]), a.gradFn(need[1], in.Args[1], func() *ir.Instr { return a.neg(dy) })}, nil
		},
		ir.OpMul: func(a *adjoints, in, dy *ir.Instr, need []bool) ([]*ir.Instr, error) {
			x, y := in.Args[0], in.Args[1]
			return []*ir.Instr{
				a.gradFn(need[0], x, func() *ir.Instr { return a.mul(dy, y) }),
				a.gradFn(need[1], y, func() *ir.Instr { return a.mul(dy, x) }),
			}, nil
		},
		ir.OpDiv: func(a *adjoints, in, dy *ir.Instr, need []bool) ([]*ir.Instr, error) {
			x, y := in.Args[0], in.Args[1]
			return []*ir.Instr{
				a.gradFn(need[0], x, func() *ir.Instr { return a.div(dy, y) }),
				a.gradFn(need[1], y, func() *ir.Instr { return a.neg(a.div(a.mul(dy, in), y)) }),
			}, nil
		},
		ir.OpMax: minMaxRule(ir.OpGe),
		ir.OpMin: minMaxRule(ir.OpLe),
		ir.OpPow: func(a *adjoints, in, dy *ir.Instr, need []bool) ([]*ir.Instr, error) {
			x, p := in.Args[0], in.Args[1]
			return []*ir.Instr{
				a.gradFn(need[0], x, func() *ir.Instr {
					return a.mul(dy, a.mul(p, a.op(ir.OpPow, nil, x, a.sub(p, a.constant(1)))))
				}),
				a.gradFn(need[1], p, func() *ir.Instr { return a.mul(dy, a.mul(in, a.op(ir.OpLog, nil, x))) }),
			}, nil
		},
		ir.OpSelect: func(a *adjoints, in, dy *ir.Instr, need []bool) ([]*ir.Instr, error) {
			c, x, y := in.Args[0], in.Args[1], in.Args[2]
			return []*ir.Instr{nil,
				a.gradFn(need[1], x, func() *ir.Instr { return a.selectOr0(c, dy, true) }),
				a.gradFn(need[2], y, func() *ir.Instr { return a.selectOr0(c, dy, false) }),
			}, nil
		},
		ir.OpReduceSum:  reduceRule,
		ir.OpReduceMean: reduceRule,
		ir.OpReduceMax: func(a *adjoints, in, dy *ir.Instr, need []bool) ([]*ir.Instr, error) {
			// Ties share the gradient equally.
			x := in.Args[0]
			axes, kd := in.Attrs.Ints("axes"), in.Attrs.Bool("keepdims")
			hit := a.op(ir.OpCast, ir.Attrs{"to": ir.DTypeAttr(ir.F32)}, a.op(ir.OpEq, nil, x, a.keep(in, x.Type, axes, kd)))
			n := a.op(ir.OpReduceSum, ir.Attrs{"axes": ir.IntsAttr(toInt64(axes)...), "keepdims": ir.BoolAttr(true)}, hit)
			return one(a.mul(a.bcast(a.div(a.keep(dy, x.Type, axes, kd), n), x.Type), hit)), nil
		},
		ir.OpLogSumExp: func(a *adjoints, in, dy *ir.Instr, need []bool) ([]*ir.Instr, error) {
			x := in.Args[0]
			axes, kd := in.Attrs.Ints("axes"), in.Attrs.Bool("keepdims")
			p := a.op(ir.OpExp, nil, a.sub(x, a.keep(in, x.Type, axes, kd)))
			return one(a.mul(p, a.keep(dy, x.Type, axes, kd))), nil
		},
		ir.OpMatMul: func(a *adjoints, in, dy *ir.Instr, need []bool) ([]*ir.Instr, error) {
			x, y := in.Args[0], in.Args[1]
			return []*ir.Instr{
				a.gradFn(need[0], x, func() *ir.Instr {
					yt := a.op(ir.OpTranspose, ir.Attrs{"perm": ir.IntsAttr(lastTwoSwapped(y.Type.Rank())...)}, y)
					return a.op(ir.OpMatMul, nil, dy, yt)
				}),
				a.gradFn(need[1], y, func() *ir.Instr {
					xt := a.op(ir.OpTranspose, ir.Attrs{"perm": ir.IntsAttr(lastTwoSwapped(x.Type.Rank())...)}, x)
					return a.op(ir.OpMatMul, nil, xt, dy)
				}),
			}, nil
		},
		ir.OpEinsum: einsumRule,
		ir.OpReshape: func(a *adjoints, in, dy *ir.Instr, need []bool) ([]*ir.Instr, error) {
			return one(a.given(ir.OpReshape, in.Args[0].Type, nil, dy)), nil
		},
		ir.OpTranspose: func(a *adjoints, in, dy *ir.Instr, need []bool) ([]*ir.Instr, error) {
			perm := in.Attrs.Ints("perm")
			inv := make([]int64, len(perm))
			for i, p := range perm {
				inv[p] = int64(i)
			}
			return one(a.op(ir.OpTranspose, ir.Attrs{"perm": ir.IntsAttr(inv...)}, dy)), nil
		},
		ir.OpSlice: func(a *adjoints, in, dy *ir.Instr, need []bool) ([]*ir.Instr, error) {
			x := in.Args[0]
			axis := in.Attrs.Int("axis")
			start, end := in.Attrs["start"].Dim, in.Attrs["end"].Dim
			return one(a.op(ir.OpPad, ir.Attrs{"axis": ir.IntAttr(int64(axis)), "before": ir.DimAttr(start),
				"after": ir.DimAttr(x.Type.Shape[axis].Sub(end))}, dy)), nil
		},
		ir.OpPad: func(a *adjoints, in, dy *ir.Instr, need []bool) ([]*ir.Instr, error) {
			x := in.Args[0]
			axis := in.Attrs.Int("axis")
			before := in.Attrs["before"].Dim
			return one(a.op(ir.OpSlice, ir.Attrs{"axis": ir.IntAttr(int64(axis)), "start": ir.DimAttr(before),
				"end": ir.DimAttr(before.Add(x.Type.Shape[axis]))}, dy)), nil
		},
		ir.OpConcat: func(a *adjoints, in, dy *ir.Instr, need []bool) ([]*ir.Instr, error) {
			axis := in.Attrs.Int("axis")
			out := make([]*ir.Instr, len(in.Args))
			off := ir.ConstDim(0)
			for j, x := range in.Args {
				end := off.Add(x.Type.Shape[axis])
				if need[j] {
					out[j] = a.op(ir.OpSlice, ir.Attrs{"axis": ir.IntAttr(int64(axis)), "start": ir.DimAttr(off), "end": ir.DimAttr(end)}, dy)
				}
				off = end
			}
			return out, nil
		},
		ir.OpBroadcast: func(a *adjoints, in, dy *ir.Instr, need []bool) ([]*ir.Instr, error) {
			return one(a.unbroadcast(dy, in.Args[0].Type)), nil
		},
		ir.OpGather: func(a *adjoints, in, dy *ir.Instr, need []bool) ([]*ir.Instr, error) {
			return []*ir.Instr{a.given(ir.OpScatterAdd, in.Args[0].Type, gatherAttrs(in), dy, in.Args[1]), nil}, nil
		},
		ir.OpScatterAdd: func(a *adjoints, in, dy *ir.Instr, need []bool) ([]*ir.Instr, error) {
			return []*ir.Instr{a.op(ir.OpGather, gatherAttrs(in), dy, in.Args[1]), nil}, nil
		},
		ir.OpSoftmax: func(a *adjoints, in, dy *ir.Instr, need []bool) ([]*ir.Instr, error) {
			axis := in.Attrs.Int("axis")
			return one(a.mul(in, a.sub(dy, a.sumKeep(a.mul(dy, in), axis)))), nil
		},
		// dx = r (dy - mean(dy) - y mean(dy y)), r = 1/√(var + eps), in
		// one op that recomputes y and r from x row by row rather than
		// a dozen elementwise ops and reductions over the whole tensor.
		ir.OpLayerNorm: func(a *adjoints, in, dy *ir.Instr, need []bool) ([]*ir.Instr, error) {
			if in.Attrs.Bool("affine") {
				return nil, fmt.Errorf("layer_norm with affine (made by the normparams pass, after autodiff) has no gradient rule")
			}
			return one(a.op(ir.OpLayerNormGrad, ir.Attrs{"eps": in.Attrs["eps"]}, in.Args[0], a.bcast(dy, in.Type))), nil
		},
		// dx = r (dy - y mean(dy y)), r = 1/√(mean(x²) + eps).
		ir.OpRMSNorm: func(a *adjoints, in, dy *ir.Instr, need []bool) ([]*ir.Instr, error) {
			if in.Attrs.Bool("affine") {
				return nil, fmt.Errorf("rms_norm with affine (made by the normparams pass, after autodiff) has no gradient rule")
			}
			return one(a.op(ir.OpRMSNormGrad, ir.Attrs{"eps": in.Attrs["eps"]}, in.Args[0], a.bcast(dy, in.Type))), nil
		},
		ir.OpCrossEntropy: crossEntropyRule,
		ir.OpAttention:    attentionRule,
		ir.OpScan:         scanRule,
		ir.OpRecur:        recurRule,
	}
}

// grad returns dy summed back to x's type when need is set.
func (a *adjoints) grad(need bool, dy, x *ir.Instr) *ir.Instr {
	if !need {
		return nil
	}
	return a.unbroadcast(dy, x.Type)
}

// gradFn computes a broadcast gradient only when it is needed.
func (a *adjoints) gradFn(need bool, x *ir.Instr, f func() *ir.Instr) *ir.Instr {
	if !need {
		return nil
	}
	return a.unbroadcast(f(), x.Type)
}

func toInt64(xs []int) []int64 {
	out := make([]int64, len(xs))
	for i, x := range xs {
		out[i] = int64(x)
	}
	return out
}

func gatherAttrs(in *ir.Instr) ir.Attrs {
	attrs := ir.Attrs{"axis": in.Attrs["axis"]}
	if in.Attrs.Has("batch_dims") {
		attrs["batch_dims"] = in.Attrs["batch_dims"]
	}
	return attrs
}

// geluGrad differentiates the tanh approximation
// 0.5x(1 + tanh(u)), u = c(x + 0.044715x³), c = √(2/π):
// 0.5(1 + t) + 0.5x(1 - t²)·c(1 + 3·0.044715x²).
// geluGrad is dy·gelu'(x), the derivative one op (gelu_deriv) with a
// vector kernel rather than the dozen elementwise steps of its formula.
func geluGrad(a *adjoints, x, y, dy *ir.Instr) *ir.Instr {
	return a.mul(dy, a.op(ir.OpGeluDeriv, nil, x))
}

func minMaxRule(cmp ir.Op) gradRule {
	return func(a *adjoints, in, dy *ir.Instr, need []bool) ([]*ir.Instr, error) {
		x, y := in.Args[0], in.Args[1]
		first := a.op(cmp, nil, x, y) // ties go to the first operand
		return []*ir.Instr{
			a.gradFn(need[0], x, func() *ir.Instr { return a.selectOr0(first, a.bcast(dy, in.Type), true) }),
			a.gradFn(need[1], y, func() *ir.Instr { return a.selectOr0(first, a.bcast(dy, in.Type), false) }),
		}, nil
	}
}

func reduceRule(a *adjoints, in, dy *ir.Instr, need []bool) ([]*ir.Instr, error) {
	x := in.Args[0]
	axes := in.Attrs.Ints("axes")
	g := a.bcast(a.keep(dy, x.Type, axes, in.Attrs.Bool("keepdims")), x.Type)
	if in.Op == ir.OpReduceMean {
		g = a.div(g, a.count(x.Type, axes))
	}
	return one(g), nil
}

// einsumRule: the gradient of operand i contracts dy with the other
// operands; a letter of operand i that appears nowhere else was summed
// away, so its gradient is broadcast along it.
func einsumRule(a *adjoints, in, dy *ir.Instr, need []bool) ([]*ir.Instr, error) {
	if in.Attrs.Bool("bias") {
		return nil, fmt.Errorf("einsum with a bias (made by the epilogue pass, after autodiff) has no gradient rule")
	}
	terms, out, err := ir.ParseEinsum(in.Attrs.Str("spec"), len(in.Args))
	if err != nil {
		return nil, err
	}
	grads := make([]*ir.Instr, len(in.Args))
	for i, x := range in.Args {
		if !need[i] {
			continue
		}
		term := terms[i]
		for j, r := range term {
			if strings.ContainsRune(term[j+1:], r) {
				return nil, fmt.Errorf("einsum %q repeats letter %q in operand %d: its gradient is not supported", in.Attrs.Str("spec"), r, i)
			}
		}
		var others []string
		var args []*ir.Instr
		for j, t := range terms {
			if j != i {
				others = append(others, t)
				args = append(args, in.Args[j])
			}
		}
		others = append(others, out)
		args = append(args, dy)
		avail := strings.Join(others, "")
		var kept []rune
		var shape ir.Shape
		for j, r := range term {
			if strings.ContainsRune(avail, r) {
				kept = append(kept, r)
				shape = append(shape, x.Type.Shape[j])
			} else {
				shape = append(shape, ir.ConstDim(1))
			}
		}
		g := a.op(ir.OpEinsum, ir.Attrs{"spec": ir.StringAttr(strings.Join(others, ",") + "->" + string(kept))}, args...)
		if len(kept) != len(term) {
			g = a.bcast(a.given(ir.OpReshape, ir.Type{DType: ir.F32, Shape: shape}, nil, g), x.Type)
		}
		grads[i] = g
	}
	return grads, nil
}

// crossEntropyRule: ∂/∂logits = (softmax(logits) - onehot(t)) · valid · dy / n,
// n the number of scored positions (at least 1, as the forward counts).
func crossEntropyRule(a *adjoints, in, dy *ir.Instr, need []bool) ([]*ir.Instr, error) {
	// dlogits = (softmax(logits) - onehot(target))·dy/n in one row kernel
	// (cross_entropy_grad), n the positions not ignored.
	attrs := ir.Attrs{}
	if in.Attrs.Has("ignore_index") {
		attrs["ignore_index"] = in.Attrs["ignore_index"]
	}
	return []*ir.Instr{a.op(ir.OpCrossEntropyGrad, attrs, in.Args[0], in.Args[1], dy), nil}, nil
}

// attentionRule differentiates an attention op with one attention_grad
// for every operand that needs a gradient. The forward op itself is
// rewritten to return lse alongside its result (with_lse, the same pass
// over the tiles; the original value becomes extract 0 of the pair), so
// the backward pass never reruns the forward, and the row sums D that
// each gradient needs are computed once, here, from y and dy:
// rowsum(dy ∘ y) for out, the same over the keys with y ≠ 0 for probs (a
// masked key's dy never counts, as in the definition), and the sum of dy
// over the keys with a finite log-probability for logprobs.
func attentionRule(a *adjoints, in, dy *ir.Instr, need []bool) ([]*ir.Instr, error) {
	returns := in.Attrs.Str("returns")
	if returns == "lse" {
		return nil, fmt.Errorf("the gradient of attention returning lse is not supported")
	}
	if in.Attrs.Bool("with_lse") {
		return nil, fmt.Errorf("attention with_lse is autodiff's own form; differentiate the plain op")
	}
	if ir.AttentionBNHD(in.Attrs) {
		return nil, fmt.Errorf("attention with layout bnhd is the layout pass's form, which runs after autodiff; differentiate the plain op")
	}
	fwd := in.Args
	attrs := ir.Attrs{}
	for key, val := range in.Attrs {
		attrs[key] = val
	}
	// Rewrite %y = attention(...) into %p = attention(...) {with_lse} and
	// %y = extract %p {index = 0}, keeping %y's identity for its users.
	pairAttrs := ir.Attrs{"with_lse": ir.BoolAttr(true)}
	for key, val := range attrs {
		pairAttrs[key] = val
	}
	pair := a.b.Before(in, ir.OpAttention, pairAttrs, fwd...)
	if pair == nil {
		return nil, a.b.Err()
	}
	// lse is taken out next to the pair, in the forward part, where its
	// memory comes alive.
	lse := a.b.Before(in, ir.OpExtract, ir.Attrs{"index": ir.IntAttr(1)}, pair)
	in.Op, in.Args, in.Attrs = ir.OpExtract, []*ir.Instr{pair}, ir.Attrs{"index": ir.IntAttr(0)}

	last := ir.Attrs{"axes": ir.IntsAttr(3)}
	var rs *ir.Instr
	switch returns {
	case "", "out":
		rs = a.op(ir.OpReduceSum, last, a.mul(dy, in))
	case "probs":
		rs = a.op(ir.OpReduceSum, last, a.selectOr0(a.op(ir.OpEq, nil, in, a.constant(0)), a.mul(dy, in), false))
	case "logprobs":
		rs = a.op(ir.OpReduceSum, last, a.selectOr0(a.op(ir.OpEq, nil, in, a.constant(math.Inf(-1))), dy, false))
	}
	var wrt []int64
	for j := range fwd {
		if need[j] {
			wrt = append(wrt, int64(j))
		}
	}
	out := make([]*ir.Instr, len(fwd))
	if len(wrt) == 0 {
		return out, nil
	}
	attrs["wrt"] = ir.IntsAttr(wrt...)
	grads := a.op(ir.OpAttentionGrad, attrs, append(append([]*ir.Instr(nil), fwd...), lse, rs, dy)...)
	for i, j := range wrt {
		out[j] = a.op(ir.OpExtract, ir.Attrs{"index": ir.IntAttr(int64(i))}, grads)
	}
	return out, nil
}

// scanRule: for h_t = a_t h_{t-1} + x_t, the adjoint g satisfies
// g_t = dy_t + a_{t+1} g_{t+1}, a scan in the other direction with the
// coefficients shifted by one; then dx = g and da_t = g_t h_{t-1}.
func scanRule(a *adjoints, in, dy *ir.Instr, need []bool) ([]*ir.Instr, error) {
	coef := in.Args[0]
	axis := in.Attrs.Int("axis")
	reverse := in.Attrs.Bool("reverse")
	n := in.Type.Shape[axis]
	unit := ir.ConstDim(1)
	// shift moves x one step along the scan direction (toward later t when
	// later is true), filling with zeros. It pads first and slices after,
	// so that an empty axis (N = 0) stays valid: slicing first would ask
	// for [0:N-1].
	shift := func(x *ir.Instr, later bool) *ir.Instr {
		pad := func(before, after ir.Dim) ir.Attrs {
			return ir.Attrs{"axis": ir.IntAttr(int64(axis)), "before": ir.DimAttr(before), "after": ir.DimAttr(after)}
		}
		slice := func(start, end ir.Dim) ir.Attrs {
			return ir.Attrs{"axis": ir.IntAttr(int64(axis)), "start": ir.DimAttr(start), "end": ir.DimAttr(end)}
		}
		if later {
			p := a.op(ir.OpPad, pad(unit, ir.ConstDim(0)), x)
			return a.op(ir.OpSlice, slice(ir.ConstDim(0), n), p)
		}
		p := a.op(ir.OpPad, pad(ir.ConstDim(0), unit), x)
		return a.op(ir.OpSlice, slice(unit, n.Add(unit)), p)
	}
	// In the scan's own direction "next" is t+1 (or t-1 when reverse).
	nextCoef := shift(coef, reverse)
	sattrs := ir.Attrs{"axis": ir.IntAttr(int64(axis))}
	if !reverse {
		sattrs["reverse"] = ir.BoolAttr(true)
	}
	g := a.op(ir.OpScan, sattrs, nextCoef, dy)
	out := []*ir.Instr{nil, nil}
	if need[0] {
		out[0] = a.mul(g, shift(in, !reverse))
	}
	if need[1] {
		out[1] = g
	}
	return out, nil
}
