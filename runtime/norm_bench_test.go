package runtime_test

import (
	"testing"

	rt "github.com/attnc/attnc/runtime"
)

// BenchmarkNormStep compares a norm's kernels in a training step before
// the normparams pass (the norm, the affine mul and add, the scaled
// gradient, dy·y and the two column sums) with after (the affine norm and
// the gradient with its weights'), at a model's activation size.
func BenchmarkNormStep(b *testing.B) {
	r := newRand(50)
	shape := []int{8, 256, 64}
	x, dy, g, beta := randF32(r, shape...), randF32(r, shape...), randF32(r, 64), randF32(r, 64)
	b.Run("unfused", func(b *testing.B) {
		for b.Loop() {
			y := rt.LayerNorm(x, 1e-5)
			rt.Binary(rt.Add, rt.Binary(rt.Mul, y, g, shape), beta, shape)
			rt.ReduceSum(dy, []int{0, 1}, false)
			rt.ReduceSum(rt.Binary(rt.Mul, dy, y, shape), []int{0, 1}, false)
			rt.LayerNormGradScaled(x, dy, g, 1e-5)
		}
	})
	b.Run("fused", func(b *testing.B) {
		for b.Loop() {
			rt.LayerNormAffine(x, g, beta, 1e-5)
			rt.LayerNormGradParams(x, dy, g, 1e-5)
		}
	})
	b.Run("grad_unfused", func(b *testing.B) {
		y := rt.LayerNorm(x, 1e-5)
		for b.Loop() {
			rt.ReduceSum(dy, []int{0, 1}, false)
			rt.ReduceSum(rt.Binary(rt.Mul, dy, y, shape), []int{0, 1}, false)
			rt.LayerNormGradScaled(x, dy, g, 1e-5)
		}
	})
	b.Run("grad_fused", func(b *testing.B) {
		for b.Loop() {
			rt.LayerNormGradParams(x, dy, g, 1e-5)
		}
	})
}

// BenchmarkNormGradParamsNarrow is the gradient at pointer_sort's narrow
// rows (8 wide), where the per-row work is a few calls.
func BenchmarkNormGradParamsNarrow(b *testing.B) {
	r := newRand(51)
	x, dy, g := randF32(r, 256, 10, 8), randF32(r, 256, 10, 8), randF32(r, 8)
	b.Run("unfused", func(b *testing.B) {
		y := rt.LayerNorm(x, 1e-5)
		shape := []int{256, 10, 8}
		for b.Loop() {
			rt.Release(rt.ReduceSum(dy, []int{0, 1}, false))
			p := rt.Binary(rt.Mul, dy, y, shape)
			rt.Release(rt.ReduceSum(p, []int{0, 1}, false), p)
			rt.Release(rt.LayerNormGradScaled(x, dy, g, 1e-5))
		}
	})
	b.Run("fused", func(b *testing.B) {
		for b.Loop() {
			rt.Release(rt.LayerNormGradParams(x, dy, g, 1e-5)...)
		}
	})
}
