package eval_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/attnc/attnc/ir"
	"github.com/attnc/attnc/ir/eval"
)

// TestScanMatchesRecurrence compares scan with the recurrence written out
// for a [2, 6, 3] tensor, along each axis, both directions.
func TestScanMatchesRecurrence(t *testing.T) {
	shape := []int{2, 6, 3}
	rng := rand.New(rand.NewPCG(11, 13))
	a := eval.NewTensor(ir.F32, shape...)
	for i := range a.Data {
		a.Data[i] = 0.5 + 0.5*rng.Float64()
	}
	x := randn(rng, ir.F32, shape...)
	for axis := range shape {
		for _, reverse := range []bool{false, true} {
			t.Run(fmt.Sprintf("axis %d reverse %v", axis, reverse), func(t *testing.T) {
				c := newCtx()
				s := c.op(ir.OpScan, attrs("axis", ir.IntAttr(int64(axis)), "reverse", ir.BoolAttr(reverse)), c.in(a), c.in(x))
				got := c.run(t).Values[s.ID]

				want := eval.NewTensor(ir.F32, shape...)
				idx := []int{0, 0, 0}
				// Visit every line along axis: the other two indices
				// range over their dims.
				o1, o2 := (axis+1)%3, (axis+2)%3
				for i := range shape[o1] {
					for j := range shape[o2] {
						idx[o1], idx[o2] = i, j
						h := 0.0
						for step := range shape[axis] {
							idx[axis] = step
							if reverse {
								idx[axis] = shape[axis] - 1 - step
							}
							h = a.At(idx...)*h + x.At(idx...)
							want.Set(h, idx...)
						}
					}
				}
				checkRel(t, "scan", got, want, 1e-12)
			})
		}
	}
}
