package runtime

import (
	"math/bits"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
)

// The packed GEMM below follows the BLIS design. A product C += A·B is
// cut into nc-column panels of B, each into kc-deep slabs; a slab of B
// (kc × nc) is packed once into nr-column slivers and then shared by
// every task. A task packs an mc × kc block of A into mr-row slivers
// and runs the micro-kernel over every (A sliver, B sliver) pair, so the
// micro-kernel reads only contiguous memory: the A block and the B
// sliver stay in L2 (see cacheBlocks) and the B slab in L3. The
// micro-kernel keeps an mr × nr tile of accumulators in vector registers
// for the whole slab.
//
// Packing reads the operands through row and column strides, so a
// transposed operand costs nothing extra, and it pads partial slivers
// with zeros. The last sliver of A, when short, runs a kernel of its
// height (runRows), a tile short of columns one that masks its loads
// and stores of C (runCols); where a kernel has neither, and for the
// corner tile, the product is computed into a scratch tile and then
// added. Each element of C is the sum over kc slabs, in order, of
// the micro-kernel's sequential sum over its slab, whatever the split
// into tasks: the result is the same for every GOMAXPROCS.

// A gemmKernel is a register-blocked micro-kernel and the block sizes
// the packed GEMM uses with it.
type gemmKernel struct {
	name   string
	mr, nr int // the tile of C one call computes
	// mc, kc and nc are the cache blocks: multiples of mr and nr.
	mc, kc, nc int
	// run adds a packed mr × k sliver of A (a[p*mr+i]) times a packed
	// k × nr sliver of B (b[p*nr+j]) into the mr × nr tile of C at c,
	// whose rows are ldc elements apart. k ≥ 1.
	run func(k int, a, b, c []float32, ldc int)
	// runRows, when not nil, is run for the first rows (1 ≤ rows < mr)
	// of the sliver of A only, adding into a rows × nr tile of C: the
	// last sliver of A, which packA pads with zero rows, then costs what
	// its rows do, and its tile needs no scratch copy. Each row is the
	// same sum as run's.
	runRows func(rows, k int, a, b, c []float32, ldc int)
	// runCols, when not nil, is run for a full-height tile of C of
	// only cols < nr columns: it adds the first cols columns of the
	// product into an mr × cols tile of C, each the same sum as run's.
	runCols func(cols, k int, a, b, c []float32, ldc int)
	// runA64, when non-nil, is run reading A unpacked: row i of the
	// sliver at a[i*64:], its k elements contiguous (the attention tiles,
	// whose rows are 64 elements apart).
	runA64 func(k int, a, b, c []float32, ldc int)
	// runB64, when non-nil, is run reading B unpacked: row p of the
	// sliver at b[p*64:], its nr elements contiguous.
	runB64 func(k int, a, b, c []float32, ldc int)
	// rowsA64 and rowsB64, when non-nil, are runRows for runA64 and
	// runB64.
	rowsA64, rowsB64 func(rows, k int, a, b, c []float32, ldc int)
	// half and halfA64, when non-nil, are run (runRows for rows < mr)
	// and runA64 (rowsA64) computing only the first 16 columns of the
	// tile, for a tile of C 16 columns wide (1 ≤ rows ≤ mr; nr = 32):
	// a head of 16 would otherwise go through the scratch tile.
	half, halfA64 func(rows, k int, a, b, c []float32, ldc int)
	// set, when non-nil, is this kernel storing the product into C
	// instead of adding to it; overwrites marks such a kernel, for
	// macroKernel's partial tiles.
	set        *gemmKernel
	overwrites bool
}

// gemmKernels are the micro-kernels this CPU can run, fastest first
// (none under purego or off amd64: see detectKernels).
var gemmKernels = detectKernels()

// activeGemm is the kernel MatMul, Einsum and attention use; nil means
// the portable scalar kernels (matAdd). Tests set it to try each kernel.
var activeGemm = chooseKernel(gemmKernels, os.Getenv("ATTNC_GEMM"))

// chooseKernel returns the fastest of ks, or the one the environment
// variable ATTNC_GEMM names: "avx512", "avx2", or "scalar" for the
// portable kernels. It is a way to rule a kernel out when a result looks
// wrong, and to run a whole test suite with each; a name this CPU cannot
// run is ignored.
func chooseKernel(ks []*gemmKernel, want string) *gemmKernel {
	if want == "scalar" {
		return nil
	}
	for _, k := range ks {
		if k.name == want {
			return k
		}
	}
	if len(ks) == 0 {
		return nil
	}
	return ks[0]
}

// A gemmOperand is a batch of strided matrices: element (i, j) of matrix
// b is data[off[b] + i*rs + j*cs].
type gemmOperand struct {
	data   []float32
	off    []int
	rs, cs int
}

// at returns the offset of element (i, j) of matrix b.
func (o *gemmOperand) at(b, i, j int) int { return o.off[b] + i*o.rs + j*o.cs }

// packedGemm adds, for each batch index b, A[b] · B[b] (m × k times
// k × n) into C[b] (m × n), using kernel kern; with store it writes the
// product over C[b] instead, whose old contents then do not matter (a
// fresh, uncleared result). c.cs must be 1.
func packedGemm(kern *gemmKernel, c, a, b *gemmOperand, m, k, n int, store bool) {
	nb := len(c.off)
	if m == 0 || n == 0 || k == 0 || nb == 0 {
		return
	}
	procs := runtime.GOMAXPROCS(0)
	work := m * n * k
	if nb > 1 && (nb >= 4*procs || nb >= procs && work <= 1<<21) {
		// Many products: one task each, every one of them sequential.
		ParallelFor(nb, max(1, (1<<17)/max(work, 1)), func(lo, hi int) {
			for bi := lo; bi < hi; bi++ {
				gemmOne(kern, c, a, b, bi, m, k, n, false, store)
			}
		})
		return
	}
	for bi := range nb {
		gemmOne(kern, c, a, b, bi, m, k, n, work >= 1<<15, store)
	}
}

// gemmBuffers recycles packing buffers of up to bigFloats/2 floats
// between calls, one pool per power-of-two capacity, so that a buffer
// taken out always fits (one pool for all sizes dropped each buffer too
// small for the product that took it, and a step of products of many
// sizes allocated afresh). A collection empties a sync.Pool, and a large
// product's B slab (8 MiB at 2048³) then came back as fresh memory whose
// first touch page-faults, so larger buffers go to bigBuffers, a short
// list that collections leave alone, and the largest to hugeBuffers.
var gemmBuffers [32]sync.Pool

// bigBuffers holds up to bigKeep buffers of more than bigFloats/2 and at
// most bigMaxFloats floats: at most 64 MiB stays held; larger ones (a
// very long attention's packs) go to hugeBuffers.
var bigBuffers struct {
	sync.Mutex
	list []*[]float32
}

var hugeBuffers sync.Pool

const (
	bigFloats    = 1 << 18 // 1 MiB
	bigMaxFloats = 1 << 22 // 16 MiB
	bigKeep      = 4
)

// getBuffer returns a buffer of n floats (not zeroed), from the pools
// when one is large enough; putBuffer gives it back.
func getBuffer(n int) *[]float32 {
	if n <= bigFloats/2 {
		c := bits.Len(uint(max(n, 1) - 1)) // capacity 1<<c fits every n of the class
		if p, ok := gemmBuffers[c].Get().(*[]float32); ok {
			*p = (*p)[:n]
			return p
		}
		s := make([]float32, n, 1<<c)
		return &s
	}
	bigBuffers.Lock()
	best := -1
	for i, p := range bigBuffers.list {
		if cap(*p) >= n && (best < 0 || cap(*p) < cap(*bigBuffers.list[best])) {
			best = i
		}
	}
	if best >= 0 {
		p := bigBuffers.list[best]
		bigBuffers.list = append(bigBuffers.list[:best], bigBuffers.list[best+1:]...)
		bigBuffers.Unlock()
		*p = (*p)[:n]
		return p
	}
	bigBuffers.Unlock()
	if p, ok := hugeBuffers.Get().(*[]float32); ok && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	s := make([]float32, n)
	return &s
}

// putBuffer returns a buffer from getBuffer. Of the large ones the list
// keeps the largest bigKeep.
func putBuffer(p *[]float32) {
	switch c := cap(*p); {
	case c <= bigFloats/2:
		gemmBuffers[bits.Len(uint(c))-1].Put(p) // a power of two: getBuffer made it
		return
	case c > bigMaxFloats:
		hugeBuffers.Put(p)
		return
	}
	bigBuffers.Lock()
	defer bigBuffers.Unlock()
	if len(bigBuffers.list) < bigKeep {
		bigBuffers.list = append(bigBuffers.list, p)
		return
	}
	small := 0
	for i, q := range bigBuffers.list {
		if cap(*q) < cap(*bigBuffers.list[small]) {
			small = i
		}
	}
	if cap(*p) > cap(*bigBuffers.list[small]) {
		bigBuffers.list[small] = p
	}
}

// gemmOne adds A[bi] · B[bi] into C[bi], or with store writes it there;
// parallel lets it use ParallelFor.
//
// The k dimension is cut into slabs of equal depth, at most kern.kc, and
// the columns into panels of at most kern.nc; neither depends on the
// number of cores, so neither does the result. For each slab of each
// panel the slivers of B are packed once, by all cores together, and
// then shared. The rows are cut into blocks of equal height (to a
// sliver), as many as L2 needs rounded up to a multiple of
// 4·GOMAXPROCS, so that the cores finish together; a task packs its own
// block of A. When there are too few rows for that, the columns are cut
// too and all of A's slab is packed first, once.
//
// With store the first slab of each panel goes through kern.set, which
// writes the tile of C rather than adding to it, and the later slabs add:
// C is neither cleared first nor read by the first slab. A kernel with no
// set form clears C first.
func gemmOne(kern *gemmKernel, c, a, b *gemmOperand, bi, m, k, n int, parallel, store bool) {
	if m == 1 && b.cs == 1 && c.cs == 1 {
		gemvRow(c, a, b, bi, k, n, store)
		return
	}
	if gemmSplitK(kern, c, a, b, bi, m, k, n, parallel, store) {
		return
	}
	gemmBlocked(kern, c, a, b, bi, m, k, n, parallel, store)
}

// gemvRow is gemmOne's product of a one-row A[bi] and B[bi] whose rows
// are contiguous, as a decode step's projections are: C's row is the sum
// of B's rows weighted by A's, with no packing (the micro-kernels' 14 or
// more rows would compute 13 of nothing, and packing B would copy it
// whole for one use).
func gemvRow(c, a, b *gemmOperand, bi, k, n int, store bool) {
	row := c.data[c.off[bi]:][:n]
	if store {
		clear(row)
	}
	for p := range k {
		axpy(row, a.data[a.off[bi]+p*a.cs], b.data[b.off[bi]+p*b.rs:][:n])
	}
}

// gemmBlocked is gemmOne's product of A[bi] and B[bi] by slabs of k,
// every core on every slab.
func gemmBlocked(kern *gemmKernel, c, a, b *gemmOperand, bi, m, k, n int, parallel, store bool) {
	mr, nr := kern.mr, kern.nr
	kc := ceilDiv(k, ceilDiv(k, kern.kc))
	nc := min(kern.nc, roundUp(n, nr))
	procs := 1
	if parallel {
		procs = runtime.GOMAXPROCS(0)
	}
	// A block of A fills as much of L2 as kern.mc rows of kern.kc do.
	slA := ceilDiv(m, mr)
	perBlock := max(1, kern.mc/mr*kern.kc/kc)
	blocks, split := ceilDiv(slA, perBlock), 1
	if want := chunksPerWorker * procs; procs > 1 {
		if slA >= 4*want {
			blocks = roundUp(blocks, want)
		} else {
			split = ceilDiv(want, blocks)
		}
	}
	if store && kern.set == nil {
		for i := range m {
			off := c.at(bi, i, 0)
			clear(c.data[off : off+n])
		}
		store = false
	}
	bufB := getBuffer(kc * nc)
	defer putBuffer(bufB)
	for jc := 0; jc < n; jc += nc {
		ncur := min(nc, n-jc)
		slivers := ceilDiv(ncur, nr)
		for pc := 0; pc < k; pc += kc {
			kcur := min(kc, k-pc)
			bp := (*bufB)[:slivers*kcur*nr]
			packGrain := max(1, (1<<14)/(kcur*nr))
			if procs == 1 {
				packGrain = slivers
			}
			ParallelFor(slivers, packGrain, func(lo, hi int) {
				for t := lo; t < hi; t++ {
					cols := min(nr, ncur-t*nr)
					packB(bp[t*kcur*nr:(t+1)*kcur*nr], b, bi, pc, jc+t*nr, kcur, cols, nr)
				}
			})
			parts := min(split, slivers)
			tasks := blocks * parts
			taskFlops := 2 * ceilDiv(slA, blocks) * mr * kcur * ceilDiv(slivers, parts) * nr
			grain := max(1, (1<<18)/max(taskFlops, 1))
			if procs == 1 {
				grain = tasks
			}
			slabKern := kern
			if store && pc == 0 {
				slabKern = kern.set
			}
			var slabA *[]float32
			if parts > 1 {
				slabA = getBuffer(slA * mr * kcur)
				ap := *slabA
				ParallelFor(slA, max(1, packGrain*nr/mr), func(lo, hi int) {
					i0, i1 := lo*mr, min(hi*mr, m)
					packA(ap[i0*kcur:], a, bi, i0, pc, i1-i0, kcur, mr)
				})
			}
			// The tasks are handed out one at a time from a counter rather
			// than in ParallelFor's chunks of several: on a shared machine a
			// core that loses its time slice then holds the others up for
			// one task at most.
			workers := min(procs, tasks)
			if tasks <= grain {
				workers = 1
			}
			var next atomic.Int64
			ParallelFor(workers, 1, func(int, int) {
				maxRows := ceilDiv(slA, blocks) * mr
				bufA := getBuffer(maxRows*kcur + mr*nr)
				defer putBuffer(bufA)
				ap, tile := (*bufA)[:maxRows*kcur], (*bufA)[maxRows*kcur:]
				for {
					t := int(next.Add(1) - 1)
					if t >= tasks {
						return
					}
					blk, part := t/parts, t%parts
					i0 := blk * slA / blocks * mr
					mcur := min((blk+1)*slA/blocks*mr, m) - i0
					if slabA != nil {
						ap = (*slabA)[i0*kcur:]
					} else {
						packA(ap, a, bi, i0, pc, mcur, kcur, mr)
					}
					s0, s1 := part*slivers/parts, (part+1)*slivers/parts
					macroKernel(slabKern, c, bi, i0, jc, ap, gemmForm{}, bp, tile, mcur, ncur, kcur, s0, s1)
				}
			})
			if slabA != nil {
				putBuffer(slabA)
			}
		}
	}
}

// splitKMaxC is the largest C, in elements, that gemmSplitK takes on,
// and splitKParts the most parts it cuts k into: it holds a copy of C
// per part, 8 MiB at most.
const (
	splitKMaxC  = 1 << 18
	splitKParts = 8
)

// gemmSplitK computes A[bi]·B[bi] for a small C and a k deeper than a
// slab (a weight's gradient, xᵀ·dy over every token of a batch) by
// cutting k into parts of equal depth, one slab each up to splitKParts
// of them, and computing each part's product on its own, on one core,
// into a buffer of its own; C then gets their sum, part by part in
// order. gemmBlocked's way, every core on every slab, ends each slab
// with a barrier, and a small C has too few tiles a slab to keep the
// cores busy between them. The parts depend on the shape alone, not on
// the number of cores or on parallel (which lets it use ParallelFor), so
// neither does the result. It reports false, doing nothing, when the
// product is not of that shape.
func gemmSplitK(kern *gemmKernel, c, a, b *gemmOperand, bi, m, k, n int, parallel, store bool) bool {
	slabs := min(ceilDiv(k, kern.kc), splitKParts)
	if slabs < 2 || m*n > splitKMaxC {
		return false
	}
	run := ParallelFor
	if !parallel {
		run = func(n, _ int, fn func(lo, hi int)) { fn(0, n) }
	}
	kc := ceilDiv(k, slabs)
	slabs = ceilDiv(k, kc) // no empty part: k = 41 in 8 parts is 7 of 6
	buf := getBuffer(slabs * m * n)
	defer putBuffer(buf)
	parts := *buf
	run(slabs, 1, func(lo, hi int) {
		for s := lo; s < hi; s++ {
			p0 := s * kc
			depth := min(kc, k-p0)
			// The slab's A and B are the operands shifted by p0 columns
			// and rows; its product is stored into its own m × n part.
			as := &gemmOperand{data: a.data, off: []int{a.off[bi] + p0*a.cs}, rs: a.rs, cs: a.cs}
			bs := &gemmOperand{data: b.data, off: []int{b.off[bi] + p0*b.rs}, rs: b.rs, cs: b.cs}
			cs := &gemmOperand{data: parts, off: []int{s * m * n}, rs: n, cs: 1}
			gemmBlocked(kern, cs, as, bs, 0, m, depth, n, false, true)
		}
	})
	run(m, max(1, elemGrain/max(n, 1)), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			dst := c.data[c.at(bi, i, 0):][:n]
			first := parts[i*n : (i+1)*n]
			if store {
				copy(dst, first)
			} else {
				arithRowF32(Add, dst, dst, 1, first, 1)
			}
			for s := 1; s < slabs; s++ {
				arithRowF32(Add, dst, dst, 1, parts[s*m*n+i*n:][:n], 1)
			}
		}
	})
	return true
}

// A gemmForm says how macroKernel's operands are laid out: the zero form
// has both packed; with lda > 0 ap is A itself, row-major with rows lda
// elements apart, read by kern.runA64 (lda must then be 64, and ap must
// hold whole mr-row slivers: the rows past mcur are read and their
// results dropped); with ldb > 0 bp is B itself, rows ldb apart, read by
// kern.runB64 (ldb must be 64, and every row must hold whole nr-column
// slivers: the columns past ncur are read and their results dropped).
type gemmForm struct{ lda, ldb int }

// macroKernel runs the micro-kernel over every A sliver of the packed
// block ap (mcur rows) and the B slivers s0..s1 of bp, adding into the
// block of C at row i0 and column jc. tile is mr × nr scratch.
//
// The form f says whether ap and bp are packed (the zero form) or one of
// them is the operand itself (see gemmForm); only packed operands have
// the kernels of short tiles (runRows, runCols), the others' short tiles
// go through the scratch tile.
func macroKernel(kern *gemmKernel, c *gemmOperand, bi, i0, jc int, ap []float32, f gemmForm, bp, tile []float32, mcur, ncur, kcur, s0, s1 int) {
	mr, nr := kern.mr, kern.nr
	lda, ldb := f.lda, f.ldb
	run, runRows, half := kern.run, kern.runRows, kern.half
	switch {
	case lda > 0:
		if lda != 64 || kern.runA64 == nil {
			panic("runtime: macroKernel: unpacked A needs runA64 and rows of 64")
		}
		run, runRows, half = kern.runA64, kern.rowsA64, kern.halfA64
	case ldb > 0:
		if ldb != 64 || kern.runB64 == nil {
			panic("runtime: macroKernel: unpacked B needs runB64 and rows of 64")
		}
		run, runRows, half = kern.runB64, kern.rowsB64, nil
	}
	packed := lda == 0 && ldb == 0
	ldc := c.rs
	for t := s0; t < s1; t++ {
		j := t * nr
		cols := min(nr, ncur-j)
		var bs []float32
		if ldb > 0 {
			bs = bp[j : (kcur-1)*ldb+j+nr]
		} else {
			bs = bp[t*kcur*nr : (t+1)*kcur*nr]
		}
		for i := 0; i < mcur; i += mr {
			rows := min(mr, mcur-i)
			var as []float32
			if lda > 0 {
				// The full kernel (the scratch-tile path) reads mr rows,
				// which ap holds when it is padded (see gemmForm).
				as = ap[i*lda : min((i+mr-1)*lda+kcur, len(ap))]
			} else {
				as = ap[i*kcur : (i+mr)*kcur]
			}
			off := c.at(bi, i0+i, jc+j)
			if cols == nr {
				if rows == mr {
					run(kcur, as, bs, c.data[off:off+(mr-1)*ldc+nr], ldc)
					continue
				}
				if runRows != nil {
					runRows(rows, kcur, as, bs, c.data[off:off+(rows-1)*ldc+nr], ldc)
					continue
				}
			} else if cols == 16 && half != nil {
				half(rows, kcur, as, bs, c.data[off:off+(rows-1)*ldc+16], ldc)
				continue
			} else if rows == mr && packed && kern.runCols != nil {
				kern.runCols(cols, kcur, as, bs, c.data[off:off+(mr-1)*ldc+cols], ldc)
				continue
			}
			if !kern.overwrites {
				clear(tile)
			}
			run(kcur, as, bs, tile, nr)
			for r := range rows {
				dst := c.data[off+r*ldc : off+r*ldc+cols]
				if kern.overwrites {
					copy(dst, tile[r*nr:r*nr+cols])
					continue
				}
				for q, v := range tile[r*nr : r*nr+cols] {
					dst[q] += v
				}
			}
		}
	}
}

// packA copies rows i0..i0+rows and columns p0..p0+k of A[bi] into dst
// as mr-row slivers, each k × mr with a column of the block per row of
// the sliver, padding the last sliver with zero rows or, where A has
// them, A's rows past the block (the kernels never let padding rows reach
// C, so their values do not matter). A full sliver of a
// row-major A goes through the assembly packer of its height when there
// is one (packRows), four columns at a time; the rest is copied here.
func packA(dst []float32, a *gemmOperand, bi, i0, p0, rows, k, mr int) {
	fast := packRows(mr)
	for s := 0; s < rows; s += mr {
		sl := dst[s*k : (s+mr)*k]
		h := min(mr, rows-s)
		if h < mr {
			clear(sl)
		}
		if a.rs == 1 && a.cs != 1 {
			// Column-major (a transposed operand): each column of the
			// sliver is h consecutive elements.
			src := a.at(bi, i0+s, p0)
			if cp := copyRows(mr); cp != nil && h == mr && k > 0 {
				_ = a.data[src+(k-1)*a.cs+mr-1]
				cp(k, &a.data[src], a.cs, &sl[0])
				continue
			}
			for p := range k {
				copy(sl[p*mr:p*mr+h], a.data[src+p*a.cs:][:h])
			}
			continue
		}
		done := 0
		if fast != nil && a.cs == 1 && k >= 4 {
			// A short last sliver packs the rows past it too where the
			// operand has them (a tile of 10 queries among a head's
			// 256): the kernels never let padding rows reach C (their
			// short-tile paths compute or copy only the rows there are),
			// so what they hold does not matter, and the assembly packer
			// beats the loop below.
			if src := a.at(bi, i0+s, p0); h == mr || src+(mr-1)*a.rs+k <= len(a.data) {
				_ = a.data[src+(mr-1)*a.rs+k-1]
				fast(k/4, &a.data[src], a.rs, &sl[0])
				done = k &^ 3
			}
		}
		for i := range h {
			src := a.at(bi, i0+s+i, p0)
			if a.cs == 1 {
				for p, v := range a.data[src+done : src+k] {
					sl[(done+p)*mr+i] = v
				}
				continue
			}
			for p := done; p < k; p++ {
				sl[p*mr+i] = a.data[src+p*a.cs]
			}
		}
	}
}

// packB copies rows p0..p0+k and columns j0..j0+cols of B[bi] into dst,
// one k × nr sliver, padding columns past cols with zeros or, where B
// has them, B's columns past the sliver (the kernels never let padding
// columns reach C, so their values do not matter). A B stored transposed
// (column-major: attention's keys, each a row of k) goes through the
// assembly transposer, 16 columns at a time, four rows at a time.
func packB(dst []float32, b *gemmOperand, bi, p0, j0, k, cols, nr int) {
	if b.rs == 1 && b.cs != 1 && k >= 4 {
		if tr := transRows(nr); tr != nil {
			// A short sliver packs the columns past it too where B has
			// them (a tile of 10 keys among a head's 256), as packA
			// does with rows.
			src := b.at(bi, p0, j0)
			w := roundUp(cols, 16)
			if end := src + (w-1)*b.cs + k; end <= len(b.data) {
				_, _ = b.data[end-1], dst[k*nr-1]
				if w < nr {
					// The columns no call writes: never read into C, but
					// left as they were they could hold anything, a
					// denormal that slows the kernel. One clear of the
					// sliver beats one per row of it.
					clear(dst)
				}
				for j := 0; j < w; j += 16 {
					tr(k/4, &b.data[src+j*b.cs], b.cs, &dst[j])
				}
				for p := k &^ 3; p < k; p++ {
					for j := range w {
						dst[p*nr+j] = b.data[src+p+j*b.cs]
					}
				}
				return
			}
		}
	}
	if cols < nr {
		clear(dst)
	}
	if b.cs == 1 {
		if cp := copyRows(nr); cp != nil && cols == nr && k > 0 {
			src := b.at(bi, p0, j0)
			_, _ = b.data[src+(k-1)*b.rs+nr-1], dst[k*nr-1]
			cp(k, &b.data[src], b.rs, &dst[0])
			return
		}
		for p := range k {
			src := b.at(bi, p0+p, j0)
			copy(dst[p*nr:p*nr+cols], b.data[src:src+cols])
		}
		return
	}
	for j := range cols {
		src := b.at(bi, p0, j0+j)
		for p := range k {
			dst[p*nr+j] = b.data[src+p*b.rs]
		}
	}
}

// goKernel returns a portable micro-kernel of any tile shape: the
// reference the assembly kernels are tested against, and a way to run
// the packed GEMM's blocking on every architecture in tests.
func goKernel(mr, nr int) func(k int, a, b, c []float32, ldc int) {
	return func(k int, a, b, c []float32, ldc int) {
		acc := make([]float32, mr*nr)
		a, b = a[:k*mr], b[:k*nr]
		for p := range k {
			bp := b[p*nr : (p+1)*nr]
			for i, av := range a[p*mr : (p+1)*mr] {
				row := acc[i*nr : (i+1)*nr]
				for j, bv := range bp {
					row[j] += av * bv
				}
			}
		}
		for i := range mr {
			row := c[i*ldc : i*ldc+nr]
			for j, v := range acc[i*nr : (i+1)*nr] {
				row[j] += v
			}
		}
	}
}

// cacheBlocks returns mc, kc and nc for an mr × nr kernel on a CPU with
// l2 and l3 bytes of data cache per core (0 when unknown; l1 is not
// used). The micro-kernel streams its slivers of A and B from L2 without
// stalling (a step of the AVX-512 kernel reads 184 bytes in 28 FMAs), so
// kc is not bound to L1: a kc × nr sliver of B takes an eighth of L2,
// and an mc × kc block of A three quarters. What a deep slab saves is
// traffic to C, which the kernel loads and stores once a slab: on a
// 2-core AMD EPYC (Zen 4, 1 MiB L2) kc = 1024 ran 2048³ 10 % faster on
// one core than the L1-sized kc = 256. A kc × nc slab of B fills half of
// L3. The bounds keep every block useful on CPUs that report odd sizes.
func cacheBlocks(mr, nr, l1, l2, l3 int) (mc, kc, nc int) {
	if l2 <= 0 {
		l2 = 256 << 10
	}
	if l3 <= 0 {
		l3 = 2 << 20
	}
	kc = clampInt(l2/8/(4*nr), 128, 1024)
	mc = roundDown(clampInt(l2*3/4/(4*kc), 4*mr, 960), mr)
	nc = roundDown(clampInt(l3/2/(4*kc), 4*nr, 8192), nr)
	return mc, kc, nc
}

func clampInt(x, lo, hi int) int { return min(max(x, lo), hi) }
func roundUp(x, to int) int      { return ceilDiv(x, to) * to }
func roundDown(x, to int) int    { return max(x/to, 1) * to }
