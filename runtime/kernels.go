package runtime

// The micro-kernels below are the inner loops of MatMul and Attention.
// Go's compiler does not vectorise, so they are written for what it does
// well: the k loop outside, the j loop inside over contiguous memory,
// four rows of the result updated per element of y (one load of y feeds
// four multiply-adds) and the j loop unrolled four times, with re-sliced
// operands so that bounds checks are hoisted out of the loop.

// gemmMicro adds a[rows×kc] · b[kc×w] into c[rows×w], where rows ≤ 4
// and lda, ldb, ldc are the row strides of a, b and c.
func gemmMicro(c []float32, ldc int, a []float32, lda int, b []float32, ldb int, rows, kc, w int) {
	if rows < 4 {
		for r := range rows {
			cr := c[r*ldc : r*ldc+w]
			for p := range kc {
				axpy(cr, a[r*lda+p], b[p*ldb:p*ldb+w])
			}
		}
		return
	}
	c0, c1, c2, c3 := c[:w], c[ldc:ldc+w], c[2*ldc:2*ldc+w], c[3*ldc:3*ldc+w]
	for p := range kc {
		axpy4(c0, c1, c2, c3, a[p], a[lda+p], a[2*lda+p], a[3*lda+p], b[p*ldb:p*ldb+w])
	}
}

// axpy4 adds a0·b, a1·b, a2·b and a3·b into c0, c1, c2 and c3, each as
// long as b.
func axpy4(c0, c1, c2, c3 []float32, a0, a1, a2, a3 float32, b []float32) {
	n := len(b)
	c0, c1, c2, c3 = c0[:n], c1[:n], c2[:n], c3[:n]
	j := 0
	for ; j+4 <= n; j += 4 {
		bb := b[j : j+4 : j+4]
		b0, b1, b2, b3 := bb[0], bb[1], bb[2], bb[3]
		x := c0[j : j+4 : j+4]
		x[0] += a0 * b0
		x[1] += a0 * b1
		x[2] += a0 * b2
		x[3] += a0 * b3
		x = c1[j : j+4 : j+4]
		x[0] += a1 * b0
		x[1] += a1 * b1
		x[2] += a1 * b2
		x[3] += a1 * b3
		x = c2[j : j+4 : j+4]
		x[0] += a2 * b0
		x[1] += a2 * b1
		x[2] += a2 * b2
		x[3] += a2 * b3
		x = c3[j : j+4 : j+4]
		x[0] += a3 * b0
		x[1] += a3 * b1
		x[2] += a3 * b2
		x[3] += a3 * b3
	}
	for ; j < n; j++ {
		bv := b[j]
		c0[j] += a0 * bv
		c1[j] += a1 * bv
		c2[j] += a2 * bv
		c3[j] += a3 * bv
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

// scaleRow multiplies x by a.
func scaleRow(x []float32, a float32) {
	for i := range x {
		x[i] *= a
	}
}
