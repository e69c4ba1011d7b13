package runtime_test

import (
	"fmt"
	"testing"

	"github.com/attnc/attnc/ir"
	rt "github.com/attnc/attnc/runtime"
)

func TestMatMulOddSizes(t *testing.T) {
	r := newRand(30)
	sizes := []int{1, 7, 33, 65, 130}
	for _, m := range sizes {
		for _, k := range sizes {
			for _, n := range sizes {
				if m*k*n > 130*130*65 {
					continue // keep the float64 reference quick
				}
				x, y := randF32(r, m, k), randF32(r, k, n)
				checkRel(t, fmt.Sprintf("%dx%dx%d", m, k, n), rt.MatMul(x, y), ref(t, ir.OpMatMul, nil, x, y), tol)
			}
		}
	}
}

func TestMatMulBatched(t *testing.T) {
	r := newRand(31)
	for _, c := range [][2][]int{
		{{3, 5, 7}, {3, 7, 4}},
		{{3, 5, 7}, {7, 4}},          // y broadcast
		{{5, 7}, {2, 3, 7, 4}},       // x broadcast over two batch dims
		{{2, 1, 5, 7}, {1, 3, 7, 4}}, // both broadcast
		{{4, 1, 65, 33}, {1, 2, 33, 130}},
		{{5, 37, 70}, {70, 90}},          // y broadcast: one product of 5·37 rows
		{{2, 3, 29, 70}, {1, 1, 70, 33}}, // the same over two batch dims
		{{2, 1, 37, 70}, {3, 70, 90}},    // x broadcast: products one by one
		{{1, 3, 37, 70}, {2, 1, 70, 90}}, // both: x's matrices repeat
		{{3, 1, 1000}, {1000, 1}},        // a row each, long k
		{{17, 255, 128}, {128, 40}},      // a model's layer
		{{2, 0, 3}, {3, 4}},              // empty
		{{2, 3, 0}, {0, 4}},              // empty contraction: zeros
	} {
		x, y := randF32(r, c[0]...), randF32(r, c[1]...)
		checkRel(t, fmt.Sprint(c), rt.MatMul(x, y), ref(t, ir.OpMatMul, nil, x, y), tol)
	}
	mustPanic(t, "MatMul", func() { rt.MatMul(rt.New(rt.F32, 2, 3), rt.New(rt.F32, 4, 2)) })
	mustPanic(t, "batch dims", func() { rt.MatMul(rt.New(rt.F32, 2, 2, 3), rt.New(rt.F32, 3, 3, 2)) })
}

func TestEinsum(t *testing.T) {
	r := newRand(32)
	for _, c := range []struct {
		spec   string
		shapes [][]int
	}{
		{"ij,jk->ik", [][]int{{5, 7}, {7, 3}}},
		{"ij,kj->ik", [][]int{{5, 7}, {3, 7}}},
		{"bhnd,bhne->bhde", [][]int{{2, 3, 5, 4}, {2, 3, 5, 6}}}, // linear attention state
		{"bhnd,bhde->bhne", [][]int{{2, 3, 5, 4}, {2, 3, 4, 6}}},
		{"bnd,de->bne", [][]int{{2, 5, 4}, {4, 6}}},
		{"i,j->ji", [][]int{{4}, {3}}},
		{"ij,ij->", [][]int{{4, 5}, {4, 5}}},
		{"ijk,jl->li", [][]int{{3, 4, 5}, {4, 2}}}, // k summed out of x first
		{"ij->ji", [][]int{{3, 4}}},
		{"ijk->k", [][]int{{3, 4, 5}}},
		{"ii->i", [][]int{{4, 4}}},          // diagonal: general loop
		{"i,i,i->", [][]int{{5}, {5}, {5}}}, // three operands
		{"bij,bjk,bkl->bil", [][]int{{2, 3, 4}, {2, 4, 5}, {2, 5, 3}}},
	} {
		var xs []*rt.Tensor
		for _, s := range c.shapes {
			xs = append(xs, randF32(r, s...))
		}
		got := rt.Einsum(c.spec, xs...)
		checkRel(t, c.spec, got, ref(t, ir.OpEinsum, ir.Attrs{"spec": ir.StringAttr(c.spec)}, xs...), tol)
	}
	mustPanic(t, "no ->", func() { rt.Einsum("ij,jk", rt.New(rt.F32, 2, 2), rt.New(rt.F32, 2, 2)) })
	mustPanic(t, "has size", func() { rt.Einsum("ij,jk->ik", rt.New(rt.F32, 2, 3), rt.New(rt.F32, 2, 2)) })
}
