package runtime

import (
	"fmt"
	"math"
)

// A UnaryOp is an elementwise op of one operand.
type UnaryOp uint8

// The unary ops, with the IR's meanings. Neg and Abs take f32 or i32 (i32
// wraps: -MinInt32 is MinInt32), Not takes bool, the rest f32.
const (
	Neg       UnaryOp = iota + 1 // -x
	Abs                          // |x|
	Exp                          // e^x
	Log                          // natural log
	Sqrt                         // √x
	Rsqrt                        // 1/√x
	Tanh                         // tanh x
	Sigmoid                      // 1/(1+e^-x)
	Relu                         // max(x, 0), NaN stays NaN
	Gelu                         // 0.5x(1+tanh(√(2/π)(x+0.044715x³)))
	Silu                         // x·sigmoid(x)
	Sin                          // sin x
	Cos                          // cos x
	Not                          // logical not
	GeluDeriv                    // gelu's derivative at x
)

var unaryNames = [...]string{Neg: "neg", Abs: "abs", Exp: "exp", Log: "log", Sqrt: "sqrt", Rsqrt: "rsqrt",
	Tanh: "tanh", Sigmoid: "sigmoid", Relu: "relu", Gelu: "gelu", Silu: "silu", Sin: "sin", Cos: "cos", Not: "not",
	GeluDeriv: "gelu_deriv"}

// String returns the op's name in the IR.
func (op UnaryOp) String() string {
	if int(op) < len(unaryNames) && unaryNames[op] != "" {
		return unaryNames[op]
	}
	return fmt.Sprintf("unary(%d)", uint8(op))
}

// Unary applies op to every element of x. The result has x's dtype and
// shape. It panics if op does not apply to x's dtype.
func Unary(op UnaryOp, x *Tensor) *Tensor {
	out := newUninit(x.DType, x.Shape...) // every path writes every element or panics
	switch x.DType {
	case F32:
		f := unaryF32(op)
		if f == nil {
			break
		}
		ParallelFor(len(x.F), elemGrain, func(lo, hi int) { f(out.F[lo:hi], x.F[lo:hi]) })
		return out
	case I32:
		var f func(int32) int32
		switch op {
		case Neg:
			f = func(v int32) int32 { return -v }
		case Abs:
			f = func(v int32) int32 {
				if v < 0 {
					return -v
				}
				return v
			}
		}
		if f == nil {
			break
		}
		for i, v := range x.I {
			out.I[i] = f(v)
		}
		return out
	case Bool:
		if op != Not {
			break
		}
		for i, v := range x.B {
			out.B[i] = !v
		}
		return out
	}
	panic(fmt.Sprintf("runtime.Unary: %s does not apply to %s", op, x.DType))
}

// unaryF32 returns the row kernel of op on f32, or nil. Exp, Tanh,
// Sigmoid, Gelu, GeluDeriv and Silu are the slice kernels of vec.go.
func unaryF32(op UnaryOp) func(dst, src []float32) {
	each := func(f func(float32) float32) func(dst, src []float32) {
		return func(dst, src []float32) {
			for i, v := range src {
				dst[i] = f(v)
			}
		}
	}
	via64 := func(f func(float64) float64) func(dst, src []float32) {
		return func(dst, src []float32) {
			for i, v := range src {
				dst[i] = float32(f(float64(v)))
			}
		}
	}
	switch op {
	case Neg:
		return each(func(v float32) float32 { return -v })
	case Abs:
		return each(func(v float32) float32 { return float32(math.Abs(float64(v))) })
	case Exp:
		return func(dst, src []float32) { expSlice(dst, src, 0) }
	case Log:
		return via64(math.Log)
	case Sqrt:
		return via64(math.Sqrt)
	case Rsqrt:
		return via64(func(v float64) float64 { return 1 / math.Sqrt(v) })
	case Tanh:
		return tanhSlice
	case Sigmoid:
		return sigmoidSlice
	case Relu:
		return each(func(v float32) float32 {
			if v < 0 {
				return 0
			}
			return v // NaN stays NaN
		})
	case Gelu:
		return geluSlice
	case GeluDeriv:
		return geluDerivSlice
	case Silu:
		return siluSlice
	case Sin:
		return via64(math.Sin)
	case Cos:
		return via64(math.Cos)
	}
	return nil
}

func sigmoid32(v float32) float32 { return 1 / (1 + exp32(-v)) }

// A BinaryOp is an elementwise op of two operands with numpy broadcasting.
type BinaryOp uint8

// The binary ops, with the IR's meanings. Both operands have one dtype.
// Add, Sub, Mul, Max and Min take f32 or i32 (i32 wraps at 32 bits); Div
// takes f32 or i32 (floor division, as Mod, which takes i32 only: an i32
// divisor of 0 panics, which a generated function returns as an error);
// Pow takes f32; the comparisons give bool (Eq and Ne also compare bools;
// a comparison with NaN is false, except Ne); And and Or take bool.
const (
	Add BinaryOp = iota + 1 // x + y
	Sub                     // x - y
	Mul                     // x · y
	Div                     // x / y
	Max                     // max(x, y), NaN propagates
	Min                     // min(x, y), NaN propagates
	Pow                     // x^y
	Eq                      // x == y
	Ne                      // x != y
	Lt                      // x < y
	Le                      // x <= y
	Gt                      // x > y
	Ge                      // x >= y
	And                     // x && y
	Or                      // x || y
	Mod                     // x mod y, rounding toward -∞ (i32)
)

var binaryNames = [...]string{Add: "add", Sub: "sub", Mul: "mul", Div: "div", Max: "max", Min: "min", Pow: "pow",
	Eq: "eq", Ne: "ne", Lt: "lt", Le: "le", Gt: "gt", Ge: "ge", And: "and", Or: "or", Mod: "mod"}

// String returns the op's name in the IR.
func (op BinaryOp) String() string {
	if int(op) < len(binaryNames) && binaryNames[op] != "" {
		return binaryNames[op]
	}
	return fmt.Sprintf("binary(%d)", uint8(op))
}

// Binary applies op to x and y broadcast to shape (numpy rules; a nil
// shape means the broadcast of the operands' shapes). The result has
// shape and the operands' dtype, or bool for a comparison. It panics if
// the operands' dtypes differ, op does not apply to them, or they do not
// broadcast to shape.
func Binary(op BinaryOp, x, y *Tensor, shape []int) *Tensor {
	if x.DType != y.DType {
		panic(fmt.Sprintf("runtime.Binary: %s of %s and %s", op, x.DType, y.DType))
	}
	shape = resultShape("Binary", shape, x, y)
	dt := x.DType
	if op >= Eq && op <= Or {
		dt = Bool
	}
	p := planBroadcast("Binary", shape, x.Shape, y.Shape)
	out := newUninit(dt, shape...) // forRows writes every row
	xs, ys := p.inner[0], p.inner[1]
	switch {
	case x.DType == F32 && dt == F32:
		if op == Add || op == Sub || op == Mul || op == Div {
			p.forRows(func(o int, offs []int) {
				arithRowF32(op, out.F[o:o+p.n], x.F[offs[0]:], xs, y.F[offs[1]:], ys)
			})
			return out
		}
		if f := binaryF32(op); f != nil {
			p.forRows(func(o int, offs []int) { rowMap(out.F[o:o+p.n], x.F[offs[0]:], xs, y.F[offs[1]:], ys, f) })
			return out
		}
	case x.DType == I32 && dt == I32:
		if f := binaryI32(op); f != nil {
			p.forRows(func(o int, offs []int) { rowMap(out.I[o:o+p.n], x.I[offs[0]:], xs, y.I[offs[1]:], ys, f) })
			return out
		}
	case x.DType == F32:
		if f := compare[float32](op); f != nil {
			p.forRows(func(o int, offs []int) { rowMap(out.B[o:o+p.n], x.F[offs[0]:], xs, y.F[offs[1]:], ys, f) })
			return out
		}
	case x.DType == I32:
		if f := compare[int32](op); f != nil {
			p.forRows(func(o int, offs []int) { rowMap(out.B[o:o+p.n], x.I[offs[0]:], xs, y.I[offs[1]:], ys, f) })
			return out
		}
	case x.DType == Bool:
		var f func(a, b bool) bool
		switch op {
		case Eq:
			f = func(a, b bool) bool { return a == b }
		case Ne:
			f = func(a, b bool) bool { return a != b }
		case And:
			f = func(a, b bool) bool { return a && b }
		case Or:
			f = func(a, b bool) bool { return a || b }
		}
		if f != nil {
			p.forRows(func(o int, offs []int) { rowMap(out.B[o:o+p.n], x.B[offs[0]:], xs, y.B[offs[1]:], ys, f) })
			return out
		}
	}
	panic(fmt.Sprintf("runtime.Binary: %s does not apply to %s", op, x.DType))
}

func binaryF32(op BinaryOp) func(a, b float32) float32 {
	switch op {
	case Max:
		return func(a, b float32) float32 { return max(a, b) }
	case Min:
		return func(a, b float32) float32 { return min(a, b) }
	case Pow:
		return func(a, b float32) float32 { return float32(math.Pow(float64(a), float64(b))) }
	}
	return nil
}

func binaryI32(op BinaryOp) func(a, b int32) int32 {
	switch op {
	case Add:
		return func(a, b int32) int32 { return a + b }
	case Sub:
		return func(a, b int32) int32 { return a - b }
	case Mul:
		return func(a, b int32) int32 { return a * b }
	case Max:
		return func(a, b int32) int32 { return max(a, b) }
	case Min:
		return func(a, b int32) int32 { return min(a, b) }
	case Div:
		return floorDiv32
	case Mod:
		return func(a, b int32) int32 { return a - b*floorDiv32(a, b) }
	}
	return nil
}

// floorDiv32 is a / b rounded toward -∞ (Go's / truncates); b = 0
// panics. MinInt32 / -1 wraps to MinInt32, as the reference's 32-bit
// result does.
func floorDiv32(a, b int32) int32 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func compare[T float32 | int32](op BinaryOp) func(a, b T) bool {
	switch op {
	case Eq:
		return func(a, b T) bool { return a == b }
	case Ne:
		return func(a, b T) bool { return a != b }
	case Lt:
		return func(a, b T) bool { return a < b }
	case Le:
		return func(a, b T) bool { return a <= b }
	case Gt:
		return func(a, b T) bool { return a > b }
	case Ge:
		return func(a, b T) bool { return a >= b }
	}
	return nil
}

// rowMap sets dst[i] = f(x[i·xs], y[i·ys]) for strides xs, ys ∈ {0, 1}.
func rowMap[T, R any](dst []R, x []T, xs int, y []T, ys int, f func(a, b T) R) {
	n := len(dst)
	switch {
	case xs == 1 && ys == 1:
		x, y = x[:n], y[:n]
		for i := range dst {
			dst[i] = f(x[i], y[i])
		}
	case xs == 1:
		b := y[0]
		x = x[:n]
		for i := range dst {
			dst[i] = f(x[i], b)
		}
	case ys == 1:
		a := x[0]
		y = y[:n]
		for i := range dst {
			dst[i] = f(a, y[i])
		}
	default:
		v := f(x[0], y[0])
		for i := range dst {
			dst[i] = v
		}
	}
}

// arithRowF32 is rowMap for the four arithmetic ops on f32, written out
// so that the loops have no call in them. Whole vectors of a row go to
// the active vector kernels (vec.go), which round each element as these
// loops do, so the results do not depend on the kernel.
func arithRowF32(op BinaryOp, dst, x []float32, xs int, y []float32, ys int) {
	n := len(dst)
	if v := activeVec; v != nil && n >= v.lanes && xs+ys > 0 {
		body := n - n%v.lanes
		mode, vx, vy := 0, x, y
		switch {
		case ys == 0:
			mode, vx, vy = 1, x[:body], y[:1]
		case xs == 0:
			mode, vx, vy = 2, x[:1], y[:body]
		default:
			vx, vy = x[:body], y[:body]
		}
		arithVec(v, op, mode, dst[:body], vx, vy)
		if body == n {
			return
		}
		dst, x, y = dst[body:], x[body*xs:], y[body*ys:]
		n = len(dst)
	}
	switch {
	case xs == 1 && ys == 1:
		x, y = x[:n], y[:n]
		switch op {
		case Add:
			for i := range dst {
				dst[i] = x[i] + y[i]
			}
		case Sub:
			for i := range dst {
				dst[i] = x[i] - y[i]
			}
		case Mul:
			for i := range dst {
				dst[i] = x[i] * y[i]
			}
		case Div:
			for i := range dst {
				dst[i] = x[i] / y[i]
			}
		}
	case xs == 1:
		b := y[0]
		x = x[:n]
		switch op {
		case Add:
			for i := range dst {
				dst[i] = x[i] + b
			}
		case Sub:
			for i := range dst {
				dst[i] = x[i] - b
			}
		case Mul:
			for i := range dst {
				dst[i] = x[i] * b
			}
		case Div:
			for i := range dst {
				dst[i] = x[i] / b
			}
		}
	case ys == 1:
		a := x[0]
		y = y[:n]
		switch op {
		case Add:
			for i := range dst {
				dst[i] = a + y[i]
			}
		case Sub:
			for i := range dst {
				dst[i] = a - y[i]
			}
		case Mul:
			for i := range dst {
				dst[i] = a * y[i]
			}
		case Div:
			for i := range dst {
				dst[i] = a / y[i]
			}
		}
	default:
		var v float32
		switch op {
		case Add:
			v = x[0] + y[0]
		case Sub:
			v = x[0] - y[0]
		case Mul:
			v = x[0] * y[0]
		case Div:
			v = x[0] / y[0]
		}
		for i := range dst {
			dst[i] = v
		}
	}
}

// Select returns c ? x : y elementwise, all three broadcast to shape (nil:
// the broadcast of their shapes). c is bool; x and y share a dtype, the
// result's. It panics if the dtypes or shapes do not fit.
func Select(c, x, y *Tensor, shape []int) *Tensor {
	if c.DType != Bool || x.DType != y.DType {
		panic(fmt.Sprintf("runtime.Select: condition %s, operands %s and %s", c.DType, x.DType, y.DType))
	}
	shape = resultShape("Select", shape, c, x, y)
	p := planBroadcast("Select", shape, c.Shape, x.Shape, y.Shape)
	out := newUninit(x.DType, shape...) // forRows writes every row
	p.forRows(func(o int, offs []int) {
		switch x.DType {
		case F32:
			selectRow(out.F[o:o+p.n], c.B[offs[0]:], p.inner[0], x.F[offs[1]:], p.inner[1], y.F[offs[2]:], p.inner[2])
		case I32:
			selectRow(out.I[o:o+p.n], c.B[offs[0]:], p.inner[0], x.I[offs[1]:], p.inner[1], y.I[offs[2]:], p.inner[2])
		case Bool:
			selectRow(out.B[o:o+p.n], c.B[offs[0]:], p.inner[0], x.B[offs[1]:], p.inner[1], y.B[offs[2]:], p.inner[2])
		}
	})
	return out
}

func selectRow[T any](dst []T, c []bool, cs int, x []T, xs int, y []T, ys int) {
	for i := range dst {
		if c[i*cs] {
			dst[i] = x[i*xs]
		} else {
			dst[i] = y[i*ys]
		}
	}
}

// Cast returns x converted to dtype to: f32→i32 truncates toward zero
// (saturating at the int32 range; NaN gives 0, where the reference
// interpreter reports an error), anything→bool is x != 0 (NaN is true),
// bool→f32 or i32 is 0 or 1. Casting to x's own dtype copies x.
func Cast(x *Tensor, to DType) *Tensor {
	if x.DType == to {
		return x.Clone()
	}
	out := New(to, x.Shape...)
	switch {
	case x.DType == F32 && to == I32:
		for i, v := range x.F {
			out.I[i] = f64ToI32(float64(v))
		}
	case x.DType == F32 && to == Bool:
		for i, v := range x.F {
			out.B[i] = v != 0
		}
	case x.DType == I32 && to == F32:
		for i, v := range x.I {
			out.F[i] = float32(v)
		}
	case x.DType == I32 && to == Bool:
		for i, v := range x.I {
			out.B[i] = v != 0
		}
	case x.DType == Bool && to == F32:
		for i, v := range x.B {
			if v {
				out.F[i] = 1
			}
		}
	case x.DType == Bool && to == I32:
		for i, v := range x.B {
			if v {
				out.I[i] = 1
			}
		}
	default:
		panic(fmt.Sprintf("runtime.Cast: %s to %s", x.DType, to))
	}
	return out
}

// Iota returns the i32 tensor of the given shape whose element is its
// index along axis.
func Iota(shape []int, axis int) *Tensor {
	checkAxis("Iota", axis, len(shape))
	out := New(I32, shape...)
	_, n, inner := split3(shape, axis)
	for i := range out.I {
		out.I[i] = int32(i / inner % n)
	}
	return out
}
