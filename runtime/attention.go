package runtime

import (
	"fmt"
	"math"
	"runtime"
	"sync"
)

// Tile sizes of the attention kernels: a task owns attnBQ queries of one
// (batch, head) and walks the keys attnBK at a time.
const (
	attnBQ = 64
	attnBK = 64
)

// packRows cuts queries into tiles of attnBK rows too, so the two sizes
// must agree: this fails to compile otherwise.
var _ = [1]struct{}{}[attnBQ-attnBK]

// AttnSpec describes one attention op: what the IR's attention and
// attention_grad attributes say, with the mask and score expressions
// compiled into closures. Closures are called concurrently from several
// goroutines and must not modify shared state (CapGrad excepted, see
// there).
type AttnSpec struct {
	// Scale multiplies q·k into the raw score s.
	Scale float32
	// Returns is "out" (the default when empty), "probs", "logprobs" or
	// "lse".
	Returns string
	// Mask reports whether query q may attend to key k; nil admits every
	// key.
	Mask func(b, h, q, k int) bool
	// Rows, when non-nil, gives the keys Mask admits for query q as at
	// most two spans, for the tiles Tile calls partial: one call per row
	// instead of one Mask call per pair. It must agree with Mask, which
	// stays required (the kernels call it where Rows is nil). The
	// compiler writes it for masks it proves to be such unions of
	// intervals in k (see the Go renderer's attention).
	Rows func(b, h, q int) KeySpans
	// MaskRow, when non-nil and Rows is nil, fills keep[j] with Mask(b,
	// h, q, k0+j) for every j of keep and reports whether any is true:
	// one call per row of a partial tile instead of one Mask call per
	// pair, for masks that are not unions of intervals (they read
	// tensors, or compare k with more than a bound). It must agree with
	// Mask, which stays required. The compiler writes it as a loop over k
	// with what depends only on (b, h, q) computed once.
	MaskRow func(b, h, q, k0 int, keep []bool) bool
	// Score modifies the raw score s = Scale·q·k of an admitted key; nil is
	// the identity. It is called only where Mask admits the key, so it may
	// read captured tensors at indices valid only there.
	Score func(s float32, b, h, q, k int) float32
	// DScore is ∂Score/∂s at the raw score s, for the backward pass; nil
	// means 1.
	DScore func(s float32, b, h, q, k int) float32
	// CapGrad adds into grads[i], for each captured tensor i read by
	// Score whose entry is non-nil, the contribution of one admitted
	// (b, h, q, k) to its gradient, given dsp, the gradient with respect to
	// the modified score, and s, the raw score: dsp·∂Score/∂$i[idx] at each
	// index idx the score reads. AttentionGrad gives each goroutine its own
	// grads tensors and sums them afterwards, so CapGrad may write them
	// freely.
	CapGrad func(grads []*Tensor, dsp float32, s float32, b, h, q, k int)
	// Tile, when non-nil, classifies the tile of queries [q0, q1) and
	// keys [k0, k1) of (b, h): TileEmpty if Mask admits none of its pairs
	// (the kernels skip it), TileFull if Mask admits all of them (Mask is
	// not called), TilePartial otherwise or when unsure. The compiler's
	// sparsity analysis proves these from the mask expression; nil treats
	// every tile as partial. The answer is trusted, not checked: a
	// TileEmpty tile is skipped even where Mask (or its absence) would
	// admit pairs, so a block mask decided at run time can be given by
	// Tile alone.
	Tile func(b, h, q0, q1, k0, k1 int) TileKind
	// TileHeadFree says Tile's answer does not depend on h (the mask
	// reads no h): the kernels then classify each tile once for all the
	// heads of an example.
	TileHeadFree bool
	// Layout is how q, k, v, dy, the result and the gradients hold their
	// rows: "bhnd" (or "", the default) for [B, H, N, D], "bnhd" for
	// [B, N, H, D], the layout the projections write, read and written
	// in place with a row stride of H·D; the row statistics (lse, the
	// backward's row sums) are then [B, N, H] too. The IR's layout pass
	// sets it (attention {layout = bnhd}) so that no transposes run
	// around the op. "bnhd" needs Returns "out" or "lse".
	Layout string
}

// A TileKind is what a mask does on a tile of (query, key) pairs.
type TileKind uint8

// The tile kinds; the zero value is the safe default.
const (
	TilePartial TileKind = iota // some pairs may be masked: call Mask
	TileEmpty                   // every pair is masked: skip the tile
	TileFull                    // no pair is masked: skip Mask
)

// An attnRun is one call of Attention or AttentionGrad: its operands and
// sizes.
type attnRun struct {
	spec                  *AttnSpec
	q, k, v               *Tensor
	nb, nh, nq, nk, d, dv int
	returns               string
	// bnhd says the operands are [B, N, H, D] (see AttnSpec.Layout):
	// row i of the pair bh of a tensor of n rows per pair is then
	// row (b·n + i)·H + h of its memory, and consecutive rows of a pair
	// are H rows apart. ri and step say it for both layouts.
	bnhd bool
	kern *gemmKernel // the micro-kernel, nil for the portable kernels
	kp   tilePack    // k, packed per group of (b, h)
	// kinds, for a spec whose Tile is head-free, holds every tile's
	// class, per example, query tile and key tile (classified once, not
	// once a head); nil otherwise.
	kinds []TileKind
}

// maxTileTable is the most tiles classifyTiles keeps a class for.
const maxTileTable = 1 << 24

// classifyTiles fills a.kinds when the spec's Tile is head-free and the
// table is not too large: Tile(b, 0, …) for every tile of every example,
// in parallel.
func (a *attnRun) classifyTiles() {
	s := a.spec
	nqt, nkt := ceilDiv(a.nq, attnBQ), ceilDiv(a.nk, attnBK)
	if s.Tile == nil || !s.TileHeadFree || a.nh < 2 || a.nb*nqt*nkt > maxTileTable || nqt == 0 || nkt == 0 {
		return
	}
	kinds := make([]TileKind, a.nb*nqt*nkt)
	ParallelFor(a.nb*nqt, max(1, 4096/nkt), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			b, qt := r/nqt, r%nqt
			q0 := qt * attnBQ
			q1 := min(q0+attnBQ, a.nq)
			for kt := range nkt {
				k0 := kt * attnBK
				kinds[r*nkt+kt] = s.Tile(b, 0, q0, q1, k0, min(k0+attnBK, a.nk))
			}
		}
	})
	a.kinds = kinds
}

// tileKind classifies the tile [q0, q1) × [k0, k1) of (b, h): from the
// table when it has the tile (one of the standard grid), else by Tile.
func (a *attnRun) tileKind(b, h, q0, q1, k0, k1 int) TileKind {
	if a.kinds != nil && q0%attnBQ == 0 && k0%attnBK == 0 && q1 == min(q0+attnBQ, a.nq) && k1 == min(k0+attnBK, a.nk) {
		nqt, nkt := ceilDiv(a.nq, attnBQ), ceilDiv(a.nk, attnBK)
		return a.kinds[(b*nqt+q0/attnBQ)*nkt+k0/attnBK]
	}
	return a.spec.Tile(b, h, q0, q1, k0, k1)
}

// ri returns the index in memory of row i of the pair bh (= b·H + h) of
// a tensor with n rows per pair: q, dy and the result (n = Nq), k and v
// (n = Nk), and the row statistics, whose "rows" are single values.
func (a *attnRun) ri(bh, n, i int) int {
	if !a.bnhd {
		return bh*n + i
	}
	return (bh/a.nh*n+i)*a.nh + bh%a.nh
}

// step returns how many rows of memory lie between consecutive rows of
// one pair: 1, or H in the bnhd layout.
func (a *attnRun) step() int {
	if a.bnhd {
		return a.nh
	}
	return 1
}

// scaleRows multiplies by s the rows [r0, r1) of the pair bh of x (width
// elements a row, n rows a pair).
func (a *attnRun) scaleRows(x []float32, width, bh, n, r0, r1 int, s float32) {
	if !a.bnhd {
		scaleRow(x[(bh*n+r0)*width:(bh*n+r1)*width], s)
		return
	}
	step := a.nh * width
	o := a.ri(bh, n, r0) * width
	for i := r0; i < r1; i, o = i+1, o+step {
		row := x[o : o+width]
		if width >= 64 {
			scaleRow(row, s)
			continue
		}
		for j := range row { // a short row: no kernel call
			row[j] *= s
		}
	}
}

// rowSplit is an operand of a tile product whose rows may hold NaN or
// ±Inf. The products (p·v, dS·k, dSᵀ·q, Pᵀ·dy) multiply every pair of a
// tile, masked pairs by zero, and 0·NaN is NaN; the reference leaves
// masked pairs out. So a non-finite row goes into the products as zeros
// (clean) and is added afterwards, pair by admitted pair. When every
// value is finite (the usual case, found in one pass) clean is the data
// itself and bad is nil: the kernels pay one comparison per element.
type rowSplit struct {
	clean []float32
	bad   []bool // per row
}

func splitRows(x []float32, width int) rowSplit {
	if allFinite(x) {
		return rowSplit{clean: x} // the common case, at the vector kernels' pace
	}
	first := -1
	for i, v := range x {
		if v-v != 0 { // NaN or ±Inf
			first = i
			break
		}
	}
	if first < 0 || width == 0 {
		return rowSplit{clean: x}
	}
	r := rowSplit{clean: append([]float32(nil), x...), bad: make([]bool, len(x)/width)}
	for row := first / width; row < len(r.bad); row++ {
		for _, v := range x[row*width : (row+1)*width] {
			if v-v != 0 {
				r.bad[row] = true
				clear(r.clean[row*width : (row+1)*width])
				break
			}
		}
	}
	return r
}

// addScaled adds a·x to dst.
func addScaled(dst []float32, a float32, x []float32) {
	x = x[:len(dst)]
	for i, v := range x {
		dst[i] += a * v
	}
}

func newAttnRun(kernel string, q, k, v *Tensor, spec *AttnSpec) *attnRun {
	if spec == nil {
		panic(fmt.Sprintf("runtime.%s: nil spec", kernel))
	}
	a := &attnRun{spec: spec, q: q, k: k, v: v, returns: spec.Returns}
	if a.returns == "" {
		a.returns = "out"
	}
	// hAxis and nAxis are the axes of H and N in the operands.
	hAxis, nAxis, layout := 1, 2, "[B, H, N, D]"
	switch spec.Layout {
	case "", "bhnd":
	case "bnhd":
		a.bnhd = true
		hAxis, nAxis, layout = 2, 1, "[B, N, H, D]"
		if a.returns != "out" && a.returns != "lse" {
			panic(fmt.Sprintf("runtime.%s: layout bnhd needs Returns out or lse, not %s", kernel, a.returns))
		}
	default:
		panic(fmt.Sprintf("runtime.%s: unknown Layout %q", kernel, spec.Layout))
	}
	bad := q.DType != F32 || k.DType != F32 || len(q.Shape) != 4 || len(k.Shape) != 4 ||
		q.Shape[0] != k.Shape[0] || q.Shape[hAxis] != k.Shape[hAxis] || q.Shape[3] != k.Shape[3]
	if bad {
		panic(fmt.Sprintf("runtime.%s: q %s and k %s must be f32%s with matching B, H, D",
			kernel, typeString(q.DType, q.Shape), typeString(k.DType, k.Shape), layout))
	}
	a.nb, a.nh, a.nq, a.d = q.Shape[0], q.Shape[hAxis], q.Shape[nAxis], q.Shape[3]
	a.nk = k.Shape[nAxis]
	switch a.returns {
	case "out":
		if v == nil || v.DType != F32 || len(v.Shape) != 4 || v.Shape[0] != a.nb || v.Shape[hAxis] != a.nh || v.Shape[nAxis] != a.nk {
			panic(fmt.Sprintf("runtime.%s: returning out needs v f32%s with B = %d, H = %d, N = %d, got %v", kernel, layout, a.nb, a.nh, a.nk, v))
		}
		a.dv = v.Shape[3]
	case "probs", "logprobs", "lse":
	default:
		panic(fmt.Sprintf("runtime.%s: unknown Returns %q", kernel, spec.Returns))
	}
	a.kern = activeGemm
	a.classifyTiles()
	return a
}

// qTiles returns the number of (b, h, query tile) tasks.
func (a *attnRun) qTiles() int { return a.nb * a.nh * ceilDiv(a.nq, attnBQ) }

// kTiles returns the number of (b, h, key tile) tasks.
func (a *attnRun) kTiles() int { return a.nb * a.nh * ceilDiv(a.nk, attnBK) }

// grain returns a ParallelFor grain for tasks that each cost about flops.
func grainFor(flops int) int { return max(1, (1<<18)/max(flops, 1)) }

// A tileBuf is one goroutine's scratch for a tile of attnBQ × attnBK
// (query, key) pairs; row i of a tile matrix starts at i·attnBK.
type tileBuf struct {
	sc   []float32 // modified scores, -Inf where masked; then probabilities
	raw  []float32 // raw scores Scale·q·k
	keep []bool    // admitted pairs
	// spans are each row's admitted keys as tile columns, when the tile
	// is full or the mask has Rows.
	spans [attnBQ]KeySpans
	// qp is a query tile packed as the micro-kernel's A operand: a task
	// packs it once for every key tile it walks.
	qp aPack
	pp aPack // the tile matrix sc (or scᵀ) packed, for p·v, dS·k, Pᵀ·dy and dSᵀ·q
	// m, l and acc are the online softmax's running maximum, sum and
	// output of a query tile (the forward's).
	m   []float32
	l   []float64
	acc []float32
	// rowMax, sub and sum are tileExp's and probs' per-row scratch: each
	// row's maximum, what its exponentials subtract, and their sum.
	rowMax, sub, sum [attnBQ]float32
	// kern, d and dv are what the buffers were sized for: a pooled
	// buffer is reused only by a run with the same.
	kern  *gemmKernel
	d, dv int
}

// tileBufs and gradBufs keep the scratch of finished tasks for the next
// ones: a training step runs many small attention calls whose tasks
// would otherwise each allocate (and clear) their tile buffers.
var tileBufs, gradBufs sync.Pool

// getTileBuf returns a tile buffer for a, from the pool when one fits.
// Its packs hold no rows: packed data never carries over between calls.
func (a *attnRun) getTileBuf() *tileBuf {
	if t, ok := tileBufs.Get().(*tileBuf); ok && t.kern == a.kern && t.d == a.d && t.dv == a.dv {
		t.qp.key, t.pp.key = -1, -1
		t.qp.pre = nil
		return t
	}
	return a.newTileBuf()
}

// An aPack is a tile of rows packed as the micro-kernel's A operand, and
// which rows they are (key: the first row's index, -1 for none), so that
// a task packs its query tile once for all the key tiles it walks.
type aPack struct {
	data []float32
	key  int
	tile []float32 // the micro-kernel's scratch for a partial tile of C
	// pre, when non-nil, holds every tile of the rows already packed
	// (and scaled), by packQueryTiles: a pass that walks the same query
	// tiles from many tasks packs them once per group instead.
	pre *tilePack
}

// newAPack returns an empty aPack for attnBQ rows of width elements.
func (a *attnRun) newAPack(width int) aPack {
	p := aPack{key: -1}
	if k := a.kern; k != nil {
		p.data = make([]float32, roundUp(attnBQ, k.mr)*width)
		p.tile = make([]float32, k.mr*k.nr)
	}
	return p
}

// scRows is the rows a tile matrix holds: attnBQ, padded to whole
// slivers of the micro-kernel, which reads it unpacked (runA64).
func scRows(k *gemmKernel) int {
	if k == nil {
		return attnBQ
	}
	return roundUp(attnBQ, k.mr)
}

func (a *attnRun) newTileBuf() *tileBuf {
	return &tileBuf{
		kern: a.kern,
		d:    a.d,
		dv:   a.dv,
		m:    make([]float32, attnBQ),
		l:    make([]float64, attnBQ),
		acc:  make([]float32, attnBQ*a.dv),
		sc:   make([]float32, scRows(a.kern)*attnBK),
		raw:  make([]float32, attnBQ*attnBK),
		keep: make([]bool, attnBQ*attnBK),
		qp:   a.newAPack(a.d),
		pp:   a.newAPack(attnBK),
	}
}

// zeroOff is the offsets of a batch of one matrix at the start of its
// data; it is only read.
var zeroOff = []int{0}

// groupBytes bounds the packed operands of one group of (b, h) pairs
// (see inGroups): about a core's L2.
var groupBytes = 1 << 20

// A tilePack is an operand of the tile products packed once per group
// of (b, h) pairs (see inGroups), one tile of one (b, h) after another,
// so that the tasks of every query tile share it instead of repacking it.
type tilePack struct {
	buf     *[]float32 // data's memory, from the GEMM's buffer pool
	data    []float32
	tileLen int // floats per tile
	perBH   int // tiles per (b, h)
	bh0     int // the first (b, h) packed
}

// reset makes p hold tiles of tileLen floats for the pairs [bh0, bh1),
// reusing its memory, and returns the tiles to fill.
func (p *tilePack) reset(tileLen, perBH, bh0, bh1 int) []float32 {
	n := (bh1 - bh0) * perBH * tileLen
	if p.buf == nil || cap(*p.buf) < n {
		p.release()
		p.buf = getBuffer(n)
	}
	p.data = (*p.buf)[:n]
	p.tileLen, p.perBH, p.bh0 = tileLen, perBH, bh0
	return p.data
}

// release returns p's memory to the buffer pool; p is empty after it.
// Every pass releases its packs when it ends, so that a training step's
// many attention calls reuse the memory instead of allocating it (and
// collecting it: the collector's preemptions showed in profiles).
func (p *tilePack) release() {
	if p.buf != nil {
		putBuffer(p.buf)
	}
	p.buf, p.data = nil, nil
}

// tile returns the packed tile of bh that starts at row r0.
func (p *tilePack) tile(bh, r0 int) []float32 {
	i := (bh-p.bh0)*p.perBH + r0/attnBK
	return p.data[i*p.tileLen : (i+1)*p.tileLen]
}

// packKeyTiles packs into p the key tiles of x f32[B, H, Nk, width] of
// the pairs [bh0, bh1), transposed (width × cols): as the micro-kernel's
// nr-column B slivers or, without a micro-kernel, as a row-major
// [width × attnBK] tile. It runs in parallel.
func (a *attnRun) packKeyTiles(p *tilePack, x []float32, width, bh0, bh1 int) {
	kt := ceilDiv(a.nk, attnBK)
	tileLen := attnBK * width
	if a.kern != nil {
		// Tiles as long as the longest there is: short sequences (a
		// seq2seq's ten tokens) do not pay for 64-key tiles.
		tileLen = roundUp(min(attnBK, a.nk), a.kern.nr) * width
	}
	data := p.reset(tileLen, kt, bh0, bh1)
	if width == 0 {
		return
	}
	ParallelFor((bh1-bh0)*kt, grainFor(8*attnBK*width), func(lo, hi int) {
		for task := lo; task < hi; task++ {
			bh, k0 := bh0+task/kt, task%kt*attnBK
			cols := min(attnBK, a.nk-k0)
			dst := data[task*tileLen : (task+1)*tileLen]
			src := x[a.ri(bh, a.nk, k0)*width:]
			rs := width * a.step()
			if a.kern == nil {
				for j := range cols {
					for c, v := range src[j*rs : j*rs+width] {
						dst[c*attnBK+j] = v
					}
				}
				continue
			}
			nr := a.kern.nr
			op := gemmOperand{data: src, off: zeroOff, rs: 1, cs: rs}
			for j0 := 0; j0 < cols; j0 += nr {
				packB(dst[j0*width:(j0+nr)*width], &op, 0, 0, j0, width, min(nr, cols-j0), nr)
			}
		}
	})
}

// packRows packs into p the tiles of attnBK rows of x f32[B, H, n,
// width] of the pairs [bh0, bh1) as they stand (rows × width): the B
// operand of p·v and dS·k (n = Nk) or of Pᵀ·dy and dSᵀ·q (n = Nq; attnBQ
// is attnBK). Without a micro-kernel nothing needs packing and p is left
// empty.
func (a *attnRun) packRows(p *tilePack, x []float32, n, width, bh0, bh1 int) {
	k := a.kern
	if k == nil || width == 0 {
		return
	}
	nt := ceilDiv(n, attnBK)
	tileLen := min(attnBK, n) * roundUp(width, k.nr)
	data := p.reset(tileLen, nt, bh0, bh1)
	ParallelFor((bh1-bh0)*nt, grainFor(8*attnBK*width), func(lo, hi int) {
		for task := lo; task < hi; task++ {
			bh, r0 := bh0+task/nt, task%nt*attnBK
			rows := min(attnBK, n-r0)
			dst := data[task*tileLen : (task+1)*tileLen]
			op := gemmOperand{data: x[a.ri(bh, n, r0)*width:], off: zeroOff, rs: width * a.step(), cs: 1}
			for s, j0 := 0, 0; j0 < width; s, j0 = s+1, j0+k.nr {
				packB(dst[s*rows*k.nr:(s+1)*rows*k.nr], &op, 0, 0, j0, rows, min(k.nr, width-j0), k.nr)
			}
		}
	})
}

// packQueryTiles packs into p, for the pairs [bh0, bh1), every tile of
// attnBQ rows of x f32[B, H, Nq, width] (q or dy) as tileProduct's A
// operand, multiplied by scale, in parallel; without a micro-kernel it
// leaves p empty. Rows are those of x, per (b, h): tileProduct finds a
// tile by its first row's index.
func (a *attnRun) packQueryTiles(p *tilePack, x []float32, width int, scale float32, bh0, bh1 int) {
	k := a.kern
	if k == nil {
		return
	}
	qt := ceilDiv(a.nq, attnBQ)
	tileLen := roundUp(min(attnBQ, a.nq), k.mr) * width
	data := p.reset(tileLen, qt, bh0, bh1)
	if width == 0 {
		return
	}
	ParallelFor((bh1-bh0)*qt, grainFor(8*attnBQ*width), func(lo, hi int) {
		for task := lo; task < hi; task++ {
			bh, q0 := bh0+task/qt, task%qt*attnBQ
			dst := data[task*tileLen : (task+1)*tileLen]
			packA(dst, &gemmOperand{data: x[a.ri(bh, a.nq, q0)*width:], off: zeroOff, rs: width * a.step(), cs: 1}, 0, 0, 0, min(attnBQ, a.nq-q0), width, k.mr)
			if scale != 1 {
				scaleRow(dst, scale)
			}
		}
	})
}

// packTransposedTiles packs into p, for the pairs [bh0, bh1), the
// transpose of every tile of attnBK rows of x f32[B, H, n, width] (q or
// dy, n = Nq) as the micro-kernel's A operand: [width × rows], width in
// mr-row slivers. It runs in parallel; without a micro-kernel p is left
// empty.
func (a *attnRun) packTransposedTiles(p *tilePack, x []float32, n, width, bh0, bh1 int) {
	k := a.kern
	if k == nil || width == 0 {
		return
	}
	nt := ceilDiv(n, attnBK)
	tileLen := roundUp(width, k.mr) * min(attnBK, n)
	data := p.reset(tileLen, nt, bh0, bh1)
	ParallelFor((bh1-bh0)*nt, grainFor(8*attnBK*width), func(lo, hi int) {
		for task := lo; task < hi; task++ {
			bh, r0 := bh0+task/nt, task%nt*attnBK
			rows := min(attnBK, n-r0)
			op := gemmOperand{data: x[a.ri(bh, n, r0)*width:], off: zeroOff, rs: 1, cs: width * a.step()}
			packA(data[task*tileLen:(task+1)*tileLen], &op, 0, 0, 0, width, rows, k.mr)
		}
	})
}

// inGroups runs the tasks [0, B·H·per) of a pass, per of them for each
// (b, h), as ParallelFor(…, grain, body) would, but one group of
// consecutive (b, h) pairs after another, calling pack with each group
// [bh0, bh1) first: what a pass packs once for all its tasks then takes
// memory for one group, not a copy of every operand. A group holds
// enough tasks to keep every core busy, and as many (b, h) pairs as fit
// in groupBytes of packed operands, so that small heads (a training
// step's) do not pay a fork and join per pair or two. body sees the
// pass's task numbers.
func (a *attnRun) inGroups(per, grain int, pack func(bh0, bh1 int), body func(lo, hi int)) {
	nbh := a.nb * a.nh
	if per <= 0 {
		return
	}
	// What one (b, h) packs at most: its keys and values, or in the
	// backward its queries and dy as well.
	perBH := 4 * (a.nk + a.nq) * (a.d + a.dv)
	g := min(nbh, max(ceilDiv(8*runtime.GOMAXPROCS(0), per), groupBytes/max(perBH, 1)))
	for bh0 := 0; bh0 < nbh; bh0 += g {
		bh1 := min(bh0+g, nbh)
		pack(bh0, bh1)
		ParallelFor((bh1-bh0)*per, grain, func(lo, hi int) { body(bh0*per+lo, bh0*per+hi) })
	}
}

// inGroupParts is inGroups for a pass that accumulates into per-chunk
// copies of the capture gradients: each group's tasks are cut into at most
// parts contiguous chunks, run in parallel, and body learns its chunk's
// number, the same from group to group. A chunk number's accumulator is
// then used by one goroutine at a time (groups run one after another), so
// a pass needs parts copies of the gradients, however long the sequence,
// and adds them up in chunk order, so the sum does not depend on
// scheduling. With a chunk per task, as inGroups makes for long sequences,
// the copies grew with the number of tasks: a pass over N queries took
// memory in N², for gradients of size N.
func (a *attnRun) inGroupParts(per, parts int, pack func(bh0, bh1 int), body func(part, lo, hi int)) {
	nbh := a.nb * a.nh
	if per <= 0 || parts <= 0 {
		return
	}
	perBH := 4 * (a.nk + a.nq) * (a.d + a.dv)
	g := min(nbh, max(ceilDiv(8*runtime.GOMAXPROCS(0), per), groupBytes/max(perBH, 1)))
	for bh0 := 0; bh0 < nbh; bh0 += g {
		bh1 := min(bh0+g, nbh)
		pack(bh0, bh1)
		n := (bh1 - bh0) * per
		size := ceilDiv(n, parts)
		ParallelFor(ceilDiv(n, size), 1, func(plo, phi int) {
			for p := plo; p < phi; p++ {
				body(p, bh0*per+p*size, bh0*per+min((p+1)*size, n))
			}
		})
	}
}

// capAccums are a pass's bounded copies of the capture gradients (see
// inGroupParts): copy p is made when chunk p first needs it.
type capAccums struct {
	caps  []*Tensor
	parts [][]*Tensor
}

func newCapAccums(caps []*Tensor) *capAccums {
	if caps == nil {
		return nil
	}
	return &capAccums{caps: caps, parts: make([][]*Tensor, capParallelism())}
}

// capParallelism is how many chunks a pass with capture gradients runs
// in parallel: two per core, for balance at the cost of a copy each.
func capParallelism() int { return 2 * runtime.GOMAXPROCS(0) }

// part returns chunk p's copy (nil when the pass has no captures).
func (c *capAccums) part(p int) []*Tensor {
	if c == nil {
		return nil
	}
	if c.parts[p] == nil {
		c.parts[p] = localCaps(c.caps)
	}
	return c.parts[p]
}

// sum adds the copies into the gradients, in chunk order.
func (c *capAccums) sum() {
	if c == nil {
		return
	}
	for _, local := range c.parts {
		for i, t := range local {
			if t != nil {
				addTo(c.caps[i].F, t.F)
			}
		}
	}
}

// tileTimesRows adds the tile matrix t.sc (rows × cols) times the key
// rows of bh from k0 (cols × width: yp's packed tile, or x's rows without
// a micro-kernel) into c (row stride ldc).
func (a *attnRun) tileTimesRows(t *tileBuf, c []float32, ldc int, x []float32, yp *tilePack, width, bh, k0, rows, cols int) {
	k := a.kern
	if k == nil {
		matAdd(c, ldc, t.sc, attnBK, x[a.ri(bh, a.nk, k0)*width:], width*a.step(), rows, cols, width)
		return
	}
	if width == 0 || cols == 0 {
		return
	}
	cOp := &gemmOperand{data: c, off: zeroOff, rs: ldc, cs: 1}
	if k.runA64 != nil {
		// sc's rows are attnBK apart and padded to whole slivers: no
		// packing.
		macroKernel(k, cOp, 0, 0, 0, t.sc, gemmForm{lda: attnBK}, yp.tile(bh, k0), t.pp.tile, rows, width, cols, 0, ceilDiv(width, k.nr))
		return
	}
	packA(t.pp.data, &gemmOperand{data: t.sc, off: zeroOff, rs: attnBK, cs: 1}, 0, 0, 0, rows, cols, k.mr)
	macroKernel(k, cOp, 0, 0, 0, t.pp.data, gemmForm{}, yp.tile(bh, k0), t.pp.tile, rows, width, cols, 0, ceilDiv(width, k.nr))
}

// tileProduct sets c (row stride attnBK) to x · yᵀ, for the rows
// [q0, q0+rows) of the pair bh of x (f32 rows of width, one per query:
// q or dy) and the cols keys of the packed key tile yt. With a micro-kernel the rows of x
// are packed into xp, unless it holds them already, and multiplied by
// scale as they are: the product is then (scale·x)·yᵀ. Without one scale
// is not applied; the caller does it (see scores).
func (a *attnRun) tileProduct(c []float32, x []float32, width, bh, q0, rows int, yt []float32, cols int, xp *aPack, scale float32) {
	k := a.kern
	if k == nil || width == 0 || k.set == nil {
		for i := range rows {
			clear(c[i*attnBK : i*attnBK+cols])
		}
	}
	if width == 0 {
		return
	}
	if k == nil {
		matAdd(c, attnBK, x[a.ri(bh, a.nq, q0)*width:], width*a.step(), yt, attnBK, rows, width, cols)
		return
	}
	if k.set != nil {
		k = k.set // stores the product: no clearing first
	}
	ap := xp.data
	switch key := bh*a.nq + q0; {
	case xp.pre != nil:
		ap = xp.pre.tile(bh, q0)
	case xp.key != key:
		packA(xp.data, &gemmOperand{data: x[a.ri(bh, a.nq, q0)*width:], off: zeroOff, rs: width * a.step(), cs: 1}, 0, 0, 0, rows, width, k.mr)
		if scale != 1 {
			// Only the slivers packed: a short tile's are a fraction of
			// the buffer, which is sized for attnBQ rows.
			scaleRow(xp.data[:roundUp(rows, k.mr)*width], scale)
		}
		xp.key = key
	}
	// A tile of fewer than 16 keys is computed 16 wide, which c (rows
	// of attnBK) has room for, by the kernel of 16 columns where there is
	// one: not through the scratch tile. The extra columns hold products
	// with the packed tile's padding, which no caller reads (the row
	// kernels' padding overwrites them, see padRow).
	n := cols
	if k.half != nil && cols < 16 {
		n = 16
	}
	macroKernel(k, &gemmOperand{data: c, off: zeroOff, rs: attnBK, cs: 1}, 0, 0, 0, ap, gemmForm{}, yt, xp.tile, rows, n, width, 0, ceilDiv(n, k.nr))
}

// scores fills t for the queries [q0, q1) and keys [k0, k1) of (b, h):
// sc, raw (when wantRaw) and keep (when needKeep). It reports whether
// any pair is admitted; when not, t holds nothing meaningful.
//
// The scale is folded into the packed query tile (see tileProduct), so
// with no score modification and neither raw nor keep wanted, the
// product is the score and only masked columns are written after it:
// the forward pass's common case, which leaves the rest of a tile's
// per-element work to the row kernels.
func (a *attnRun) scores(t *tileBuf, b, h, q0, q1, k0, k1 int, wantRaw, needKeep bool) bool {
	rows, cols := q1-q0, k1-k0
	s := a.spec
	kind := TilePartial
	if s.Tile != nil {
		kind = a.tileKind(b, h, q0, q1, k0, k1)
	}
	if kind == TilePartial && s.Mask == nil {
		kind = TileFull
	}
	// Full tiles and masks with Rows give each row's admitted keys as
	// spans, which fill keep and sc with tight loops; other masks are
	// called pair by pair.
	useSpans := kind == TileFull || s.Rows != nil
	switch {
	case kind == TileEmpty:
		return false
	case kind == TileFull:
		for i := range rows {
			t.spans[i] = KeySpans{{0, cols}}
		}
	case s.Rows != nil:
		any := false
		for i := range rows {
			t.spans[i] = s.Rows(b, h, q0+i).clip(k0, k1)
			any = any || t.spans[i][0].Lo < t.spans[i][0].Hi
		}
		if !any {
			return false
		}
	case s.MaskRow != nil:
		any := false
		for i := range rows {
			if s.MaskRow(b, h, q0+i, k0, t.keep[i*attnBK:i*attnBK+cols]) {
				any = true
			}
		}
		if !any {
			return false
		}
	default:
		any := false
		for i := range rows {
			keep := t.keep[i*attnBK : i*attnBK+cols]
			for j := range keep {
				keep[j] = s.Mask(b, h, q0+i, k0+j)
				any = any || keep[j]
			}
		}
		if !any {
			return false
		}
	}
	// sc = (Scale·q_tile) · k_tileᵀ, K packed once per call.
	bh := b*a.nh + h
	a.tileProduct(t.sc, a.q.F, a.d, bh, q0, rows, a.kp.tile(bh, k0), cols, &t.qp, s.Scale)
	ad := admitter{a: a, b: b, h: h, wantRaw: wantRaw, needKeep: needKeep, scale: 1}
	if a.kern == nil {
		ad.scale = s.Scale // not folded into the product
	}
	// With nothing to do on admitted pairs, a row needs only its masked
	// columns written.
	ad.none = ad.scale == 1 && s.Score == nil && !wantRaw && !needKeep
	for i := range rows {
		sc := t.sc[i*attnBK : i*attnBK+cols]
		raw := t.raw[i*attnBK : i*attnBK+cols]
		keep := t.keep[i*attnBK : i*attnBK+cols]
		if !useSpans {
			for j := range sc {
				if !keep[j] {
					sc[j] = negInf32
					continue
				}
				ad.admit(sc[j:j+1], raw[j:j+1], keep[j:j+1], q0+i, k0+j)
			}
			continue
		}
		pos := 0
		for _, r := range t.spans[i] {
			if r.Lo >= r.Hi {
				break // the empty spans come last
			}
			ad.mask(sc[pos:r.Lo], keep[pos:r.Lo])
			ad.admit(sc[r.Lo:r.Hi], raw[r.Lo:r.Hi], keep[r.Lo:r.Hi], q0+i, k0+r.Lo)
			pos = r.Hi
		}
		ad.mask(sc[pos:], keep[pos:])
	}
	return true
}

// An admitter turns the products of a tile's rows into scores.
type admitter struct {
	a                 *attnRun
	b, h              int
	wantRaw, needKeep bool
	scale             float32 // what the products still need multiplying by
	none              bool    // admitted products are their scores already
}

// mask masks the pairs of a row of a tile: a score of -Inf.
func (ad *admitter) mask(sc []float32, keep []bool) {
	for j := range sc {
		sc[j] = negInf32
	}
	if ad.needKeep {
		clear(keep[:len(sc)])
	}
}

// admit turns the products of consecutive admitted pairs of a row, the
// keys from k, into their scores: raw (when wanted) gets Scale·q·k, sc
// the modified score, and keep (when wanted) whether the pair is still
// admitted (a score of -Inf masks the key).
func (ad *admitter) admit(sc, raw []float32, keep []bool, q, k int) {
	if ad.none {
		return
	}
	keep, raw = keep[:len(sc)], raw[:len(sc)]
	scale, score := ad.scale, ad.a.spec.Score
	for j := range sc {
		v := scale * sc[j]
		if ad.wantRaw {
			raw[j] = v
		}
		if score != nil {
			v = score(v, ad.b, ad.h, q, k+j)
		}
		keep[j] = v != negInf32
		sc[j] = v
	}
}

// Attention computes the IR's attention op on q f32[B, H, Nq, D] and k
// f32[B, H, Nk, D]: for every query, softmax over the admitted keys of
// Score(Scale·q·k), then, by spec.Returns:
//
//   - "out": the probabilities applied to v f32[B, H, Nk, Dv], giving
//     f32[B, H, Nq, Dv] (a query with no admitted key gives zeros);
//   - "probs", "logprobs": the distribution itself, f32[B, H, Nq, Nk]
//     (masked keys 0 and -Inf; a query with no admitted key all 0 and all
//     -Inf); v must be nil;
//   - "lse": the log-sum-exp of the admitted scores, f32[B, H, Nq] (-Inf
//     with none), the row statistic AttentionGrad recomputes from.
//
// "out" and "lse" are FlashAttention-style: each task owns a tile of
// queries of one (b, h) and walks the key tiles keeping a running maximum,
// sum and (for out) output accumulator per query, so the Nq × Nk scores
// are never stored. Tiles that spec.Tile proves empty are skipped.
// Products accumulate in float32, row sums in float64. It panics if the
// operands do not fit.
func Attention(q, k, v *Tensor, spec *AttnSpec) *Tensor {
	a := newAttnRun("Attention", q, k, v, spec)
	if a.returns != "out" && v != nil {
		panic(fmt.Sprintf("runtime.Attention: returning %s takes no v", a.returns))
	}
	switch a.returns {
	case "out":
		out := a.newRows(a.dv)
		a.flash(out.F, nil)
		return out
	case "lse":
		out := a.newRows(0)
		a.flash(nil, out.F)
		return out
	}
	out := New(F32, a.nb, a.nh, a.nq, a.nk)
	a.distribution(out.F, a.returns == "logprobs", nil)
	return out
}

// AttentionWithLSE computes Attention and, from the same pass over the
// score tiles, the row log-sum-exp f32[B, H, Nq] that AttentionGrad
// recomputes the probabilities from: the IR's attention with with_lse.
// spec.Returns must not be "lse".
func AttentionWithLSE(q, k, v *Tensor, spec *AttnSpec) (y, lse *Tensor) {
	a := newAttnRun("AttentionWithLSE", q, k, v, spec)
	if a.returns != "out" && v != nil {
		panic(fmt.Sprintf("runtime.AttentionWithLSE: returning %s takes no v", a.returns))
	}
	lse = a.newRows(0)
	switch a.returns {
	case "out":
		y = a.newRows(a.dv)
		a.flash(y.F, lse.F)
	case "lse":
		panic("runtime.AttentionWithLSE: Returns lse")
	default:
		y = New(F32, a.nb, a.nh, a.nq, a.nk)
		a.distribution(y.F, a.returns == "logprobs", lse.F)
	}
	return y, lse
}

// newRows returns a new tensor of a row of width per query of every
// pair, in a's layout: [B, H, Nq, width] or [B, Nq, H, width]; width 0
// leaves the last axis out (the row statistics).
func (a *attnRun) newRows(width int) *Tensor {
	shape := []int{a.nb, a.nh, a.nq, width}
	if a.bnhd {
		shape = []int{a.nb, a.nq, a.nh, width}
	}
	if width == 0 {
		shape = shape[:3]
	}
	return New(F32, shape...)
}

// flash runs the online-softmax forward pass, writing the attention
// output into out (when non-nil) and the row log-sum-exp into lse (when
// non-nil).
func (a *attnRun) flash(out, lse []float32) {
	if a.short(false) && a.shortFlash(out, lse) {
		return
	}
	qt := ceilDiv(a.nq, attnBQ)
	flops := 2 * attnBQ * a.nk * (a.d + a.dv)
	var vs rowSplit
	var vp tilePack
	defer vp.release()
	defer a.kp.release()
	if out != nil {
		vs = splitRows(a.v.F, a.dv)
	}
	pack := func(bh0, bh1 int) {
		a.packKeyTiles(&a.kp, a.k.F, a.d, bh0, bh1)
		if out != nil {
			a.packRows(&vp, vs.clean, a.nk, a.dv, bh0, bh1)
		}
	}
	a.inGroups(qt, grainFor(flops), pack, func(lo, hi int) {
		t := a.getTileBuf()
		defer tileBufs.Put(t)
		m, l := t.m, t.l
		var acc []float32
		if out != nil {
			acc = t.acc
		}
		for task := lo; task < hi; task++ {
			bh, q0 := task/qt, task%qt*attnBQ
			b, h := bh/a.nh, bh%a.nh
			q1 := min(q0+attnBQ, a.nq)
			rows := q1 - q0
			for i := range rows {
				m[i], l[i] = negInf32, 0
			}
			if acc != nil {
				clear(acc[:rows*a.dv]) // the tile's rows, not attnBQ of them
			}
			for k0 := 0; k0 < a.nk; k0 += attnBK {
				k1 := min(k0+attnBK, a.nk)
				cols := k1 - k0
				if !a.scores(t, b, h, q0, q1, k0, k1, false, vs.bad != nil) {
					continue
				}
				a.tileExp(t, rows, cols, m, l, acc)
				if acc != nil {
					a.tileTimesRows(t, acc, a.dv, vs.clean, &vp, a.dv, bh, k0, rows, cols)
					for j := range cols {
						if vs.bad == nil || !vs.bad[a.ri(bh, a.nk, k0+j)] {
							continue
						}
						vrow := a.v.F[a.ri(bh, a.nk, k0+j)*a.dv:][:a.dv]
						for i := range rows {
							if t.keep[i*attnBK+j] {
								addScaled(acc[i*a.dv:(i+1)*a.dv], t.sc[i*attnBK+j], vrow)
							}
						}
					}
				}
			}
			// l is 0 exactly when the row admits no key; a NaN score
			// makes it NaN, which must reach the results as in the
			// reference, so the test is != 0, not > 0.
			for i := range rows {
				row := a.ri(bh, a.nq, q0+i)
				if lse != nil {
					lse[row] = negInf32
					switch {
					case m[i] == posInf32:
						lse[row] = posInf32 // l is NaN (∞ - ∞), the sum is not
					case l[i] != 0:
						lse[row] = m[i] + float32(math.Log(l[i]))
					}
				}
				if out != nil {
					o := out[row*a.dv : (row+1)*a.dv]
					if l[i] != 0 {
						accRow := acc[i*a.dv : (i+1)*a.dv]
						if inv := float32(1 / l[i]); a.dv >= 64 {
							copy(o, accRow)
							scaleRow(o, inv)
						} else {
							// A short row: one pass, no kernel call.
							for j, x := range accRow {
								o[j] = x * inv
							}
						}
					}
				}
			}
		}
	})
}

// distribution writes the [B, H, Nq, Nk] probabilities (or their logs)
// into out, and the row log-sum-exp into lse when non-nil, one tile of
// query rows per task.
func (a *attnRun) distribution(out []float32, logs bool, lse []float32) {
	qt := ceilDiv(a.nq, attnBQ)
	pack := func(bh0, bh1 int) { a.packKeyTiles(&a.kp, a.k.F, a.d, bh0, bh1) }
	defer a.kp.release()
	a.inGroups(qt, grainFor(2*attnBQ*a.nk*a.d), pack, func(lo, hi int) {
		t := a.getTileBuf()
		defer tileBufs.Put(t)
		for task := lo; task < hi; task++ {
			bh, q0 := task/qt, task%qt*attnBQ
			b, h := bh/a.nh, bh%a.nh
			q1 := min(q0+attnBQ, a.nq)
			rows := out[(bh*a.nq+q0)*a.nk : (bh*a.nq+q1)*a.nk]
			for k0 := 0; k0 < a.nk; k0 += attnBK {
				k1 := min(k0+attnBK, a.nk)
				ok := a.scores(t, b, h, q0, q1, k0, k1, false, false)
				for i := range q1 - q0 {
					dst := rows[i*a.nk+k0 : i*a.nk+k1]
					if ok {
						copy(dst, t.sc[i*attnBK:])
					} else {
						for j := range dst {
							dst[j] = negInf32
						}
					}
				}
			}
			for i := range q1 - q0 {
				row := rows[i*a.nk : (i+1)*a.nk]
				mx := maxSlice(row)
				if mx == negInf32 {
					if !logs {
						clear(row)
					}
					if lse != nil {
						lse[bh*a.nq+q0+i] = negInf32
					}
					continue
				}
				sum := 0.0
				for _, s := range row {
					if s != negInf32 {
						sum += float64(exp32(s - mx))
					}
				}
				rowLSE := mx + float32(math.Log(sum))
				if mx == posInf32 {
					rowLSE = mx // sum is NaN (∞ - ∞): the reference's log-sum-exp is +Inf
				}
				if lse != nil {
					lse[bh*a.nq+q0+i] = rowLSE
				}
				inv := float32(1 / sum)
				for j, s := range row {
					switch {
					case s == negInf32 && logs:
						row[j] = negInf32 // masked, also in a NaN row
					case logs:
						row[j] = s - rowLSE
					case s == negInf32:
						row[j] = 0
					default:
						row[j] = exp32(s-mx) * inv
					}
				}
			}
		}
	})
}

// tileExp is the online softmax's step on a tile of scores (rows ×
// cols in t.sc): each row turns into e^(s - m), m its new running
// maximum, and the running maximum m, sum l and output acc of its query
// are updated. A row with nothing admitted turns into zeros and leaves
// them alone.
func (a *attnRun) tileExp(t *tileBuf, rows, cols int, m []float32, l []float64, acc []float32) {
	w := padCols(cols)
	// The rows' maxima first, then, unless a row is NaN, every row's
	// exponentials in one call (expSumRows). A row with nothing admitted
	// is all -Inf, which less +Inf gives zeros and a sum of 0.
	batch := rows > 1
	for i := range rows {
		rowMax := maxSlice(padRow(t.sc[i*attnBK:], cols, w))
		mNew := max(m[i], rowMax)
		t.rowMax[i], t.sub[i] = rowMax, mNew
		if rowMax == negInf32 {
			t.sub[i] = posInf32
		}
		if mNew != mNew {
			batch = false
		}
	}
	if batch && expSumRows(t.sc, attnBK, rows, w, t.sub[:rows], t.sum[:rows]) {
		for i := range rows {
			if t.rowMax[i] != negInf32 {
				a.rescaleRow(i, t.sub[i], float64(t.sum[i]), m, l, acc)
			}
		}
		return
	}
	for i := range rows {
		sc := t.sc[i*attnBK : i*attnBK+w]
		if t.rowMax[i] == negInf32 {
			clear(sc) // nothing admitted in this row of the tile
			continue
		}
		mNew := max(m[i], t.rowMax[i])
		var sum float64
		if mNew == mNew {
			// A -inf score (masked) gives 0. The tile row's sum is a
			// float32 one, l's a float64 one.
			sum = float64(expSumSlice(sc, sc, mNew))
		} else {
			// A NaN row: masked keys still get 0, not NaN.
			maskedExp(sc, mNew)
			for _, p := range sc {
				sum += float64(p)
			}
		}
		a.rescaleRow(i, mNew, sum, m, l, acc)
	}
}

// rescaleRow moves row i's running maximum to mNew, rescaling its sum and
// output accumulator (when acc is non-nil) by e^(m - mNew), and adds sum,
// the tile row's exponentials, into l.
func (a *attnRun) rescaleRow(i int, mNew float32, sum float64, m []float32, l []float64, acc []float32) {
	if m[i] != negInf32 && m[i] != mNew {
		alpha := exp32(m[i] - mNew)
		l[i] *= float64(alpha)
		if acc != nil {
			scaleRow(acc[i*a.dv:(i+1)*a.dv], alpha)
		}
	}
	m[i] = mNew
	l[i] += sum
}

// padCols returns the width, at least cols and at most attnBK, to which
// padRow pads a row of a tile of cols columns: a whole number of vectors,
// so that the row kernels (maxSlice, expSumSlice, expSlice) run it in
// one call instead of copying a short row's tail into a buffer; a
// ten-key tile is all tail.
func padCols(cols int) int {
	if v := activeVec; v != nil {
		return min(roundUp(cols, v.lanes), attnBK)
	}
	return cols
}

// padRow returns the first w elements of the tile row at sc, the columns
// past cols set to -Inf: a masked key's score, which changes no row
// maximum and whose exponential, 0, changes no sum. The products read
// only the first cols columns.
func padRow(sc []float32, cols, w int) []float32 {
	sc = sc[:w]
	for j := cols; j < w; j++ {
		sc[j] = negInf32
	}
	return sc
}

// maskedExp sets sc[j] = e^(sc[j] - sub), and 0 where sc[j] is -inf (a
// masked key) whatever sub is: the scalar path for rows whose subtrahend
// is NaN or -inf, where expSlice would give NaN for masked keys.
func maskedExp(sc []float32, sub float32) {
	for j, s := range sc {
		if s == negInf32 {
			sc[j] = 0
		} else {
			sc[j] = exp32(s - sub)
		}
	}
}
