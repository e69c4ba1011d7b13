package runtime

import (
	"fmt"
	"slices"
)

// Scan runs the linear recurrence h_t = a_t ⊙ h_{t-1} + x_t along axis
// from h_{-1} = 0 and returns every h_t; when reverse it runs from the last
// position backwards (h_t = a_t ⊙ h_{t+1} + x_t). a and x are f32 of one
// shape, the result's. Independent lanes (the dims other than axis) run
// in parallel; within a lane the recurrence is sequential, accumulated in
// float32.
func Scan(a, x *Tensor, axis int, reverse bool) *Tensor {
	if a.DType != F32 || x.DType != F32 || !slices.Equal(a.Shape, x.Shape) {
		panic(fmt.Sprintf("runtime.Scan: a %s and x %s must be f32 of one shape",
			typeString(a.DType, a.Shape), typeString(x.DType, x.Shape)))
	}
	checkAxis("Scan", axis, len(x.Shape))
	outer, n, inner := split3(x.Shape, axis)
	out := New(F32, x.Shape...)
	if n == 0 || inner == 0 {
		return out
	}
	blocks := ceilDiv(inner, colBlock)
	ParallelFor(outer*blocks, max(1, elemGrain/(n*min(inner, colBlock))), func(lo, hi int) {
		h := make([]float32, colBlock)
		for t := lo; t < hi; t++ {
			o, c0 := t/blocks, t%blocks*colBlock
			c1 := min(c0+colBlock, inner)
			hs := h[:c1-c0]
			clear(hs)
			for step := range n {
				i := step
				if reverse {
					i = n - 1 - step
				}
				off := (o*n+i)*inner + c0
				ar, xr, or := a.F[off:off+len(hs)], x.F[off:off+len(hs)], out.F[off:off+len(hs)]
				for j := range hs {
					hs[j] = ar[j]*hs[j] + xr[j]
					or[j] = hs[j]
				}
			}
		}
	})
	return out
}
