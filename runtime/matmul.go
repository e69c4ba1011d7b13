package runtime

import "fmt"

// Block sizes of MatMul: a task computes an mcBlock × ncBlock tile of one
// result matrix, walking k in kcBlock steps so that the kcBlock × ncBlock
// panel of y it reads (128 KiB) stays in cache while the rows of x
// stream past it.
const (
	mcBlock = 64
	ncBlock = 256
	kcBlock = 128
)

// MatMul returns x[..., m, k] · y[..., k, n] → [..., m, n] for f32 x and
// y of rank ≥ 2, numpy-style: the batch dims (all but the last two)
// broadcast. It accumulates in float32 and runs tiles of the result in
// parallel. It panics if the shapes do not fit.
func MatMul(x, y *Tensor) *Tensor {
	rx, ry := len(x.Shape), len(y.Shape)
	if x.DType != F32 || y.DType != F32 || rx < 2 || ry < 2 || x.Shape[rx-1] != y.Shape[ry-2] {
		panic(fmt.Sprintf("runtime.MatMul: %s · %s", typeString(x.DType, x.Shape), typeString(y.DType, y.Shape)))
	}
	m, k, n := x.Shape[rx-2], x.Shape[rx-1], y.Shape[ry-1]
	batch, err := BroadcastShape(x.Shape[:rx-2], y.Shape[:ry-2])
	if err != nil {
		panic(fmt.Sprintf("runtime.MatMul: %s · %s: batch dims: %v", typeString(x.DType, x.Shape), typeString(y.DType, y.Shape), err))
	}
	out := New(F32, append(batch, m, n)...)
	xb := batchIndex(x.Shape[:rx-2], batch)
	yb := batchIndex(y.Shape[:ry-2], batch)
	gemm(out.F, x.F, y.F, xb, yb, m, k, n)
	return out
}

// batchIndex returns, for each batch index of shape batch in row-major
// order, the flat index of the matrix of an operand whose batch dims in
// are broadcast to batch.
func batchIndex(in, batch []int) []int {
	nb := numel(batch)
	out := make([]int, nb)
	lead := len(batch) - len(in)
	st := stridesOf(in)
	for b := range nb {
		idx := unravel(b, batch)
		off := 0
		for i, d := range in {
			if d != 1 {
				off += idx[lead+i] * st[i]
			}
		}
		out[b] = off
	}
	return out
}

// gemm computes the batch of products c[b] = a[ab[b]] · bm[bb[b]] of
// [m, k] and [k, n] row-major matrices into the zeroed c, with the packed
// GEMM when the CPU has a SIMD micro-kernel and the products are big
// enough to repay packing, and with the scalar kernels otherwise.
//
// When every product shares one matrix of bm and reads the matrices of
// a in order, as in x[batch, m, k] · w[k, n], the batch is one product
// of batch·m rows: B is packed once rather than once a product, and the
// rows are blocked across the batch (one short last sliver of rows, not
// one a product).
func gemm(c, a, bm []float32, ab, bb []int, m, k, n int) {
	if m == 0 || n == 0 || k == 0 {
		return
	}
	if stacked(ab, bb) {
		m *= len(ab)
		ab, bb = ab[:1], bb[:1]
	}
	if kern := activeGemm; kern != nil && m*n*k >= matAddPacked {
		co := make([]int, len(ab))
		ao := make([]int, len(ab))
		bo := make([]int, len(ab))
		for i := range co {
			co[i], ao[i], bo[i] = i*m*n, ab[i]*m*k, bb[i]*k*n
		}
		packedGemm(kern, &gemmOperand{c, co, n, 1}, &gemmOperand{a, ao, k, 1}, &gemmOperand{bm, bo, n, 1}, m, k, n, false)
		return
	}
	gemmScalar(c, a, bm, ab, bb, m, k, n)
}

// stacked reports whether the products of batch indices ab and bb read
// the matrices of a in order from the first, and one matrix of b: then
// they are one product of len(ab) times the rows.
func stacked(ab, bb []int) bool {
	for i := range ab {
		if ab[i] != i || bb[i] != bb[0] {
			return false
		}
	}
	return len(ab) > 1
}

// gemmScalar is gemm with the portable kernels.
func gemmScalar(c, a, bm []float32, ab, bb []int, m, k, n int) {
	mt, nt := ceilDiv(m, mcBlock), ceilDiv(n, ncBlock)
	tiles := len(ab) * mt * nt
	flopsPerTile := 2 * min(m, mcBlock) * min(n, ncBlock) * k
	ParallelFor(tiles, max(1, (1<<18)/max(flopsPerTile, 1)), func(lo, hi int) {
		for t := lo; t < hi; t++ {
			b, r := t/(mt*nt), t%(mt*nt)
			i0, j0 := r/nt*mcBlock, r%nt*ncBlock
			i1, j1 := min(i0+mcBlock, m), min(j0+ncBlock, n)
			cm := c[b*m*n:]
			am := a[ab[b]*m*k:]
			bmat := bm[bb[b]*k*n:]
			for p0 := 0; p0 < k; p0 += kcBlock {
				p1 := min(p0+kcBlock, k)
				matAdd(cm[i0*n+j0:], n, am[i0*k+p0:], k, bmat[p0*n+j0:], n, i1-i0, p1-p0, j1-j0)
			}
		}
	})
}
