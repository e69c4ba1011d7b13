//go:build amd64 && !purego

package runtime

import (
	"math/rand/v2"
	"testing"
)

// TestMicroKernelA64 checks each kernel's unpacked-A form (rows 64
// elements apart) against the packed form on the same A, bit for bit:
// both make the same multiply-adds in the same order; and its storing
// form (set) against the adding form on a zero C, and its unpacked-B
// form (rows 64 apart) against packed B.
func TestMicroKernelA64(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	rnd := func(n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		return x
	}
	for _, kern := range gemmKernels {
		if kern.runA64 == nil {
			t.Fatalf("%s: no unpacked-A kernel", kern.name)
		}
		mr, nr := kern.mr, kern.nr
		for _, k := range []int{1, 2, 3, 4, 5, 7, 15, 17, 63, 64} {
			for _, ldc := range []int{nr, nr + 3} {
				a := rnd(mr * 64)
				b := rnd(k * nr)
				c := rnd((mr-1)*ldc + nr)
				want := append([]float32(nil), c...)
				ap := make([]float32, mr*k)
				packA(ap, &gemmOperand{data: a, off: zeroOff, rs: 64, cs: 1}, 0, 0, 0, mr, k, mr)
				kern.run(k, ap, b, want, ldc)
				kern.runA64(k, a[:(mr-1)*64+k], b, c, ldc)
				for i := range c {
					if c[i] != want[i] {
						t.Fatalf("%s k=%d ldc=%d: c[%d] = %g, packed A gives %g", kern.name, k, ldc, i, c[i], want[i])
					}
				}
				// The unpacked-B form, on B's rows 64 apart.
				bu := rnd((k-1)*64 + nr)
				bp := make([]float32, k*nr)
				for p := range k {
					copy(bp[p*nr:(p+1)*nr], bu[p*64:])
				}
				cb := append([]float32(nil), c...)
				wantB := append([]float32(nil), c...)
				kern.run(k, ap, bp, wantB, ldc)
				kern.runB64(k, ap, bu, cb, ldc)
				for i := range cb {
					if cb[i] != wantB[i] {
						t.Fatalf("%s B64 k=%d ldc=%d: c[%d] = %g, packed B gives %g", kern.name, k, ldc, i, cb[i], wantB[i])
					}
				}
				// The storing form: C's old contents (garbage here) play no
				// part, except between rows, where C is not written.
				zero := make([]float32, len(c))
				kern.run(k, ap, b, zero, ldc)
				garbage := rnd(len(c))
				kern.set.run(k, ap, b, garbage, ldc)
				for i := range zero {
					if col := i % ldc; col < nr && garbage[i] != zero[i] {
						t.Fatalf("%s k=%d ldc=%d: stored c[%d] = %g, want %g", kern.set.name, k, ldc, i, garbage[i], zero[i])
					}
				}
			}
		}
	}
}
