package runtime

import (
	"fmt"
	goruntime "runtime"
	"slices"
)

// AttnGradWant names the gradients AttentionGrad computes.
type AttnGradWant struct {
	Q, K, V bool // V only when spec.Returns is "out"
	// Caps has an entry per captured tensor: a zeroed f32 tensor of the
	// capture's shape to add its gradient into, or nil when that gradient
	// is not wanted. Any non-nil entry needs spec.CapGrad.
	Caps []*Tensor
}

// AttnGrads holds what AttentionGrad computed: nil where not wanted; Caps
// is the want's Caps, filled.
type AttnGrads struct {
	Q, K, V *Tensor
	Caps    []*Tensor
}

// AttentionGrad computes the IR's attention_grad op: the gradients of
// Attention(q, k, v, spec) that want names, given lse f32[B, H, Nq], the
// forward's row log-sum-exp, rowSum f32[B, H, Nq], the row sums D (Σ_j P_j
// dP_j: rowsum(dy ∘ out) for "out" and rowsum(dy ∘ probs) for "probs", the
// sum of dy over the admitted keys for "logprobs"), and dy, the gradient of
// the forward's result (f32[B, H, Nq, Dv] for "out", f32[B, H, Nq, Nk] for
// "probs" and "logprobs"). v is nil unless spec.Returns is "out".
//
// Probabilities are recomputed from lse, P = exp(s' - lse), tile by tile,
// never stored whole. Per query row,
//
//	out:      dP_k = dy·v_k,  dS'_k = P_k (dP_k - D),  dv_k += P_k dy
//	probs:    dP_k = dy_k,    dS'_k as for out
//	logprobs: dS'_k = dy_k - P_k D
//
// over the admitted keys, and dS_k = dS'_k·DScore(s_k); then dq += Scale
// Σ_k dS_k k_k and dk_k += Scale dS_k q. Masked keys and rows whose lse is
// -Inf contribute nothing.
//
// It walks the score tiles at most twice, as FlashAttention-2 does: a
// pass whose tasks own key tiles and walk every query tile gives dk, dv
// and the capture gradients together; a pass whose tasks own query tiles
// gives dq (and the capture gradients when neither dk nor dv is wanted).
// Each task writes only its own rows of dq, dk and dv, and capture
// gradients are summed per ParallelFor chunk and then in chunk order, so
// results are reproducible for a fixed GOMAXPROCS. It panics if the
// operands do not fit.
func AttentionGrad(q, k, v, lse, rowSum, dy *Tensor, spec *AttnSpec, want AttnGradWant) AttnGrads {
	a := newAttnRun("AttentionGrad", q, k, v, spec)
	g := &gradRun{attnRun: a}
	dyCols := a.nk
	switch a.returns {
	case "out":
		dyCols = a.dv
	case "lse":
		panic("runtime.AttentionGrad: Returns lse has no gradient")
	}
	rowShape := a.newRows(0).Shape
	for _, r := range []struct {
		name string
		t    *Tensor
	}{{"lse", lse}, {"rowSum", rowSum}} {
		if r.t == nil || r.t.DType != F32 || !slices.Equal(r.t.Shape, rowShape) {
			panic(fmt.Sprintf("runtime.AttentionGrad: %s %v, want f32%v", r.name, r.t, rowShape))
		}
	}
	if dyShape := append(slices.Clone(rowShape), dyCols); dy == nil || dy.DType != F32 || !slices.Equal(dy.Shape, dyShape) {
		panic(fmt.Sprintf("runtime.AttentionGrad: dy %v, want f32%v", dy, dyShape))
	}
	if want.V && a.returns != "out" {
		panic("runtime.AttentionGrad: V needs Returns out")
	}
	wantCaps := false
	for _, c := range want.Caps {
		if c != nil {
			if spec.CapGrad == nil || c.DType != F32 {
				panic("runtime.AttentionGrad: capture gradients need spec.CapGrad and zeroed f32 tensors")
			}
			wantCaps = true
		}
	}
	g.lse, g.rowSum, g.dy, g.dyCols = lse.F, rowSum.F, dy.F, dyCols
	g.wantRaw = spec.DScore != nil || wantCaps
	g.plain = a.returns == "out" && spec.Score == nil && spec.DScore == nil && !wantCaps &&
		allFinite(q.F) && allFinite(k.F) && allFinite(v.F) && allFinite(dy.F)
	res := AttnGrads{Caps: want.Caps}
	if want.Q {
		res.Q = New(F32, q.Shape...)
	}
	if want.K {
		res.K = New(F32, k.Shape...)
	}
	if want.V {
		res.V = New(F32, v.Shape...)
	}
	if g.plain && a.short(true) && allFinite(rowSum.F) && shortLSEOK(lse.F) {
		g.shortGrad(data(res.Q), data(res.K), data(res.V))
		return res
	}
	var keyCaps, queryCaps []*Tensor
	if wantCaps && (want.K || want.V) {
		keyCaps = want.Caps
	} else if wantCaps {
		queryCaps = want.Caps
	}
	switch {
	case want.Q && (want.K || want.V) && a.nb*a.nh >= onePassPairsPerCore*goruntime.GOMAXPROCS(0):
		// Enough (b, h) pairs to share among the cores: one task per
		// pair computes dq with dk and dv in one pass.
		g.byKeys(data(res.K), data(res.V), data(res.Q), keyCaps)
	case want.K || want.V:
		g.byKeys(data(res.K), data(res.V), nil, keyCaps)
		if want.Q {
			g.byQueries(data(res.Q), nil)
		}
	case want.Q || queryCaps != nil:
		g.byQueries(data(res.Q), queryCaps)
	}
	return res
}

// packShared packs what both passes read for the pairs [bh0, bh1): k for
// the scores and, for out, v transposed for dP = dy·vᵀ.
func (g *gradRun) packShared(bh0, bh1 int) {
	g.packKeyTiles(&g.kp, g.k.F, g.d, bh0, bh1)
	if g.returns == "out" {
		g.packKeyTiles(&g.vp, g.v.F, g.dv, bh0, bh1)
	}
}

func data(t *Tensor) []float32 {
	if t == nil {
		return nil
	}
	return t.F
}

// onePassPairsPerCore is how many (b, h) pairs per core AttentionGrad
// needs to compute dq in the key pass (see byKeys): with fewer, one task
// per pair would leave cores idle.
var onePassPairsPerCore = 4

// A gradRun is an attnRun with the backward pass's extra operands.
type gradRun struct {
	*attnRun
	lse, dy []float32
	rowSum  []float32 // D per row: Σ_j P_j dP_j (Σ_j dy_j for logprobs)
	dyCols  int       // Dv for out, Nk for probs and logprobs
	vp      tilePack  // v, packed per group of (b, h) like k (for out)
	wantRaw bool      // DScore or CapGrad read the raw scores
	// plain is the common case: returns out, no score modification and
	// every operand finite. Then a masked pair is exactly one whose
	// recomputed P is 0, the tiles need no keep flags, and dS' = P·(dP - D)
	// runs a row at a time on the vector kernels.
	plain bool
}

// split is splitRows, which a plain run can skip: its operands are known
// to be finite.
func (g *gradRun) split(x []float32, width int) rowSplit {
	if g.plain {
		return rowSplit{clean: x}
	}
	return splitRows(x, width)
}

// allFinite reports whether x holds neither NaN nor ±Inf. With vector
// kernels it sums x in float64 lanes (normSum's kernel): float32 values
// cannot overflow a float64 sum, so the sum is finite exactly when every
// element is (±Inf stays infinite or, against its opposite, NaN, and NaN
// stays NaN). The scalar loop tests v - v instead, 0 for every finite
// element and otherwise NaN, which no sum of them loses; four sums
// without a branch let it run at the loads' pace.
func allFinite(x []float32) bool {
	var s0, s1, s2, s3 float32
	i := 0
	if v := activeVec; v != nil && len(x) >= 16 {
		var acc [8]float64
		i = len(x) &^ 15 // a whole number of lanes for either set
		normSumVec(v, false, x[:i], 0, &acc)
		sum := 0.0
		for _, a := range acc {
			sum += a
		}
		if sum-sum != 0 {
			return false
		}
	}
	for ; i+4 <= len(x); i += 4 {
		v := x[i : i+4 : i+4]
		s0 += v[0] - v[0]
		s1 += v[1] - v[1]
		s2 += v[2] - v[2]
		s3 += v[3] - v[3]
	}
	for _, v := range x[i:] {
		s0 += v - v
	}
	return s0+s1+s2+s3 == 0
}

// A gradBuf is one goroutine's scratch for the backward pass.
type gradBuf struct {
	*tileBuf
	dsp []float32 // per pair of the tile: dP (for out), then dS'
	dyp aPack     // dy's rows of the query tile, for dP = dy·vᵀ
	tr  []float32 // a tile matrix transposed, [attnBK × attnBQ]
	dot []float32 // the query tile's row sums, gathered (bnhd layout)
	// accK and accV hold a key tile's dk and dv transposed, [D × attnBK]
	// and [Dv × attnBK], when the key pass computes them so.
	accK, accV []float32
}

// getBuf returns a gradBuf for g, from the pool when one fits; see
// getTileBuf.
func (g *gradRun) getBuf() *gradBuf {
	if t, ok := gradBufs.Get().(*gradBuf); ok && t.kern == g.kern && t.d == g.d && t.dv == g.dv {
		t.qp.key, t.pp.key, t.dyp.key = -1, -1, -1
		t.qp.pre, t.dyp.pre = nil, nil
		return t
	}
	return g.newBuf()
}

func (g *gradRun) newBuf() *gradBuf {
	return &gradBuf{
		tileBuf: g.newTileBuf(),
		dsp:     make([]float32, attnBQ*attnBK),
		dyp:     g.newAPack(g.dv),
		tr:      make([]float32, attnBK*attnBQ),
		dot:     make([]float32, attnBQ),
		accK:    make([]float32, g.d*attnBK),
		accV:    make([]float32, g.dv*attnBK),
	}
}

// probs computes the tile's scores and turns sc into the recomputed
// probabilities P = exp(s' - lse) (0 where masked or the row has no key)
// and, for out when wantDP, dsp into dP = dy·v. It reports whether any
// pair is admitted.
func (g *gradRun) probs(t *gradBuf, b, h, q0, q1, k0, k1 int, wantDP bool) bool {
	if !g.scores(t.tileBuf, b, h, q0, q1, k0, k1, g.wantRaw, !g.plain) {
		return false
	}
	rows, cols := q1-q0, k1-k0
	bh := b*g.nh + h
	w := padCols(cols)
	// Every row's exponentials in one call (expSumRows, its sums unused)
	// when no row is special.
	batch := rows > 1
	for i := range rows {
		lse := g.lse[g.ri(bh, g.nq, q0+i)]
		padRow(t.sc[i*attnBK:], cols, w)
		t.sub[i] = lse
		if lse == negInf32 || lse != lse {
			batch = false
		}
	}
	if !batch || !expSumRows(t.sc, attnBK, rows, w, t.sub[:rows], t.sum[:rows]) {
		for i := range rows {
			lse := t.sub[i]
			sc := t.sc[i*attnBK : i*attnBK+w]
			switch {
			case lse == negInf32:
				clear(sc) // a row with every key masked
			case lse != lse:
				maskedExp(sc, lse) // a NaN row: masked keys still get 0
			default:
				expSlice(sc, sc, lse) // a -inf score (masked) gives 0
			}
		}
	}
	if g.returns == "out" && wantDP {
		g.tileProduct(t.dsp, g.dy, g.dv, bh, q0, rows, g.vp.tile(bh, k0), cols, &t.dyp, 1)
	}
	return true
}

// rowSums returns the row sums D of the query tile [q0, q1) of bh, one
// per row: a slice of g.rowSum, or in the bnhd layout (where they are H
// apart) gathered into t.dot.
func (g *gradRun) rowSums(t *gradBuf, bh, q0, q1 int) []float32 {
	if !g.bnhd {
		return g.rowSum[bh*g.nq+q0 : bh*g.nq+q1]
	}
	for i := range q1 - q0 {
		t.dot[i] = g.rowSum[g.ri(bh, g.nq, q0+i)]
	}
	return t.dot[:q1-q0]
}

// gradScores writes into dsp the tile's dS', the gradient with respect to
// the modified scores (0 where masked), given the probabilities (sc) and
// dP (dsp, for out) that probs left and the row sums (rowSums); in a
// plain run it writes dS' into sc instead (see plainGradScores).
func (g *gradRun) gradScores(t *gradBuf, b, h, q0, q1, k0, k1 int) {
	cols := k1 - k0
	bh := b*g.nh + h
	dot := g.rowSums(t, bh, q0, q1)
	if g.plain {
		g.plainGradScores(t, bh, q0, q1, cols, dot)
		return
	}
	for i := range q1 - q0 {
		p := t.sc[i*attnBK : i*attnBK+cols]
		dsp := t.dsp[i*attnBK : i*attnBK+cols]
		keep := t.keep[i*attnBK : i*attnBK+cols]
		masked := g.lse[g.ri(bh, g.nq, q0+i)] == negInf32
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

// plainGradScores is gradScores for a plain run (see gradRun.plain):
// dS' = P·(dP - D) a row at a time, P = 0 standing for a masked pair.
// It writes dS' into sc over P, not into dsp: with no DScore dS' is dS,
// which the products read from sc, so plain runs skip applyDScore.
func (g *gradRun) plainGradScores(t *gradBuf, bh, q0, q1, cols int, dot []float32) {
	for i := range q1 - q0 {
		p := t.sc[i*attnBK : i*attnBK+cols]
		dsp := t.dsp[i*attnBK : i*attnBK+cols]
		lse, d := g.lse[g.ri(bh, g.nq, q0+i)], dot[i]
		switch {
		case lse == negInf32:
			clear(p) // a row with every key masked
		case lse-lse == 0 && d-d == 0:
			// dP is finite, so masked pairs (P = 0) give 0.
			dv := [1]float32{d}
			arithRowF32(Sub, dsp, dsp, 1, dv[:], 0)
			arithRowF32(Mul, p, p, 1, dsp, 1)
		default:
			// A row that overflowed to ±Inf or NaN: masked pairs must
			// still give 0, not 0·Inf.
			for j := range p {
				if p[j] != 0 {
					p[j] *= dsp[j] - d
				}
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

// localCaps returns a zeroed copy of each non-nil entry of caps, for one
// chunk of tasks to add into without sharing.
func localCaps(caps []*Tensor) []*Tensor {
	if caps == nil {
		return nil
	}
	out := make([]*Tensor, len(caps))
	for i, c := range caps {
		if c != nil {
			out[i] = New(F32, c.Shape...)
		}
	}
	return out
}

// addCapGrads adds the tile's pairs into the capture gradients local,
// from dS' (dsp, which gradScores left) and the raw scores.
func (g *gradRun) addCapGrads(t *gradBuf, local []*Tensor, b, h, q0, q1, k0, k1 int) {
	cols := k1 - k0
	for i := range q1 - q0 {
		dsp := t.dsp[i*attnBK : i*attnBK+cols]
		raw := t.raw[i*attnBK : i*attnBK+cols]
		keep := t.keep[i*attnBK : i*attnBK+cols]
		for j, d := range dsp {
			if keep[j] && d != 0 {
				g.spec.CapGrad(local, d, raw[j], b, h, q0+i, k0+j)
			}
		}
	}
}

// byQueries computes dq (into dq, when non-nil) and the capture gradients
// (into caps, when non-nil) in one pass whose tasks own query tiles and
// walk the key tiles.
func (g *gradRun) byQueries(dq []float32, caps []*Tensor) {
	qt := ceilDiv(g.nq, attnBQ)
	var ks rowSplit
	var kp tilePack
	defer kp.release()
	defer g.kp.release()
	defer g.vp.release()
	if dq != nil {
		ks = g.split(g.k.F, g.d)
	}
	pack := func(bh0, bh1 int) {
		g.packShared(bh0, bh1)
		if dq != nil {
			g.packRows(&kp, ks.clean, g.nk, g.d, bh0, bh1)
		}
	}
	acc := newCapAccums(caps)
	run := func(local []*Tensor, lo, hi int) {
		t := g.getBuf()
		defer gradBufs.Put(t)
		for task := lo; task < hi; task++ {
			bh, q0 := task/qt, task%qt*attnBQ
			b, h := bh/g.nh, bh%g.nh
			q1 := min(q0+attnBQ, g.nq)
			for k0 := 0; k0 < g.nk; k0 += attnBK {
				k1 := min(k0+attnBK, g.nk)
				cols := k1 - k0
				if !g.probs(t, b, h, q0, q1, k0, k1, true) {
					continue
				}
				g.gradScores(t, b, h, q0, q1, k0, k1)
				if local != nil {
					g.addCapGrads(t, local, b, h, q0, q1, k0, k1)
				}
				if dq == nil {
					continue
				}
				if !g.plain {
					g.applyDScore(t, t.sc, b, h, q0, q1, k0, k1)
				}
				g.addDQ(t, dq, ks, &kp, bh, q0, q1, k0, cols)
			}
			if dq != nil {
				g.scaleRows(dq, g.d, bh, g.nq, q0, q1, g.spec.Scale)
			}
		}
	}
	per := ceilDiv(g.nq, attnBQ)
	if acc == nil {
		g.inGroups(per, grainFor(2*attnBQ*g.nk*(g.d+g.dv)), pack, func(lo, hi int) { run(nil, lo, hi) })
		return
	}
	g.inGroupParts(per, len(acc.parts), pack, func(p, lo, hi int) { run(acc.part(p), lo, hi) })
	acc.sum()
}

// addDQ adds dS·k, the tile's dS (in sc) times the rows of the key tile
// of bh from k0, into the query tile's rows of dq (not yet scaled): ks
// is k split into finite rows and the rest, which are added pair by
// admitted pair, kp ks.clean packed as rows.
func (g *gradRun) addDQ(t *gradBuf, dq []float32, ks rowSplit, kp *tilePack, bh, q0, q1, k0, cols int) {
	rows := q1 - q0
	g.tileTimesRows(t.tileBuf, dq[g.ri(bh, g.nq, q0)*g.d:], g.d*g.step(), ks.clean, kp, g.d, bh, k0, rows, cols)
	for j := range cols {
		if ks.bad == nil || !ks.bad[g.ri(bh, g.nk, k0+j)] {
			continue
		}
		krow := g.k.F[g.ri(bh, g.nk, k0+j)*g.d:][:g.d]
		for i := range rows {
			if t.keep[i*attnBK+j] {
				o := g.ri(bh, g.nq, q0+i) * g.d
				addScaled(dq[o:o+g.d], t.sc[i*attnBK+j], krow)
			}
		}
	}
}

// byKeys computes dk and dv (each when non-nil) and the capture gradients
// (when caps is non-nil) in one pass whose tasks own key tiles and walk
// every query tile.
//
// With dq non-nil it computes dq too, in the same pass: a task then owns
// all the key tiles of one (b, h), so that it alone adds into that pair's
// rows of dq, in a fixed order, as the query pass would. Each (query,
// key) tile's scores, probabilities and dS are computed once instead of
// twice; the price is B·H tasks instead of B·H·Nk/attnBK, so AttentionGrad
// chooses it only when there are enough pairs for the cores.
func (g *gradRun) byKeys(dk, dv, dq []float32, caps []*Tensor) {
	kt := ceilDiv(g.nk, attnBK)
	var qs, dys, ks rowSplit
	var qp, dyp, kp tilePack
	defer func() {
		for _, p := range []*tilePack{&qp, &dyp, &kp, &g.kp, &g.vp} {
			p.release()
		}
	}()
	// Every task walks every query tile: q (for the scores) and dy (for
	// dP) are packed as A operands once per group, not once per task.
	var qA, dyA tilePack
	defer qA.release()
	defer dyA.release()
	if dk != nil {
		qs = g.split(g.q.F, g.d)
	}
	if dv != nil {
		dys = g.split(g.dy, g.dv)
	}
	if dq != nil {
		ks = g.split(g.k.F, g.d)
	}
	pack := func(bh0, bh1 int) {
		g.packShared(bh0, bh1)
		g.packQueryTiles(&qA, g.q.F, g.d, g.spec.Scale, bh0, bh1)
		if g.returns == "out" {
			g.packQueryTiles(&dyA, g.dy, g.dv, 1, bh0, bh1)
		}
		packW := g.packRows
		if g.transposedKeyGrads() {
			packW = g.packTransposedTiles
		}
		if dk != nil {
			packW(&qp, qs.clean, g.nq, g.d, bh0, bh1)
		}
		if dv != nil {
			packW(&dyp, dys.clean, g.nq, g.dv, bh0, bh1)
		}
		if dq != nil {
			g.packRows(&kp, ks.clean, g.nk, g.d, bh0, bh1)
		}
	}
	needDS := dk != nil || dq != nil || caps != nil
	// A task's key tiles: one, or with dq all of its (b, h)'s.
	perBH, tilesPer := kt, 1
	if dq != nil {
		perBH, tilesPer = 1, kt
	}
	acc := newCapAccums(caps)
	run := func(local []*Tensor, lo, hi int) {
		t := g.getBuf()
		defer gradBufs.Put(t)
		if g.kern != nil {
			t.qp.pre, t.dyp.pre = &qA, &dyA
		}
		for task := lo; task < hi; task++ {
			bh, kt0 := task/perBH, task%perBH
			b, h := bh/g.nh, bh%g.nh
			for kti := kt0; kti < kt0+tilesPer; kti++ {
				g.keyTile(t, local, dk, dv, dq, qs, dys, ks, &qp, &dyp, &kp, needDS, b, h, kti*attnBK)
			}
			if dq != nil {
				g.scaleRows(dq, g.d, bh, g.nq, 0, g.nq, g.spec.Scale)
			}
		}
	}
	if acc == nil {
		g.inGroups(perBH, grainFor(2*tilesPer*attnBK*g.nq*(g.d+g.dv)), pack, func(lo, hi int) { run(nil, lo, hi) })
		return
	}
	g.inGroupParts(perBH, len(acc.parts), pack, func(p, lo, hi int) { run(acc.part(p), lo, hi) })
	acc.sum()
}

// keyTile is byKeys's work on the key tile of (b, h) from k0: it walks
// the query tiles adding into that tile's rows of dk and dv, into local's
// capture gradients and, when dq is non-nil, into dq's rows of (b, h).
func (g *gradRun) keyTile(t *gradBuf, local []*Tensor, dk, dv, dq []float32, qs, dys, ks rowSplit, qp, dyp, kp *tilePack, needDS bool, b, h, k0 int) {
	bh := b*g.nh + h
	k1 := min(k0+attnBK, g.nk)
	cols := k1 - k0
	// The key tile's rows of dk and dv, and their row strides.
	var dkt, dvt []float32
	ldk, ldv := g.d*g.step(), g.dv*g.step()
	if dk != nil {
		dkt = dk[g.ri(bh, g.nk, k0)*g.d:]
	}
	if dv != nil {
		dvt = dv[g.ri(bh, g.nk, k0)*g.dv:]
	}
	if g.transposedKeyGrads() {
		clear(t.accK)
		clear(t.accV)
		defer func() {
			if dk != nil {
				addTransposedTile(dkt, ldk, t.accK, g.d, cols)
			}
			if dv != nil {
				addTransposedTile(dvt, ldv, t.accV, g.dv, cols)
			}
			if dk != nil {
				g.scaleRows(dk, g.d, bh, g.nk, k0, k1, g.spec.Scale)
			}
		}()
	} else if dk != nil {
		defer g.scaleRows(dk, g.d, bh, g.nk, k0, k1, g.spec.Scale)
	}
	for q0 := 0; q0 < g.nq; q0 += attnBQ {
		q1 := min(q0+attnBQ, g.nq)
		if !g.probs(t, b, h, q0, q1, k0, k1, needDS) {
			continue
		}
		if dv != nil {
			// dv_k += Σ_i P_ik dy_i, before sc turns into dS.
			g.addTransposed(t, dvt, ldv, t.accV, g.dv, dys, dyp, g.dy, bh, q0, q1, cols)
		}
		if !needDS {
			continue
		}
		g.gradScores(t, b, h, q0, q1, k0, k1)
		if local != nil {
			g.addCapGrads(t, local, b, h, q0, q1, k0, k1)
		}
		if dk == nil && dq == nil {
			continue
		}
		if !g.plain {
			g.applyDScore(t, t.sc, b, h, q0, q1, k0, k1)
		}
		if dk != nil {
			// dk_k += Σ_i dS_ik q_i.
			g.addTransposed(t, dkt, ldk, t.accK, g.d, qs, qp, g.q.F, bh, q0, q1, cols)
		}
		if dq != nil {
			// dq_i += Σ_k dS_ik k_k.
			g.addDQ(t, dq, ks, kp, bh, q0, q1, k0, cols)
		}
	}
}

// transposedKeyGrads reports whether the key pass computes dkᵀ = qᵀ·dS
// and dvᵀ = dyᵀ·P, reading the tile unpacked as B (runB64), instead of
// dk = dSᵀ·q and dv = Pᵀ·dy, which pack the tile transposed for every
// pair of tiles; q and dy are then packed transposed once per group.
//
// Short key tiles do better the other way: the transposed accumulators
// are sized for attnBK keys (cleared, filled through a scratch tile per
// short sliver, and added back a scalar at a time), while packing a
// short tile transposed is a few short copies, and dSᵀ·q then runs the
// kernel of the tile's height straight into dk's rows. At ten keys
// (a pointer-sort model's) the key pass ran 1.3× faster (min of runs).
func (g *gradRun) transposedKeyGrads() bool {
	return g.kern != nil && g.kern.runB64 != nil && g.nk > transposedMinKeys
}

// transposedMinKeys is the most keys for which the key pass computes dk
// and dv directly (see transposedKeyGrads).
var transposedMinKeys = 32

// addTransposedTile adds accᵀ (acc: [width × attnBK]) into the cols rows
// of dst (row stride ld).
func addTransposedTile(dst []float32, ld int, acc []float32, width, cols int) {
	for c := range width {
		a := acc[c*attnBK : c*attnBK+cols]
		for j, v := range a {
			dst[j*ld+c] += v
		}
	}
}

// addTransposed adds scᵀ·w into dst, the [cols × width] rows of the key
// tile (row stride ld): w's rows are those of the query tile [q0, q1) of bh (q for dk, dy
// for dv), ws their split into finite rows and the rest, which are added
// pair by admitted pair, wp ws.clean packed (with a micro-kernel). With
// transposedKeyGrads the finite rows' part goes into acc instead, as
// wᵀ·sc ([width × attnBK]), wp holding ws.clean's tiles transposed.
func (g *gradRun) addTransposed(t *gradBuf, dst []float32, ld int, acc []float32, width int, ws rowSplit, wp *tilePack, w []float32, bh, q0, q1, cols int) {
	rows := q1 - q0
	if k := g.kern; g.transposedKeyGrads() {
		if width > 0 {
			macroKernel(k, &gemmOperand{data: acc, off: zeroOff, rs: attnBK, cs: 1}, 0, 0, 0, wp.tile(bh, q0), gemmForm{ldb: attnBK}, t.sc, t.pp.tile, width, cols, rows, 0, ceilDiv(cols, k.nr))
		}
	} else if k != nil {
		if width > 0 {
			// The micro-kernel's A operand is scᵀ, read through strides.
			packA(t.pp.data, &gemmOperand{data: t.sc, off: zeroOff, rs: 1, cs: attnBK}, 0, 0, 0, cols, rows, k.mr)
			macroKernel(k, &gemmOperand{data: dst, off: zeroOff, rs: ld, cs: 1}, 0, 0, 0, t.pp.data, gemmForm{}, wp.tile(bh, q0), t.pp.tile, cols, width, rows, 0, ceilDiv(width, k.nr))
		}
	} else {
		for i := range rows {
			for j, x := range t.sc[i*attnBK : i*attnBK+cols] {
				t.tr[j*attnBQ+i] = x
			}
		}
		matAdd(dst, ld, t.tr, attnBQ, ws.clean[g.ri(bh, g.nq, q0)*width:], width*g.step(), cols, rows, width)
	}
	for i := range rows {
		if ws.bad == nil || !ws.bad[g.ri(bh, g.nq, q0+i)] {
			continue
		}
		row := w[g.ri(bh, g.nq, q0+i)*width:][:width]
		for j := range cols {
			if t.keep[i*attnBK+j] {
				addScaled(dst[j*ld:j*ld+width], t.sc[i*attnBK+j], row)
			}
		}
	}
}
