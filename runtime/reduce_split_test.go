package runtime_test

import (
	"fmt"
	"testing"

	"github.com/attnc/attnc/ir"
	rt "github.com/attnc/attnc/runtime"
)

// TestReduceColumnsSplit checks sums and means over leading axes that
// are long and narrow (a bias's gradient), which split their rows among
// tasks, against float64.
func TestReduceColumnsSplit(t *testing.T) {
	r := newRand(61)
	for _, c := range []struct {
		shape []int
		axes  []int
	}{
		{[]int{5000, 64}, []int{0}},
		{[]int{2, 3001, 100}, []int{1}},
		{[]int{16, 255, 129}, []int{0, 1}},
		{[]int{1, 70000, 3}, []int{0, 1}},
	} {
		x := randF32(r, c.shape...)
		for _, op := range []ir.Op{ir.OpReduceSum, ir.OpReduceMean} {
			var got *rt.Tensor
			if op == ir.OpReduceSum {
				got = rt.ReduceSum(x, c.axes, false)
			} else {
				got = rt.ReduceMean(x, c.axes, false)
			}
			want := ref(t, op, ir.Attrs{"axes": ir.IntsAttr(int64s(c.axes)...)}, x)
			checkRel(t, fmt.Sprintf("%s %v %v", op, c.shape, c.axes), got, want, tol)
		}
	}
}
