package runtime_test

import (
	"fmt"
	"math"
	"testing"

	rt "github.com/attnc/attnc/runtime"
)

// shortShape is an attention shape the short kernels take (at most 16
// keys, heads a multiple of 16).
type shortShape struct{ nb, nh, nq, nk, d, dv int }

var shortShapes = []shortShape{
	{3, 2, 9, 9, 16, 16},    // seq2seq
	{2, 3, 10, 10, 32, 32},  // pointer_sort
	{2, 2, 1, 1, 16, 16},    // one key
	{2, 1, 70, 16, 16, 48},  // more queries than a tile, 16 keys
	{2, 2, 5, 16, 64, 16},   // wide heads
	{1, 4, 16, 3, 32, 16},   // few keys
	{5, 2, 13, 11, 48, 32},  // odd sizes, the last pair's rows end the tensor
	{2, 2, 3, 7, 256, 256},  // the widest head
	{4, 1, 12, 12, 16, 16},  // one head
	{2, 5, 16, 16, 128, 64}, // the most keys
}

// shortMask is a mask given to the kernels in one of the spec's forms.
type shortMask struct {
	name string
	spec func(nq, nk int) *rt.AttnSpec
}

var shortMasks = []shortMask{
	{"none", func(nq, nk int) *rt.AttnSpec { return &rt.AttnSpec{} }},
	{"causal by Mask", func(nq, nk int) *rt.AttnSpec {
		return &rt.AttnSpec{Mask: func(b, h, q, k int) bool { return k <= q }}
	}},
	{"causal by Rows and Tile", func(nq, nk int) *rt.AttnSpec {
		return &rt.AttnSpec{
			Mask: func(b, h, q, k int) bool { return k <= q },
			Rows: causalRows, Tile: causalTile, TileHeadFree: true,
		}
	}},
	{"window with a sink by Rows", func(nq, nk int) *rt.AttnSpec {
		return &rt.AttnSpec{
			Mask: func(b, h, q, k int) bool { return k <= q && (k < 2 || q-k < 4) },
			Rows: func(b, h, q int) rt.KeySpans {
				return rt.SpansAnd(rt.SpanBelow(q+1), rt.SpansOr(rt.SpanBelow(2), rt.SpanFrom(q-3)))
			},
		}
	}},
	{"per head by MaskRow, some rows empty", func(nq, nk int) *rt.AttnSpec {
		m := func(b, h, q, k int) bool { return k < q && (h == 0 || (k+b)%3 != 0) }
		return &rt.AttnSpec{
			Mask: func(b, h, q, k int) bool { panic("Mask called although MaskRow is set") },
			MaskRow: func(b, h, q, k0 int, keep []bool) bool {
				any := false
				for j := range keep {
					keep[j] = m(b, h, q, k0+j)
					any = any || keep[j]
				}
				return any
			},
		}
	}},
	{"examples dropped by Tile alone", func(nq, nk int) *rt.AttnSpec {
		return &rt.AttnSpec{Tile: func(b, h, q0, q1, k0, k1 int) rt.TileKind {
			if b%2 == 1 {
				return rt.TileEmpty
			}
			return rt.TileFull
		}, TileHeadFree: true}
	}},
}

// TestAttentionShortMatchesTiled runs attention and its gradient on the
// short kernels and on the tiled path for every shape, mask and layout
// (fresh random operands, scores large enough to make the softmax
// peaky) and compares every result: out, lse, dq, dk, dv, and the
// gradient subsets the compiler asks for. The tiled path is checked
// against the float64 reference by TestAttentionMatchesNaive and
// TestAttentionGradMatchesReference.
func TestAttentionShortMatchesTiled(t *testing.T) {
	if !rt.ShortAttentionKernels() {
		t.Skip("no short attention kernels on this machine (they need AVX-512)")
	}
	seed := uint64(40)
	for _, sh := range shortShapes {
		for _, mk := range shortMasks {
			for _, layout := range []string{"", "bnhd"} {
				seed++
				name := fmt.Sprintf("%v/%s/%q", sh, mk.name, layout)
				t.Run(name, func(t *testing.T) { checkShort(t, sh, mk, layout, seed) })
			}
		}
	}
}

func checkShort(t *testing.T, sh shortShape, mk shortMask, layout string, seed uint64) {
	r := newRand(seed)
	rows := func(n, w int) *rt.Tensor {
		if layout == "bnhd" {
			return randF32(r, sh.nb, n, sh.nh, w)
		}
		return randF32(r, sh.nb, sh.nh, n, w)
	}
	q, k, v := rows(sh.nq, sh.d), rows(sh.nk, sh.d), rows(sh.nk, sh.dv)
	for i := range q.F {
		q.F[i] *= 3
	}
	dy := rows(sh.nq, sh.dv)
	spec := func(returns string) *rt.AttnSpec {
		s := mk.spec(sh.nq, sh.nk)
		s.Scale, s.Returns, s.Layout = float32(1/math.Sqrt(float64(sh.d))), returns, layout
		return s
	}
	type results struct {
		out, lse, lseOnly *rt.Tensor
		grads             []rt.AttnGrads
	}
	wants := []rt.AttnGradWant{{Q: true, K: true, V: true}, {Q: true}, {K: true, V: true}, {V: true}}
	run := func(short bool) results {
		defer rt.SetShortAttention(rt.SetShortAttention(short))
		before := rt.ShortAttentionCalls()
		var res results
		res.out, res.lse = rt.AttentionWithLSE(q, k, v, spec("out"))
		res.lseOnly = rt.Attention(q, k, nil, spec("lse"))
		rs := rt.ReduceSum(rt.Binary(rt.Mul, dy, res.out, dy.Shape), []int{3}, false)
		for _, w := range wants {
			res.grads = append(res.grads, rt.AttentionGrad(q, k, v, res.lse, rs, dy, spec("out"), w))
		}
		if calls := rt.ShortAttentionCalls() - before; short != (calls == int64(2+len(wants))) || !short && calls != 0 {
			t.Fatalf("short kernels on = %v served %d calls", short, calls)
		}
		return res
	}
	got, want := run(true), run(false)
	near(t, "out", got.out, want.out)
	near(t, "lse", got.lse, want.lse)
	near(t, "lse alone", got.lseOnly, want.lse)
	for i, w := range wants {
		g, x := got.grads[i], want.grads[i]
		for _, c := range []struct {
			name   string
			wanted bool
			g, x   *rt.Tensor
		}{{"dq", w.Q, g.Q, x.Q}, {"dk", w.K, g.K, x.K}, {"dv", w.V, g.V, x.V}} {
			if !c.wanted {
				if c.g != nil {
					t.Fatalf("%+v: %s computed although not wanted", w, c.name)
				}
				continue
			}
			near(t, fmt.Sprintf("%+v: %s", w, c.name), c.g, c.x)
		}
	}
}

// near fails unless got and want have the same -Inf entries and agree
// elsewhere within 1e-5 of the largest magnitude in want (at least 1).
func near(t *testing.T, what string, got, want *rt.Tensor) {
	t.Helper()
	if fmt.Sprint(got.Shape) != fmt.Sprint(want.Shape) {
		t.Fatalf("%s: shape %v, want %v", what, got.Shape, want.Shape)
	}
	norm := 1.0
	for _, w := range want.F {
		if !math.IsInf(float64(w), 0) {
			norm = math.Max(norm, math.Abs(float64(w)))
		}
	}
	for i, w := range want.F {
		g := got.F[i]
		if math.IsInf(float64(w), 0) || math.IsInf(float64(g), 0) || g != g {
			if g != w {
				t.Fatalf("%s[%d] = %v, want %v", what, i, g, w)
			}
			continue
		}
		if math.Abs(float64(g-w)) > 1e-5*norm {
			t.Fatalf("%s[%d] = %v, want %v (tolerance %.2g)", what, i, g, w, 1e-5*norm)
		}
	}
}

// TestAttentionShortFallsBack checks the cases the short kernels leave to
// the tiled path: NaN and infinite operands, a score modification, and
// scores that overflow float32 from finite operands.
func TestAttentionShortFallsBack(t *testing.T) {
	if !rt.ShortAttentionKernels() {
		t.Skip("no short attention kernels on this machine (they need AVX-512)")
	}
	r := newRand(7)
	q, k, v := randF32(r, 2, 2, 9, 16), randF32(r, 2, 2, 9, 16), randF32(r, 2, 2, 9, 16)
	spec := &rt.AttnSpec{Scale: 0.25}
	before := rt.ShortAttentionCalls()
	rt.Attention(q, k, v, spec)
	if rt.ShortAttentionCalls() != before+1 {
		t.Fatalf("the short kernels did not serve a plain call")
	}
	cases := []struct {
		name string
		set  func()
	}{
		{"NaN in q", func() { q.F[5] = float32(math.NaN()) }},
		{"Inf in v", func() { v.F[40] = float32(math.Inf(1)) }},
		{"a score modification", func() { spec.Score = func(s float32, b, h, q, k int) float32 { return s * 2 } }},
		{"overflowing scores", func() {
			q.F[16*3], k.F[16*2] = 3e19, 3e19 // q·k = 9e38 for one pair, +Inf in float32
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q, k, v = randF32(r, 2, 2, 9, 16), randF32(r, 2, 2, 9, 16), randF32(r, 2, 2, 9, 16)
			spec = &rt.AttnSpec{Scale: 0.25}
			c.set()
			before := rt.ShortAttentionCalls()
			got, gotLSE := rt.AttentionWithLSE(q, k, v, spec)
			if rt.ShortAttentionCalls() != before {
				t.Fatalf("the short kernels served the call")
			}
			defer rt.SetShortAttention(rt.SetShortAttention(false))
			want, wantLSE := rt.AttentionWithLSE(q, k, v, spec)
			sameValues(t, "out", got, want)
			sameValues(t, "lse", gotLSE, wantLSE)
		})
	}
}
