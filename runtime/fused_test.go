package runtime_test

import (
	"fmt"
	"testing"

	rt "github.com/attnc/attnc/runtime"
)

// TestFused runs small programs over operands of every broadcast kind at
// awkward sizes and compares with the same ops run one at a time by
// Unary and Binary, which the reference tests check: the values must be
// the same, element for element (NaN where they give NaN).
func TestFused(t *testing.T) {
	r := newRand(51)
	for _, shape := range [][]int{{0, 5}, {1}, {7}, {3, 1}, {2, 37, 41}, {3, 130, 513}, {1, 1000}, {4, 2, 3}} {
		rank := len(shape)
		full := func() *rt.Tensor { return randF32(r, shape...) }
		scalar := randF32(r)
		row := randF32(r, shape[rank-1:]...) // a bias
		if rank > 1 {
			row = randF32(r, append([]int{1}, shape[rank-1:]...)...) // [1, last]
		}
		colShape := append([]int(nil), shape...)
		colShape[rank-1] = 1
		col := randF32(r, colShape...)
		x, y, z := full(), full(), full()
		ins := []*rt.Tensor{x, y, z, scalar, row, col}
		steps := []rt.FusedStep{
			rt.FB(rt.Mul, 0, 1),  // 6: x·y
			rt.FB(rt.Add, 6, 4),  // 7: + row
			rt.FU(rt.Tanh, 7),    // 8
			rt.FB(rt.Sub, 3, 8),  // 9: scalar - …
			rt.FB(rt.Mul, 9, 5),  // 10: · col
			rt.FB(rt.Div, 10, 2), // 11: / z
			rt.FB(rt.Max, 11, 3), // 12: max(…, scalar)
			rt.FU(rt.Gelu, 12),   // 13
			rt.FB(rt.Min, 5, 13), // 14: min(col, …)
			rt.FB(rt.Add, 14, 8), // 15
			rt.FB(rt.Mul, 3, 3),  // 16: scalar · scalar
			rt.FB(rt.Add, 15, 16),
		}
		got := rt.Fused(shape, steps, ins...)
		vals := append([]*rt.Tensor(nil), ins...)
		for _, st := range steps {
			a := vals[st.A]
			if st.Unary != 0 {
				vals = append(vals, rt.Unary(st.Unary, a))
				continue
			}
			vals = append(vals, rt.Binary(st.Binary, a, vals[st.B], shape))
		}
		checkSame(t, fmt.Sprint(shape), got, vals[len(vals)-1])
	}
	mustPanic(t, "does not broadcast", func() {
		rt.Fused([]int{4, 6}, []rt.FusedStep{rt.FB(rt.Add, 0, 1)}, rt.New(rt.F32, 4, 6), rt.New(rt.F32, 2, 6))
	})
	mustPanic(t, "not yet computed", func() {
		rt.Fused([]int{4}, []rt.FusedStep{rt.FB(rt.Add, 0, 1)}, rt.New(rt.F32, 4))
	})
}
