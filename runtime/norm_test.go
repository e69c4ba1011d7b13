package runtime_test

import (
	"fmt"
	goruntime "runtime"
	"slices"
	"testing"

	"github.com/attnc/attnc/ir"
	rt "github.com/attnc/attnc/runtime"
)

// normShapes are the shapes the affine and params norm kernels are
// checked at: an empty last axis and no rows, rows of one element, odd
// lengths (the vector kernels' tails), and enough rows for several of
// normGradParams's chunks of rows (2⁽¹³⁾ elements each).
var normShapes = [][]int{{3, 0}, {0, 5}, {1}, {4, 1}, {7}, {3, 5}, {2, 3, 33}, {100, 130}, {6001, 3}}

// TestNormAffine checks LayerNormAffine and RMSNormAffine against the
// reference, and bit for bit against the unfused norm, mul and add they
// replace.
func TestNormAffine(t *testing.T) {
	r := newRand(40)
	for _, shape := range normShapes {
		n := shape[len(shape)-1]
		x, g, b := randF32(r, shape...), randF32(r, n), randF32(r, n)
		for i := range x.F {
			x.F[i] = 3*x.F[i] + 1
		}
		attrs := ir.Attrs{"eps": ir.FloatAttr(1e-5), "affine": ir.BoolAttr(true)}
		layer, rms := rt.LayerNormAffine(x, g, b, 1e-5), rt.RMSNormAffine(x, g, 1e-5)
		checkRel(t, fmt.Sprint("layer", shape), layer, ref(t, ir.OpLayerNorm, attrs, x, g, b), tol)
		checkRel(t, fmt.Sprint("rms", shape), rms, ref(t, ir.OpRMSNorm, attrs, x, g), tol)
		unfused := rt.Binary(rt.Add, rt.Binary(rt.Mul, rt.LayerNorm(x, 1e-5), g, shape), b, shape)
		if !slices.Equal(layer.F, unfused.F) {
			t.Errorf("layer %v: LayerNormAffine differs from LayerNorm, mul and add", shape)
		}
		if unfused := rt.Binary(rt.Mul, rt.RMSNorm(x, 1e-5), g, shape); !slices.Equal(rms.F, unfused.F) {
			t.Errorf("rms %v: RMSNormAffine differs from RMSNorm and mul", shape)
		}
	}
	mustPanic(t, "not an f32 vector along the last axis", func() { rt.LayerNormAffine(randF32(r, 2, 3), randF32(r, 2), randF32(r, 3), 1e-5) })
	mustPanic(t, "not an f32 vector along the last axis", func() { rt.RMSNormAffine(randF32(r, 2, 3), randF32(r, 4), 1e-5) })
}

// TestNormGradParams checks LayerNormGradParams and RMSNormGradParams
// against the reference (every result), dx bit for bit against the
// scaled gradient it extends.
func TestNormGradParams(t *testing.T) {
	r := newRand(41)
	for _, shape := range normShapes {
		n := shape[len(shape)-1]
		x, dy, g := randF32(r, shape...), randF32(r, shape...), randF32(r, n)
		for i := range x.F {
			x.F[i] = 3*x.F[i] + 1
		}
		attrs := ir.Attrs{"eps": ir.FloatAttr(1e-5), "scale": ir.BoolAttr(true), "params": ir.BoolAttr(true)}
		for _, c := range []struct {
			name   string
			op     ir.Op
			got    []*rt.Tensor
			scaled *rt.Tensor
		}{
			{"layer", ir.OpLayerNormGrad, rt.LayerNormGradParams(x, dy, g, 1e-5), rt.LayerNormGradScaled(x, dy, g, 1e-5)},
			{"rms", ir.OpRMSNormGrad, rt.RMSNormGradParams(x, dy, g, 1e-5), rt.RMSNormGradScaled(x, dy, g, 1e-5)},
		} {
			m := newRef(t)
			tuple := m.b.Must(c.op, attrs, m.in(x), m.in(dy), m.in(g))
			var parts []*ir.Instr
			for i := range c.got {
				parts = append(parts, m.b.Must(ir.OpExtract, ir.Attrs{"index": ir.IntAttr(int64(i))}, tuple))
			}
			for i, p := range parts {
				checkRel(t, fmt.Sprint(c.name, shape, " result ", i), c.got[i], m.run(p), tol)
			}
			if !slices.Equal(c.got[0].F, c.scaled.F) {
				t.Errorf("%s %v: dx differs from the scaled gradient's", c.name, shape)
			}
		}
	}
	mustPanic(t, "gamma is not an f32 vector", func() { rt.LayerNormGradParams(randF32(r, 2, 3), randF32(r, 2, 3), randF32(r, 2), 1e-5) })
	mustPanic(t, "addend", func() {
		rt.LayerNormGradParamsAdd(randF32(r, 2, 3), randF32(r, 2, 3), randF32(r, 3), randF32(r, 3, 2), 1e-5)
	})
	mustPanic(t, "dy of its shape", func() { rt.RMSNormGradParams(randF32(r, 2, 3), randF32(r, 3, 2), randF32(r, 3), 1e-5) })
}

// TestNormGradParamsAdd: with an addend, dx is the addend plus the
// gradient, as Binary's Add would give it, bit for bit, and dγ, dβ are
// the same as without; against the reference too.
func TestNormGradParamsAdd(t *testing.T) {
	r := newRand(43)
	for _, shape := range normShapes {
		n := shape[len(shape)-1]
		x, dy, g, res := randF32(r, shape...), randF32(r, shape...), randF32(r, n), randF32(r, shape...)
		for _, rms := range []bool{false, true} {
			plain, add := rt.LayerNormGradParams(x, dy, g, 1e-5), rt.LayerNormGradParamsAdd(x, dy, g, res, 1e-5)
			op := ir.OpLayerNormGrad
			if rms {
				plain, add, op = rt.RMSNormGradParams(x, dy, g, 1e-5), rt.RMSNormGradParamsAdd(x, dy, g, res, 1e-5), ir.OpRMSNormGrad
			}
			if want := rt.Binary(rt.Add, res, plain[0], res.Shape); !slices.Equal(add[0].F, want.F) {
				t.Errorf("rms %v %v: dx with the addend is not the addend plus dx", rms, shape)
			}
			for i := 1; i < len(plain); i++ {
				if !slices.Equal(add[i].F, plain[i].F) {
					t.Errorf("rms %v %v: result %d changed with the addend", rms, shape, i)
				}
			}
			m := newRef(t)
			attrs := ir.Attrs{"eps": ir.FloatAttr(1e-5), "scale": ir.BoolAttr(true), "params": ir.BoolAttr(true), "accumulate": ir.BoolAttr(true)}
			tuple := m.b.Must(op, attrs, m.in(x), m.in(dy), m.in(g), m.in(res))
			checkRel(t, fmt.Sprint("rms ", rms, shape, " dx"), add[0], m.run(m.b.Must(ir.OpExtract, ir.Attrs{"index": ir.IntAttr(0)}, tuple)), tol)
		}
	}
}

// TestNormGradParamsDeterministic checks that the weight gradients do
// not depend on how many cores share the rows, bit for bit: 1, 2 and 3
// cores, over a few dozen chunks of rows.
func TestNormGradParamsDeterministic(t *testing.T) {
	r := newRand(42)
	x, dy, g := randF32(r, 3000, 67), randF32(r, 3000, 67), randF32(r, 67)
	// 1e20 in row 0 and -1e20 in row 1000: the float64 sums lose the
	// small terms up to the end of the chunk that holds row 1000 and keep
	// those after it, so a partition of the rows that followed the core
	// count would show.
	for j := range 67 {
		dy.F[j], dy.F[1000*67+j] = 1e20, -1e20
	}
	run := func(procs int) []*rt.Tensor {
		defer goruntime.GOMAXPROCS(goruntime.GOMAXPROCS(procs))
		return append(rt.LayerNormGradParams(x, dy, g, 1e-5), rt.RMSNormGradParams(x, dy, g, 1e-5)...)
	}
	want := run(1)
	for _, p := range []int{2, 3} {
		for i, got := range run(p) {
			if !slices.Equal(got.F, want[i].F) {
				t.Errorf("%d cores: result %d differs from one core's", p, i)
			}
		}
	}
}
