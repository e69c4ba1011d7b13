package runtime

import "testing"

// BenchmarkPackA packs a 64 × 64 row-major tile as 14-row slivers, the
// attention kernels' P (or dS) before each tile product.
func BenchmarkPackA(b *testing.B) {
	src := make([]float32, 64*64)
	for i := range src {
		src[i] = float32(i)
	}
	dst := make([]float32, 70*64)
	op := &gemmOperand{data: src, off: zeroOff, rs: 64, cs: 1}
	for b.Loop() {
		packA(dst, op, 0, 0, 0, 64, 64, 14)
	}
}

// BenchmarkPackAColumns packs the transpose of a 64 × 64 row-major tile,
// the backward's Pᵀ and dSᵀ.
func BenchmarkPackAColumns(b *testing.B) {
	src := make([]float32, 64*64)
	dst := make([]float32, 70*64)
	op := &gemmOperand{data: src, off: zeroOff, rs: 1, cs: 64}
	for b.Loop() {
		packA(dst, op, 0, 0, 0, 64, 64, 14)
	}
}
