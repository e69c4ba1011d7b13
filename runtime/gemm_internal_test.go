package runtime

import (
	"fmt"
	"math"
	"math/rand/v2"
	goruntime "runtime"
	"slices"
	"testing"
)

// gemmSizes are the awkward sizes every kernel is tried on: empty, one,
// around the vector widths (8, 16) and tile heights, and long.
var gemmSizes = []int{0, 1, 7, 15, 16, 17, 63, 1000}

// testKernels returns every kernel this machine can run, each also with
// tiny cache blocks (so that small products cross every block
// boundary), and portable kernels of odd tile shapes, which run the
// packed GEMM on every architecture and under purego.
func testKernels() []*gemmKernel {
	var ks []*gemmKernel
	for _, k := range gemmKernels {
		ks = append(ks, k)
		tiny := *k
		tiny.name += "-tiny-blocks"
		tiny.mc, tiny.kc, tiny.nc = 2*k.mr, 5, 2*k.nr
		ks = append(ks, &tiny)
	}
	return append(ks,
		&gemmKernel{name: "go-3x5", mr: 3, nr: 5, mc: 6, kc: 4, nc: 10, run: goKernel(3, 5)},
		&gemmKernel{name: "go-4x8", mr: 4, nr: 8, mc: 64, kc: 128, nc: 256, run: goKernel(4, 8)},
	)
}

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// gemmBound is the error allowed in a float32 sum of k products whose
// absolute values add up to abs: a few ulps a term.
func gemmBound(k int, abs float64) float64 {
	return 4*float64(k+2)*math.Pow(2, -24)*abs + 1e-30
}

// TestGemmMicroKernels checks each assembly micro-kernel against the
// portable one of its shape and against float64, on slices that start at
// odd offsets and a C whose rows are padded.
func TestGemmMicroKernels(t *testing.T) {
	if len(gemmKernels) == 0 {
		t.Skip("no assembly kernels on this CPU or build")
	}
	r := rand.New(rand.NewPCG(1, 2))
	for _, kern := range gemmKernels {
		mr, nr := kern.mr, kern.nr
		ref := goKernel(mr, nr)
		for _, k := range gemmSizes[1:] {
			for _, off := range []int{0, 1, 3} {
				name := fmt.Sprintf("%s/k=%d/off=%d", kern.name, k, off)
				a := randSlice(r, off+k*mr)[off:]
				b := randSlice(r, off+k*nr)[off:]
				ldc := nr + 2*off + 1
				c0 := randSlice(r, off+(mr-1)*ldc+nr)[off:]
				got, want := slices.Clone(c0), slices.Clone(c0)
				kern.run(k, a, b, got, ldc)
				ref(k, a, b, want, ldc)
				for i := range mr {
					for j := range nr {
						exact, abs := float64(c0[i*ldc+j]), math.Abs(float64(c0[i*ldc+j]))
						for p := range k {
							x := float64(a[p*mr+i]) * float64(b[p*nr+j])
							exact += x
							abs += math.Abs(x)
						}
						bound := gemmBound(k, abs)
						g, w := float64(got[i*ldc+j]), float64(want[i*ldc+j])
						if math.Abs(g-exact) > bound || math.Abs(g-w) > 2*bound {
							t.Fatalf("%s: C[%d,%d] = %v, portable kernel %v, float64 %v", name, i, j, g, w, exact)
						}
					}
				}
				// Between the rows of C nothing may change.
				for i := range mr - 1 {
					for j := nr; j < ldc; j++ {
						if got[i*ldc+j] != c0[i*ldc+j] {
							t.Fatalf("%s: wrote C[%d,%d] outside the tile", name, i, j)
						}
					}
				}
			}
		}
	}
}

// TestPackA checks packA, and with it the assembly packers of the
// kernels' heights, against the layout it promises: on row-major and
// transposed blocks of awkward depths, heights and offsets.
func TestPackA(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, mr := range []int{14, 6, 3} {
		for _, k := range []int{0, 1, 3, 4, 5, 8, 9, 17, 255} {
			for _, rows := range []int{1, mr - 1, mr, mr + 1, 2*mr + 3} {
				for _, trans := range []bool{false, true} {
					i0, p0, pad := 2, 3, int(r.Uint64()%5)
					m, kk := i0+rows+1, p0+k+pad
					a := &gemmOperand{data: randSlice(r, 1+m*kk), off: []int{1}, rs: kk, cs: 1}
					if trans {
						a.rs, a.cs = 1, m
					}
					slivers := ceilDiv(rows, mr)
					dst := randSlice(r, slivers*mr*k+1)
					last := dst[len(dst)-1]
					packA(dst, a, 0, i0, p0, rows, k, mr)
					for s := range slivers {
						for p := range k {
							for i := range mr {
								want := float32(0)
								if s*mr+i < rows {
									want = a.data[a.at(0, i0+s*mr+i, p0+p)]
								}
								got := dst[s*mr*k+p*mr+i]
								if s*mr+i >= rows {
									// A padding row: zeros, or the
									// operand's row there where it has one.
									if off := a.at(0, i0+s*mr+i, p0+p); got != 0 && (off >= len(a.data) || got != a.data[off]) {
										t.Fatalf("mr=%d k=%d rows=%d trans=%v: padding [%d,%d] of sliver %d = %v", mr, k, rows, trans, p, i, s, got)
									}
									continue
								}
								if got != want {
									t.Fatalf("mr=%d k=%d rows=%d trans=%v: sliver %d [%d,%d] = %v, want %v", mr, k, rows, trans, s, p, i, got, want)
								}
							}
						}
					}
					if dst[len(dst)-1] != last {
						t.Fatalf("mr=%d k=%d rows=%d trans=%v: wrote past the slivers", mr, k, rows, trans)
					}
				}
			}
		}
	}
}

// TestPackB checks packB, whose row-major slivers go through the
// assembly row copiers where there are some (nr of 32 and 16) and whose
// transposed ones through the assembly transposers, against the
// definition on awkward depths, widths and offsets (padding columns are
// zeros, or B's columns there where it has them), and that it writes
// nothing past its sliver.
func TestPackB(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, nr := range []int{32, 16, 5} {
		for _, k := range []int{0, 1, 2, 3, 4, 7, 10, 15, 16, 17, 31, 32, 33, 63, 64, 255} {
			for _, cols := range []int{1, 3, 10, nr - 1, nr} {
				for _, trans := range []bool{false, true} {
					if cols > nr || cols < 1 {
						continue
					}
					// pad columns past the sliver: none, a few, or
					// enough for the transposers to read a whole 16.
					p0, j0, pad := 3, 2, []int{0, 1, 4, 17, 33}[r.Uint64()%5]
					rows, n := p0+k+1, j0+cols+pad
					b := &gemmOperand{data: randSlice(r, 1+rows*n), off: []int{1}, rs: n, cs: 1}
					if trans {
						b.rs, b.cs = 1, rows
					}
					dst := randSlice(r, k*nr+1)
					last := dst[len(dst)-1]
					packB(dst[:k*nr], b, 0, p0, j0, k, cols, nr)
					for p := range k {
						for j := range nr {
							got := dst[p*nr+j]
							if j >= cols {
								if off := b.at(0, p0+p, j0+j); got != 0 && (j0+j >= n || got != b.data[off]) {
									t.Fatalf("nr=%d k=%d cols=%d trans=%v: padding [%d,%d] = %v", nr, k, cols, trans, p, j, got)
								}
								continue
							}
							if want := b.data[b.at(0, p0+p, j0+j)]; got != want {
								t.Fatalf("nr=%d k=%d cols=%d trans=%v: [%d,%d] = %v, want %v", nr, k, cols, trans, p, j, got, want)
							}
						}
					}
					if dst[len(dst)-1] != last {
						t.Fatalf("nr=%d k=%d cols=%d trans=%v: wrote past the sliver", nr, k, cols, trans)
					}
				}
			}
		}
	}
}

// TestCopyRows checks each assembly row copier directly: every depth up
// to 9 and a long one, rows at an odd stride from an unaligned start,
// nothing written past the rows.
func TestCopyRows(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, w := range []int{32, 16, 14, 6} {
		cp := copyRows(w)
		if cp == nil {
			t.Skipf("no assembly copiers on this CPU or build")
		}
		for _, k := range []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 1000} {
			rs := w + 3
			src := randSlice(r, 1+k*rs)
			dst := randSlice(r, 1+k*w+1)
			last := dst[len(dst)-1]
			cp(k, &src[1], rs, &dst[1])
			for p := range k {
				for j := range w {
					if got, want := dst[1+p*w+j], src[1+p*rs+j]; got != want {
						t.Fatalf("width %d, k=%d: [%d,%d] = %v, want %v", w, k, p, j, got, want)
					}
				}
			}
			if dst[len(dst)-1] != last {
				t.Fatalf("width %d, k=%d: wrote past the rows", w, k)
			}
		}
	}
}

// TestTransRows checks each assembly transposer directly: 16 rows at an
// odd stride from an unaligned start, every depth up to 9 fours and a
// long one, into the first 16 columns of its sliver and nothing else.
func TestTransRows(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, nr := range []int{32, 16} {
		tr := transRows(nr)
		if tr == nil {
			t.Skipf("no assembly transposers on this CPU or build")
		}
		for _, k4 := range []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 250} {
			k := 4 * k4
			rs := k + 3
			src := randSlice(r, 1+16*rs)
			dst := randSlice(r, 1+k*nr+1)
			old := slices.Clone(dst)
			tr(k4, &src[1], rs, &dst[1])
			for p := range k {
				for j := range nr {
					want := old[1+p*nr+j]
					if j < 16 {
						want = src[1+j*rs+p]
					}
					if got := dst[1+p*nr+j]; got != want {
						t.Fatalf("nr %d, k=%d: [%d,%d] = %v, want %v", nr, k, p, j, got, want)
					}
				}
			}
			if dst[0] != old[0] || dst[len(dst)-1] != old[len(dst)-1] {
				t.Fatalf("nr %d, k=%d: wrote outside the sliver", nr, k)
			}
		}
	}
}

// TestGemmRowKernels checks each kernel's runRows, for every number of
// rows, against the full kernel: the rows it computes must be the full
// kernel's bit for bit, and the rows below them untouched.
func TestGemmRowKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 5))
	for _, kern := range gemmKernels {
		if kern.runRows == nil {
			continue
		}
		mr, nr := kern.mr, kern.nr
		for rows := 1; rows < mr; rows++ {
			for _, k := range []int{1, 3, 4, 5, 17} {
				ldc := nr + 3
				a, b := randSlice(r, k*mr), randSlice(r, k*nr)
				c0 := randSlice(r, (mr-1)*ldc+nr)
				got, want := slices.Clone(c0), slices.Clone(c0)
				kern.runRows(rows, k, a, b, got[:(rows-1)*ldc+nr], ldc)
				kern.run(k, a, b, want, ldc)
				copy(want[rows*ldc:], c0[rows*ldc:])
				if !slices.Equal(got, want) {
					t.Fatalf("%s: %d rows, k=%d: got %v, want %v", kern.name, rows, k, got, want)
				}
			}
		}
	}
}

// TestGemmColKernels checks each kernel's runCols, for every number of
// columns, against the full kernel: the columns it computes must be the
// full kernel's bit for bit, and the columns right of them untouched.
func TestGemmColKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 7))
	for _, kern := range gemmKernels {
		if kern.runCols == nil {
			continue
		}
		mr, nr := kern.mr, kern.nr
		for cols := 1; cols < nr; cols++ {
			for _, k := range []int{1, 4, 7} {
				ldc := nr + 3
				a, b := randSlice(r, k*mr), randSlice(r, k*nr)
				c0 := randSlice(r, (mr-1)*ldc+nr)
				got, want := slices.Clone(c0), slices.Clone(c0)
				kern.runCols(cols, k, a, b, got[:(mr-1)*ldc+cols], ldc)
				kern.run(k, a, b, want, ldc)
				for i := range mr {
					copy(want[i*ldc+cols:min((i+1)*ldc, len(want))], c0[i*ldc+cols:])
				}
				if !slices.Equal(got, want) {
					t.Fatalf("%s: %d columns, k=%d: got %v, want %v", kern.name, cols, k, got, want)
				}
			}
		}
	}
}

// gemmCase is one batched product for checkPackedGemm: transA and
// transB store A and B transposed; off shifts every matrix to an
// unaligned start; ldcPad pads the rows of C.
type gemmCase struct {
	m, k, n, batch int
	transA, transB bool
	off, ldcPad    int
	broadcastB     bool // every product uses the same B
	store          bool // write the product over C instead of adding
	seed           uint64
}

func (g gemmCase) String() string {
	return fmt.Sprintf("m=%d k=%d n=%d batch=%d tA=%v tB=%v off=%d pad=%d bcastB=%v store=%v", g.m, g.k, g.n, g.batch, g.transA, g.transB, g.off, g.ldcPad, g.broadcastB, g.store)
}

// checkPackedGemm runs packedGemm with kern on g and compares every
// element of C with a float64 product; it also checks that the padding
// of C is untouched. With g.store C starts as NaNs, which the product
// must replace without reading.
func checkPackedGemm(t testing.TB, kern *gemmKernel, g gemmCase) {
	t.Helper()
	r := rand.New(rand.NewPCG(g.seed, 7))
	m, k, n := g.m, g.k, g.n
	a := &gemmOperand{data: randSlice(r, g.off+g.batch*m*k), rs: k, cs: 1}
	if g.transA {
		a.rs, a.cs = 1, m
	}
	nbm := g.batch
	if g.broadcastB {
		nbm = 1
	}
	b := &gemmOperand{data: randSlice(r, g.off+nbm*k*n), rs: n, cs: 1}
	if g.transB {
		b.rs, b.cs = 1, k
	}
	ldc := n + g.ldcPad
	c := &gemmOperand{data: randSlice(r, g.off+g.batch*m*ldc), rs: ldc, cs: 1}
	for bi := range g.batch {
		a.off = append(a.off, g.off+bi*m*k)
		c.off = append(c.off, g.off+bi*m*ldc)
		if g.broadcastB {
			b.off = append(b.off, g.off)
		} else {
			b.off = append(b.off, g.off+bi*k*n)
		}
	}
	if g.store {
		for bi := range g.batch {
			for i := range m {
				for j := range n {
					c.data[c.at(bi, i, j)] = float32(math.NaN())
				}
			}
		}
	}
	c0 := slices.Clone(c.data)
	packedGemm(kern, c, a, b, m, k, n, g.store)
	for bi := range g.batch {
		for i := range m {
			for j := range ldc {
				idx := c.at(bi, i, j)
				if j >= n {
					if c.data[idx] != c0[idx] {
						t.Fatalf("%s %v: wrote the padding C[%d][%d,%d]", kern.name, g, bi, i, j)
					}
					continue
				}
				exact, abs := float64(c0[idx]), math.Abs(float64(c0[idx]))
				if g.store {
					exact, abs = 0, 0
				}
				for p := range k {
					x := float64(a.data[a.at(bi, i, p)]) * float64(b.data[b.at(bi, p, j)])
					exact += x
					abs += math.Abs(x)
				}
				if got := float64(c.data[idx]); math.Abs(got-exact) > gemmBound(k, abs) {
					t.Fatalf("%s %v: C[%d][%d,%d] = %v, want %v", kern.name, g, bi, i, j, got, exact)
				}
			}
		}
	}
	if g.off > 0 && !slices.Equal(c.data[:g.off], c0[:g.off]) {
		t.Fatalf("%s %v: wrote before C", kern.name, g)
	}
}

// TestPackedGemm tries every kernel on every combination of the awkward
// sizes below 1000 for m, k and n, with both operands transposed or not,
// then on products where one of them is 1000.
func TestPackedGemm(t *testing.T) {
	small := gemmSizes[:len(gemmSizes)-1]
	seed := uint64(0)
	for _, kern := range testKernels() {
		for _, m := range small {
			for _, k := range small {
				for _, n := range small {
					seed++
					tr := int(seed % 4)
					checkPackedGemm(t, kern, gemmCase{m: m, k: k, n: n, batch: 1, transA: tr&1 != 0, transB: tr&2 != 0, off: int(seed % 3), ldcPad: int(seed % 5), store: seed%7 < 3, seed: seed})
				}
			}
		}
		for _, g := range []gemmCase{
			{m: 1000, k: 17, n: 15, batch: 1},
			{m: 7, k: 1000, n: 63, batch: 1, transA: true},
			{m: 16, k: 63, n: 1000, batch: 1, transB: true, off: 1},
			{m: 63, k: 1000, n: 17, batch: 1, transA: true, transB: true, ldcPad: 3},
			{m: 1, k: 1000, n: 1000, batch: 1, off: 3},
			{m: 100, k: 1000, n: 70, batch: 1, transA: true, store: true},
			{m: 1000, k: 63, n: 40, batch: 1, store: true, ldcPad: 1},
		} {
			seed++
			g.seed = seed
			checkPackedGemm(t, kern, g)
		}
	}
}

// TestPackedGemmBatched checks batches, broadcast operands and both
// parallel strategies (one product at a time in parallel, and products
// in parallel).
func TestPackedGemmBatched(t *testing.T) {
	for _, kern := range testKernels() {
		for i, g := range []gemmCase{
			{m: 17, k: 15, n: 16, batch: 3, off: 1, ldcPad: 2},
			{m: 63, k: 7, n: 33, batch: 9, transA: true, broadcastB: true},
			{m: 130, k: 70, n: 90, batch: 2, transB: true, off: 3},
			{m: 5, k: 9, n: 7, batch: 20, broadcastB: true, transB: true},
			{m: 17, k: 15, n: 16, batch: 3, off: 1, ldcPad: 2, store: true},
			{m: 130, k: 70, n: 90, batch: 2, transB: true, off: 3, store: true},
			{m: 5, k: 9, n: 7, batch: 20, broadcastB: true, store: true},
		} {
			g.seed = uint64(100 + i)
			checkPackedGemm(t, kern, g)
		}
	}
}

// TestGemmSplitK checks the products that gemmSplitK cuts into parts of
// k (small C, deep k): against float64 through checkPackedGemm, at
// depths that do not divide evenly (41 in slabs of at most 5 is 7 parts
// of 6, not 8 with an empty one), storing and adding; and that the
// result is the same bit for bit on one core and on several, in
// parallel or not.
func TestGemmSplitK(t *testing.T) {
	for _, kern := range testKernels() {
		five := *kern
		five.name += "-kc5"
		five.kc = 5
		for i, g := range []gemmCase{
			{m: 3, k: 41, n: 7, batch: 1},
			{m: 20, k: 41, n: 33, batch: 1, transA: true, store: true},
			{m: 17, k: 11, n: 40, batch: 1, transB: true, off: 2, ldcPad: 3},
			{m: 9, k: 1000, n: 5, batch: 2, store: true},
		} {
			g.seed = uint64(300 + i)
			checkPackedGemm(t, &five, g)
		}
	}
	kern := activeGemm
	if kern == nil {
		kern = testKernels()[0]
	}
	r := rand.New(rand.NewPCG(8, 9))
	m, k, n := 30, 3*kern.kc+17, 50
	a, b := randSlice(r, m*k), randSlice(r, k*n)
	run := func(procs int, parallel bool) []float32 {
		defer goruntime.GOMAXPROCS(goruntime.GOMAXPROCS(procs))
		c := randSlice(r, m*n)
		gemmOne(kern, &gemmOperand{c, []int{0}, n, 1}, &gemmOperand{a, []int{0}, 1, m}, &gemmOperand{b, []int{0}, n, 1}, 0, m, k, n, parallel, true)
		return c
	}
	want := run(1, false)
	for _, p := range []int{1, 2, 3} {
		for _, par := range []bool{false, true} {
			if got := run(p, par); !slices.Equal(got, want) {
				t.Fatalf("%s: %d cores, parallel %v: the product differs from one core's", kern.name, p, par)
			}
		}
	}
}

// withKernel runs f with activeGemm set to kern.
func withKernel(kern *gemmKernel, f func()) {
	old := activeGemm
	activeGemm = kern
	defer func() { activeGemm = old }()
	f()
}

// TestGemmDeterministic checks that MatMul's result does not depend on
// how many cores share the work, bit for bit: for a batch of products
// with few rows (the columns are split among the cores) and for one with
// many (the rows are).
func TestGemmDeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	defer goruntime.GOMAXPROCS(goruntime.GOMAXPROCS(0))
	for _, s := range [][4]int{{3, 150, 301, 170}, {1, 500, 301, 90}} {
		x, y := New(F32, s[0], s[1], s[2]), New(F32, s[2], s[3])
		copy(x.F, randSlice(r, len(x.F)))
		copy(y.F, randSlice(r, len(y.F)))
		for _, kern := range append(testKernels(), nil) {
			withKernel(kern, func() {
				var first []float32
				for _, procs := range []int{1, 2, 3, 8} {
					goruntime.GOMAXPROCS(procs)
					got := MatMul(x, y).F
					if first == nil {
						first = got
					} else if !slices.Equal(got, first) {
						t.Errorf("kernel %v, %v: GOMAXPROCS=%d changes MatMul's result", kern, s, procs)
					}
				}
			})
		}
	}
}

// TestMatMulEachKernel runs MatMul and Einsum with each kernel forced,
// the scalar one (nil) included, against float64 products.
func TestMatMulEachKernel(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	for _, kern := range append(testKernels(), nil) {
		withKernel(kern, func() {
			for _, s := range [][3]int{{1, 1, 1}, {7, 17, 15}, {63, 16, 1}, {33, 65, 130}} {
				m, k, n := s[0], s[1], s[2]
				x, y := New(F32, 2, m, k), New(F32, k, n)
				copy(x.F, randSlice(r, len(x.F)))
				copy(y.F, randSlice(r, len(y.F)))
				for _, got := range []*Tensor{MatMul(x, y), Einsum("bik,kj->bij", x, y)} {
					for b := range 2 {
						for i := range m {
							for j := range n {
								exact, abs := 0.0, 0.0
								for p := range k {
									v := float64(x.F[(b*m+i)*k+p]) * float64(y.F[p*n+j])
									exact += v
									abs += math.Abs(v)
								}
								if g := float64(got.F[(b*m+i)*n+j]); math.Abs(g-exact) > gemmBound(k, abs) {
									t.Fatalf("kernel %v, %v: [%d,%d,%d] = %v, want %v", kern, s, b, i, j, g, exact)
								}
							}
						}
					}
				}
			}
		})
	}
}

// FuzzPackedGemm checks random shapes, layouts and kernels against
// float64.
func FuzzPackedGemm(f *testing.F) {
	f.Add(uint8(17), uint8(15), uint8(16), uint8(2), uint8(0), uint8(1), uint64(1))
	f.Add(uint8(1), uint8(0), uint8(63), uint8(1), uint8(3), uint8(0), uint64(2))
	f.Fuzz(func(t *testing.T, m, k, n, batch, flags, kernel uint8, seed uint64) {
		ks := testKernels()
		kern := ks[int(kernel)%len(ks)]
		g := gemmCase{
			m: int(m % 80), k: int(k % 80), n: int(n % 80), batch: 1 + int(batch%4),
			transA: flags&1 != 0, transB: flags&2 != 0, broadcastB: flags&4 != 0,
			off: int(flags>>3) % 4, ldcPad: int(flags>>5) % 4, seed: seed,
		}
		checkPackedGemm(t, kern, g)
	})
}

func TestStacked(t *testing.T) {
	for _, c := range []struct {
		ab, bb []int
		want   bool
	}{
		{[]int{0, 1, 2}, []int{0, 0, 0}, true},
		{[]int{0, 1}, []int{1, 1}, true},
		{[]int{4, 5}, []int{1, 1}, false}, // not from the first: offsets would scale with the rows
		{[]int{0}, []int{0}, false},       // one product: nothing to stack
		{[]int{0, 1, 2}, []int{0, 1, 2}, false},
		{[]int{0, 0, 1, 1}, []int{0, 0, 0, 0}, false},
		{[]int{0, 2}, []int{0, 0}, false},
		{[]int{1, 0}, []int{0, 0}, false},
	} {
		if got := stacked(c.ab, c.bb); got != c.want {
			t.Errorf("stacked(%v, %v) = %v, want %v", c.ab, c.bb, got, c.want)
		}
	}
}

func TestChooseKernel(t *testing.T) {
	a, b := &gemmKernel{name: "avx512"}, &gemmKernel{name: "avx2"}
	ks := []*gemmKernel{a, b}
	for _, c := range []struct {
		want string
		ks   []*gemmKernel
		got  *gemmKernel
	}{
		{"", ks, a}, {"avx2", ks, b}, {"avx512", ks, a}, {"scalar", ks, nil},
		{"avx512", ks[1:], b}, {"nonsense", ks, a}, {"", nil, nil}, {"avx2", nil, nil},
	} {
		if got := chooseKernel(c.ks, c.want); got != c.got {
			t.Errorf("chooseKernel(%d kernels, %q) = %v, want %v", len(c.ks), c.want, got, c.got)
		}
	}
}

// TestBigBuffersSurviveGC: a large packing buffer given back is reused
// after collections (which empty sync.Pools), and the list stays short.
func TestBigBuffersSurviveGC(t *testing.T) {
	p := getBuffer(bigFloats + 5)
	putBuffer(p)
	goruntime.GC()
	goruntime.GC()
	if q := getBuffer(bigFloats); q != p {
		t.Fatalf("a large buffer did not survive two collections")
	} else {
		putBuffer(q)
	}
	for range 2 * bigKeep {
		putBuffer(getBuffer(bigFloats))
		b := make([]float32, bigFloats)
		putBuffer(&b)
	}
	bigBuffers.Lock()
	n := len(bigBuffers.list)
	bigBuffers.Unlock()
	if n > bigKeep {
		t.Fatalf("%d large buffers kept, want at most %d", n, bigKeep)
	}
}

// TestGemmHalfKernels checks each kernel's half forms (packed A adding,
// packed A storing, A unpacked with rows of 64), for every number of
// rows, against the full kernels: the first 16 columns of the rows they
// compute must be the full kernel's bit for bit, everything else of C
// untouched.
func TestGemmHalfKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 7))
	checked := 0
	for _, kern := range gemmKernels {
		mr, nr := kern.mr, kern.nr
		forms := []struct {
			name       string
			half, full func(rows, k int, a, b, c []float32, ldc int)
			lda        int
		}{
			{"packed", kern.half, func(_, k int, a, b, c []float32, ldc int) { kern.run(k, a, b, c, ldc) }, 0},
			{"A64", kern.halfA64, func(_, k int, a, b, c []float32, ldc int) { kern.runA64(k, a, b, c, ldc) }, 64},
		}
		if s := kern.set; s != nil {
			forms = append(forms, struct {
				name       string
				half, full func(rows, k int, a, b, c []float32, ldc int)
				lda        int
			}{"set", s.half, func(_, k int, a, b, c []float32, ldc int) { s.run(k, a, b, c, ldc) }, 0})
		}
		for _, f := range forms {
			if f.half == nil {
				continue
			}
			checked++
			for rows := 1; rows <= mr; rows++ {
				for _, k := range []int{1, 3, 4, 5, 10, 17, 33, 64} {
					ldc := nr + 3
					a := randSlice(r, k*mr)
					if f.lda > 0 {
						a = randSlice(r, mr*f.lda)
					}
					b := randSlice(r, k*nr)
					c0 := randSlice(r, mr*ldc)
					got, want := slices.Clone(c0), slices.Clone(c0)
					f.half(rows, k, a, b, got[:(rows-1)*ldc+16], ldc)
					f.full(rows, k, a, b, want, ldc)
					for i := range mr {
						for j := range ldc {
							w := c0[i*ldc+j]
							if i < rows && j < 16 {
								w = want[i*ldc+j]
							}
							if g := got[i*ldc+j]; g != w {
								t.Fatalf("%s %s: %d rows, k=%d: C[%d,%d] = %v, want %v", kern.name, f.name, rows, k, i, j, g, w)
							}
						}
					}
				}
			}
		}
	}
	if checked == 0 {
		t.Skip("no kernel with half forms on this CPU or build")
	}
}
