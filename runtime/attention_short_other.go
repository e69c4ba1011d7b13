//go:build !amd64 || purego

package runtime

// shortKernels reports false: the short attention kernels are AVX-512
// assembly (see attention_short_amd64.go).
func shortKernels() bool { return false }

func packShortKeys(k4 int, src []float32, rs int, dst []float32) {
	panic("runtime: no short attention kernels")
}

func attnShortFwd(q *float32, qs, rows int, kt *float32, d int, v *float32, vs, dv, nk int, masks *uint16, scale float32, out *float32, os int, ml *float32) {
	panic("runtime: no short attention kernels")
}

func attnShortBwd(q *float32, qs, rows int, kt *float32, d int, vt *float32, dv int, dy *float32, dys int, lse, rs *float32, ls int, masks *uint16, scale float32, k *float32, ks, nk int, dq *float32, dqs int, dk *float32, dks int, dvo *float32, dvos int) {
	panic("runtime: no short attention kernels")
}
