package runtime_test

import (
	"fmt"
	"math"
	"testing"

	goruntime "runtime"

	rt "github.com/attnc/attnc/runtime"
)

// swap12 returns x with its axes 1 and 2 exchanged: [B, H, N, D] ⇄
// [B, N, H, D], and [B, H, N] ⇄ [B, N, H].
func swap12(x *rt.Tensor) *rt.Tensor {
	if x == nil {
		return nil
	}
	s := x.Shape
	rest := 1
	for _, d := range s[3:] {
		rest *= d
	}
	out := rt.New(rt.F32, append([]int{s[0], s[2], s[1]}, s[3:]...)...)
	for b := range s[0] {
		for i := range s[1] {
			for j := range s[2] {
				src := ((b*s[1]+i)*s[2] + j) * rest
				dst := ((b*s[2]+j)*s[1] + i) * rest
				copy(out.F[dst:dst+rest], x.F[src:src+rest])
			}
		}
	}
	return out
}

// sameValues fails unless got and want agree to rounding, NaN for NaN
// and infinity for infinity.
func sameValues(t *testing.T, what string, got, want *rt.Tensor) {
	t.Helper()
	if fmt.Sprint(got.Shape) != fmt.Sprint(want.Shape) {
		t.Fatalf("%s: shape %v, want %v", what, got.Shape, want.Shape)
	}
	for i, w := range want.F {
		g := got.F[i]
		switch {
		case w != w:
			if g == g {
				t.Fatalf("%s[%d] = %v, want NaN", what, i, g)
			}
		case math.IsInf(float64(w), 0):
			if g != w {
				t.Fatalf("%s[%d] = %v, want %v", what, i, g, w)
			}
		case math.Abs(float64(g-w)) > 1e-5*math.Max(1, math.Abs(float64(w))):
			t.Fatalf("%s[%d] = %v, want %v", what, i, g, w)
		}
	}
}

// TestAttentionLayoutBNHD runs every case in the [B, N, H, D] layout (the
// layout pass's attention {layout = bnhd}) and compares out, lse and every
// gradient with the [B, H, N, D] run on the same values, transposed: the
// kernels read and write the rows in place, H rows apart. Non-finite
// values in some rows send them down the kernels' pair-by-pair paths,
// which index rows too; one core and no group budget pack a few pairs at
// a time.
func TestAttentionLayoutBNHD(t *testing.T) {
	for _, cores := range []int{0, 1} {
		for _, onePass := range []bool{false, true} {
			name := fmt.Sprintf("cores %d, one pass %v", cores, onePass)
			t.Run(name, func(t *testing.T) {
				if cores > 0 {
					defer goruntime.GOMAXPROCS(goruntime.GOMAXPROCS(cores))
					defer rt.SetGroupBytes(rt.SetGroupBytes(0))
				}
				n := 1 << 30
				if onePass {
					n = 0
				}
				defer rt.SetOnePassPairsPerCore(rt.SetOnePassPairsPerCore(n))
				for ci, tc := range attnCases {
					for _, nonFinite := range []bool{false, true} {
						in := newAttnInputs(tc, uint64(ci)+700)
						dy := randF32(newRand(uint64(ci)+800), aB, aH, tc.nq, aDv)
						if nonFinite {
							// A value in the last key row of the last head,
							// one in a query and one in dy.
							in.v.F[len(in.v.F)-1] = float32(math.Inf(1))
							in.k.F[len(in.k.F)-2] = float32(math.NaN())
							in.q.F[aD+1] = float32(math.NaN())
							dy.F[3*aDv] = float32(math.Inf(-1))
						}
						checkLayout(t, fmt.Sprintf("%s (non-finite %v)", tc.name, nonFinite), tc, in, dy)
					}
				}
			})
		}
	}
}

func checkLayout(t *testing.T, what string, tc attnCase, in attnInputs, dy *rt.Tensor) {
	t.Helper()
	for _, tiles := range []bool{false, true} {
		spec := tc.runtimeSpec(in, "out", tiles)
		y, lse := rt.AttentionWithLSE(in.q, in.k, in.v, spec)
		rs := rowSums("out", y, dy)
		want := rt.AttnGradWant{Q: true, K: true, V: true}
		hasCap := tc.gradCap >= 0 && len(in.caps) > 0
		if hasCap {
			want.Caps = make([]*rt.Tensor, len(in.caps))
			want.Caps[tc.gradCap] = rt.New(rt.F32, in.caps[tc.gradCap].Shape...)
		}
		g := rt.AttentionGrad(in.q, in.k, in.v, lse, rs, dy, spec, want)

		bspec := tc.runtimeSpec(in, "out", tiles)
		bspec.Layout = "bnhd"
		q, k, v := swap12(in.q), swap12(in.k), swap12(in.v)
		by, blse := rt.AttentionWithLSE(q, k, v, bspec)
		w := fmt.Sprintf("%s, tiles %v", what, tiles)
		sameValues(t, w+": out", by, swap12(y))
		sameValues(t, w+": lse", blse, swap12(lse))
		bspec.Returns = "lse"
		sameValues(t, w+": lse alone", rt.Attention(q, k, nil, bspec), swap12(lse))
		bspec.Returns = "out"
		bwant := rt.AttnGradWant{Q: true, K: true, V: true}
		if hasCap {
			bwant.Caps = make([]*rt.Tensor, len(in.caps))
			bwant.Caps[tc.gradCap] = rt.New(rt.F32, in.caps[tc.gradCap].Shape...)
		}
		bg := rt.AttentionGrad(q, k, v, blse, swap12(rs), swap12(dy), bspec, bwant)
		sameValues(t, w+": dq", bg.Q, swap12(g.Q))
		sameValues(t, w+": dk", bg.K, swap12(g.K))
		sameValues(t, w+": dv", bg.V, swap12(g.V))
		if hasCap {
			sameValues(t, w+": capture gradient", bg.Caps[tc.gradCap], g.Caps[tc.gradCap])
		}
		// Each gradient on its own: dq from the query pass alone.
		one := rt.AttentionGrad(q, k, v, blse, swap12(rs), swap12(dy), bspec, rt.AttnGradWant{Q: true})
		sameValues(t, w+": dq alone", one.Q, swap12(g.Q))
	}
}

func TestAttentionLayoutMisuse(t *testing.T) {
	q := rt.New(rt.F32, 1, 3, 2, 4) // [B, N, H, D]
	mustPanic(t, "unknown Layout", func() { rt.Attention(q, q, q, &rt.AttnSpec{Layout: "nbhd"}) })
	mustPanic(t, "layout bnhd needs Returns out or lse", func() {
		rt.Attention(q, q, nil, &rt.AttnSpec{Layout: "bnhd", Returns: "probs"})
	})
	mustPanic(t, "[B, N, H, D]", func() { rt.Attention(q, rt.New(rt.F32, 1, 3, 1, 4), q, &rt.AttnSpec{Layout: "bnhd"}) })
	lse := rt.New(rt.F32, 1, 2, 3) // [B, H, N]: the wrong layout
	mustPanic(t, "lse", func() {
		rt.AttentionGrad(q, q, q, lse, lse, q, &rt.AttnSpec{Layout: "bnhd"}, rt.AttnGradWant{Q: true})
	})
}
