package runtime_test

import (
	"fmt"
	"math"
	"slices"
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

// TestEinsumBias compares EinsumBias with Einsum then Binary's add, on
// products large enough for the GEMM (which adds into the bias rows) and
// on the paths that add the bias afterwards (a permuted result, a bias
// that is a column, a small product), with a bias of each row form.
func TestEinsumBias(t *testing.T) {
	r := newRand(21)
	x, w, y := randF32(r, 3, 37, 64), randF32(r, 64, 130), randF32(r, 3, 64, 50)
	small := randF32(r, 2, 3)
	for _, c := range []struct {
		name string
		spec string
		xs   []*rt.Tensor
		bias *rt.Tensor
	}{
		{"row", "abc,cd->abd", []*rt.Tensor{x, w}, randF32(r, 130)},
		{"row with leading 1s", "abc,cd->abd", []*rt.Tensor{x, w}, randF32(r, 1, 1, 130)},
		{"two dims", "abc,cd->abd", []*rt.Tensor{x, w}, randF32(r, 37, 130)},
		{"scalar", "abc,cd->abd", []*rt.Tensor{x, w}, randF32(r)},
		{"batched", "abc,acd->abd", []*rt.Tensor{x, y}, randF32(r, 50)},
		{"permuted result", "abc,cd->adb", []*rt.Tensor{x, w}, randF32(r, 37)},
		{"a column", "abc,cd->abd", []*rt.Tensor{x, w}, randF32(r, 37, 1)},
		{"small", "ab,bc->ac", []*rt.Tensor{small, randF32(r, 3, 4)}, randF32(r, 4)},
		{"one operand", "ab->ba", []*rt.Tensor{small}, randF32(r, 2)},
		// The GEMM's blocking: several k slabs of a large C (each task
		// fills its block with the bias before its first slab), k cut
		// into parts for a small C (split-K, filled before), several
		// panels of columns, and k = 0 (the bias alone).
		{"deep k", "ab,bc->ac", []*rt.Tensor{randF32(r, 600, 700), randF32(r, 700, 500)}, randF32(r, 500)},
		{"split k", "ab,bc->ac", []*rt.Tensor{randF32(r, 50, 1000), randF32(r, 1000, 40)}, randF32(r, 40)},
		{"wide", "abc,cd->abd", []*rt.Tensor{randF32(r, 2, 20, 64), randF32(r, 64, 5000)}, randF32(r, 5000)},
		{"no k", "ab,bc->ac", []*rt.Tensor{rt.New(rt.F32, 40, 0), rt.New(rt.F32, 0, 70)}, randF32(r, 70)},
	} {
		got := rt.EinsumBias(c.spec, c.bias, c.xs...)
		prod := rt.Einsum(c.spec, c.xs...)
		want := rt.Binary(rt.Add, prod, c.bias, prod.Shape)
		if !slices.Equal(got.Shape, want.Shape) {
			t.Fatalf("%s: shape %v, want %v", c.name, got.Shape, want.Shape)
		}
		for i, v := range want.F {
			if d := math.Abs(float64(got.F[i] - v)); d > 1e-4*(1+math.Abs(float64(v))) {
				t.Fatalf("%s: element %d is %v, want %v", c.name, i, got.F[i], v)
			}
		}
	}
	mustPanic(t, "bias must be an f32 tensor", func() { rt.EinsumBias("ab->ab", nil, small) })
}
