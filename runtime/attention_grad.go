package runtime

import (
	"fmt"
	"slices"
	"sync"
)

// AttentionGrad computes the IR's attention_grad op: the gradient of
// Attention(q, k, v, spec) with respect to wrt — "q", "k", "v" (spec.Returns
// "out" only) or "cap" — given lse f32[B, H, Nq], the forward's row
// log-sum-exp (Attention with Returns "lse"), and dy, the gradient of the
// forward's result (f32[B, H, Nq, Dv] for "out", f32[B, H, Nq, Nk] for
// "probs" and "logprobs"). v is nil unless spec.Returns is "out".
//
// Probabilities are recomputed from lse, P = exp(s' - lse), tile by tile,
// never stored whole. Per query row,
//
//	out:      dP_k = dy·v_k,  dS'_k = P_k (dP_k - Σ_j P_j dP_j),  dv_k += P_k dy
//	probs:    dP_k = dy_k,    dS'_k as for out
//	logprobs: dS'_k = dy_k - P_k Σ_j dy_j
//
// over the admitted keys, and dS_k = dS'_k·DScore(s_k); then dq += Scale
// Σ_k dS_k k_k and dk_k += Scale dS_k q. Masked keys and rows whose lse is
// -Inf contribute nothing. For "q" and "cap" tasks own query tiles; for "k"
// and "v" they own key tiles and walk every query, after a first pass that
// computes the row sums Σ_j P_j dP_j.
//
// For wrt "cap", grad must be a zeroed tensor of the captured tensor's
// shape; spec.CapGrad adds each admitted pair's contribution (each
// goroutine into its own copy, summed into grad in a fixed order), and
// grad is returned. For the other wrt grad is ignored and may be nil; the
// result is a new tensor of the operand's shape. It panics if the operands
// do not fit.
func AttentionGrad(q, k, v, lse, dy *Tensor, spec *AttnSpec, wrt string, grad *Tensor) *Tensor {
	a := newAttnRun("AttentionGrad", q, k, v, spec)
	g := &gradRun{attnRun: a}
	dyCols := a.nk
	switch a.returns {
	case "out":
		dyCols = a.dv
	case "lse":
		panic("runtime.AttentionGrad: Returns lse has no gradient")
	}
	if lse == nil || lse.DType != F32 || !slices.Equal(lse.Shape, []int{a.nb, a.nh, a.nq}) {
		panic(fmt.Sprintf("runtime.AttentionGrad: lse %v, want f32[%d %d %d]", lse, a.nb, a.nh, a.nq))
	}
	if dy == nil || dy.DType != F32 || !slices.Equal(dy.Shape, []int{a.nb, a.nh, a.nq, dyCols}) {
		panic(fmt.Sprintf("runtime.AttentionGrad: dy %v, want f32[%d %d %d %d]", dy, a.nb, a.nh, a.nq, dyCols))
	}
	g.lse, g.dy, g.dyCols = lse.F, dy.F, dyCols
	g.nonFinite = splitRows(dy.F, dyCols).bad != nil || v != nil && splitRows(v.F, a.dv).bad != nil
	switch wrt {
	case "q":
		res := New(F32, q.Shape...)
		g.byQueries(res.F, nil)
		return res
	case "k", "v":
		if wrt == "v" && a.returns != "out" {
			panic("runtime.AttentionGrad: wrt v needs Returns out")
		}
		res := New(F32, k.Shape...)
		if wrt == "v" {
			res = New(F32, v.Shape...)
		}
		g.byKeys(res.F, wrt == "v")
		return res
	case "cap":
		if spec.CapGrad == nil || grad == nil || grad.DType != F32 {
			panic("runtime.AttentionGrad: wrt cap needs spec.CapGrad and a zeroed f32 grad")
		}
		g.byQueries(nil, grad)
		return grad
	}
	panic(fmt.Sprintf("runtime.AttentionGrad: unknown wrt %q", wrt))
}

// A gradRun is an attnRun with the backward pass's extra operands.
type gradRun struct {
	*attnRun
	lse, dy []float32
	dyCols  int       // Dv for out, Nk for probs and logprobs
	rowDot  []float32 // Σ_j P_j dP_j (Σ_j dy_j for logprobs) per row, for byKeys
	// nonFinite says v or dy holds NaN or ±Inf: the row sums then leave
	// masked pairs out explicitly (see rowSplit).
	nonFinite bool
}

// A gradBuf is one goroutine's scratch for the backward pass.
type gradBuf struct {
	*tileBuf
	dsp []float32 // per pair of the tile: dP (for out), then dS'
	vt  []float32 // a value tile transposed, [Dv × attnBK]
	tr  []float32 // a tile matrix transposed, [attnBK × attnBQ]
	dot []float32 // row sums for the rows of the current query tile
}

func (g *gradRun) newBuf() *gradBuf {
	return &gradBuf{
		tileBuf: newTileBuf(g.d),
		dsp:     make([]float32, attnBQ*attnBK),
		vt:      make([]float32, g.dv*attnBK),
		tr:      make([]float32, attnBK*attnBQ),
		dot:     make([]float32, attnBQ),
	}
}

// probs computes the tile's scores and turns sc into the recomputed
// probabilities P = exp(s' - lse) (0 where masked or the row has no key)
// and, for out when wantDP, dsp into dP = dy·v. It reports whether any
// pair is admitted.
func (g *gradRun) probs(t *gradBuf, b, h, q0, q1, k0, k1 int, wantDP bool) bool {
	if !g.scores(t.tileBuf, b, h, q0, q1, k0, k1, true) {
		return false
	}
	rows, cols := q1-q0, k1-k0
	bh := b*g.nh + h
	for i := range rows {
		lse := g.lse[bh*g.nq+q0+i]
		sc := t.sc[i*attnBK : i*attnBK+cols]
		for j, s := range sc {
			if s == negInf32 || lse == negInf32 {
				sc[j] = 0
			} else {
				sc[j] = exp32(s - lse)
			}
		}
	}
	if g.returns == "out" && wantDP {
		vs := g.v.F[(bh*g.nk+k0)*g.dv:]
		for j := range cols {
			for c, x := range vs[j*g.dv : (j+1)*g.dv] {
				t.vt[c*attnBK+j] = x
			}
		}
		for i := range rows {
			clear(t.dsp[i*attnBK : i*attnBK+cols])
		}
		matAdd(t.dsp, attnBK, g.dy[(bh*g.nq+q0)*g.dv:], g.dv, t.vt, attnBK, rows, g.dv, cols)
	}
	return true
}

// rowDots adds each row's Σ_j P_j dP_j over the tile (Σ_j dy_j over the
// admitted keys for logprobs) into sums; probs must have run.
func (g *gradRun) rowDots(t *gradBuf, bh, q0, q1, k0, k1 int, sums []float32) {
	cols := k1 - k0
	for i := range q1 - q0 {
		p := t.sc[i*attnBK : i*attnBK+cols]
		s := float32(0)
		switch g.returns {
		case "out", "probs":
			x := t.dsp[i*attnBK:]
			if g.returns == "probs" {
				x = g.dy[(bh*g.nq+q0+i)*g.nk+k0:]
			}
			if !g.nonFinite {
				s = dot(p, x)
				break
			}
			for j, ok := range t.keep[i*attnBK : i*attnBK+cols] {
				if ok {
					s += p[j] * x[j]
				}
			}
		case "logprobs":
			keep := t.keep[i*attnBK : i*attnBK+cols]
			dy := g.dy[(bh*g.nq+q0+i)*g.nk+k0:]
			for j, ok := range keep {
				if ok {
					s += dy[j]
				}
			}
		}
		sums[i] += s
	}
}

// gradScores writes into dsp the tile's dS', the gradient with respect to
// the modified scores (0 where masked), given the probabilities (sc) and
// dP (dsp, for out) that probs left and the row sums dot.
func (g *gradRun) gradScores(t *gradBuf, b, h, q0, q1, k0, k1 int, dot []float32) {
	cols := k1 - k0
	bh := b*g.nh + h
	for i := range q1 - q0 {
		p := t.sc[i*attnBK : i*attnBK+cols]
		dsp := t.dsp[i*attnBK : i*attnBK+cols]
		keep := t.keep[i*attnBK : i*attnBK+cols]
		masked := g.lse[bh*g.nq+q0+i] == negInf32
		for j := range p {
			if !keep[j] || masked {
				dsp[j] = 0
				continue
			}
			switch g.returns {
			case "out":
				dsp[j] = p[j] * (dsp[j] - dot[i])
			case "probs":
				dsp[j] = p[j] * (g.dy[(bh*g.nq+q0+i)*g.nk+k0+j] - dot[i])
			case "logprobs":
				dsp[j] = g.dy[(bh*g.nq+q0+i)*g.nk+k0+j] - p[j]*dot[i]
			}
		}
	}
}

// applyDScore writes dS = dS'·DScore(s) into dst for the tile.
func (g *gradRun) applyDScore(t *gradBuf, dst []float32, b, h, q0, q1, k0, k1 int) {
	cols := k1 - k0
	for i := range q1 - q0 {
		dsp := t.dsp[i*attnBK : i*attnBK+cols]
		out := dst[i*attnBK : i*attnBK+cols]
		if g.spec.DScore == nil {
			copy(out, dsp)
			continue
		}
		raw := t.raw[i*attnBK : i*attnBK+cols]
		keep := t.keep[i*attnBK : i*attnBK+cols]
		for j, d := range dsp {
			if d == 0 || !keep[j] {
				out[j] = 0
				continue
			}
			out[j] = d * g.spec.DScore(raw[j], b, h, q0+i, k0+j)
		}
	}
}

// byQueries computes dq (into dq, when non-nil) or the capture gradient
// (into capGrad) with one task per query tile: a first walk over the key
// tiles for the row sums, a second for the gradient.
func (g *gradRun) byQueries(dq []float32, capGrad *Tensor) {
	qt := ceilDiv(g.nq, attnBQ)
	var mu sync.Mutex
	type part struct {
		lo int
		t  *Tensor
	}
	var parts []part
	var ks rowSplit
	if dq != nil {
		ks = splitRows(g.k.F, g.d)
	}
	ParallelFor(g.qTiles(), grainFor(4*attnBQ*g.nk*(g.d+g.dv)), func(lo, hi int) {
		t := g.newBuf()
		var local *Tensor
		if capGrad != nil {
			local = New(F32, capGrad.Shape...)
		}
		for task := lo; task < hi; task++ {
			bh, q0 := task/qt, task%qt*attnBQ
			b, h := bh/g.nh, bh%g.nh
			q1 := min(q0+attnBQ, g.nq)
			rows := q1 - q0
			dot := t.dot[:rows]
			clear(dot)
			for k0 := 0; k0 < g.nk; k0 += attnBK {
				k1 := min(k0+attnBK, g.nk)
				if g.probs(t, b, h, q0, q1, k0, k1, true) {
					g.rowDots(t, bh, q0, q1, k0, k1, dot)
				}
			}
			for k0 := 0; k0 < g.nk; k0 += attnBK {
				k1 := min(k0+attnBK, g.nk)
				cols := k1 - k0
				if !g.probs(t, b, h, q0, q1, k0, k1, true) {
					continue
				}
				g.gradScores(t, b, h, q0, q1, k0, k1, dot)
				if local != nil {
					for i := range rows {
						dsp := t.dsp[i*attnBK : i*attnBK+cols]
						raw := t.raw[i*attnBK : i*attnBK+cols]
						keep := t.keep[i*attnBK : i*attnBK+cols]
						for j, d := range dsp {
							if keep[j] && d != 0 {
								g.spec.CapGrad(local, d, raw[j], b, h, q0+i, k0+j)
							}
						}
					}
					continue
				}
				g.applyDScore(t, t.sc, b, h, q0, q1, k0, k1)
				matAdd(dq[(bh*g.nq+q0)*g.d:], g.d, t.sc, attnBK, ks.clean[(bh*g.nk+k0)*g.d:], g.d, rows, cols, g.d)
				for j := range cols {
					if ks.bad == nil || !ks.bad[bh*g.nk+k0+j] {
						continue
					}
					krow := g.k.F[(bh*g.nk+k0+j)*g.d:][:g.d]
					for i := range rows {
						if t.keep[i*attnBK+j] {
							addScaled(dq[(bh*g.nq+q0+i)*g.d:(bh*g.nq+q0+i+1)*g.d], t.sc[i*attnBK+j], krow)
						}
					}
				}
			}
			if dq != nil {
				scaleRow(dq[(bh*g.nq+q0)*g.d:(bh*g.nq+q1)*g.d], g.spec.Scale)
			}
		}
		if local != nil {
			mu.Lock()
			parts = append(parts, part{lo, local})
			mu.Unlock()
		}
	})
	if capGrad != nil {
		slices.SortFunc(parts, func(x, y part) int { return x.lo - y.lo })
		for _, p := range parts {
			addTo(capGrad.F, p.t.F)
		}
	}
}

// byKeys computes dk, or dv when wantV, with one task per key tile that
// walks every query tile, after a pass over the query tiles for the row
// sums (not needed for dv).
func (g *gradRun) byKeys(res []float32, wantV bool) {
	qt := ceilDiv(g.nq, attnBQ)
	if !wantV {
		g.rowDot = make([]float32, g.nb*g.nh*g.nq)
		ParallelFor(g.qTiles(), grainFor(2*attnBQ*g.nk*(g.d+g.dv)), func(lo, hi int) {
			t := g.newBuf()
			for task := lo; task < hi; task++ {
				bh, q0 := task/qt, task%qt*attnBQ
				b, h := bh/g.nh, bh%g.nh
				q1 := min(q0+attnBQ, g.nq)
				dot := g.rowDot[bh*g.nq+q0 : bh*g.nq+q1]
				for k0 := 0; k0 < g.nk; k0 += attnBK {
					k1 := min(k0+attnBK, g.nk)
					if g.probs(t, b, h, q0, q1, k0, k1, true) {
						g.rowDots(t, bh, q0, q1, k0, k1, dot)
					}
				}
			}
		})
	}
	kt := ceilDiv(g.nk, attnBK)
	width, weighted := g.d, g.q.F
	if wantV {
		width, weighted = g.dv, g.dy
	}
	ws := splitRows(weighted, width)
	ParallelFor(g.kTiles(), grainFor(4*attnBK*g.nq*(g.d+g.dv)), func(lo, hi int) {
		t := g.newBuf()
		for task := lo; task < hi; task++ {
			bh, k0 := task/kt, task%kt*attnBK
			b, h := bh/g.nh, bh%g.nh
			k1 := min(k0+attnBK, g.nk)
			cols := k1 - k0
			dst := res[(bh*g.nk+k0)*width:]
			for q0 := 0; q0 < g.nq; q0 += attnBQ {
				q1 := min(q0+attnBQ, g.nq)
				rows := q1 - q0
				if !g.probs(t, b, h, q0, q1, k0, k1, !wantV) {
					continue
				}
				// The [rows × width] matrix whose rows are weighted: dy for
				// dv_k += Σ_i P_ik dy_i, q for dk_k += Σ_i dS_ik q_i.
				src := ws.clean[(bh*g.nq+q0)*width:]
				if !wantV {
					g.gradScores(t, b, h, q0, q1, k0, k1, g.rowDot[bh*g.nq+q0:])
					g.applyDScore(t, t.sc, b, h, q0, q1, k0, k1)
				}
				for i := range rows {
					for j, x := range t.sc[i*attnBK : i*attnBK+cols] {
						t.tr[j*attnBQ+i] = x
					}
				}
				matAdd(dst, width, t.tr, attnBQ, src, width, cols, rows, width)
				for i := range rows {
					if ws.bad == nil || !ws.bad[bh*g.nq+q0+i] {
						continue
					}
					row := weighted[(bh*g.nq+q0+i)*width:][:width]
					for j := range cols {
						if t.keep[i*attnBK+j] {
							addScaled(dst[j*width:(j+1)*width], t.sc[i*attnBK+j], row)
						}
					}
				}
			}
			if !wantV {
				scaleRow(dst[:cols*width], g.spec.Scale)
			}
		}
	})
}
