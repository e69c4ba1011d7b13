package eval

import (
	"fmt"
	"math"

	"github.com/attnc/attnc/ir"
)

// unary applies an elementwise unary op. i32 neg and abs wrap at 32 bits
// as two's complement does (|MinInt32| is MinInt32).
func unary(in *ir.Instr, x *Tensor) (*Tensor, error) {
	dt := in.Type.DType
	out := &Tensor{DType: dt, Shape: append([]int{}, x.Shape...), Data: make([]float64, len(x.Data))}
	if in.Op == ir.OpCast {
		for i, v := range x.Data {
			c, err := convert(v, dt)
			if err != nil {
				idx := make([]int, len(x.Shape))
				unravel(i, x.Shape, idx)
				return nil, fmt.Errorf("element %v: %w", idx, err)
			}
			out.Data[i] = c
		}
		return out, nil
	}
	var f func(float64) float64
	switch in.Op {
	case ir.OpNeg:
		f = func(v float64) float64 { return -v }
	case ir.OpAbs:
		f = math.Abs
	case ir.OpExp:
		f = math.Exp
	case ir.OpLog:
		f = math.Log
	case ir.OpSqrt:
		f = math.Sqrt
	case ir.OpRsqrt:
		f = func(v float64) float64 { return 1 / math.Sqrt(v) }
	case ir.OpTanh:
		f = math.Tanh
	case ir.OpSigmoid:
		f = sigmoid
	case ir.OpRelu:
		f = func(v float64) float64 { return nanMax(v, 0) }
	case ir.OpGelu:
		f = gelu
	case ir.OpGeluDeriv:
		f = geluDeriv
	case ir.OpSilu:
		f = func(v float64) float64 { return v * sigmoid(v) }
	case ir.OpSin:
		f = math.Sin
	case ir.OpCos:
		f = math.Cos
	case ir.OpNot:
		f = func(v float64) float64 { return 1 - v }
	case ir.OpStopGradient:
		f = func(v float64) float64 { return v }
	default:
		return nil, fmt.Errorf("not a unary op")
	}
	for i, v := range x.Data {
		out.Data[i] = f(v)
	}
	if dt == ir.I32 {
		for i, v := range out.Data {
			out.Data[i] = wrap32(v)
		}
	}
	return out, nil
}

func sigmoid(v float64) float64 { return 1 / (1 + math.Exp(-v)) }

// gelu is the tanh approximation of x·Φ(x).
func gelu(x float64) float64 {
	return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
}

// geluDeriv is gelu's derivative: with u = √(2/π)(x + 0.044715x³) and
// t = tanh u, 0.5(1 + t) + 0.5x(1 - t²)·du/dx, computed as
// s·(1 + 2x·s·e·du/dx) with e = e^(-2u) and s = 1/(1 + e), which are
// 0.5(1 + t) and 0.5(1 - t²) = 2s·(s·e) without the cancellation of
// 1 + t for negative x. Past ±20 it is 1 or 0 to float64 precision
// (and e^(-2u) would overflow).
func geluDeriv(x float64) float64 {
	const k = 0.044715
	switch {
	case x > 20:
		return 1
	case x < -20:
		return 0
	}
	c := math.Sqrt(2 / math.Pi)
	e := math.Exp(-2 * c * (x + k*x*x*x))
	s := 1 / (1 + e)
	return s * (1 + 2*x*s*e*c*(1+3*k*x*x))
}

// wrap32 reduces an integral value to the int32 range as two's
// complement arithmetic does. v must be an exact integer of magnitude
// below 2^63.
func wrap32(v float64) float64 { return float64(int32(int64(v))) }

// floorDiv is a / b rounded toward -∞.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// nanMax is max that propagates NaN (math.Max prefers +Inf to NaN).
func nanMax(a, b float64) float64 {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.NaN()
	}
	return math.Max(a, b)
}

// nanMin is min that propagates NaN.
func nanMin(a, b float64) float64 {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.NaN()
	}
	return math.Min(a, b)
}

// binary applies an elementwise binary op with numpy broadcasting. f32
// is computed in float64; i32 in int64, wrapped to 32 bits; comparisons
// give bool 0/1 (false with a NaN operand, except ne).
func binary(op ir.Op, x, y *Tensor, dt ir.DType, shape []int) (*Tensor, error) {
	xo, err := bcastOffsets(x.Shape, shape)
	if err != nil {
		return nil, err
	}
	yo, err := bcastOffsets(y.Shape, shape)
	if err != nil {
		return nil, err
	}
	f, err := binaryFunc(op, x.DType)
	if err != nil {
		return nil, err
	}
	out := NewTensor(dt, shape...)
	if x.DType == ir.I32 && (op == ir.OpDiv || op == ir.OpMod) {
		for i := range out.Data {
			if y.Data[yo[i]] == 0 {
				return nil, fmt.Errorf("integer division by zero: %s of %v by 0", op, x.Data[xo[i]])
			}
		}
	}
	for i := range out.Data {
		out.Data[i] = f(x.Data[xo[i]], y.Data[yo[i]])
	}
	return out, nil
}

func binaryFunc(op ir.Op, operand ir.DType) (func(a, b float64) float64, error) {
	if operand == ir.I32 {
		var f func(a, b int64) int64
		switch op {
		case ir.OpAdd:
			f = func(a, b int64) int64 { return a + b }
		case ir.OpSub:
			f = func(a, b int64) int64 { return a - b }
		case ir.OpMul:
			f = func(a, b int64) int64 { return a * b }
		case ir.OpMax:
			f = func(a, b int64) int64 { return max(a, b) }
		case ir.OpMin:
			f = func(a, b int64) int64 { return min(a, b) }
		case ir.OpDiv:
			// Floor division and modulo, as in index expressions;
			// binary refuses a zero divisor first.
			f = floorDiv
		case ir.OpMod:
			f = func(a, b int64) int64 { return a - b*floorDiv(a, b) }
		}
		if f != nil {
			return func(a, b float64) float64 { return float64(int32(f(int64(a), int64(b)))) }, nil
		}
	}
	switch op {
	case ir.OpAdd:
		return func(a, b float64) float64 { return a + b }, nil
	case ir.OpSub:
		return func(a, b float64) float64 { return a - b }, nil
	case ir.OpMul:
		return func(a, b float64) float64 { return a * b }, nil
	case ir.OpDiv:
		return func(a, b float64) float64 { return a / b }, nil
	case ir.OpMax:
		return nanMax, nil
	case ir.OpMin:
		return nanMin, nil
	case ir.OpPow:
		return math.Pow, nil
	case ir.OpEq:
		return func(a, b float64) float64 { return b2f(a == b) }, nil
	case ir.OpNe:
		return func(a, b float64) float64 { return b2f(a != b) }, nil
	case ir.OpLt:
		return func(a, b float64) float64 { return b2f(a < b) }, nil
	case ir.OpLe:
		return func(a, b float64) float64 { return b2f(a <= b) }, nil
	case ir.OpGt:
		return func(a, b float64) float64 { return b2f(a > b) }, nil
	case ir.OpGe:
		return func(a, b float64) float64 { return b2f(a >= b) }, nil
	case ir.OpAnd:
		return func(a, b float64) float64 { return b2f(a != 0 && b != 0) }, nil
	case ir.OpOr:
		return func(a, b float64) float64 { return b2f(a != 0 || b != 0) }, nil
	}
	return nil, fmt.Errorf("not a binary op on %s", operand)
}

// selectOp is c ? x : y with all three broadcast to shape.
func selectOp(c, x, y *Tensor, shape []int) (*Tensor, error) {
	out := NewTensor(x.DType, shape...)
	offs := make([][]int, 3)
	for i, t := range []*Tensor{c, x, y} {
		o, err := bcastOffsets(t.Shape, shape)
		if err != nil {
			return nil, err
		}
		offs[i] = o
	}
	for i := range out.Data {
		if c.Data[offs[0][i]] != 0 {
			out.Data[i] = x.Data[offs[1][i]]
		} else {
			out.Data[i] = y.Data[offs[2][i]]
		}
	}
	return out, nil
}

// broadcastTo spreads x to shape by numpy's rules.
func broadcastTo(x *Tensor, shape []int) (*Tensor, error) {
	offs, err := bcastOffsets(x.Shape, shape)
	if err != nil {
		return nil, err
	}
	out := NewTensor(x.DType, shape...)
	for i, o := range offs {
		out.Data[i] = x.Data[o]
	}
	return out, nil
}

// bcastOffsets returns, for every element of shape out in row-major
// order, the offset of the element of a tensor of shape in that numpy
// broadcasting sends there (in is aligned to the right of out; its dims
// of size 1 repeat).
func bcastOffsets(in, out []int) ([]int, error) {
	if len(in) > len(out) {
		return nil, fmt.Errorf("cannot broadcast %v to %v", in, out)
	}
	lead := len(out) - len(in)
	st := stridesOf(in)
	bst := make([]int, len(out)) // stride per out dim, 0 where broadcast
	for i, d := range in {
		switch d {
		case out[lead+i]:
			bst[lead+i] = st[i]
		case 1:
		default:
			return nil, fmt.Errorf("cannot broadcast %v to %v", in, out)
		}
	}
	n := numel(out)
	offs := make([]int, n)
	idx := make([]int, len(out))
	for i := range offs {
		unravel(i, out, idx)
		o := 0
		for j, x := range idx {
			o += x * bst[j]
		}
		offs[i] = o
	}
	return offs, nil
}
