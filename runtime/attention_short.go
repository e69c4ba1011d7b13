package runtime

import (
	"math"
	"sync"
	"sync/atomic"
)

// Attention over short key ranges.
//
// The tiled kernels (flash, byKeys, byQueries) pay per tile of 64 × 64
// pairs and per row: packing, span clipping, the online softmax's
// rescaling, a micro-kernel call per product. At the small models'
// sequence lengths (seq2seq's 9, pointer_sort's 10) a (b, h) pair is a
// single partial tile and those costs were the whole cost: about 2 µs a
// pair for some 16 KFLOP. Where the keys fit one vector (at most 16), the
// short kernels (attnShortFwdAVX512, attnShortBwdAVX512, generated in
// _asm/attnshort.go) instead hold a query's scores in one register: a
// row's scores, its softmax and its products with v (or its gradients)
// are one pass of vector instructions, with the keys (and values)
// transposed once per pair by the GEMM packer. Masks reach the kernels as
// a 16-bit word per query, made from the spec's Tile, Rows, MaskRow or
// Mask as the tiled kernels use them.
//
// The short path takes what the tiled path takes except score
// modifications and their gradients (Score, DScore, captures), returns
// other than out and lse, and non-finite operands, whose NaN and ±Inf
// the tiled path handles element by element; heads of a multiple of 16
// elements up to shortMaxD. Results agree with the tiled path to
// rounding: the sums run in another order (and the row sum of the
// exponentials in float32, not float64).

// shortMaxKeys is the most keys the short kernels take: one vector.
const shortMaxKeys = 16

// shortMaxD is the widest head the short kernels take (their transposed
// keys and values are 16·d floats each).
const shortMaxD = 256

// shortOff turns the short kernels off (tests compare them with the
// tiled path); shortCalls counts the calls they served.
var (
	shortOff   bool
	shortCalls atomic.Int64
)

// short reports whether a's attention can run on the short kernels,
// for the forward pass (grad false) or the backward.
func (a *attnRun) short(grad bool) bool {
	s := a.spec
	if shortOff || !shortKernels() || a.nk < 1 || a.nk > shortMaxKeys || a.nq < 1 || a.nb*a.nh == 0 ||
		a.d%16 != 0 || a.d > shortMaxD || s.Score != nil || s.DScore != nil {
		return false
	}
	switch a.returns {
	case "out":
		if a.dv%16 != 0 || a.dv == 0 || a.dv > shortMaxD {
			return false
		}
	case "lse":
		if grad {
			return false
		}
	default:
		return false
	}
	if grad {
		return true // AttentionGrad's plain test checked the operands
	}
	return allFinite(a.q.F) && allFinite(a.k.F) && (a.v == nil || allFinite(a.v.F))
}

// shortBuf is one task's scratch for the short kernels.
type shortBuf struct {
	kt, vt []float32 // the pair's keys and values transposed: 16 a column
	pad    []float32 // 16 rows of a pair, copied where reading them would run past the tensor
	masks  []uint16  // a word of admitted keys per query
	rows   []uint16  // the backward's words, less the rows the forward found empty
	keep   []bool
	ml     []float32 // the forward's row maxima and sums
}

var shortBufs sync.Pool // of *shortBuf

// getShortBuf returns a scratch buffer sized for a, from the pool; put
// it back with shortBufs.Put.
func (a *attnRun) getShortBuf() *shortBuf {
	t, _ := shortBufs.Get().(*shortBuf)
	if t == nil {
		t = new(shortBuf)
	}
	w := max(a.d, a.dv)
	t.kt = growFloats(t.kt, 16*a.d)
	t.vt = growFloats(t.vt, 16*a.dv)
	t.pad = growFloats(t.pad, 16*w)
	t.ml = growFloats(t.ml, 2*a.nq)
	t.masks = growWords(t.masks, a.nq)
	t.rows = growWords(t.rows, a.nq)
	if t.keep == nil {
		t.keep = make([]bool, shortMaxKeys)
	}
	return t
}

// growFloats returns x resliced to n elements, reallocated when too short;
// what it holds is not kept.
func growFloats(x []float32, n int) []float32 {
	if cap(x) < n {
		return make([]float32, n)
	}
	return x[:n]
}

func growWords(x []uint16, n int) []uint16 {
	if cap(x) < n {
		return make([]uint16, n)
	}
	return x[:n]
}

// transposeKeys packs the nk rows of width elements of the pair bh of x
// (k or v) into dst, element j of row r at dst[16·j + r]. The packer
// reads 16 rows; where rows past nk would run past x, the rows are first
// copied into t.pad. Lanes of rows past nk hold whatever those rows
// hold: the kernels mask them.
func (a *attnRun) transposeKeys(t *shortBuf, dst, x []float32, width, bh int) {
	start, rs := a.ri(bh, a.nk, 0)*width, a.step()*width
	src := x[start:]
	if start+15*rs+width > len(x) {
		clear(t.pad[:16*width])
		for r := range a.nk {
			copy(t.pad[r*width:(r+1)*width], x[start+r*rs:])
		}
		src, rs = t.pad, width
	}
	packShortKeys(width/4, src, rs, dst)
}

// shortMasks fills t.masks[q0:q1] with the keys each query of (b, h)
// admits, bit k for key k, and reports whether any is admitted. [q0, q1)
// is at most one query tile of the grid classifyTiles uses.
func (a *attnRun) shortMasks(t *shortBuf, b, h, q0, q1 int) bool {
	s := a.spec
	m := t.masks[q0:q1]
	all := uint16(1<<a.nk - 1)
	kind := TilePartial
	if s.Tile != nil {
		kind = a.tileKind(b, h, q0, q1, 0, a.nk)
	}
	if kind == TilePartial && s.Mask == nil {
		kind = TileFull
	}
	var any uint16
	switch {
	case kind == TileEmpty:
		clear(m)
	case kind == TileFull:
		for i := range m {
			m[i] = all
		}
		any = all
	case s.Rows != nil:
		for i := range m {
			var bits uint32
			for _, r := range s.Rows(b, h, q0+i).clip(0, a.nk) {
				if r.Lo < r.Hi {
					bits |= (1<<r.Hi - 1) &^ (1<<r.Lo - 1)
				}
			}
			m[i] = uint16(bits)
			any |= m[i]
		}
	default:
		keep := t.keep[:a.nk]
		for i := range m {
			if s.MaskRow != nil {
				s.MaskRow(b, h, q0+i, 0, keep)
			} else {
				for k := range keep {
					keep[k] = s.Mask(b, h, q0+i, k)
				}
			}
			var bits uint16
			for k, ok := range keep {
				if ok {
					bits |= 1 << k
				}
			}
			m[i] = bits
			any |= bits
		}
	}
	return any != 0
}

// pairMasks fills t.masks for every query of (b, h), a query tile at a
// time, and reports whether any key is admitted.
func (a *attnRun) pairMasks(t *shortBuf, b, h int) bool {
	any := false
	for q0 := 0; q0 < a.nq; q0 += attnBQ {
		if a.shortMasks(t, b, h, q0, min(q0+attnBQ, a.nq)) {
			any = true
		}
	}
	return any
}

// shortGrain is the ParallelFor grain, in examples, of the short kernels.
func (a *attnRun) shortGrain() int {
	return grainFor(4 * a.nh * a.nq * a.nk * (a.d + a.dv))
}

// shortPairs calls fn for every (b, h) pair, bh = b·H + h, an example's
// pairs in one task, with t.masks holding the pair's words (made once an
// example when the mask reads no h). It stops taking examples once stop,
// when not nil, reports true.
func (a *attnRun) shortPairs(stop func() bool, fn func(t *shortBuf, bh int)) {
	ParallelFor(a.nb, a.shortGrain(), func(lo, hi int) {
		t := a.getShortBuf()
		defer shortBufs.Put(t)
		for b := lo; b < hi && (stop == nil || !stop()); b++ {
			for h := range a.nh {
				if h == 0 || !a.spec.TileHeadFree {
					a.pairMasks(t, b, h)
				}
				fn(t, b*a.nh+h)
			}
		}
	})
}

// shortFlash is flash on the short kernels. It reports false, having
// written nothing that flash does not overwrite, when a row's largest
// score is +Inf or NaN (finite operands whose products overflow): the
// tiled path then handles the call.
func (a *attnRun) shortFlash(out, lse []float32) bool {
	var overflow atomic.Bool
	scale := a.spec.Scale
	a.shortPairs(func() bool { return overflow.Load() }, func(t *shortBuf, bh int) {
		a.transposeKeys(t, t.kt, a.k.F, a.d, bh)
		q0, qs := a.ri(bh, a.nq, 0), a.step()
		o, dv, v := &t.ml[0], 0, &t.ml[0]
		if out != nil {
			o, dv, v = &out[q0*a.dv], a.dv, &a.v.F[a.ri(bh, a.nk, 0)*a.dv]
		}
		_ = a.q.F[(q0+(a.nq-1)*qs)*a.d+a.d-1]
		attnShortFwd(&a.q.F[q0*a.d], qs*a.d, a.nq, &t.kt[0], a.d, v, qs*a.dv, dv, a.nk,
			&t.masks[0], scale, o, qs*a.dv, &t.ml[0])
		for i := range a.nq {
			m, l := t.ml[2*i], t.ml[2*i+1]
			if m != m || m == posInf32 {
				overflow.Store(true)
				return
			}
			if lse != nil {
				x := negInf32
				if l != 0 {
					x = m + float32(math.Log(float64(l)))
				}
				lse[q0+i*qs] = x
			}
		}
	})
	if overflow.Load() {
		clear(out)
		return false
	}
	shortCalls.Add(1)
	return true
}

// shortGrad is AttentionGrad's work on the short kernels, into the
// zeroed dq, dk and dv (nil where not wanted). The caller has checked
// that q, k, v and dy are finite and that lse holds no NaN or +Inf.
func (g *gradRun) shortGrad(dq, dk, dv []float32) {
	a := g.attnRun
	scale := a.spec.Scale
	shortCalls.Add(1)
	a.shortPairs(nil, func(t *shortBuf, bh int) {
		rowMasks := t.rows
		q0, k0, step := a.ri(bh, a.nq, 0), a.ri(bh, a.nk, 0), a.step()
		// A row the forward found empty (lse -Inf) adds nothing,
		// whatever the mask says.
		any := uint16(0)
		for i := range a.nq {
			rowMasks[i] = t.masks[i]
			if g.lse[q0+i*step] == negInf32 {
				rowMasks[i] = 0
			}
			any |= rowMasks[i]
		}
		if any == 0 {
			return
		}
		a.transposeKeys(t, t.kt, a.k.F, a.d, bh)
		a.transposeKeys(t, t.vt, a.v.F, a.dv, bh)
		var pq, pk, pv *float32
		if dq != nil {
			pq = &dq[q0*a.d]
		}
		if dk != nil {
			pk = &dk[k0*a.d]
		}
		if dv != nil {
			pv = &dv[k0*a.dv]
		}
		_ = a.q.F[(q0+(a.nq-1)*step)*a.d+a.d-1]
		_ = g.dy[(q0+(a.nq-1)*step)*a.dv+a.dv-1]
		_ = a.k.F[(k0+(a.nk-1)*step)*a.d+a.d-1]
		attnShortBwd(&a.q.F[q0*a.d], step*a.d, a.nq, &t.kt[0], a.d, &t.vt[0], a.dv,
			&g.dy[q0*a.dv], step*a.dv, &g.lse[q0], &g.rowSum[q0], step, &rowMasks[0], scale,
			&a.k.F[k0*a.d], step*a.d, a.nk, pq, step*a.d, pk, step*a.d, pv, step*a.dv)
	})
}

// shortLSEOK reports whether lse holds no NaN or +Inf: what the short
// backward assumes of the forward's row statistics.
func shortLSEOK(lse []float32) bool {
	for _, x := range lse {
		if x != x || x == posInf32 {
			return false
		}
	}
	return true
}
