package runtime

import (
	"fmt"
	"slices"
)

// A FusedStep is one instruction of a fused elementwise program: a unary
// or a binary op on earlier values. Values are numbered as Fused's
// operands first, then the steps' results in order.
type FusedStep struct {
	Unary  UnaryOp  // set for a unary step
	Binary BinaryOp // set for a binary step: Add, Sub, Mul, Div, Max or Min
	A, B   int      // operand values (B for binary steps only)
}

// FU is a unary step of a fused program.
func FU(op UnaryOp, a int) FusedStep { return FusedStep{Unary: op, A: a} }

// FB is a binary step of a fused program.
func FB(op BinaryOp, a, b int) FusedStep { return FusedStep{Binary: op, A: a, B: b} }

// fusedBlock is about how many elements a task of Fused carries through
// all of its steps at once: its values stay in the first levels of cache
// instead of making a round trip to memory for every step.
const fusedBlock = 512

// Fused runs a chain of f32 elementwise ops as one pass over the result
// of the given shape, the last step's value, and returns it. Each operand
// has the result's shape, or broadcasts to it in one of three ways: a
// scalar (one element), a row (its shape, leading 1s aside, is a suffix
// of the result's: a bias), or a column (the result's leading dims then
// 1s: a per-row statistic kept by a reduction). Every step computes what
// Unary or Binary would, element by element with the same kernels, so the
// result is theirs; only the memory traffic of the intermediate values
// is saved. It panics on an operand that fits none of these or a step
// that is not elementwise f32.
func Fused(shape []int, steps []FusedStep, ins ...*Tensor) *Tensor {
	n := numel(shape)
	if len(steps) == 0 {
		panic("runtime.Fused: no steps")
	}
	ops := make([]fusedOperand, len(ins))
	period := 1
	for i, x := range ins {
		if x.DType != F32 {
			panic(fmt.Sprintf("runtime.Fused: operand %d is %s", i, x.DType))
		}
		ops[i] = classifyFused(x, shape)
		period = lcm(period, max(ops[i].period, ops[i].repeat))
	}
	unary := make([]func(dst, src []float32), len(steps))
	for s, st := range steps {
		switch {
		case st.Unary != 0:
			if unary[s] = unaryF32(st.Unary); unary[s] == nil || st.Unary == Not {
				panic(fmt.Sprintf("runtime.Fused: step %d: unary %d is not an f32 op", s, st.Unary))
			}
		case st.Binary < Add || st.Binary > Min || st.Binary == Pow:
			panic(fmt.Sprintf("runtime.Fused: step %d: binary %s is not fusible", s, st.Binary))
		}
		if st.A < 0 || st.A >= len(ins)+s || st.Unary == 0 && (st.B < 0 || st.B >= len(ins)+s) {
			panic(fmt.Sprintf("runtime.Fused: step %d reads a value not yet computed", s))
		}
	}
	// Blocks start at multiples of every row's period and column's
	// repeat, so a row's tile and a column's expansion line up with
	// every block.
	bl := period * max(1, fusedBlock/period)
	for i := range ops {
		if ops[i].period > 1 {
			tile := make([]float32, bl)
			for j := 0; j < bl; j += ops[i].period {
				copy(tile[j:], ins[i].F)
			}
			ops[i].tile = tile
		}
	}
	out := newUninit(F32, shape...)
	blocks := ceilDiv(n, bl)
	ParallelFor(blocks, max(1, elemGrain/(bl*len(steps))), func(lo, hi int) {
		regs := make([]float32, len(steps)*bl)
		cols := make([]float32, len(ins)*bl)
		for b := lo; b < hi; b++ {
			o0 := b * bl
			m := min(bl, n-o0)
			// value returns value v over the block with its stride (0 for
			// a scalar).
			value := func(v int) ([]float32, int) {
				if v >= len(ins) {
					return regs[(v-len(ins))*bl:][:m], 1
				}
				x, op := ins[v], &ops[v]
				switch {
				case op.full:
					return x.F[o0 : o0+m], 1
				case op.period == 1 && op.repeat == 1:
					return x.F[:1], 0
				case op.period > 1:
					return op.tile[:m], 1
				}
				col := cols[v*bl:][:m]
				for j, at := 0, o0/op.repeat; j < m; j, at = j+op.repeat, at+1 {
					fill(col[j:min(j+op.repeat, m)], x.F[at])
				}
				return col, 1
			}
			for s, st := range steps {
				dst := regs[s*bl:][:m]
				if s == len(steps)-1 {
					dst = out.F[o0 : o0+m]
				}
				a, as := value(st.A)
				if st.Unary != 0 {
					if as == 0 {
						unary[s](dst[:1], a)
						fill(dst, dst[0])
						continue
					}
					unary[s](dst, a)
					continue
				}
				bv, bs := value(st.B)
				switch st.Binary {
				case Add, Sub, Mul, Div:
					if as == 0 && bs == 0 {
						arithRowF32(st.Binary, dst[:1], a, 0, bv, 0)
						fill(dst, dst[0])
						continue
					}
					arithRowF32(st.Binary, dst, a, as, bv, bs)
				default:
					rowMap(dst, a, as, bv, bs, binaryF32(st.Binary))
				}
			}
		}
	})
	return out
}

// A fusedOperand says how an operand of Fused broadcasts: full (the
// result's shape), a row repeating with period elements (period > 1; a
// scalar has period 1 and repeat 1), or a column whose elements each
// repeat repeat times in a row (repeat > 1).
type fusedOperand struct {
	full           bool
	period, repeat int
	tile           []float32 // a row repeated over a block
}

func classifyFused(x *Tensor, shape []int) fusedOperand {
	if slices.Equal(x.Shape, shape) {
		return fusedOperand{full: true, period: 1, repeat: 1}
	}
	k := x.Len()
	if k == 1 {
		return fusedOperand{period: 1, repeat: 1}
	}
	lead := 0
	for lead < len(x.Shape) && x.Shape[lead] == 1 {
		lead++
	}
	if rest := x.Shape[lead:]; len(rest) <= len(shape) && slices.Equal(rest, shape[len(shape)-len(rest):]) {
		return fusedOperand{period: k, repeat: 1}
	}
	if len(x.Shape) == len(shape) {
		d := len(shape)
		for d > 0 && x.Shape[d-1] == 1 {
			d--
		}
		if slices.Equal(x.Shape[:d], shape[:d]) {
			return fusedOperand{period: 1, repeat: numel(shape[d:])}
		}
	}
	panic(fmt.Sprintf("runtime.Fused: operand %v does not broadcast to %v as a scalar, row or column", x.Shape, shape))
}

func fill(dst []float32, v float32) {
	for i := range dst {
		dst[i] = v
	}
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func lcm(a, b int) int { return a / gcd(a, b) * b }
