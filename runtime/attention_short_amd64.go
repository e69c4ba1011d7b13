//go:build amd64 && !purego

package runtime

// shortKernels reports whether the short attention kernels (AVX-512)
// can run: the vector kernels in use are the AVX-512 ones.
func shortKernels() bool { return activeVec != nil && activeVec.lanes == 16 }

// packShortKeys transposes 16 rows, rs elements apart, of 4·k4 elements
// into dst (element j of row r at dst[16·j + r]).
func packShortKeys(k4 int, src []float32, rs int, dst []float32) {
	_, _ = src[15*rs+4*k4-1], dst[16*4*k4-1]
	gemmPackT16x16(k4, &src[0], rs, &dst[0])
}

func attnShortFwd(q *float32, qs, rows int, kt *float32, d int, v *float32, vs, dv, nk int, masks *uint16, scale float32, out *float32, os int, ml *float32) {
	attnShortFwdAVX512(q, qs, rows, kt, d, v, vs, dv, nk, masks, scale, out, os, ml)
}

func attnShortBwd(q *float32, qs, rows int, kt *float32, d int, vt *float32, dv int, dy *float32, dys int, lse, rs *float32, ls int, masks *uint16, scale float32, k *float32, ks, nk int, dq *float32, dqs int, dk *float32, dks int, dvo *float32, dvos int) {
	attnShortBwdAVX512(q, qs, rows, kt, d, vt, dv, dy, dys, lse, rs, ls, masks, scale, k, ks, nk, dq, dqs, dk, dks, dvo, dvos)
}
