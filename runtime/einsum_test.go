package runtime_test

import (
	"fmt"
	"testing"

	"github.com/attnc/attnc/ir"
	rt "github.com/attnc/attnc/runtime"
)

// TestEinsumStrided checks the contractions the contract pass writes,
// which run as one GEMM over strided views of the operands, at sizes
// that pack (and around them: empty, 1, odd, past the tiles) against
// float64.
func TestEinsumStrided(t *testing.T) {
	r := newRand(33)
	for _, c := range []struct {
		spec  string
		shape func(b, l, k, n int) [][]int
	}{
		// A weight's gradient summed over the batch: xᵀ·dy with k = B·L.
		{"blk,bln->kn", func(b, l, k, n int) [][]int { return [][]int{{b, l, k}, {b, l, n}} }},
		// An activation's gradient through a transposed weight.
		{"bln,kn->blk", func(b, l, k, n int) [][]int { return [][]int{{b, l, n}, {k, n}} }},
		// A batch of rows times a weight, rows merged.
		{"blk,kn->bln", func(b, l, k, n int) [][]int { return [][]int{{b, l, k}, {k, n}} }},
		// Batched with both operands transposed.
		{"bkm,bnk->bmn", func(b, l, k, n int) [][]int { return [][]int{{b, k, l}, {b, n, k}} }},
		// Letters that do not merge (l outside k in x, inside in y).
		{"lbk,bln->kn", func(b, l, k, n int) [][]int { return [][]int{{l, b, k}, {b, l, n}} }},
		// Output letters out of the GEMM's order: permuted after.
		{"blk,bln->nk", func(b, l, k, n int) [][]int { return [][]int{{b, l, k}, {b, l, n}} }},
	} {
		for _, s := range [][4]int{{2, 33, 17, 40}, {3, 1, 64, 65}, {1, 130, 1, 33}, {2, 0, 16, 16}, {4, 37, 70, 3}} {
			var xs []*rt.Tensor
			for _, sh := range c.shape(s[0], s[1], s[2], s[3]) {
				xs = append(xs, randF32(r, sh...))
			}
			got := rt.Einsum(c.spec, xs...)
			want := ref(t, ir.OpEinsum, ir.Attrs{"spec": ir.StringAttr(c.spec)}, xs...)
			checkRel(t, fmt.Sprintf("%s %v", c.spec, s), got, want, tol)
		}
	}
}
