package runtime

// The micro-kernels below are the inner loops of MatMul and Attention.
// Go's compiler does not vectorise, so they are written for what it does
// well: the k loop outside, unrolled four times, and the j loop inside
// over contiguous memory, updating two rows of the result at once. Each
// element of the result is then loaded and stored once per four k steps
// rather than per step, and each element of y read feeds two rows;
// operands are re-sliced so that bounds checks leave the inner loop. (On
// this design a 2-core AMD EPYC runs about 40% faster than with four rows
// and one k step per pass.)

// matAddPacked is the smallest m·n·k for which matAdd packs.
const matAddPacked = 4096

// gemmTile adds a[m×k] · b[k×n] into c[m×n] (row stride ldc) with the
// packed GEMM on the calling goroutine, reading a and b through row and
// column strides (so a transposed tile needs no copy), and reports
// whether it did. It declines, and the caller takes its scalar path,
// when there is no SIMD kernel or the product is too small to repay
// packing.
func gemmTile(c []float32, ldc int, a []float32, ars, acs int, b []float32, brs, bcs int, m, k, n int) bool {
	kern := activeGemm
	if kern == nil || m*n*k < matAddPacked {
		return false
	}
	off := []int{0}
	gemmOne(kern, &gemmOperand{c, off, ldc, 1}, &gemmOperand{a, off, ars, acs}, &gemmOperand{b, off, brs, bcs}, 0, m, k, n, false, false)
	return true
}

// matAdd adds a[m×k] · b[k×n] into c[m×n], where lda, ldb and ldc are
// the row strides of a, b and c.
//
// With a SIMD micro-kernel and a product big enough to repay packing, it
// runs the packed GEMM on one goroutine (its callers already run tiles
// in parallel).
func matAdd(c []float32, ldc int, a []float32, lda int, b []float32, ldb int, m, k, n int) {
	if n == 0 || k == 0 {
		return
	}
	if gemmTile(c, ldc, a, lda, 1, b, ldb, 1, m, k, n) {
		return
	}
	i := 0
	for ; i+2 <= m; i += 2 {
		gemm2(c[i*ldc:i*ldc+n], c[(i+1)*ldc:(i+1)*ldc+n], a[i*lda:i*lda+k], a[(i+1)*lda:(i+1)*lda+k], b, ldb)
	}
	if i < m {
		gemm1(c[i*ldc:i*ldc+n], a[i*lda:i*lda+k], b, ldb)
	}
}

// gemm2 adds the rows a0·b and a1·b into c0 and c1, where b has len(a0)
// rows of stride ldb and len(c0) columns.
func gemm2(c0, c1, a0, a1, b []float32, ldb int) {
	n, k := len(c0), len(a0)
	c1, a1 = c1[:n], a1[:k]
	p := 0
	for ; p+4 <= k; p += 4 {
		x := a0[p : p+4 : p+4]
		y := a1[p : p+4 : p+4]
		x0, x1, x2, x3 := x[0], x[1], x[2], x[3]
		y0, y1, y2, y3 := y[0], y[1], y[2], y[3]
		b0 := b[p*ldb : p*ldb+n]
		b1 := b[(p+1)*ldb:][:len(b0)]
		b2 := b[(p+2)*ldb:][:len(b0)]
		b3 := b[(p+3)*ldb:][:len(b0)]
		c0, c1 := c0[:len(b0)], c1[:len(b0)]
		for j, v0 := range b0 {
			v1, v2, v3 := b1[j], b2[j], b3[j]
			c0[j] += (x0*v0 + x1*v1) + (x2*v2 + x3*v3)
			c1[j] += (y0*v0 + y1*v1) + (y2*v2 + y3*v3)
		}
	}
	for ; p < k; p++ {
		br := b[p*ldb : p*ldb+n]
		axpy(c0, a0[p], br)
		axpy(c1, a1[p], br)
	}
}

// gemm1 adds the row a·b into c, where b has len(a) rows of stride ldb and
// len(c) columns.
func gemm1(c, a, b []float32, ldb int) {
	n, k := len(c), len(a)
	p := 0
	for ; p+4 <= k; p += 4 {
		x := a[p : p+4 : p+4]
		x0, x1, x2, x3 := x[0], x[1], x[2], x[3]
		b0 := b[p*ldb : p*ldb+n]
		b1 := b[(p+1)*ldb:][:len(b0)]
		b2 := b[(p+2)*ldb:][:len(b0)]
		b3 := b[(p+3)*ldb:][:len(b0)]
		c := c[:len(b0)]
		for j, v0 := range b0 {
			c[j] += (x0*v0 + x1*b1[j]) + (x2*b2[j] + x3*b3[j])
		}
	}
	for ; p < k; p++ {
		axpy(c, a[p], b[p*ldb:p*ldb+n])
	}
}

// axpy adds a·b into c (as long as b).
func axpy(c []float32, a float32, b []float32) {
	n := len(b)
	c = c[:n]
	j := 0
	for ; j+4 <= n; j += 4 {
		bb := b[j : j+4 : j+4]
		x := c[j : j+4 : j+4]
		x[0] += a * bb[0]
		x[1] += a * bb[1]
		x[2] += a * bb[2]
		x[3] += a * bb[3]
	}
	for ; j < n; j++ {
		c[j] += a * b[j]
	}
}

// dot returns Σ x[i]·y[i] over the length of x, with four partial sums.
func dot(x, y []float32) float32 {
	n := len(x)
	y = y[:n]
	var s0, s1, s2, s3 float32
	j := 0
	for ; j+4 <= n; j += 4 {
		xx, yy := x[j:j+4:j+4], y[j:j+4:j+4]
		s0 += xx[0] * yy[0]
		s1 += xx[1] * yy[1]
		s2 += xx[2] * yy[2]
		s3 += xx[3] * yy[3]
	}
	for ; j < n; j++ {
		s0 += x[j] * y[j]
	}
	return (s0 + s1) + (s2 + s3)
}

// scaleRow multiplies x by a, a vector at a time where there are vector
// kernels (the same rounding as the loop).
func scaleRow(x []float32, a float32) {
	if v := activeVec; v != nil && len(x) >= v.lanes {
		y := [1]float32{a}
		arithRowF32(Mul, x, x, 1, y[:], 0)
		return
	}
	for i := range x {
		x[i] *= a
	}
}
