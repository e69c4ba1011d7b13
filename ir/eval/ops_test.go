package eval_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/attnc/attnc/ir"
	"github.com/attnc/attnc/ir/eval"
)

// An opCase evaluates one instruction of op on small tensors and compares
// it with values computed by hand.
type opCase struct {
	op    ir.Op
	name  string
	syms  []string
	build func(c *ctx) *ir.Instr // returns the instruction to check
	want  *eval.Tensor
}

func attrs(kv ...any) ir.Attrs {
	a := ir.Attrs{}
	for i := 0; i < len(kv); i += 2 {
		a[kv[i].(string)] = kv[i+1].(ir.Attr)
	}
	return a
}

func axes(keep bool, ax ...int64) ir.Attrs {
	a := ir.Attrs{"axes": ir.IntsAttr(ax...)}
	if keep {
		a["keepdims"] = ir.BoolAttr(true)
	}
	return a
}

func unaryCase(op ir.Op, name string, x, want *eval.Tensor) opCase {
	return opCase{op: op, name: name, want: want, build: func(c *ctx) *ir.Instr { return c.op(op, nil, c.in(x)) }}
}

func binaryCase(op ir.Op, name string, x, y, want *eval.Tensor) opCase {
	return opCase{op: op, name: name, want: want, build: func(c *ctx) *ir.Instr { return c.op(op, nil, c.in(x), c.in(y)) }}
}

func castCase(name string, x *eval.Tensor, to ir.DType, want *eval.Tensor) opCase {
	return opCase{op: ir.OpCast, name: name, want: want, build: func(c *ctx) *ir.Instr {
		return c.op(ir.OpCast, attrs("to", ir.DTypeAttr(to)), c.in(x))
	}}
}

func reduceCase(op ir.Op, name string, x *eval.Tensor, a ir.Attrs, want *eval.Tensor) opCase {
	return opCase{op: op, name: name, want: want, build: func(c *ctx) *ir.Instr { return c.op(op, a, c.in(x)) }}
}

func attrCase(op ir.Op, name string, a ir.Attrs, want *eval.Tensor, xs ...*eval.Tensor) opCase {
	return opCase{op: op, name: name, want: want, build: func(c *ctx) *ir.Instr {
		args := make([]*ir.Instr, len(xs))
		for i, x := range xs {
			args[i] = c.in(x)
		}
		return c.op(op, a, args...)
	}}
}

func givenCase(op ir.Op, name string, a ir.Attrs, want *eval.Tensor, xs ...*eval.Tensor) opCase {
	return opCase{op: op, name: name, want: want, build: func(c *ctx) *ir.Instr {
		args := make([]*ir.Instr, len(xs))
		for i, x := range xs {
			args[i] = c.in(x)
		}
		return c.given(op, want.DType, want.Shape, a, args...)
	}}
}

var (
	ln2 = math.Log(2)
	ln3 = math.Log(3)
	// gelu(±1) with the tanh approximation, computed independently
	// (Python: 0.5*x*(1+tanh(sqrt(2/pi)*(x+0.044715*x**3)))).
	gelu1, geluM1 = 0.8411919906082768, -0.15880800939172324
	// gelu's derivative at 1, -1 and 3: mpmath's numerical derivative of
	// that formula at 30 digits (mpmath.diff).
	geluD1, geluDM1, geluD3 = 1.0829640838457826, -0.08296408384578255, 1.0115841666309697
)

// opCases holds the hand-computed cases, at least one per op (see
// TestEveryOpHasACase).
var opCases = []opCase{
	// Sources.
	{op: ir.OpParam, name: "given tensor", want: f32(sh(2), 1.5, -2), build: func(c *ctx) *ir.Instr {
		c.params["w"] = f32(sh(2), 1.5, -2)
		return c.given(ir.OpParam, ir.F32, sh(2), attrs("name", ir.StringAttr("w"), "init", ir.WordAttr("normal")))
	}},
	{op: ir.OpBuffer, name: "given tensor", want: f32(sh(2), 0.5, 3), build: func(c *ctx) *ir.Instr {
		c.params["ema"] = f32(sh(2), 0.5, 3)
		return c.given(ir.OpBuffer, ir.F32, sh(2), attrs("name", ir.StringAttr("ema"), "init", ir.WordAttr("zeros")))
	}},
	{op: ir.OpInput, name: "i32", want: i32(sh(3), -1, 0, 7), build: func(c *ctx) *ir.Instr {
		return c.in(i32(sh(3), -1, 0, 7))
	}},
	{op: ir.OpConst, name: "f32", want: f32(nil, 2.5), build: func(c *ctx) *ir.Instr {
		return c.given(ir.OpConst, ir.F32, nil, attrs("value", ir.FloatAttr(2.5)))
	}},
	{op: ir.OpConst, name: "i32 truncates", want: i32(nil, -3), build: func(c *ctx) *ir.Instr {
		return c.given(ir.OpConst, ir.I32, nil, attrs("value", ir.FloatAttr(-3.7)))
	}},
	{op: ir.OpIota, name: "axis 1", want: i32(sh(2, 3), 0, 1, 2, 0, 1, 2), build: func(c *ctx) *ir.Instr {
		return c.given(ir.OpIota, ir.I32, sh(2, 3), attrs("axis", ir.IntAttr(1)))
	}},
	{op: ir.OpIota, name: "axis 0 symbolic", syms: []string{"N"}, want: i32(sh(3, 2), 0, 0, 1, 1, 2, 2), build: func(c *ctx) *ir.Instr {
		c.in(f32(sh(3), 0, 0, 0), sym("N")) // binds N = 3
		return c.b.MustGiven(ir.OpIota, ir.TensorOf(ir.I32, sym("N"), cd(2)), attrs("axis", ir.IntAttr(0)))
	}},

	// Elementwise unary.
	unaryCase(ir.OpNeg, "f32", f32(sh(3), 1.5, -2, 0), f32(sh(3), -1.5, 2, 0)),
	unaryCase(ir.OpNeg, "i32 wraps", i32(sh(3), -3, 4, math.MinInt32), i32(sh(3), 3, -4, math.MinInt32)),
	unaryCase(ir.OpAbs, "f32", f32(sh(3), -1.5, 2, 0), f32(sh(3), 1.5, 2, 0)),
	unaryCase(ir.OpAbs, "i32", i32(sh(2), -7, 3), i32(sh(2), 7, 3)),
	unaryCase(ir.OpExp, "f32", f32(sh(4), 0, 1, ln2, -inf), f32(sh(4), 1, math.E, 2, 0)),
	unaryCase(ir.OpLog, "f32 with 0 and negative", f32(sh(4), 1, math.E, 0, -1), f32(sh(4), 0, 1, -inf, nan)),
	unaryCase(ir.OpSqrt, "f32", f32(sh(3), 4, 2.25, 0), f32(sh(3), 2, 1.5, 0)),
	unaryCase(ir.OpRsqrt, "f32", f32(sh(2), 4, 0.25), f32(sh(2), 0.5, 2)),
	unaryCase(ir.OpTanh, "f32", f32(sh(3), 0, ln3, -ln3), f32(sh(3), 0, 0.8, -0.8)),
	unaryCase(ir.OpSigmoid, "f32", f32(sh(3), 0, ln3, -ln3), f32(sh(3), 0.5, 0.75, 0.25)),
	unaryCase(ir.OpRelu, "f32", f32(sh(3), -2, 0, 3.5), f32(sh(3), 0, 0, 3.5)),
	unaryCase(ir.OpGelu, "f32", f32(sh(3), 0, 1, -1), f32(sh(3), 0, gelu1, geluM1)),
	unaryCase(ir.OpGeluDeriv, "f32", f32(sh(4), 0, 1, -1, 3), f32(sh(4), 0.5, geluD1, geluDM1, geluD3)),
	unaryCase(ir.OpSilu, "f32", f32(sh(3), 0, ln3, -ln3), f32(sh(3), 0, 0.75*ln3, -0.25*ln3)),
	unaryCase(ir.OpSin, "f32", f32(sh(3), 0, math.Pi/2, math.Pi/6), f32(sh(3), 0, 1, 0.5)),
	unaryCase(ir.OpCos, "f32", f32(sh(3), 0, math.Pi, math.Pi/3), f32(sh(3), 1, -1, 0.5)),
	unaryCase(ir.OpNot, "bool", boolT(sh(2), 1, 0), boolT(sh(2), 0, 1)),
	unaryCase(ir.OpStopGradient, "identity", f32(sh(3), 1.5, -2, 0), f32(sh(3), 1.5, -2, 0)),
	castCase("f32 to i32 truncates toward zero", f32(sh(4), 1.7, -1.7, -0.5, 3), ir.I32, i32(sh(4), 1, -1, 0, 3)),
	castCase("bool to f32", boolT(sh(2), 1, 0), ir.F32, f32(sh(2), 1, 0)),
	castCase("i32 to bool", i32(sh(3), 0, -2, 5), ir.Bool, boolT(sh(3), 0, 1, 1)),
	castCase("f32 to bool", f32(sh(2), 0, 0.5), ir.Bool, boolT(sh(2), 0, 1)),
	castCase("i32 to f32", i32(sh(2), -4, 9), ir.F32, f32(sh(2), -4, 9)),

	// Elementwise binary.
	binaryCase(ir.OpAdd, "f32 row broadcast", f32(sh(2, 3), 1, 2, 3, 4, 5, 6), f32(sh(3), 10, 20, 30), f32(sh(2, 3), 11, 22, 33, 14, 25, 36)),
	binaryCase(ir.OpAdd, "i32 negative", i32(sh(2), -5, 3), i32(sh(2), 2, -7), i32(sh(2), -3, -4)),
	binaryCase(ir.OpAdd, "i32 wraps", i32(sh(1), math.MaxInt32), i32(sh(1), 1), i32(sh(1), math.MinInt32)),
	binaryCase(ir.OpSub, "column minus row", f32(sh(2, 1), 1, 2), f32(sh(1, 3), 10, 20, 30), f32(sh(2, 3), -9, -19, -29, -8, -18, -28)),
	binaryCase(ir.OpSub, "i32 scalar broadcast", i32(nil, -3), i32(sh(2), 5, -5), i32(sh(2), -8, 2)),
	binaryCase(ir.OpMul, "f32 by scalar", f32(sh(2, 2), 1, 2, 3, 4), f32(nil, -0.5), f32(sh(2, 2), -0.5, -1, -1.5, -2)),
	binaryCase(ir.OpMul, "i32 negative", i32(sh(2), -3, 4), i32(sh(2), -2, -5), i32(sh(2), 6, -20)),
	binaryCase(ir.OpMul, "i32 wraps", i32(sh(2), 65536, 65537), i32(sh(2), 65536, 65536), i32(sh(2), 0, 65536)),
	binaryCase(ir.OpDiv, "f32 with zero", f32(sh(4), 1, -3, 1, 0), f32(sh(4), 4, 2, 0, 0), f32(sh(4), 0.25, -1.5, inf, nan)),
	binaryCase(ir.OpDiv, "i32 floors", i32(sh(6), 7, -7, 7, -7, 6, math.MinInt32), i32(sh(6), 2, 2, -2, -2, 3, -1), i32(sh(6), 3, -4, -4, 3, 2, math.MinInt32)),
	binaryCase(ir.OpMod, "i32 takes the divisor's sign", i32(sh(6), 7, -7, 7, -7, 6, math.MinInt32), i32(sh(6), 2, 2, -2, -2, 3, -1), i32(sh(6), 1, 1, -1, -1, 0, 0)),
	binaryCase(ir.OpMax, "f32 NaN propagates", f32(sh(4), 1, -2, nan, inf), f32(sh(4), 0, -3, 1, nan), f32(sh(4), 1, -2, nan, nan)),
	binaryCase(ir.OpMax, "i32", i32(sh(2), -5, 7), i32(sh(2), -6, 2), i32(sh(2), -5, 7)),
	binaryCase(ir.OpMin, "f32", f32(sh(3), 1, -2, nan), f32(sh(3), 0, -3, 1), f32(sh(3), 0, -3, nan)),
	binaryCase(ir.OpMin, "i32", i32(sh(2), -5, 7), i32(sh(2), -6, 2), i32(sh(2), -6, 2)),
	binaryCase(ir.OpPow, "f32", f32(sh(3), 2, 9, 2), f32(sh(3), 3, 0.5, -1), f32(sh(3), 8, 3, 0.5)),
	binaryCase(ir.OpEq, "f32 with NaN", f32(sh(3), 1, 2, nan), f32(sh(3), 1, 3, nan), boolT(sh(3), 1, 0, 0)),
	binaryCase(ir.OpEq, "bool", boolT(sh(2), 1, 0), boolT(sh(2), 1, 1), boolT(sh(2), 1, 0)),
	binaryCase(ir.OpNe, "f32 with NaN", f32(sh(3), 1, 2, nan), f32(sh(3), 1, 3, nan), boolT(sh(3), 0, 1, 1)),
	binaryCase(ir.OpLt, "i32", i32(sh(3), -1, 2, 3), i32(sh(3), 0, 2, 1), boolT(sh(3), 1, 0, 0)),
	binaryCase(ir.OpLe, "i32", i32(sh(3), -1, 2, 3), i32(sh(3), 0, 2, 1), boolT(sh(3), 1, 1, 0)),
	binaryCase(ir.OpGt, "f32 broadcast", f32(sh(3), -1, 2, 3), f32(nil, 2), boolT(sh(3), 0, 0, 1)),
	binaryCase(ir.OpGe, "f32 broadcast", f32(sh(3), -1, 2, 3), f32(nil, 2), boolT(sh(3), 0, 1, 1)),
	binaryCase(ir.OpAnd, "bool", boolT(sh(4), 1, 1, 0, 0), boolT(sh(4), 1, 0, 1, 0), boolT(sh(4), 1, 0, 0, 0)),
	binaryCase(ir.OpOr, "bool", boolT(sh(4), 1, 1, 0, 0), boolT(sh(4), 1, 0, 1, 0), boolT(sh(4), 1, 1, 1, 0)),
	attrCase(ir.OpSelect, "all three broadcast", nil, f32(sh(2, 3), 1, 2, 3, -1, -1, -1),
		boolT(sh(2, 1), 1, 0), f32(sh(3), 1, 2, 3), f32(nil, -1)),

	// Reductions.
	reduceCase(ir.OpReduceSum, "last axis", f32(sh(2, 3), 1, 2, 3, 4, 5, 6), axes(false, 1), f32(sh(2), 6, 15)),
	reduceCase(ir.OpReduceSum, "first axis keepdims", f32(sh(2, 3), 1, 2, 3, 4, 5, 6), axes(true, 0), f32(sh(1, 3), 5, 7, 9)),
	reduceCase(ir.OpReduceSum, "all axes", f32(sh(2, 3), 1, 2, 3, 4, 5, 6), axes(false, 0, 1), f32(nil, 21)),
	reduceCase(ir.OpReduceSum, "middle axis of rank 3", f32(sh(2, 2, 2), 1, 2, 3, 4, 5, 6, 7, 8), axes(false, 1), f32(sh(2, 2), 4, 6, 12, 14)),
	reduceCase(ir.OpReduceSum, "i32 negative", i32(sh(2, 2), -1, -2, 3, -4), axes(false, 0), i32(sh(2), 2, -6)),
	reduceCase(ir.OpReduceMax, "keepdims", f32(sh(2, 3), 1, 3, 2, 6, -4, 5), axes(true, 1), f32(sh(2, 1), 3, 6)),
	reduceCase(ir.OpReduceMax, "i32 negative", i32(sh(3), -5, -2, -9), axes(false, 0), i32(nil, -2)),
	reduceCase(ir.OpReduceMax, "NaN propagates", f32(sh(2, 2), 1, nan, inf, 2), axes(false, 1), f32(sh(2), nan, inf)),
	reduceCase(ir.OpReduceMean, "first axis", f32(sh(2, 3), 1, 2, 3, 4, 5, 6), axes(false, 0), f32(sh(3), 2.5, 3.5, 4.5)),
	reduceCase(ir.OpReduceMean, "keepdims both", f32(sh(2, 2), 1, 2, 3, 6), axes(true, 0, 1), f32(sh(1, 1), 3)),
	reduceCase(ir.OpLogSumExp, "small", f32(sh(2, 2), 0, ln3, ln2, ln2), axes(false, 1), f32(sh(2), 2*ln2, 2*ln2)),
	reduceCase(ir.OpLogSumExp, "large inputs are stable", f32(sh(2, 2), 1000, 1001, -1000, -1000), axes(false, 1),
		f32(sh(2), 1001+math.Log1p(math.Exp(-1)), -1000+ln2)),
	reduceCase(ir.OpLogSumExp, "all -inf row gives -inf", f32(sh(2, 2), -inf, -inf, 0, -inf), axes(true, 1), f32(sh(2, 1), -inf, 0)),
	reduceCase(ir.OpLogSumExp, "+inf", f32(sh(2), 1, inf), axes(false, 0), f32(nil, inf)),
	attrCase(ir.OpArgMax, "first on ties", attrs("axis", ir.IntAttr(1)), i32(sh(2), 1, 0), f32(sh(2, 3), 1, 3, 3, 5, -1, 5)),
	attrCase(ir.OpArgMax, "axis 0", attrs("axis", ir.IntAttr(0)), i32(sh(3), 1, 0, 1), f32(sh(2, 3), 1, 3, 3, 5, -1, 5)),
	attrCase(ir.OpArgMax, "i32 negative", attrs("axis", ir.IntAttr(0)), i32(nil, 2), i32(sh(3), -5, -7, -1)),
	attrCase(ir.OpArgSort, "rows, ties in order, NaN last", nil, i32(sh(2, 4), 3, 1, 2, 0, 1, 0, 3, 2), f32(sh(2, 4), math.NaN(), 2, 2, -1, 0, -5, 7, 0)),
	attrCase(ir.OpArgSort, "descending, NaN first", attrs("descending", ir.BoolAttr(true)), i32(sh(2, 4), 0, 1, 2, 3, 2, 0, 3, 1), f32(sh(2, 4), math.NaN(), 2, 2, -1, 0, -5, 7, 0)),
	attrCase(ir.OpArgSort, "i32", nil, i32(sh(3), 1, 0, 2), i32(sh(3), 4, -3, 4)),

	// Contractions.
	attrCase(ir.OpMatMul, "2x3 by 3x2", nil, f32(sh(2, 2), 58, 64, 139, 154),
		f32(sh(2, 3), 1, 2, 3, 4, 5, 6), f32(sh(3, 2), 7, 8, 9, 10, 11, 12)),
	attrCase(ir.OpMatMul, "batch broadcast", nil, f32(sh(2, 1, 1), 17, 39),
		f32(sh(2, 1, 2), 1, 2, 3, 4), f32(sh(2, 1), 5, 6)),
	attrCase(ir.OpMatMul, "batch 1 against batch 2", nil, f32(sh(2, 2, 1), 1, 3, -2, -4),
		f32(sh(1, 2, 2), 1, 0, 0, 1), f32(sh(2, 2, 1), 1, 3, -2, -4)),
	attrCase(ir.OpEinsum, "matmul", attrs("spec", ir.StringAttr("ij,jk->ik")), f32(sh(2, 2), 58, 64, 139, 154),
		f32(sh(2, 3), 1, 2, 3, 4, 5, 6), f32(sh(3, 2), 7, 8, 9, 10, 11, 12)),
	attrCase(ir.OpEinsum, "matmul with a bias", attrs("spec", ir.StringAttr("ij,jk->ik"), "bias", ir.BoolAttr(true)), f32(sh(2, 2), 58.5, 62, 139.5, 152),
		f32(sh(2, 3), 1, 2, 3, 4, 5, 6), f32(sh(3, 2), 7, 8, 9, 10, 11, 12), f32(sh(2), 0.5, -2)),
	attrCase(ir.OpEinsum, "diagonal", attrs("spec", ir.StringAttr("ii->i")), f32(sh(2), 1, 4), f32(sh(2, 2), 1, 2, 3, 4)),
	attrCase(ir.OpEinsum, "total", attrs("spec", ir.StringAttr("ij->")), f32(nil, 10), f32(sh(2, 2), 1, 2, 3, 4)),
	attrCase(ir.OpEinsum, "outer", attrs("spec", ir.StringAttr("i,j->ji")), f32(sh(3, 2), 1, 2, 3, 6, -1, -2),
		f32(sh(2), 1, 2), f32(sh(3), 1, 3, -1)),
	attrCase(ir.OpEinsum, "batched, contracting the last dims", attrs("spec", ir.StringAttr("bij,bkj->bik")),
		f32(sh(2, 1, 2), 1, 2, 8, 12),
		f32(sh(2, 1, 2), 1, 0, 2, 2), f32(sh(2, 2, 2), 1, 5, 2, 7, 1, 3, 2, 4)),
	attrCase(ir.OpEinsum, "three operands", attrs("spec", ir.StringAttr("i,i,i->")), f32(nil, 1*4*7+2*5*8+3*6*9),
		f32(sh(3), 1, 2, 3), f32(sh(3), 4, 5, 6), f32(sh(3), 7, 8, 9)),

	// Layout.
	givenCase(ir.OpReshape, "2x3 to 3x2", nil, f32(sh(3, 2), 1, 2, 3, 4, 5, 6), f32(sh(2, 3), 1, 2, 3, 4, 5, 6)),
	attrCase(ir.OpTranspose, "2d", attrs("perm", ir.IntsAttr(1, 0)), f32(sh(3, 2), 1, 4, 2, 5, 3, 6), f32(sh(2, 3), 1, 2, 3, 4, 5, 6)),
	// x[i][j][k] = 100i+10j+k with shape [2,2,3]; out[k][i][j] = x[i][j][k].
	attrCase(ir.OpTranspose, "3d", attrs("perm", ir.IntsAttr(2, 0, 1)),
		f32(sh(3, 2, 2), 0, 10, 100, 110, 1, 11, 101, 111, 2, 12, 102, 112),
		f32(sh(2, 2, 3), 0, 1, 2, 10, 11, 12, 100, 101, 102, 110, 111, 112)),
	attrCase(ir.OpSlice, "constant bounds", attrs("axis", ir.IntAttr(1), "start", ir.DimAttr(cd(1)), "end", ir.DimAttr(cd(3))),
		f32(sh(2, 2), 1, 2, 5, 6), f32(sh(2, 4), 0, 1, 2, 3, 4, 5, 6, 7)),
	{op: ir.OpSlice, name: "symbolic bounds", syms: []string{"N"}, want: f32(sh(3), 11, 12, 13), build: func(c *ctx) *ir.Instr {
		x := c.in(f32(sh(5), 10, 11, 12, 13, 14), sym("N"))
		return c.op(ir.OpSlice, attrs("axis", ir.IntAttr(0), "start", ir.DimAttr(cd(1)), "end", ir.DimAttr(sym("N").Sub(cd(1)))), x)
	}},
	attrCase(ir.OpConcat, "axis 0", attrs("axis", ir.IntAttr(0)), f32(sh(3, 2), 1, 2, 3, 4, 5, 6),
		f32(sh(1, 2), 1, 2), f32(sh(2, 2), 3, 4, 5, 6)),
	attrCase(ir.OpConcat, "axis 1, three operands", attrs("axis", ir.IntAttr(1)), f32(sh(2, 4), 1, 2, 3, 4, 5, 6, 7, 8),
		f32(sh(2, 1), 1, 5), f32(sh(2, 2), 2, 3, 6, 7), f32(sh(2, 1), 4, 8)),
	givenCase(ir.OpBroadcast, "row", nil, f32(sh(2, 3), 1, 2, 3, 1, 2, 3), f32(sh(3), 1, 2, 3)),
	givenCase(ir.OpBroadcast, "column", nil, i32(sh(2, 3), 1, 1, 1, -2, -2, -2), i32(sh(2, 1), 1, -2)),
	attrCase(ir.OpGather, "embedding", attrs("axis", ir.IntAttr(0)), f32(sh(2, 2, 2), 5, 6, 1, 2, 3, 4, 3, 4),
		f32(sh(3, 2), 1, 2, 3, 4, 5, 6), i32(sh(2, 2), 2, 0, 1, 1)),
	attrCase(ir.OpGather, "axis 1", attrs("axis", ir.IntAttr(1)), f32(sh(2, 2), 3, 1, 6, 4),
		f32(sh(2, 3), 1, 2, 3, 4, 5, 6), i32(sh(2), 2, 0)),
	attrCase(ir.OpGather, "batch_dims 1", attrs("axis", ir.IntAttr(1), "batch_dims", ir.IntAttr(1)), f32(sh(2, 2), 1, 3, 5, 5),
		f32(sh(2, 3), 1, 2, 3, 4, 5, 6), i32(sh(2, 2), 0, 2, 1, 1)),
	// table [2,3,2], idx [2], axis 1: out [2,2,2] = table[i, idx[j], k].
	attrCase(ir.OpGather, "middle axis with trailing dims", attrs("axis", ir.IntAttr(1)),
		f32(sh(2, 2, 2), 4, 5, 0, 1, 14, 15, 10, 11),
		f32(sh(2, 3, 2), 0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15), i32(sh(2), 2, 0)),
	givenCase(ir.OpScatterAdd, "repeated indices add", attrs("axis", ir.IntAttr(0)), f32(sh(3), 1, 0, 2+3+4),
		f32(sh(2, 2), 1, 2, 3, 4), i32(sh(2, 2), 0, 2, 2, 2)),
	givenCase(ir.OpScatterAdd, "batch_dims 1", attrs("axis", ir.IntAttr(1), "batch_dims", ir.IntAttr(1)),
		f32(sh(2, 3), 1+2, 0, 0, 0, 4, 3),
		f32(sh(2, 2), 1, 2, 3, 4), i32(sh(2, 2), 0, 0, 2, 1)),

	// Composites.
	attrCase(ir.OpSoftmax, "last axis", attrs("axis", ir.IntAttr(1)), f32(sh(2, 2), 0.25, 0.75, 0.5, 0.5),
		f32(sh(2, 2), 0, ln3, 7, 7)),
	attrCase(ir.OpSoftmax, "large inputs are stable", attrs("axis", ir.IntAttr(0)),
		f32(sh(2), 1/(1+math.E), math.E/(1+math.E)), f32(sh(2), 1000, 1001)),
	attrCase(ir.OpSoftmax, "axis 0 of a matrix", attrs("axis", ir.IntAttr(0)), f32(sh(2, 2), 0.25, 0.5, 0.75, 0.5),
		f32(sh(2, 2), -ln3, 1, 0, 1)),
	attrCase(ir.OpLayerNorm, "eps 0", attrs("eps", ir.FloatAttr(0)), f32(sh(8), -1.5, -0.5, -0.5, -0.5, 0, 0, 1, 2),
		f32(sh(8), 2, 4, 4, 4, 5, 5, 7, 9)),
	attrCase(ir.OpLayerNorm, "rows with eps", attrs("eps", ir.FloatAttr(3)), f32(sh(2, 2), -0.5, 0.5, 0, 0),
		f32(sh(2, 2), 1, 3, 5, 5)),
	attrCase(ir.OpRMSNorm, "eps 0", attrs("eps", ir.FloatAttr(0)), f32(sh(2, 2), 1, -1, 0.2, 1.4),
		f32(sh(2, 2), 2, -2, 1, 7)),
	// x = [0, 1, 5]: deviations [-2, -1, 3], var 14/3, r = √(3/14);
	// dy = [1, 0, 0] gives r·(dy - 1/3 + dev/7) = r·[8, -10, 2]/21.
	{op: ir.OpLayerNormGrad, name: "eps 0", want: f32(sh(1, 3), 0.17634668567096218, -0.2204333570887027, 0.044086671417740544), build: func(c *ctx) *ir.Instr {
		return c.op(ir.OpLayerNormGrad, attrs("eps", ir.FloatAttr(0)), c.in(f32(sh(1, 3), 0, 1, 5)), c.in(f32(sh(1, 3), 1, 0, 0)))
	}},
	// Scaled by γ = [2, 3, 4]: dy·γ = [2, 0, 0], twice the gradient above.
	{op: ir.OpLayerNormGrad, name: "scale", want: f32(sh(1, 3), 0.35269337134192436, -0.4408667141774054, 0.08817334283548109), build: func(c *ctx) *ir.Instr {
		return c.op(ir.OpLayerNormGrad, attrs("eps", ir.FloatAttr(0), "scale", ir.BoolAttr(true)), c.in(f32(sh(1, 3), 0, 1, 5)), c.in(f32(sh(1, 3), 1, 0, 0)), c.in(f32(sh(3), 2, 3, 4)))
	}},
	// The normparams pass's forms. Affine: the rows above (-0.5, 0.5, 0,
	// 0) times γ = [2, 4] plus β = [1, -1].
	attrCase(ir.OpLayerNorm, "affine", attrs("eps", ir.FloatAttr(3), "affine", ir.BoolAttr(true)), f32(sh(2, 2), 0, 1, 1, -1),
		f32(sh(2, 2), 1, 3, 5, 5), f32(sh(2), 2, 4), f32(sh(2), 1, -1)),
	attrCase(ir.OpRMSNorm, "affine", attrs("eps", ir.FloatAttr(0), "affine", ir.BoolAttr(true)), f32(sh(2, 2), 2, -0.5, 0.4, 0.7),
		f32(sh(2, 2), 2, -2, 1, 7), f32(sh(2), 2, 0.5)),
	// With params: two rows x = [0, 1, 5], y = [-2, -1, 3]·√(3/14), dy
	// [1, 0, 0] and [0, 2, 0]: dγ = Σ dy·y = [-2, -2, 0]·√(3/14), dβ = Σ dy.
	{op: ir.OpLayerNormGrad, name: "params dγ", want: f32(sh(3), -0.9258200997725514, -0.9258200997725514, 0), build: func(c *ctx) *ir.Instr {
		return c.op(ir.OpExtract, attrs("index", ir.IntAttr(1)), normParams(c, ir.OpLayerNormGrad))
	}},
	{op: ir.OpLayerNormGrad, name: "params dβ", want: f32(sh(3), 1, 2, 0), build: func(c *ctx) *ir.Instr {
		return c.op(ir.OpExtract, attrs("index", ir.IntAttr(2)), normParams(c, ir.OpLayerNormGrad))
	}},
	// dx: the scaled gradient above.
	{op: ir.OpLayerNormGrad, name: "params dx", want: f32(sh(1, 3), 0.35269337134192436, -0.4408667141774054, 0.08817334283548109), build: func(c *ctx) *ir.Instr {
		p := c.op(ir.OpLayerNormGrad, attrs("eps", ir.FloatAttr(0), "scale", ir.BoolAttr(true), "params", ir.BoolAttr(true)),
			c.in(f32(sh(1, 3), 0, 1, 5)), c.in(f32(sh(1, 3), 1, 0, 0)), c.in(f32(sh(3), 2, 3, 4)))
		return c.op(ir.OpExtract, attrs("index", ir.IntAttr(0)), p)
	}},
	// accumulate: the addend [1, 2, 3] plus dx above.
	{op: ir.OpLayerNormGrad, name: "accumulate", want: f32(sh(1, 3), 1.35269337134192436, 1.5591332858225946, 3.08817334283548109), build: func(c *ctx) *ir.Instr {
		p := c.op(ir.OpLayerNormGrad, attrs("eps", ir.FloatAttr(0), "scale", ir.BoolAttr(true), "params", ir.BoolAttr(true), "accumulate", ir.BoolAttr(true)),
			c.in(f32(sh(1, 3), 0, 1, 5)), c.in(f32(sh(1, 3), 1, 0, 0)), c.in(f32(sh(3), 2, 3, 4)), c.in(f32(sh(1, 3), 1, 2, 3)))
		return c.op(ir.OpExtract, attrs("index", ir.IntAttr(0)), p)
	}},
	// rms: y = x·√(3/26), dγ = [0, 2, 0]·y.
	{op: ir.OpRMSNormGrad, name: "params dγ", want: f32(sh(3), 0, 2*0.33968311024337877, 0), build: func(c *ctx) *ir.Instr {
		return c.op(ir.OpExtract, attrs("index", ir.IntAttr(1)), normParams(c, ir.OpRMSNormGrad))
	}},
	// r = √(3/26); dy = [0, 1, 0] gives r·(dy - x/26) = r·[0, 25, -5]/26.
	{op: ir.OpRMSNormGrad, name: "eps 0", want: f32(sh(3), 0, 0.326618375234018, -0.0653236750468036), build: func(c *ctx) *ir.Instr {
		return c.op(ir.OpRMSNormGrad, attrs("eps", ir.FloatAttr(0)), c.in(f32(sh(3), 0, 1, 5)), c.in(f32(sh(3), 0, 1, 0)))
	}},
	attrCase(ir.OpRMSNorm, "with eps", attrs("eps", ir.FloatAttr(7)), f32(sh(2), 0.75, 0.75), f32(sh(2), 3, 3)),
	attrCase(ir.OpCrossEntropy, "mean over positions", nil, f32(nil, (math.Log(4.0/3)+ln2)/2),
		f32(sh(2, 2), 0, ln3, 5, 5), i32(sh(2), 1, 0)),
	attrCase(ir.OpCrossEntropy, "ignore_index", attrs("ignore_index", ir.IntAttr(-100)), f32(nil, (math.Log(4.0/3)+ln2)/2),
		f32(sh(2, 2, 2), 0, ln3, 9, 1, 5, 5, 0, 0), i32(sh(2, 2), 1, -100, 0, -100)),
	attrCase(ir.OpCrossEntropy, "all ignored", attrs("ignore_index", ir.IntAttr(0)), f32(nil, 0),
		f32(sh(2, 2), 0, ln3, 5, 5), i32(sh(2), 0, 0)),
	// softmax [1/4, 3/4] and [1/2, 1/2] less the one-hots of 1 and 0,
	// times dy/n = 2/2.
	attrCase(ir.OpCrossEntropyGrad, "mean over positions", nil, f32(sh(2, 2), 0.25, -0.25, -0.5, 0.5),
		f32(sh(2, 2), 0, ln3, 5, 5), i32(sh(2), 1, 0), f32(nil, 2)),
	// Two positions of four ignored: they get 0, and dy/n = 4/2.
	attrCase(ir.OpCrossEntropyGrad, "ignore_index", attrs("ignore_index", ir.IntAttr(-100)), f32(sh(2, 2, 2), 0.5, -0.5, 0, 0, -1, 1, 0, 0),
		f32(sh(2, 2, 2), 0, ln3, 9, 1, 5, 5, 0, 0), i32(sh(2, 2), 1, -100, 0, -100), f32(nil, 4)),
	attrCase(ir.OpCrossEntropyGrad, "all ignored", attrs("ignore_index", ir.IntAttr(0)), f32(sh(2, 2), 0, 0, 0, 0),
		f32(sh(2, 2), 0, ln3, 5, 5), i32(sh(2), 0, 0), f32(nil, 3)),
	// q = [1, 1], k = [0, 1] (D = 1), v = I, scale ln 3: scores are
	// 0 and ln 3, so the full softmax is [1/4, 3/4].
	attentionCase("no mask", nil, nil, "", f32(sh(1, 1, 2, 2), 0.25, 0.75, 0.25, 0.75)),
	attentionCase("causal", ir.Bin(ir.ELe, ir.Var("k"), ir.Var("q")), nil, "out", f32(sh(1, 1, 2, 2), 1, 0, 0.25, 0.75)),
	attentionCase("strict causal probs", ir.Bin(ir.ELt, ir.Var("k"), ir.Var("q")), nil, "probs", f32(sh(1, 1, 2, 2), 0, 0, 1, 0)),
	attentionCase("strict causal logprobs", ir.Bin(ir.ELt, ir.Var("k"), ir.Var("q")), nil, "logprobs", f32(sh(1, 1, 2, 2), -inf, -inf, 0, -inf)),
	// score 2s: scores 0 and 2 ln 3, softmax [1/10, 9/10].
	attentionCase("score", nil, ir.Bin(ir.EMul, ir.Int(2), ir.Var("s")), "logprobs",
		f32(sh(1, 1, 2, 2), -math.Log(10), math.Log(0.9), -math.Log(10), math.Log(0.9))),
	// Scores 1000 and 1000 + ln 3 overflow e^s unless shifted.
	attentionCase("large scores are stable", nil, ir.Bin(ir.EAdd, ir.Var("s"), ir.Float(1000)), "probs",
		f32(sh(1, 1, 2, 2), 0.25, 0.75, 0.25, 0.75)),
	// Scores 0 and ln 3 in both rows: lse = ln 4.
	attentionCase("lse", nil, nil, "lse", f32(sh(1, 1, 2), math.Log(4), math.Log(4))),
	attentionCase("lse of a fully masked row", ir.Bin(ir.ELt, ir.Var("k"), ir.Var("q")), nil, "lse", f32(sh(1, 1, 2), -inf, 0)),
	// With P = [1/4, 3/4] in both rows and dy = I: dv_k = P_k (dy_0 + dy_1).
	attentionGradCase("wrt v", 2, f32(sh(1, 1, 2, 2), 0.25, 0.25, 0.75, 0.75)),
	// Row 0: dP = [1, 0], Σ P dP = 1/4, dS' = [3/16, -3/16], dq = ln3 (3/16·0 - 3/16·1);
	// row 1 is its mirror image.
	attentionGradCase("wrt q", 0, f32(sh(1, 1, 2, 1), -0.1875*ln3, 0.1875*ln3)),
	// dk_k = ln3 Σ_q dS'_qk q_q = ln3 (3/16 - 3/16) = 0 for both keys.
	attentionGradCase("wrt k", 1, f32(sh(1, 1, 2, 1), 0, 0)),
	// with_lse: the output of attentionCase's full attention, and lse = ln 4.
	attentionLSECase("with_lse out", 0, f32(sh(1, 1, 2, 2), 0.25, 0.75, 0.25, 0.75)),
	attentionLSECase("with_lse lse", 1, f32(sh(1, 1, 2), math.Log(4), math.Log(4))),
	{op: ir.OpDimSize, name: "symbolic", syms: []string{"N"}, want: f32(sh(), 7), build: func(c *ctx) *ir.Instr {
		c.in(f32(sh(4), 0, 0, 0, 0), ir.SymDim("N"))
		return c.op(ir.OpDimSize, attrs("dim", ir.DimAttr(ir.SymDim("N").Scale(2).Sub(ir.ConstDim(1)))))
	}},
	{op: ir.OpPad, name: "axis 1", want: f32(sh(2, 5), 0, 1, 2, 0, 0, 0, 3, 4, 0, 0), build: func(c *ctx) *ir.Instr {
		return c.op(ir.OpPad, attrs("axis", ir.IntAttr(1), "before", ir.DimAttr(ir.ConstDim(1)), "after", ir.DimAttr(ir.ConstDim(2))),
			c.in(f32(sh(2, 2), 1, 2, 3, 4)))
	}},
	{op: ir.OpScan, name: "forward", want: f32(sh(3), 1, 2.5, 4.25), build: func(c *ctx) *ir.Instr {
		return c.op(ir.OpScan, attrs("axis", ir.IntAttr(0)), c.in(f32(sh(3), 0.5, 0.5, 0.5)), c.in(f32(sh(3), 1, 2, 3)))
	}},
	{op: ir.OpScan, name: "reverse along axis 1", want: f32(sh(2, 3), 2.75, 3.5, 3, 3, 1, -1), build: func(c *ctx) *ir.Instr {
		return c.op(ir.OpScan, attrs("axis", ir.IntAttr(1), "reverse", ir.BoolAttr(true)),
			c.in(f32(sh(2, 3), 0.5, 0.5, 0.5, 2, -1, 7)), c.in(f32(sh(2, 3), 1, 2, 3, 1, 0, -1)))
	}},
	// next = state·c + x from (1, 2) with c = (2, 0.5) over x = (1, 1),
	// (0, 0), (1, -1): (3, 2), (6, 1), (13, -0.5).
	{op: ir.OpRecur, name: "affine cell over a sequence", want: f32(sh(3, 2), 3, 2, 6, 1, 13, -0.5), build: func(c *ctx) *ir.Instr {
		return c.op(ir.OpRecur, attrs("axis", ir.IntAttr(0), "body", ir.ModuleAttr(affineCell(false))), c.in(f32(sh(2), 1, 2)),
			c.in(f32(sh(3, 2), 1, 1, 0, 0, 1, -1)), c.in(f32(sh(2), 2, 0.5)))
	}},
	// next = state² three times from 2, stacked along axis 1.
	{op: ir.OpRecur, name: "squaring for 3 steps", want: f32(sh(1, 3), 4, 16, 256), build: func(c *ctx) *ir.Instr {
		b := ir.NewBuilder("")
		s := b.MustGiven(ir.OpInput, ir.TensorOf(ir.F32, ir.ConstDim(1)), ir.Attrs{"name": ir.StringAttr("state")})
		b.Output(ir.OutValue, "next", b.Must(ir.OpMul, nil, s, s))
		return c.op(ir.OpRecur, attrs("axis", ir.IntAttr(1), "steps", ir.DimAttr(ir.ConstDim(3)), "body", ir.ModuleAttr(b.M)), c.in(f32(sh(1), 2)))
	}},
	// The affine cell's gradients for a loss summing every state: by
	// hand, in reverse time, g = (1, 1), (3, 1.5), (7, 1.75) before each
	// step's body; dc sums g·s_{t-1} = (6, 1) + (9, 3) + (7, 3.5).
	{op: ir.OpRecurGrad, name: "affine cell, dc", want: f32(sh(2), 22, 7.5), build: func(c *ctx) *ir.Instr {
		return c.op(ir.OpExtract, attrs("index", ir.IntAttr(2)), affineGrad(c))
	}},
	{op: ir.OpRecurGrad, name: "affine cell, dxs", want: f32(sh(3, 2), 7, 1.75, 3, 1.5, 1, 1), build: func(c *ctx) *ir.Instr {
		return c.op(ir.OpExtract, attrs("index", ir.IntAttr(1)), affineGrad(c))
	}},
	// dinit = c + c² + c³.
	{op: ir.OpRecurGrad, name: "affine cell, dinit", want: f32(sh(2), 14, 0.875), build: func(c *ctx) *ir.Instr {
		return c.op(ir.OpExtract, attrs("index", ir.IntAttr(0)), affineGrad(c))
	}},
}

// affineCell is the body next = state·c0 + x over f32[2] values; with
// vjp, its vector-Jacobian product: d0 = dy·c0, d1 = dy, d2 = dy·state.
func affineCell(vjp bool) *ir.Module {
	b := ir.NewBuilder("")
	t := ir.TensorOf(ir.F32, ir.ConstDim(2))
	in := func(name string) *ir.Instr {
		return b.MustGiven(ir.OpInput, t, ir.Attrs{"name": ir.StringAttr(name)})
	}
	s, x, w := in("state"), in("x"), in("c0")
	if !vjp {
		b.Output(ir.OutValue, "next", b.Must(ir.OpAdd, nil, b.Must(ir.OpMul, nil, s, w), x))
		return b.M
	}
	dy := in("dy")
	b.Output(ir.OutValue, "d0", b.Must(ir.OpMul, nil, dy, w))
	b.Output(ir.OutValue, "d1", b.Must(ir.OpNeg, nil, b.Must(ir.OpNeg, nil, dy)))
	b.Output(ir.OutValue, "d2", b.Must(ir.OpMul, nil, dy, s))
	return b.M
}

// affineGrad is recur_grad of the affine cell's run above, with dy = 1.
func affineGrad(c *ctx) *ir.Instr {
	init, xs, w := c.in(f32(sh(2), 1, 2)), c.in(f32(sh(3, 2), 1, 1, 0, 0, 1, -1)), c.in(f32(sh(2), 2, 0.5))
	out := c.in(f32(sh(3, 2), 3, 2, 6, 1, 13, -0.5))
	dy := c.in(f32(sh(3, 2), 1, 1, 1, 1, 1, 1))
	return c.op(ir.OpRecurGrad, attrs("axis", ir.IntAttr(0), "body", ir.ModuleAttr(affineCell(true)), "wrt", ir.IntsAttr(0, 1, 2)), init, xs, w, out, dy)
}

func attentionCase(name string, mask, score *ir.Expr, returns string, want *eval.Tensor) opCase {
	return opCase{op: ir.OpAttention, name: name, want: want, build: func(c *ctx) *ir.Instr {
		a := attrs("scale", ir.FloatAttr(ln3))
		if mask != nil {
			a["mask"] = ir.ExprAttr(mask)
		}
		if score != nil {
			a["score"] = ir.ExprAttr(score)
		}
		if returns != "" {
			a["returns"] = ir.WordAttr(returns)
		}
		q := c.in(f32(sh(1, 1, 2, 1), 1, 1))
		k := c.in(f32(sh(1, 1, 2, 1), 0, 1))
		if returns != "" && returns != "out" {
			return c.op(ir.OpAttention, a, q, k)
		}
		return c.op(ir.OpAttention, a, q, k, c.in(f32(sh(1, 1, 2, 2), 1, 0, 0, 1)))
	}}
}

// attentionGradCase differentiates the attention of attentionCase (no
// mask, scores 0 and ln 3) returning out, with v = I and dy = I, with
// respect to q, k and v at once (wrt [0, 1, 2]) and extracts result i.
func attentionGradCase(name string, i int, want *eval.Tensor) opCase {
	return opCase{op: ir.OpAttentionGrad, name: name, want: want, build: func(c *ctx) *ir.Instr {
		q := c.in(f32(sh(1, 1, 2, 1), 1, 1))
		k := c.in(f32(sh(1, 1, 2, 1), 0, 1))
		v := c.in(f32(sh(1, 1, 2, 2), 1, 0, 0, 1))
		pair := c.op(ir.OpAttention, attrs("scale", ir.FloatAttr(ln3), "with_lse", ir.BoolAttr(true)), q, k, v)
		y := c.op(ir.OpExtract, attrs("index", ir.IntAttr(0)), pair)
		lse := c.op(ir.OpExtract, attrs("index", ir.IntAttr(1)), pair)
		dy := c.in(f32(sh(1, 1, 2, 2), 1, 0, 0, 1))
		rs := c.op(ir.OpReduceSum, attrs("axes", ir.IntsAttr(3)), c.op(ir.OpMul, nil, dy, y))
		g := c.op(ir.OpAttentionGrad, attrs("scale", ir.FloatAttr(ln3), "wrt", ir.IntsAttr(0, 1, 2)), q, k, v, lse, rs, dy)
		return c.op(ir.OpExtract, attrs("index", ir.IntAttr(int64(i))), g)
	}}
}

// attentionLSECase extracts result i of attention with_lse on the inputs
// of attentionCase: the output, then the row log-sum-exp.
func attentionLSECase(name string, i int, want *eval.Tensor) opCase {
	return opCase{op: ir.OpExtract, name: name, want: want, build: func(c *ctx) *ir.Instr {
		q := c.in(f32(sh(1, 1, 2, 1), 1, 1))
		k := c.in(f32(sh(1, 1, 2, 1), 0, 1))
		v := c.in(f32(sh(1, 1, 2, 2), 1, 0, 0, 1))
		pair := c.op(ir.OpAttention, attrs("scale", ir.FloatAttr(ln3), "with_lse", ir.BoolAttr(true)), q, k, v)
		return c.op(ir.OpExtract, attrs("index", ir.IntAttr(int64(i))), pair)
	}}
}

func TestOps(t *testing.T) {
	for _, tc := range opCases {
		t.Run(tc.op.String()+"/"+tc.name, func(t *testing.T) {
			c := newCtx(tc.syms...)
			v := tc.build(c)
			if err := c.b.Err(); err != nil {
				t.Fatalf("building: %v", err)
			}
			op := v.Op
			if op == ir.OpExtract && tc.op != ir.OpExtract {
				op = v.Args[0].Op // a result of a multi-result op
			}
			if op != tc.op {
				t.Fatalf("case checks a %s, but is listed under %s", v.Op, tc.op)
			}
			res := c.run(t)
			checkClose(t, "result", res.Values[v.ID], tc.want, 1e-12)
		})
	}
}

// TestEveryOpHasACase keeps the table above complete: a new op needs a
// hand-computed case.
func TestEveryOpHasACase(t *testing.T) {
	covered := map[ir.Op]bool{}
	for _, tc := range opCases {
		covered[tc.op] = true
	}
	for _, op := range ir.AllOps() {
		if !covered[op] {
			t.Errorf("op %s has no hand-computed case in opCases", op)
		}
	}
}

// TestElementwise checks the exported entry that kir's interpreter uses:
// the same values as an instruction of the op, and errors for the wrong
// operand count or a non-elementwise op.
func TestElementwise(t *testing.T) {
	x := eval.FromData(ir.F32, []int{2, 1}, []float64{1, -2})
	y := eval.FromData(ir.F32, []int{3}, []float64{10, 20, 30})
	got, err := eval.Elementwise(ir.OpAdd, ir.F32, []int{2, 3}, x, y)
	if err != nil || fmt.Sprint(got.Data) != "[11 21 31 8 18 28]" {
		t.Fatalf("add with broadcasting: %v, %v", got, err)
	}
	c, err := eval.Elementwise(ir.OpCast, ir.I32, []int{2, 1}, eval.FromData(ir.F32, []int{2, 1}, []float64{1.7, -1.7}))
	if err != nil || fmt.Sprint(c.Data) != "[1 -1]" {
		t.Fatalf("cast: %v, %v", c, err)
	}
	if _, err := eval.Elementwise(ir.OpAdd, ir.F32, []int{2, 1}, x); err == nil {
		t.Error("add of one operand")
	}
	if _, err := eval.Elementwise(ir.OpMatMul, ir.F32, []int{2, 1}, x, x); err == nil {
		t.Error("matmul is not elementwise")
	}
}

// normParams builds op (a norm gradient) with scale and params at two
// rows x = [0, 1, 5], dy = [1, 0, 0] and [0, 2, 0], γ = [2, 3, 4].
func normParams(c *ctx, op ir.Op) *ir.Instr {
	return c.op(op, attrs("eps", ir.FloatAttr(0), "scale", ir.BoolAttr(true), "params", ir.BoolAttr(true)),
		c.in(f32(sh(2, 3), 0, 1, 5, 0, 1, 5)), c.in(f32(sh(2, 3), 1, 0, 0, 0, 2, 0)), c.in(f32(sh(3), 2, 3, 4)))
}
