package runtime_test

import (
	"math"
	"testing"

	rt "github.com/attnc/attnc/runtime"
)

// dirty releases a few buffers of n elements of each dtype filled with
// garbage (NaN, -1, true), so that the next allocations of that size get
// recycled memory.
func dirty(n int) {
	for range 4 {
		f, i, b := rt.New(rt.F32, n), rt.New(rt.I32, n), rt.New(rt.Bool, n)
		for j := range n {
			f.F[j], i.I[j], b.B[j] = float32(math.NaN()), -1, true
		}
		rt.Release(f, i, b)
	}
}

// TestNewIsZeroAfterRelease: New promises zeros even on a recycled
// buffer, and Release empties the tensors it takes.
func TestNewIsZeroAfterRelease(t *testing.T) {
	for _, n := range []int{0, 1, 1023, 1024, 5000} {
		dirty(n)
		for _, dt := range []rt.DType{rt.F32, rt.I32, rt.Bool} {
			x := rt.New(dt, n)
			for j := range n {
				if x.Float64s()[j] != 0 {
					t.Fatalf("New(%s, %d)[%d] = %v, want 0", dt, n, j, x.Float64s()[j])
				}
			}
		}
	}
	x := rt.New(rt.F32, 2048)
	rt.Release(x, nil)
	if x.F != nil {
		t.Error("Release left the tensor its buffer")
	}
}

// TestKernelsOverwriteRecycledBuffers runs the kernels that skip zeroing
// their results on recycled garbage and compares with results computed on
// fresh memory: every element must be written.
func TestKernelsOverwriteRecycledBuffers(t *testing.T) {
	r := newRand(41)
	x := randF32(r, 3, 37, 41) // 4551 elements: past minPooled
	y := randF32(r, 41)
	c := randBool(r, 3, 37, 41)
	idx := randI32(r, 0, 3, 3, 37, 41)
	small := randF32(r, 37, 41)
	cases := []struct {
		name string
		run  func() *rt.Tensor
	}{
		{"unary", func() *rt.Tensor { return rt.Unary(rt.Tanh, x) }},
		{"unary i32", func() *rt.Tensor { return rt.Unary(rt.Neg, idx) }},
		{"binary", func() *rt.Tensor { return rt.Binary(rt.Add, x, y, nil) }},
		{"binary compare", func() *rt.Tensor { return rt.Binary(rt.Lt, x, y, nil) }},
		{"select", func() *rt.Tensor { return rt.Select(c, x, y, nil) }},
		{"transpose", func() *rt.Tensor { return rt.Transpose(x, []int{2, 0, 1}) }},
		{"slice", func() *rt.Tensor { return rt.Slice(rt.Concat(0, x, x), 0, 1, 4) }},
		{"broadcast", func() *rt.Tensor { return rt.Broadcast(small, []int{3, 37, 41}) }},
		{"softmax last", func() *rt.Tensor { return rt.Softmax(x, 2) }},
		{"softmax middle", func() *rt.Tensor { return rt.Softmax(x, 1) }},
		{"layer norm", func() *rt.Tensor { return rt.LayerNorm(x, 1e-5) }},
		{"rms norm", func() *rt.Tensor { return rt.RMSNorm(x, 1e-5) }},
		{"pad", func() *rt.Tensor { return rt.Pad(x, 1, 2, 3) }},
		{"einsum", func() *rt.Tensor { return rt.Einsum("abc,adc->bd", x, x) }},
	}
	for _, tc := range cases {
		want := tc.run()
		dirty(len(want.Float64s()))
		got := tc.run()
		checkSame(t, tc.name, got, want)
	}
}
