package runtime_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	goruntime "runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/attnc/attnc/ir"
	"github.com/attnc/attnc/ir/eval"
	rt "github.com/attnc/attnc/runtime"
)

// Sizes of the attention tests: several query and key tiles, the last
// ones partial.
const (
	aB, aH, aD, aDv = 2, 2, 8, 6
	aWindow         = 20 // sliding window, the symbol W
	aBuckets        = 16 // relative-position buckets
)

// An attnCase is a mask and score written three ways: as IR expressions
// for the reference interpreter, as float64 Go for the naive loop, and as
// the runtime's closures (built from the captured tensors).
type attnCase struct {
	name   string
	nq, nk int
	mask   *ir.Expr
	score  *ir.Expr
	// caps returns the captured tensors.
	caps func(r *rand.Rand) []*rt.Tensor
	// goMask and goScore are the float64 definitions for the naive loop.
	goMask  func(caps []*rt.Tensor, b, h, q, k int) bool
	goScore func(caps []*rt.Tensor, s float64, b, h, q, k int) float64
	// spec returns the runtime closures: Mask, Score, DScore, CapGrad.
	spec func(caps []*rt.Tensor) *rt.AttnSpec
	// tile, when set, classifies tiles as the sparsity pass would.
	tile func(b, h, q0, q1, k0, k1 int) rt.TileKind
	// rows, when non-nil, is the mask as AttnSpec.Rows, set with tile.
	rows func(b, h, q int) rt.KeySpans
	// maskRow, when non-nil, is the mask as AttnSpec.MaskRow, set with
	// tile in place of Mask, which then panics: the kernels must use it.
	maskRow func(caps []*rt.Tensor) func(b, h, q, k0 int, keep []bool) bool
	// gradCap is the index of the float capture to differentiate, or -1.
	gradCap int
}

func v(n string) *ir.Expr { return ir.Var(n) }

var (
	causalExpr = ir.Bin(ir.ELe, v("k"), v("q"))
	windowExpr = ir.Bin(ir.EAnd, causalExpr, ir.Bin(ir.ELt, ir.Bin(ir.ESub, v("q"), v("k")), v("W")))
	// relExpr is s + $0[h, clamp(q - k, 0, aBuckets-1)].
	relExpr = ir.Bin(ir.EAdd, v("s"), ir.Capture(0, v("h"), ir.Call("clamp", ir.Bin(ir.ESub, v("q"), v("k")), ir.Int(0), ir.Int(aBuckets-1))))
	// capRelExpr is 2·tanh((s + $0[h, clamp(q - k, 0, aBuckets-1)]) / 2):
	// the capture inside a non-linearity.
	capRelExpr = ir.Bin(ir.EMul, ir.Float(2), ir.Call("tanh", ir.Bin(ir.EDiv, relExpr, ir.Float(2))))
)

func bucket(q, k int) int { return min(max(q-k, 0), aBuckets-1) }

func causal(_ []*rt.Tensor, b, h, q, k int) bool { return k <= q }
func window(_ []*rt.Tensor, b, h, q, k int) bool { return k <= q && q-k < aWindow }

func causalRows(b, h, q int) rt.KeySpans { return rt.SpanBelow(q + 1) }
func windowRows(b, h, q int) rt.KeySpans {
	return rt.SpansAnd(rt.SpanBelow(q+1), rt.SpanFrom(q-aWindow+1))
}

// sinkExpr is a sliding window that also admits the first aSink keys:
// two spans per row.
const aSink = 4

var sinkExpr = ir.Bin(ir.EAnd, causalExpr, ir.Bin(ir.EOr, ir.Bin(ir.ELt, v("k"), ir.Int(aSink)), ir.Bin(ir.ELt, ir.Bin(ir.ESub, v("q"), v("k")), v("W"))))

func sink(_ []*rt.Tensor, b, h, q, k int) bool { return k <= q && (k < aSink || q-k < aWindow) }

func causalTile(b, h, q0, q1, k0, k1 int) rt.TileKind {
	switch {
	case k0 > q1-1:
		return rt.TileEmpty
	case k1-1 <= q0:
		return rt.TileFull
	}
	return rt.TilePartial
}

func windowTile(b, h, q0, q1, k0, k1 int) rt.TileKind {
	switch {
	case k0 > q1-1 || q0-(k1-1) >= aWindow:
		return rt.TileEmpty
	case k1-1 <= q0 && (q1-1)-k0 < aWindow:
		return rt.TileFull
	}
	return rt.TilePartial
}

func relBias(r *rand.Rand) []*rt.Tensor { return []*rt.Tensor{randF32(r, aH, aBuckets)} }

func relSpec(caps []*rt.Tensor) *rt.AttnSpec {
	bias := caps[0]
	return &rt.AttnSpec{
		Score: func(s float32, b, h, q, k int) float32 { return s + bias.F[h*aBuckets+bucket(q, k)] },
		CapGrad: func(g []*rt.Tensor, dsp, s float32, b, h, q, k int) {
			g[0].F[h*aBuckets+bucket(q, k)] += dsp
		},
	}
}

func maskSpec(m func(caps []*rt.Tensor, b, h, q, k int) bool) func(caps []*rt.Tensor) *rt.AttnSpec {
	return func(caps []*rt.Tensor) *rt.AttnSpec {
		if m == nil {
			return &rt.AttnSpec{}
		}
		return &rt.AttnSpec{Mask: func(b, h, q, k int) bool { return m(caps, b, h, q, k) }}
	}
}

// docIDs returns non-decreasing document ids per batch row.
func docIDs(r *rand.Rand, n int) *rt.Tensor {
	t := rt.New(rt.I32, aB, n)
	for b := range aB {
		id := int32(0)
		for i := range n {
			if i > 0 && r.IntN(12) == 0 {
				id++
			}
			t.I[b*n+i] = id
		}
	}
	return t
}

// The document mask of 80 positions: causal within a document.
var docExpr = ir.Bin(ir.EAnd, causalExpr, ir.Bin(ir.EEq, ir.Capture(0, v("b"), v("q")), ir.Capture(0, v("b"), v("k"))))

func docCaps(r *rand.Rand) []*rt.Tensor { return []*rt.Tensor{docIDs(r, 80)} }

func docMask(c []*rt.Tensor, b, h, q, k int) bool {
	return k <= q && c[0].I[b*80+q] == c[0].I[b*80+k]
}

var attnCases = []attnCase{
	{name: "full", nq: 70, nk: 70, spec: maskSpec(nil)},
	{name: "causal", nq: 90, nk: 90, mask: causalExpr, goMask: causal, spec: maskSpec(causal)},
	{name: "causal with tiles", nq: 90, nk: 90, mask: causalExpr, goMask: causal, spec: maskSpec(causal), tile: causalTile},
	{name: "causal with rows", nq: 90, nk: 90, mask: causalExpr, goMask: causal, spec: maskSpec(causal), rows: causalRows},
	{name: "causal with tiles and rows", nq: 130, nk: 130, mask: causalExpr, goMask: causal, spec: maskSpec(causal), tile: causalTile, rows: causalRows},
	{name: "sliding window", nq: 100, nk: 100, mask: windowExpr, goMask: window, spec: maskSpec(window)},
	{name: "sliding window with tiles", nq: 150, nk: 150, mask: windowExpr, goMask: window, spec: maskSpec(window), tile: windowTile},
	{name: "sliding window with tiles and rows", nq: 150, nk: 150, mask: windowExpr, goMask: window, spec: maskSpec(window), tile: windowTile, rows: windowRows},
	{name: "sink and window with rows", nq: 150, nk: 150, mask: sinkExpr, goMask: sink, spec: maskSpec(sink),
		rows: func(b, h, q int) rt.KeySpans {
			return rt.SpansAnd(rt.SpanBelow(q+1), rt.SpansOr(rt.SpanBelow(aSink), rt.SpanFrom(q-aWindow+1)))
		}},
	{name: "not the diagonal, with rows", nq: 70, nk: 70, mask: ir.Bin(ir.ENe, v("k"), v("q")),
		goMask: func(_ []*rt.Tensor, b, h, q, k int) bool { return k != q },
		spec:   maskSpec(func(_ []*rt.Tensor, b, h, q, k int) bool { return k != q }),
		rows:   func(b, h, q int) rt.KeySpans { return rt.SpanNot(q) }},
	{name: "cross attention", nq: 40, nk: 100, spec: maskSpec(nil)},
	{name: "cross attention, bottom-right causal", nq: 40, nk: 100,
		mask:   ir.Bin(ir.ELe, v("k"), ir.Bin(ir.EAdd, v("q"), ir.Int(60))),
		goMask: func(_ []*rt.Tensor, b, h, q, k int) bool { return k <= q+60 },
		spec:   maskSpec(func(_ []*rt.Tensor, b, h, q, k int) bool { return k <= q+60 })},
	// Row q = 0 has no key; so do the rows of the second batch's heads
	// past q = 3 in the mask below.
	{name: "fully masked rows", nq: 70, nk: 70,
		mask: ir.Bin(ir.EAnd, ir.Bin(ir.ELt, v("k"), v("q")), ir.Bin(ir.EOr, ir.Bin(ir.EEq, v("b"), ir.Int(0)), ir.Bin(ir.ELt, v("q"), ir.Int(4)))),
		goMask: func(_ []*rt.Tensor, b, h, q, k int) bool {
			return k < q && (b == 0 || q < 4)
		},
		spec: maskSpec(func(_ []*rt.Tensor, b, h, q, k int) bool { return k < q && (b == 0 || q < 4) }),
		rows: func(b, h, q int) rt.KeySpans { return rt.SpansAnd(rt.SpanBelow(q), rt.SpanIf(b == 0 || q < 4)) }},
	{name: "document mask", nq: 80, nk: 80,
		mask: docExpr, caps: docCaps, goMask: docMask, spec: maskSpec(docMask), gradCap: -1},
	{name: "document mask by rows", nq: 80, nk: 80,
		mask: docExpr, caps: docCaps, goMask: docMask, spec: maskSpec(docMask),
		maskRow: func(c []*rt.Tensor) func(b, h, q, k0 int, keep []bool) bool {
			return func(b, h, q, k0 int, keep []bool) bool {
				doc, any := c[0].I[b*80+q], false
				for j := range keep {
					k := k0 + j
					keep[j] = k <= q && c[0].I[b*80+k] == doc
					any = any || keep[j]
				}
				return any
			}
		}, gradCap: -1},
	{name: "relative bias", nq: 70, nk: 70, score: relExpr, caps: relBias,
		goScore: func(c []*rt.Tensor, s float64, b, h, q, k int) float64 {
			return s + float64(c[0].F[h*aBuckets+bucket(q, k)])
		},
		spec: relSpec},
	{name: "relative bias, causal with tiles", nq: 100, nk: 100, mask: causalExpr, goMask: causal, score: relExpr, caps: relBias,
		goScore: func(c []*rt.Tensor, s float64, b, h, q, k int) float64 {
			return s + float64(c[0].F[h*aBuckets+bucket(q, k)])
		},
		spec: func(caps []*rt.Tensor) *rt.AttnSpec {
			s := relSpec(caps)
			s.Mask = func(b, h, q, k int) bool { return k <= q }
			return s
		},
		tile: causalTile, rows: causalRows},
	{name: "softcap", nq: 70, nk: 70,
		score: ir.Bin(ir.EMul, ir.Float(2), ir.Call("tanh", ir.Bin(ir.EDiv, v("s"), ir.Float(2)))),
		goScore: func(_ []*rt.Tensor, s float64, b, h, q, k int) float64 {
			return 2 * math.Tanh(s/2)
		},
		spec: func([]*rt.Tensor) *rt.AttnSpec {
			return &rt.AttnSpec{
				Score: func(s float32, b, h, q, k int) float32 { return float32(2 * math.Tanh(float64(s)/2)) },
				DScore: func(s float32, b, h, q, k int) float32 {
					t := math.Tanh(float64(s) / 2)
					return float32(1 - t*t)
				},
			}
		}},
	{name: "softcapped relative bias, sliding window", nq: 100, nk: 100, mask: windowExpr, goMask: window, score: capRelExpr, caps: relBias,
		goScore: func(c []*rt.Tensor, s float64, b, h, q, k int) float64 {
			return 2 * math.Tanh((s+float64(c[0].F[h*aBuckets+bucket(q, k)]))/2)
		},
		spec: func(caps []*rt.Tensor) *rt.AttnSpec {
			bias := caps[0]
			th := func(s float32, h, q, k int) float64 {
				return math.Tanh((float64(s) + float64(bias.F[h*aBuckets+bucket(q, k)])) / 2)
			}
			return &rt.AttnSpec{
				Mask:   func(b, h, q, k int) bool { return k <= q && q-k < aWindow },
				Score:  func(s float32, b, h, q, k int) float32 { return float32(2 * th(s, h, q, k)) },
				DScore: func(s float32, b, h, q, k int) float32 { t := th(s, h, q, k); return float32(1 - t*t) },
				CapGrad: func(g []*rt.Tensor, dsp, s float32, b, h, q, k int) {
					t := th(s, h, q, k)
					g[0].F[h*aBuckets+bucket(q, k)] += dsp * float32(1-t*t)
				},
			}
		},
		tile: windowTile, rows: windowRows},
}

// attnInputs returns the random operands of a case.
type attnInputs struct {
	q, k, v *rt.Tensor
	caps    []*rt.Tensor
	scale   float64
}

func newAttnInputs(tc attnCase, seed uint64) attnInputs {
	r := newRand(seed)
	in := attnInputs{
		q:     randF32(r, aB, aH, tc.nq, aD),
		k:     randF32(r, aB, aH, tc.nk, aD),
		v:     randF32(r, aB, aH, tc.nk, aDv),
		scale: 1 / math.Sqrt(aD),
	}
	// Larger scores make the softmax peakier, a harder test.
	for i := range in.q.F {
		in.q.F[i] *= 2
	}
	if tc.caps != nil {
		in.caps = tc.caps(r)
	}
	return in
}

// spec returns the case's runtime spec for returns.
func (tc attnCase) runtimeSpec(in attnInputs, returns string, tiles bool) *rt.AttnSpec {
	s := tc.spec(in.caps)
	s.Scale = float32(in.scale)
	s.Returns = returns
	if tiles {
		s.Tile, s.Rows = tc.tile, tc.rows
		if tc.maskRow != nil {
			s.MaskRow = tc.maskRow(in.caps)
			s.Mask = func(b, h, q, k int) bool { panic("Mask called although MaskRow is set") }
		}
	}
	return s
}

// naiveAttention computes every result of attention in float64 with the
// scores materialised: out, probs, logprobs and lse.
func naiveAttention(tc attnCase, in attnInputs) (out, probs, logprobs, lse *eval.Tensor) {
	out = eval.NewTensor(ir.F32, aB, aH, tc.nq, aDv)
	probs = eval.NewTensor(ir.F32, aB, aH, tc.nq, tc.nk)
	logprobs = eval.NewTensor(ir.F32, aB, aH, tc.nq, tc.nk)
	lse = eval.NewTensor(ir.F32, aB, aH, tc.nq)
	at := func(t *rt.Tensor, b, h, i, j, n, d int) float64 { return float64(t.F[((b*aH+h)*n+i)*d+j]) }
	for b := range aB {
		for h := range aH {
			for i := range tc.nq {
				scores := make([]float64, tc.nk)
				mx := math.Inf(-1)
				for j := range tc.nk {
					if tc.goMask != nil && !tc.goMask(in.caps, b, h, i, j) {
						scores[j] = math.Inf(-1)
						continue
					}
					s := 0.0
					for d := range aD {
						s += at(in.q, b, h, i, d, tc.nq, aD) * at(in.k, b, h, j, d, tc.nk, aD)
					}
					s *= in.scale
					if tc.goScore != nil {
						s = tc.goScore(in.caps, s, b, h, i, j)
					}
					scores[j] = s
					mx = math.Max(mx, s)
				}
				if math.IsInf(mx, -1) {
					lse.Set(math.Inf(-1), b, h, i)
					for j := range tc.nk {
						logprobs.Set(math.Inf(-1), b, h, i, j)
					}
					continue
				}
				z := 0.0
				for _, s := range scores {
					z += math.Exp(s - mx)
				}
				l := mx + math.Log(z)
				lse.Set(l, b, h, i)
				for j, s := range scores {
					p := math.Exp(s - l)
					probs.Set(p, b, h, i, j)
					logprobs.Set(s-l, b, h, i, j)
					for e := range aDv {
						out.Set(out.At(b, h, i, e)+p*at(in.v, b, h, j, e, tc.nk, aDv), b, h, i, e)
					}
				}
			}
		}
	}
	return out, probs, logprobs, lse
}

func TestAttentionMatchesNaive(t *testing.T) {
	for ci, tc := range attnCases {
		t.Run(tc.name, func(t *testing.T) {
			in := newAttnInputs(tc, uint64(ci)+100)
			wantOut, wantProbs, wantLogprobs, wantLSE := naiveAttention(tc, in)
			if tc.goMask != nil && !hasInf(wantLogprobs.Data) {
				t.Fatalf("the mask hides no key; the case tests nothing")
			}
			for _, tiles := range []bool{false, true} {
				if tiles && tc.tile == nil && tc.rows == nil {
					continue
				}
				run := func(returns string, v *rt.Tensor) *rt.Tensor {
					return rt.Attention(in.q, in.k, v, tc.runtimeSpec(in, returns, tiles))
				}
				checkRel(t, "out", run("out", in.v), wantOut, tol)
				checkRel(t, "default returns", run("", in.v), wantOut, tol)
				checkRel(t, "probs", run("probs", nil), wantProbs, tol)
				checkRel(t, "logprobs", run("logprobs", nil), wantLogprobs, tol)
				checkRel(t, "lse", run("lse", nil), wantLSE, tol)
			}
		})
	}
}

// TestAttentionFullyMaskedRow checks the op table's promise exactly:
// zeros for out and probs, -Inf for logprobs and lse.
func TestAttentionFullyMaskedRow(t *testing.T) {
	q, k, v := randF32(newRand(1), 1, 1, 3, 4), randF32(newRand(2), 1, 1, 5, 4), randF32(newRand(3), 1, 1, 5, 2)
	mask := func(b, h, q, k int) bool { return q != 1 }
	spec := func(r string) *rt.AttnSpec { return &rt.AttnSpec{Scale: 0.5, Returns: r, Mask: mask} }
	out := rt.Attention(q, k, v, spec("out"))
	probs := rt.Attention(q, k, nil, spec("probs"))
	logprobs := rt.Attention(q, k, nil, spec("logprobs"))
	lse := rt.Attention(q, k, nil, spec("lse"))
	for e := range 2 {
		if x := out.F[2+e]; x != 0 {
			t.Errorf("out[0, 0, 1, %d] = %v, want 0", e, x)
		}
	}
	for j := range 5 {
		if p, lp := probs.F[5+j], logprobs.F[5+j]; p != 0 || !math.IsInf(float64(lp), -1) {
			t.Errorf("probs, logprobs[0, 0, 1, %d] = %v, %v, want 0, -Inf", j, p, lp)
		}
	}
	if !math.IsInf(float64(lse.F[1]), -1) {
		t.Errorf("lse[0, 0, 1] = %v, want -Inf", lse.F[1])
	}
	// The gradient of a fully masked row is zero.
	dy := randF32(newRand(4), 1, 1, 3, 2)
	dq := rt.AttentionGrad(q, k, v, lse, rowSums("out", out, dy), dy, spec("out"), rt.AttnGradWant{Q: true}).Q
	for d := range 4 {
		if x := dq.F[4+d]; x != 0 {
			t.Errorf("dq[0, 0, 1, %d] = %v, want 0", d, x)
		}
	}
}

func hasInf(xs []float64) bool {
	for _, x := range xs {
		if math.IsInf(x, -1) {
			return true
		}
	}
	return false
}

// rowSums computes in float64 the row sums D that autodiff gives
// attention_grad from the forward result y and dy: Σ_j y_j dy_j over the
// pairs with y_j ≠ 0 for out and probs (a masked key's dy never counts),
// Σ_j dy_j over the keys whose log-probability is not -Inf for logprobs.
func rowSums(returns string, y, dy *rt.Tensor) *rt.Tensor {
	n := y.Shape[3]
	rs := rt.New(rt.F32, y.Shape[:3]...)
	for row := range rs.F {
		sum := 0.0
		for j := range n {
			yv, d := float64(y.F[row*n+j]), float64(dy.F[row*n+j])
			switch {
			case returns == "logprobs" && !math.IsInf(yv, -1):
				sum += d
			case returns != "logprobs" && yv != 0:
				sum += yv * d
			}
		}
		rs.F[row] = float32(sum)
	}
	return rs
}

// refAttentionGrad evaluates attention_grad of the case with respect to
// the operands numbered wrt with the reference interpreter, the lse coming
// from its own attention op and the row sums given.
func refAttentionGrad(t *testing.T, tc attnCase, in attnInputs, returns string, wrt []int64, rs, dy *rt.Tensor) []*eval.Tensor {
	t.Helper()
	m := newRef(t)
	m.b.AddSym("W")
	m.syms = map[string]int64{"W": aWindow}
	q, k := m.in(in.q), m.in(in.k)
	args := []*ir.Instr{q, k}
	if returns == "out" {
		args = append(args, m.in(in.v))
	}
	for _, c := range in.caps {
		args = append(args, m.in(c))
	}
	attrs := func(r string) ir.Attrs {
		a := ir.Attrs{"scale": ir.FloatAttr(in.scale), "returns": ir.WordAttr(r)}
		if tc.mask != nil {
			a["mask"] = ir.ExprAttr(tc.mask)
		}
		if tc.score != nil {
			a["score"] = ir.ExprAttr(tc.score)
		}
		return a
	}
	lseArgs := append([]*ir.Instr{q, k}, args[len(args)-len(in.caps):]...)
	lse := m.b.Must(ir.OpAttention, attrs("lse"), lseArgs...)
	a := attrs(returns)
	a["wrt"] = ir.IntsAttr(wrt...)
	g := m.b.Must(ir.OpAttentionGrad, a, append(args, lse, m.in(rs), m.in(dy))...)
	return m.run(g).Tuple
}

// checkAttentionGrad runs AttentionGrad on the case for returns, asking
// for every gradient it has and then for each on its own (so that each
// pass runs alone and the capture gradient comes from either pass), and
// compares each result with the reference.
func checkAttentionGrad(t *testing.T, what string, tc attnCase, in attnInputs, returns string, dy *rt.Tensor, tiles bool) {
	t.Helper()
	spec := tc.runtimeSpec(in, returns, tiles)
	var v *rt.Tensor
	if returns == "out" {
		v = in.v
	}
	y, lse := rt.AttentionWithLSE(in.q, in.k, v, spec)
	rs := rowSums(returns, y, dy)
	wrt := []int64{0, 1}
	firstCap := 2
	if returns == "out" {
		wrt = append(wrt, 2)
		firstCap = 3
	}
	hasCap := tc.gradCap >= 0 && len(in.caps) > 0
	if hasCap {
		wrt = append(wrt, int64(firstCap+tc.gradCap))
	}
	want := refAttentionGrad(t, tc, in, returns, wrt, rs, dy)
	run := func(w rt.AttnGradWant) []*rt.Tensor {
		if hasCap {
			w.Caps = make([]*rt.Tensor, len(in.caps))
			w.Caps[tc.gradCap] = rt.New(rt.F32, in.caps[tc.gradCap].Shape...)
		}
		g := rt.AttentionGrad(in.q, in.k, v, lse, rs, dy, spec, w)
		out := []*rt.Tensor{g.Q, g.K}
		if returns == "out" {
			out = append(out, g.V)
		}
		if hasCap {
			out = append(out, g.Caps[tc.gradCap])
		}
		return out
	}
	all := run(rt.AttnGradWant{Q: true, K: true, V: returns == "out"})
	for i, w := range want {
		checkRel(t, fmt.Sprintf("%s wrt %d of %v", what, wrt[i], wrt), all[i], w, tol)
	}
	for i, one := range []rt.AttnGradWant{{Q: true}, {K: true}, {V: true}} {
		if i == 2 && returns != "out" {
			continue
		}
		got := run(one)
		checkRel(t, fmt.Sprintf("%s wrt %d alone", what, i), got[i], want[i], tol)
		if hasCap {
			checkRel(t, fmt.Sprintf("%s capture with wrt %d", what, i), got[len(got)-1], want[len(want)-1], tol)
		}
	}
}

func TestAttentionGradMatchesReference(t *testing.T) {
	// Both ways of computing dq: its own pass over the query tiles, and
	// within the key pass (one task per (b, h)).
	for _, onePass := range []bool{false, true} {
		n := 1 << 30
		if onePass {
			n = 0
		}
		old := rt.SetOnePassPairsPerCore(n)
		t.Run(fmt.Sprintf("one pass %v", onePass), testAttentionGradMatchesReference)
		rt.SetOnePassPairsPerCore(old)
	}
}

func testAttentionGradMatchesReference(t *testing.T) {
	for ci, tc := range attnCases {
		t.Run(tc.name, func(t *testing.T) {
			in := newAttnInputs(tc, uint64(ci)+200)
			r := newRand(uint64(ci) + 300)
			for _, returns := range []string{"out", "probs", "logprobs"} {
				cols := aDv
				if returns != "out" {
					cols = tc.nk
				}
				dy := randF32(r, aB, aH, tc.nq, cols)
				for _, tiles := range []bool{false, true} {
					if tiles && tc.tile == nil && tc.rows == nil {
						continue
					}
					checkAttentionGrad(t, fmt.Sprintf("%s (tiles %v)", returns, tiles), tc, in, returns, dy, tiles)
				}
			}
		})
	}
}

// TestAttentionGradDeterministic: dq, dk, dv and a capture gradient come
// out bit for bit the same from run to run at a fixed GOMAXPROCS, though
// many goroutines share the work.
// TestAttentionOnOneCore runs every case on one core and no group
// budget, where the passes pack their shared operands (k, v, …) for a few
// (b, h) pairs at a time,
// so that the longer cases run in several groups, against the reference.
func TestAttentionOnOneCore(t *testing.T) {
	defer goruntime.GOMAXPROCS(goruntime.GOMAXPROCS(1))
	defer rt.SetGroupBytes(rt.SetGroupBytes(0))
	for ci, tc := range attnCases {
		t.Run(tc.name, func(t *testing.T) {
			in := newAttnInputs(tc, uint64(ci)+400)
			wantOut, _, _, _ := naiveAttention(tc, in)
			checkRel(t, "out", rt.Attention(in.q, in.k, in.v, tc.runtimeSpec(in, "out", true)), wantOut, tol)
			dy := randF32(newRand(uint64(ci)+500), aB, aH, tc.nq, aDv)
			checkAttentionGrad(t, "out", tc, in, "out", dy, true)
		})
	}
}

func TestAttentionGradDeterministic(t *testing.T) {
	tc := attnCases[len(attnCases)-1] // softcapped relative bias, with a capture gradient
	in := newAttnInputs(tc, 9)
	spec := tc.runtimeSpec(in, "out", true)
	y, lse := rt.AttentionWithLSE(in.q, in.k, in.v, spec)
	dy := randF32(newRand(10), aB, aH, tc.nq, aDv)
	rs := rowSums("out", y, dy)
	run := func() rt.AttnGrads {
		return rt.AttentionGrad(in.q, in.k, in.v, lse, rs, dy, spec, rt.AttnGradWant{Q: true, K: true, V: true,
			Caps: []*rt.Tensor{rt.New(rt.F32, in.caps[0].Shape...)}})
	}
	first := run()
	for range 5 {
		again := run()
		for i, pair := range [][2]*rt.Tensor{{first.Q, again.Q}, {first.K, again.K}, {first.V, again.V}, {first.Caps[0], again.Caps[0]}} {
			if !slices.Equal(pair[0].F, pair[1].F) {
				t.Fatalf("result %d differs between two runs", i)
			}
		}
	}
}

func TestAttentionMisuse(t *testing.T) {
	q, k, v := rt.New(rt.F32, 1, 1, 2, 4), rt.New(rt.F32, 1, 1, 3, 5), rt.New(rt.F32, 1, 1, 3, 2)
	mustPanic(t, "matching B, H, D", func() { rt.Attention(q, k, v, &rt.AttnSpec{}) })
	mustPanic(t, "unknown Returns", func() { rt.Attention(q, q, q, &rt.AttnSpec{Returns: "values"}) })
	mustPanic(t, "needs v", func() { rt.Attention(q, q, nil, &rt.AttnSpec{}) })
	mustPanic(t, "takes no v", func() { rt.Attention(q, q, q, &rt.AttnSpec{Returns: "probs"}) })
	lse := rt.New(rt.F32, 1, 1, 2)
	all := rt.AttnGradWant{Q: true, K: true, V: true}
	mustPanic(t, "V needs Returns out", func() {
		rt.AttentionGrad(q, q, nil, lse, lse, rt.New(rt.F32, 1, 1, 2, 2), &rt.AttnSpec{Returns: "probs"}, all)
	})
	mustPanic(t, "dy", func() { rt.AttentionGrad(q, q, q, lse, lse, lse, &rt.AttnSpec{}, all) })
	mustPanic(t, "rowSum", func() { rt.AttentionGrad(q, q, q, lse, q, q, &rt.AttnSpec{}, all) })
	mustPanic(t, "CapGrad", func() {
		rt.AttentionGrad(q, q, q, lse, lse, q, &rt.AttnSpec{}, rt.AttnGradWant{Caps: []*rt.Tensor{rt.New(rt.F32, 2)}})
	})
	mustPanic(t, "Returns lse", func() { rt.AttentionWithLSE(q, q, nil, &rt.AttnSpec{Returns: "lse"}) })
}

// TestAttentionBlockMaskByTile gives a run-time block mask through Tile
// alone (no Mask): the tiles it calls empty are skipped, every other pair
// is admitted. The naive loop masks the pairs of the tiles Tile saw.
func TestAttentionBlockMaskByTile(t *testing.T) {
	in := newAttnInputs(attnCase{nq: 150, nk: 200}, 7)
	type tile struct{ q0, q1, k0, k1 int }
	var mu sync.Mutex
	var empty []tile
	spec := func(returns string) *rt.AttnSpec {
		return &rt.AttnSpec{Scale: float32(in.scale), Returns: returns, Tile: func(b, h, q0, q1, k0, k1 int) rt.TileKind {
			if (q0/3+k0/5+h)%3 != 0 {
				return rt.TilePartial
			}
			mu.Lock()
			defer mu.Unlock()
			empty = append(empty, tile{q0, q1, k0, k1})
			return rt.TileEmpty
		}}
	}
	got := rt.Attention(in.q, in.k, in.v, spec("out"))
	if len(empty) == 0 {
		t.Fatal("no tile was empty; the test tests nothing")
	}
	tc := attnCase{nq: 150, nk: 200, goMask: func(_ []*rt.Tensor, b, h, q, k int) bool {
		for _, e := range empty {
			if q >= e.q0 && q < e.q1 && k >= e.k0 && k < e.k1 && (e.q0/3+e.k0/5+h)%3 == 0 {
				return false
			}
		}
		return true
	}}
	want, _, _, _ := naiveAttention(tc, in)
	checkRel(t, "out", got, want, tol)
}

// TestAttentionHeadFreeTiles checks that a head-free tile classifier
// (AttnSpec.TileHeadFree) is called once a tile for all heads, from the
// standard grid, and gives the results of calling it for every head (the
// backward pass shares the classification; the every-op test runs it).
func TestAttentionHeadFreeTiles(t *testing.T) {
	in := newAttnInputs(attnCase{nq: 150, nk: 200}, 8)
	mask := func(b, h, q, k int) bool { return (q/40+b)%3 == (k/40)%3 }
	var calls atomic.Int64
	tile := func(b, h, q0, q1, k0, k1 int) rt.TileKind {
		calls.Add(1)
		if h != 0 {
			t.Errorf("a head-free classifier was called for head %d", h)
		}
		return rt.TilePartial // classified for real below by a table of the mask
	}
	exact := func(b, h, q0, q1, k0, k1 int) rt.TileKind {
		any, all := false, true
		for q := q0; q < q1; q++ {
			for k := k0; k < k1; k++ {
				m := mask(b, h, q, k)
				any, all = any || m, all && m
			}
		}
		switch {
		case !any:
			return rt.TileEmpty
		case all:
			return rt.TileFull
		}
		return rt.TilePartial
	}
	free := &rt.AttnSpec{Scale: float32(in.scale), Mask: mask, Tile: func(b, h, q0, q1, k0, k1 int) rt.TileKind {
		tile(b, h, q0, q1, k0, k1)
		return exact(b, h, q0, q1, k0, k1)
	}, TileHeadFree: true}
	each := &rt.AttnSpec{Scale: float32(in.scale), Mask: mask, Tile: exact}
	got, want := rt.Attention(in.q, in.k, in.v, free), rt.Attention(in.q, in.k, in.v, each)
	nb := in.q.Shape[0]
	if n := calls.Load(); n != int64(nb*3*4) {
		t.Errorf("the classifier ran %d times, want once a tile: %d", n, nb*3*4)
	}
	if !slices.Equal(got.F, want.F) {
		t.Fatal("the head-free classification changed the result")
	}
}

// TestAttentionNaNScores: a NaN score (from NaN weights, or a score
// expression that makes one) is not a masked key. As in the reference, it
// makes its whole row NaN in every result and in the gradients, while
// masked keys keep probability 0 and log-probability -Inf and other rows
// are untouched.
func TestAttentionNaNScores(t *testing.T) {
	for _, n := range []int{5, 70} { // one key tile, and two
		r := newRand(uint64(n))
		q, k, val := randF32(r, 1, 2, 3, 4), randF32(r, 1, 2, n, 4), randF32(r, 1, 2, n, 2)
		in := attnInputs{q: q, k: k, v: val, scale: 0.5}
		nanAt := n - 2
		// Row 1 has a NaN score, row 2 only -Inf scores (a fully masked
		// row), row 0 a +Inf score at key 1 in head 1.
		at := func(q, k int64) *ir.Expr {
			return ir.Bin(ir.EAnd, ir.Bin(ir.EEq, v("q"), ir.Int(q)), ir.Bin(ir.EEq, v("k"), ir.Int(k)))
		}
		score := ir.Call("where", at(1, int64(nanAt)), ir.Bin(ir.EMul, v("s"), ir.Float(math.NaN())),
			ir.Call("where", ir.Bin(ir.EEq, v("q"), ir.Int(2)), ir.Float(math.Inf(-1)),
				ir.Call("where", ir.Bin(ir.EAnd, at(0, 1), ir.Bin(ir.EEq, v("h"), ir.Int(1))), ir.Float(math.Inf(1)), v("s"))))
		if _, err := score.Check(ir.ExprEnv{Vars: map[string]ir.ScalarKind{"q": ir.KInt, "k": ir.KInt, "h": ir.KInt, "b": ir.KInt, "s": ir.KFloat}}); err != nil {
			t.Fatal(err)
		}
		tc := attnCase{name: "nan", nq: 3, nk: n, mask: ir.Bin(ir.ENe, v("k"), ir.Int(0)), score: score, gradCap: -1,
			spec: func([]*rt.Tensor) *rt.AttnSpec {
				return &rt.AttnSpec{
					Mask: func(b, h, q, k int) bool { return k != 0 },
					Score: func(s float32, b, h, q, k int) float32 {
						switch {
						case q == 1 && k == nanAt:
							return s * float32(math.NaN())
						case q == 2:
							return float32(math.Inf(-1))
						case q == 0 && k == 1 && h == 1:
							return float32(math.Inf(1))
						}
						return s
					},
					DScore: func(s float32, b, h, q, k int) float32 {
						switch {
						case q == 1 && k == nanAt:
							return float32(math.NaN())
						case q == 2, q == 0 && k == 1 && h == 1:
							return 0
						}
						return 1
					},
				}
			}}
		lse := rt.Attention(q, k, nil, tc.runtimeSpec(in, "lse", false))
		if x := lse.F[1]; !math.IsNaN(float64(x)) {
			t.Errorf("n=%d: lse of the row with a NaN score is %v, want NaN", n, x)
		}
		for _, returns := range []string{"out", "probs", "logprobs", "lse"} {
			var vv *rt.Tensor
			if returns == "out" {
				vv = val
			}
			got := rt.Attention(q, k, vv, tc.runtimeSpec(in, returns, false))
			m := newRef(t)
			args := []*ir.Instr{m.in(q), m.in(k)}
			if vv != nil {
				args = append(args, m.in(val))
			}
			want := m.run(m.b.Must(ir.OpAttention, ir.Attrs{"scale": ir.FloatAttr(0.5), "returns": ir.WordAttr(returns),
				"mask": ir.ExprAttr(tc.mask), "score": ir.ExprAttr(tc.score)}, args...))
			checkRel(t, fmt.Sprintf("n=%d %s", n, returns), got, want, tol)
			if returns == "out" || returns == "lse" {
				continue
			}
			dy := randF32(r, 1, 2, 3, n)
			checkAttentionGrad(t, fmt.Sprintf("n=%d %s", n, returns), tc, in, returns, dy, false)
		}
		dy := randF32(r, 1, 2, 3, 2)
		checkAttentionGrad(t, fmt.Sprintf("n=%d out", n), tc, in, "out", dy, false)
	}
}

// TestAttentionNonFiniteMaskedOperands: a NaN or infinite key, value or
// incoming gradient reaches only the pairs that admit it, as in the
// reference, although the tile products multiply masked pairs by zero
// (0·NaN is NaN).
func TestAttentionNonFiniteMaskedOperands(t *testing.T) {
	for _, n := range []int{5, 70} {
		r := newRand(uint64(n) + 9)
		q, k, val := randF32(r, 1, 2, n, 4), randF32(r, 1, 2, n, 4), randF32(r, 1, 2, n, 3)
		last := n - 1 // admitted by the last query only
		val.F[last*3+1] = float32(math.NaN())
		k.F[last*4+2] = float32(math.Inf(1))
		q.F[(n+1)*4] = float32(math.NaN()) // head 1, query 1
		in := attnInputs{q: q, k: k, v: val, scale: 0.5}
		tc := attnCase{name: "nonfinite", nq: n, nk: n, mask: causalExpr, gradCap: -1,
			spec: func([]*rt.Tensor) *rt.AttnSpec {
				return &rt.AttnSpec{Mask: func(b, h, q, k int) bool { return k <= q }}
			}}
		m := newRef(t)
		want := m.run(m.b.Must(ir.OpAttention, ir.Attrs{"scale": ir.FloatAttr(0.5), "mask": ir.ExprAttr(causalExpr)}, m.in(q), m.in(k), m.in(val)))
		checkRel(t, fmt.Sprintf("n=%d out", n), rt.Attention(q, k, val, tc.runtimeSpec(in, "out", false)), want, tol)
		dy := randF32(r, 1, 2, n, 3)
		dy.F[2*3] = float32(math.NaN()) // the gradient of query 2
		checkAttentionGrad(t, fmt.Sprintf("n=%d out", n), tc, in, "out", dy, false)
		dyp := randF32(r, 1, 2, n, n)
		dyp.F[last] = float32(math.NaN()) // query 0, a masked key
		checkAttentionGrad(t, fmt.Sprintf("n=%d probs", n), tc, in, "probs", dyp, false)
	}
}

// TestAttentionNoStalePacks calls attention twice on one (b, h) and one
// query tile with different queries: the second call's task then gets the
// first's pooled scratch, whose packed query tile must not be reused.
func TestAttentionNoStalePacks(t *testing.T) {
	r := newRand(77)
	k, v := randF32(r, 1, 1, 50, 8), randF32(r, 1, 1, 50, 3)
	for range 3 {
		q := randF32(r, 1, 1, 40, 8)
		got := rt.Attention(q, k, v, &rt.AttnSpec{Scale: 0.5})
		for i := range 40 {
			var w [50]float64
			mx := math.Inf(-1)
			for j := range 50 {
				for c := range 8 {
					w[j] += 0.5 * float64(q.F[i*8+c]) * float64(k.F[j*8+c])
				}
				mx = max(mx, w[j])
			}
			sum := 0.0
			for j := range w {
				w[j] = math.Exp(w[j] - mx)
				sum += w[j]
			}
			for c := range 3 {
				want := 0.0
				for j := range 50 {
					want += w[j] / sum * float64(v.F[j*3+c])
				}
				if g := float64(got.F[i*3+c]); math.Abs(g-want) > 1e-5*(1+math.Abs(want)) {
					t.Fatalf("out[%d, %d] = %g, want %g", i, c, g, want)
				}
			}
		}
	}
}

// TestAttentionGradNoStalePacks is TestAttentionNoStalePacks for the
// backward pass: a call right after one with other queries and dy must
// give what the same call gives with fresh scratch (the pools emptied by
// two collections).
func TestAttentionGradNoStalePacks(t *testing.T) {
	r := newRand(78)
	k, v := randF32(r, 1, 1, 50, 8), randF32(r, 1, 1, 50, 3)
	spec := &rt.AttnSpec{Scale: 0.5}
	grads := func(q, dy *rt.Tensor) rt.AttnGrads {
		out, lse := rt.AttentionWithLSE(q, k, v, spec)
		rs := rt.ReduceSum(rt.Binary(rt.Mul, dy, out, dy.Shape), []int{3}, false)
		return rt.AttentionGrad(q, k, v, lse, rs, dy, spec, rt.AttnGradWant{Q: true, K: true, V: true})
	}
	grads(randF32(r, 1, 1, 40, 8), randF32(r, 1, 1, 40, 3))
	q, dy := randF32(r, 1, 1, 40, 8), randF32(r, 1, 1, 40, 3)
	warm := grads(q, dy)
	goruntime.GC()
	goruntime.GC()
	fresh := grads(q, dy)
	for _, c := range []struct {
		name      string
		got, want *rt.Tensor
	}{{"dq", warm.Q, fresh.Q}, {"dk", warm.K, fresh.K}, {"dv", warm.V, fresh.V}} {
		for i := range c.want.F {
			if c.got.F[i] != c.want.F[i] {
				t.Fatalf("%s[%d] = %g after another call, %g with fresh scratch", c.name, i, c.got.F[i], c.want.F[i])
			}
		}
	}
}
