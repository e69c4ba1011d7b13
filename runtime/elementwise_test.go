package runtime_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/attnc/attnc/ir"
	rt "github.com/attnc/attnc/runtime"
)

var unaryOps = []struct {
	op       rt.UnaryOp
	ir       ir.Op
	positive bool // the op needs positive inputs to be finite
}{
	{rt.Neg, ir.OpNeg, false}, {rt.Abs, ir.OpAbs, false}, {rt.Exp, ir.OpExp, false},
	{rt.Log, ir.OpLog, true}, {rt.Sqrt, ir.OpSqrt, true}, {rt.Rsqrt, ir.OpRsqrt, true},
	{rt.Tanh, ir.OpTanh, false}, {rt.Sigmoid, ir.OpSigmoid, false}, {rt.Relu, ir.OpRelu, false},
	{rt.Gelu, ir.OpGelu, false}, {rt.Silu, ir.OpSilu, false}, {rt.Sin, ir.OpSin, false},
	{rt.Cos, ir.OpCos, false}, {rt.GeluDeriv, ir.OpGeluDeriv, false},
}

func TestUnaryF32(t *testing.T) {
	r := newRand(1)
	for _, shape := range [][]int{{}, {7}, {3, 5}, {300, 257}} {
		for _, u := range unaryOps {
			t.Run(fmt.Sprintf("%s%v", u.op, shape), func(t *testing.T) {
				x := randF32(r, shape...)
				for i := range x.F {
					x.F[i] *= 3
					if u.positive {
						x.F[i] = float32(math.Abs(float64(x.F[i]))) + 0.01
					}
				}
				checkRel(t, "result", rt.Unary(u.op, x), ref(t, u.ir, nil, x), tol)
			})
		}
	}
}

func TestUnaryExtremes(t *testing.T) {
	inf := float32(math.Inf(1))
	x := rt.FromF32(ints(9), []float32{-inf, inf, float32(math.NaN()), -100, 100, -87.5, 88.5, 0, -0.0})
	for _, u := range unaryOps {
		if u.positive {
			continue
		}
		checkRel(t, u.op.String(), rt.Unary(u.op, x), ref(t, u.ir, nil, x), tol)
	}
}

func TestUnaryI32AndBool(t *testing.T) {
	x := rt.FromI32(ints(4), []int32{-3, 4, 0, math.MinInt32})
	checkRel(t, "neg", rt.Unary(rt.Neg, x), ref(t, ir.OpNeg, nil, x), 0)
	checkRel(t, "abs", rt.Unary(rt.Abs, x), ref(t, ir.OpAbs, nil, x), 0)
	b := randBool(newRand(2), 3, 4)
	checkRel(t, "not", rt.Unary(rt.Not, b), ref(t, ir.OpNot, nil, b), 0)
	mustPanic(t, "does not apply", func() { rt.Unary(rt.Exp, x) })
}

// broadcastPairs are operand shapes that broadcast together.
var broadcastPairs = [][2][]int{
	{{2, 3, 4}, {2, 3, 4}},
	{{2, 3, 4}, {4}},
	{{4}, {2, 3, 4}},
	{{2, 1, 4}, {3, 1}},
	{{}, {5, 2}},
	{{5, 2}, {}},
	{{5, 1, 3}, {1, 4, 1}},
	{{7, 1}, {1, 1}},
	{{3, 1, 5, 1}, {1, 2, 1, 6}},
	{{64, 700}, {700}},
	{{600, 1}, {1, 130}},
}

var binaryF32 = []struct {
	op rt.BinaryOp
	ir ir.Op
}{
	{rt.Add, ir.OpAdd}, {rt.Sub, ir.OpSub}, {rt.Mul, ir.OpMul}, {rt.Div, ir.OpDiv},
	{rt.Max, ir.OpMax}, {rt.Min, ir.OpMin}, {rt.Pow, ir.OpPow},
	{rt.Eq, ir.OpEq}, {rt.Ne, ir.OpNe}, {rt.Lt, ir.OpLt}, {rt.Le, ir.OpLe}, {rt.Gt, ir.OpGt}, {rt.Ge, ir.OpGe},
}

func TestBinaryF32(t *testing.T) {
	r := newRand(3)
	for _, p := range broadcastPairs {
		shape, err := rt.BroadcastShape(p[0], p[1])
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range binaryF32 {
			t.Run(fmt.Sprintf("%s%v%v", b.op, p[0], p[1]), func(t *testing.T) {
				x, y := randF32(r, p[0]...), randF32(r, p[1]...)
				if b.op == rt.Pow {
					for i := range x.F {
						x.F[i] = float32(math.Abs(float64(x.F[i]))) + 0.1
					}
				}
				if b.op == rt.Eq || b.op == rt.Ne {
					// Make some elements equal.
					for i := range y.F {
						if i%2 == 0 {
							y.F[i] = 0.5
						}
					}
					for i := range x.F {
						if i%3 == 0 {
							x.F[i] = 0.5
						}
					}
				}
				checkRel(t, "result", rt.Binary(b.op, x, y, shape), ref(t, b.ir, nil, x, y), tol)
				checkRel(t, "nil shape", rt.Binary(b.op, x, y, nil), ref(t, b.ir, nil, x, y), tol)
			})
		}
	}
}

func TestBinaryI32(t *testing.T) {
	r := newRand(4)
	ops := []struct {
		op rt.BinaryOp
		ir ir.Op
	}{
		{rt.Add, ir.OpAdd}, {rt.Sub, ir.OpSub}, {rt.Mul, ir.OpMul}, {rt.Max, ir.OpMax}, {rt.Min, ir.OpMin},
		{rt.Eq, ir.OpEq}, {rt.Ne, ir.OpNe}, {rt.Lt, ir.OpLt}, {rt.Le, ir.OpLe}, {rt.Gt, ir.OpGt}, {rt.Ge, ir.OpGe},
		{rt.Div, ir.OpDiv}, {rt.Mod, ir.OpMod},
	}
	for _, p := range broadcastPairs[:8] {
		for _, b := range ops {
			x, y := randI32(r, -5, 5, p[0]...), randI32(r, -5, 5, p[1]...)
			if b.op == rt.Div || b.op == rt.Mod {
				for i, v := range y.I {
					if v == 0 {
						y.I[i] = int32(3 - 6*(i%2)) // a divisor of either sign, never 0
					}
				}
			}
			checkRel(t, fmt.Sprintf("%s%v%v", b.op, p[0], p[1]), rt.Binary(b.op, x, y, nil), ref(t, b.ir, nil, x, y), 0)
		}
	}
	// Wraparound.
	x := rt.FromI32(ints(3), []int32{math.MaxInt32, math.MinInt32, 65537})
	y := rt.FromI32(ints(3), []int32{1, -1, 65536})
	for _, b := range ops[:3] {
		checkRel(t, "wrap "+b.op.String(), rt.Binary(b.op, x, y, nil), ref(t, b.ir, nil, x, y), 0)
	}
	// MinInt32 / -1 wraps; floor division and modulo of the extremes.
	for _, b := range ops[len(ops)-2:] {
		checkRel(t, "wrap "+b.op.String(), rt.Binary(b.op, x, rt.FromI32(ints(3), []int32{-1, -1, -7}), nil),
			ref(t, b.ir, nil, x, rt.FromI32(ints(3), []int32{-1, -1, -7})), 0)
	}
	mustPanic(t, "divide by zero", func() { rt.Binary(rt.Mod, x, rt.FromI32(ints(3), []int32{1, 0, 1}), nil) })
	mustPanic(t, "divide by zero", func() { rt.Binary(rt.Div, x, rt.FromI32(ints(3), []int32{1, 0, 1}), nil) })
	mustPanic(t, "does not apply", func() { rt.Binary(rt.Pow, x, y, nil) })
}

func TestBinaryBool(t *testing.T) {
	r := newRand(5)
	ops := []struct {
		op rt.BinaryOp
		ir ir.Op
	}{{rt.And, ir.OpAnd}, {rt.Or, ir.OpOr}, {rt.Eq, ir.OpEq}, {rt.Ne, ir.OpNe}}
	for _, p := range broadcastPairs[:8] {
		for _, b := range ops {
			x, y := randBool(r, p[0]...), randBool(r, p[1]...)
			checkRel(t, fmt.Sprintf("%s%v%v", b.op, p[0], p[1]), rt.Binary(b.op, x, y, nil), ref(t, b.ir, nil, x, y), 0)
		}
	}
}

func TestBinaryMisuse(t *testing.T) {
	x, y := rt.New(rt.F32, 2, 3), rt.New(rt.F32, 4)
	mustPanic(t, "broadcast", func() { rt.Binary(rt.Add, x, y, nil) })
	mustPanic(t, "broadcast", func() { rt.Binary(rt.Add, x, rt.New(rt.F32, 3), ints(4, 3)) })
	mustPanic(t, "f32 and i32", func() { rt.Binary(rt.Add, x, rt.New(rt.I32, 3), nil) })
}

func TestSelect(t *testing.T) {
	r := newRand(6)
	cases := [][3][]int{
		{{2, 3}, {2, 3}, {2, 3}},
		{{2, 1}, {3}, {}},
		{{4, 1, 5}, {1, 3, 1}, {5}},
		{{300, 1}, {1, 400}, {300, 400}},
	}
	for _, c := range cases {
		cond := randBool(r, c[0]...)
		x, y := randF32(r, c[1]...), randF32(r, c[2]...)
		checkRel(t, fmt.Sprint(c), rt.Select(cond, x, y, nil), ref(t, ir.OpSelect, nil, cond, x, y), 0)
		xi, yi := randI32(r, -9, 9, c[1]...), randI32(r, -9, 9, c[2]...)
		checkRel(t, fmt.Sprint("i32", c), rt.Select(cond, xi, yi, nil), ref(t, ir.OpSelect, nil, cond, xi, yi), 0)
	}
}

func TestCast(t *testing.T) {
	r := newRand(7)
	f := randF32(r, 5, 7)
	for i := range f.F {
		f.F[i] *= 10
		if i%5 == 0 {
			f.F[i] = 0
		}
	}
	i32 := randI32(r, -3, 3, 5, 7)
	b := randBool(r, 5, 7)
	for _, x := range []*rt.Tensor{f, i32, b} {
		for _, to := range []rt.DType{rt.F32, rt.I32, rt.Bool} {
			got := rt.Cast(x, to)
			want := ref(t, ir.OpCast, ir.Attrs{"to": ir.DTypeAttr(toIR[to])}, x)
			checkRel(t, fmt.Sprintf("%s to %s", x.DType, to), got, want, 0)
		}
	}
	// Truncation toward zero, and saturation where the reference refuses.
	got := rt.Cast(rt.FromF32(ints(4), []float32{1.7, -1.7, 3e9, float32(math.NaN())}), rt.I32)
	if want := []int32{1, -1, math.MaxInt32, 0}; fmt.Sprint(got.I) != fmt.Sprint(want) {
		t.Errorf("cast to i32 gave %v, want %v", got.I, want)
	}
}

func TestIotaConstBroadcast(t *testing.T) {
	for axis := range 3 {
		shape := ints(2, 3, 4)
		got := rt.Iota(shape, axis)
		want := refGiven(t, ir.OpIota, rt.I32, shape, ir.Attrs{"axis": ir.IntAttr(int64(axis))})
		checkRel(t, fmt.Sprint("iota axis ", axis), got, want, 0)
	}
	for _, dt := range []rt.DType{rt.F32, rt.I32, rt.Bool} {
		got := rt.Const(dt, -3.7)
		want := refGiven(t, ir.OpConst, dt, nil, ir.Attrs{"value": ir.FloatAttr(-3.7)})
		checkRel(t, "const "+dt.String(), got, want, 1e-7)
	}
	r := newRand(8)
	for _, c := range [][2][]int{{{3}, {2, 3}}, {{2, 1}, {2, 5}}, {{}, {4}}, {{1, 3, 1}, {2, 3, 4}}, {{4, 5}, {4, 5}}} {
		x := randF32(r, c[0]...)
		checkRel(t, fmt.Sprint("broadcast", c), rt.Broadcast(x, c[1]), refGiven(t, ir.OpBroadcast, rt.F32, c[1], nil, x), 0)
	}
}
