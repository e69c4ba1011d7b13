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
	rnd := func(n int) []float32 { return normals(r, n) }
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

// TestMicroKernelFormRows checks the forms' kernels of fewer rows (the
// last sliver of a tile) against the packed kernel of as many rows, bit
// for bit, and that they leave the rows past theirs alone.
func TestMicroKernelFormRows(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	rnd := func(n int) []float32 { return normals(r, n) }
	for _, kern := range gemmKernels {
		if kern.rowsA64 == nil || kern.runRows == nil {
			continue // AVX2: the forms' short slivers use the scratch tile
		}
		mr, nr := kern.mr, kern.nr
		for rows := 1; rows < mr; rows++ {
			for _, k := range []int{1, 3, 4, 17, 64} {
				ldc := nr + 5
				a := rnd((rows-1)*64 + k)
				ap := make([]float32, mr*k)
				packA(ap, &gemmOperand{data: a, off: zeroOff, rs: 64, cs: 1}, 0, 0, 0, rows, k, mr)
				b := rnd(k * nr)
				bu := rnd((k-1)*64 + nr)
				bp := make([]float32, k*nr)
				for p := range k {
					copy(bp[p*nr:(p+1)*nr], bu[p*64:])
				}
				c0 := rnd(mr*ldc + nr)
				check := func(form string, got, want []float32) {
					t.Helper()
					for i := range got {
						if got[i] != want[i] {
							t.Fatalf("%s %s rows=%d k=%d: c[%d] = %g, want %g", kern.name, form, rows, k, i, got[i], want[i])
						}
					}
				}
				want := append([]float32(nil), c0...)
				kern.runRows(rows, k, ap, b, want[:(rows-1)*ldc+nr], ldc)
				got := append([]float32(nil), c0...)
				kern.rowsA64(rows, k, a, b, got[:(rows-1)*ldc+nr], ldc)
				check("A64", got, want)

				want = append([]float32(nil), c0...)
				kern.runRows(rows, k, ap, bp, want[:(rows-1)*ldc+nr], ldc)
				got = append([]float32(nil), c0...)
				kern.rowsB64(rows, k, ap, bu, got[:(rows-1)*ldc+nr], ldc)
				check("B64", got, want)

				// The storing form on garbage equals the adding one on zeros,
				// in its rows; C is untouched past them.
				zero := make([]float32, len(c0))
				kern.runRows(rows, k, ap, b, zero[:(rows-1)*ldc+nr], ldc)
				got = append([]float32(nil), c0...)
				kern.set.runRows(rows, k, ap, b, got[:(rows-1)*ldc+nr], ldc)
				for i := range got {
					row, col := i/ldc, i%ldc
					w := c0[i]
					if row < rows && col < nr {
						w = zero[i]
					}
					if got[i] != w {
						t.Fatalf("%s set rows=%d k=%d: c[%d] = %g, want %g", kern.name, rows, k, i, got[i], w)
					}
				}
			}
		}
	}
}

// normals returns n standard normal float32s from r.
func normals(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}
