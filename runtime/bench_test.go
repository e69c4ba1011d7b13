package runtime_test

import (
	"fmt"
	"os"
	"testing"

	rt "github.com/attnc/attnc/runtime"
)

// reportGFLOPS reports flops per iteration as GFLOP/s.
func reportGFLOPS(b *testing.B, flops float64) {
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

func BenchmarkMatMul(b *testing.B) {
	for _, s := range [][3]int{{256, 256, 256}, {1024, 1024, 1024}, {2048, 2048, 2048}, {1024, 1024, 64}, {64, 1024, 1024}, {512, 512, 512}, {8, 128, 512}} {
		m, k, n := s[0], s[1], s[2]
		b.Run(fmt.Sprintf("%dx%dx%d", m, k, n), func(b *testing.B) {
			r := newRand(1)
			x, y := randF32(r, m, k), randF32(r, k, n)
			for b.Loop() {
				rt.MatMul(x, y)
			}
			reportGFLOPS(b, 2*float64(m*k*n))
		})
	}
	b.Run("batched 16x(128x64x128)", func(b *testing.B) {
		r := newRand(1)
		x, y := randF32(r, 16, 128, 64), randF32(r, 16, 64, 128)
		for b.Loop() {
			rt.MatMul(x, y)
		}
		reportGFLOPS(b, 2*16*128*64*128)
	})
}

// Attention benchmark sizes: B=1, H=4, N=512, D=64.
const bB, bH, bN, bD = 1, 4, 512, 64

func benchInputs() (q, k, v *rt.Tensor) {
	r := newRand(2)
	return randF32(r, bB, bH, bN, bD), randF32(r, bB, bH, bN, bD), randF32(r, bB, bH, bN, bD)
}

// benchSpecs are the masks benchmarked: causal as the generator emits it
// (with the sparsity pass's tile classification), causal with the mask
// closure alone, and no mask.
func benchSpecs() []struct {
	name  string
	spec  *rt.AttnSpec
	pairs float64 // admitted (query, key) pairs per head
} {
	causal := func(b, h, q, k int) bool { return k <= q }
	tile := func(b, h, q0, q1, k0, k1 int) rt.TileKind {
		switch {
		case k0 > q1-1:
			return rt.TileEmpty
		case k1-1 <= q0:
			return rt.TileFull
		}
		return rt.TilePartial
	}
	half := float64(bN * (bN + 1) / 2)
	return []struct {
		name  string
		spec  *rt.AttnSpec
		pairs float64
	}{
		{"causal", &rt.AttnSpec{Scale: 0.125, Mask: causal, Tile: tile}, half},
		{"causal mask only", &rt.AttnSpec{Scale: 0.125, Mask: causal}, half},
		{"full", &rt.AttnSpec{Scale: 0.125}, bN * bN},
	}
}

// BenchmarkAttention reports GFLOP/s of useful work: 4·D flops (q·k and
// p·v) per admitted pair.
func BenchmarkAttention(b *testing.B) {
	q, k, v := benchInputs()
	for _, s := range benchSpecs() {
		b.Run(s.name, func(b *testing.B) {
			for b.Loop() {
				rt.Attention(q, k, v, s.spec)
			}
			reportGFLOPS(b, 4*bD*s.pairs*bB*bH)
		})
	}
}

// BenchmarkAttentionGrad reports GFLOP/s of the products the backward
// pass computes per admitted pair, 2·D flops each: for q, k and v at once
// seven (the key pass q·k, dy·v, Pᵀ·dy and dSᵀ·q, the query pass q·k, dy·v
// and dS·k), for q alone three, for k and v four.
func BenchmarkAttentionGrad(b *testing.B) {
	q, k, v := benchInputs()
	dy := randF32(newRand(3), bB, bH, bN, bD)
	for _, s := range benchSpecs()[:1] {
		out, lse := rt.AttentionWithLSE(q, k, v, s.spec)
		rs := rt.ReduceSum(rt.Binary(rt.Mul, dy, out, dy.Shape), []int{3}, false)
		for _, c := range []struct {
			name     string
			want     rt.AttnGradWant
			products float64
		}{
			{"qkv", rt.AttnGradWant{Q: true, K: true, V: true}, 7},
			{"q", rt.AttnGradWant{Q: true}, 3},
			{"kv", rt.AttnGradWant{K: true, V: true}, 4},
		} {
			b.Run(s.name+"/"+c.name, func(b *testing.B) {
				for b.Loop() {
					rt.AttentionGrad(q, k, v, lse, rs, dy, s.spec, c.want)
				}
				reportGFLOPS(b, c.products*2*bD*s.pairs*bB*bH)
			})
		}
	}
}

func BenchmarkSoftmax(b *testing.B) {
	x := randF32(newRand(4), 64, 4096)
	for b.Loop() {
		rt.Softmax(x, 1)
	}
}

// BenchmarkMatMulLayers times the products of the training benchmark's
// model (lm4: d=128, 4 heads, FFN 512, vocab 256, a batch of 16 × 255
// tokens) as its generated code calls them: a layer x[B, L, in] · w[in,
// out] (the input's gradient dy · wᵀ has the same form), a weight's
// gradient xᵀ[B, in, L] · dy[B, L, out] (one product an example, summed
// after), products of the heads' shape, and one long-k weight gradient
// of 4096 tokens.
func BenchmarkMatMulLayers(b *testing.B) {
	for _, c := range []struct {
		name string
		x, y []int
	}{
		{"layer 128-128", []int{16, 255, 128}, []int{128, 128}},
		{"layer 128-512", []int{16, 255, 128}, []int{128, 512}},
		{"layer 512-128", []int{16, 255, 512}, []int{512, 128}},
		{"layer 128-256", []int{16, 255, 128}, []int{128, 256}},
		{"wgrad 128-128", []int{16, 128, 255}, []int{16, 255, 128}},
		{"wgrad 128-512", []int{16, 128, 255}, []int{16, 255, 512}},
		{"wgrad 512-128", []int{16, 512, 255}, []int{16, 255, 128}},
		{"heads qk", []int{64, 255, 32}, []int{64, 32, 255}},
		{"heads pv", []int{64, 255, 255}, []int{64, 255, 32}},
		{"wgrad 128x4096x512", []int{128, 4096}, []int{4096, 512}},
	} {
		b.Run(c.name, func(b *testing.B) {
			r := newRand(1)
			x, y := randF32(r, c.x...), randF32(r, c.y...)
			out := rt.MatMul(x, y)
			k := x.Shape[len(x.Shape)-1]
			for b.Loop() {
				rt.MatMul(x, y)
			}
			reportGFLOPS(b, 2*float64(len(out.F)*k))
		})
	}
}

// BenchmarkAttentionLM times attention at a small language model's
// training shapes (B=16, H=4, N=256, D=32, causal with the tile
// classification and key spans the generator emits): short rows and a
// narrow head, where per-tile overheads weigh most. fwd is the forward
// with its log-sum-exp, grad the backward for q, k and v.
func BenchmarkAttentionLM(b *testing.B) {
	const nb, nh, n, d = 16, 4, 256, 32
	r := newRand(5)
	q, k, v, dy := randF32(r, nb, nh, n, d), randF32(r, nb, nh, n, d), randF32(r, nb, nh, n, d), randF32(r, nb, nh, n, d)
	spec := benchSpecs()[0].spec
	spec.Rows = func(b, h, q int) rt.KeySpans { return rt.SpanBelow(q + 1) }
	pairs := float64(nb * nh * n * (n + 1) / 2)
	b.Run("fwd", func(b *testing.B) {
		for b.Loop() {
			rt.AttentionWithLSE(q, k, v, spec)
		}
		reportGFLOPS(b, 4*d*pairs)
	})
	out, lse := rt.AttentionWithLSE(q, k, v, spec)
	rs := rt.ReduceSum(rt.Binary(rt.Mul, dy, out, dy.Shape), []int{3}, false)
	b.Run("grad", func(b *testing.B) {
		for b.Loop() {
			rt.AttentionGrad(q, k, v, lse, rs, dy, spec, rt.AttnGradWant{Q: true, K: true, V: true})
		}
		reportGFLOPS(b, 7*2*d*pairs)
	})
}

// BenchmarkAttentionDocMask times a document mask, doc[b, q] ==
// doc[b, k], at N = 8192 with 32 documents of 256 tokens (B=1, H=8,
// d=64) as the Go renderer emits it: with the tile classifier that reads
// the document ids' range over each tile (rt.IvCapture); without it,
// every tile partial and its rows filled by MaskRow (rows); and with the
// mask alone, called pair by pair (pairs).
func BenchmarkAttentionDocMask(b *testing.B) {
	const n, docs = 8192, 32
	r := newRand(9)
	q, k, v := randF32(r, 1, 8, n, 64), randF32(r, 1, 8, n, 64), randF32(r, 1, 8, n, 64)
	doc := rt.New(rt.I32, 1, n)
	for i := range doc.I {
		doc.I[i] = int32(i / (n / docs))
	}
	mask := func(b, h, q, k int) bool { return doc.I[b*n+q] == doc.I[b*n+k] }
	row := func(b, h, q, k0 int, keep []bool) bool {
		any, d := false, doc.I[b*n+q]
		for j := range keep {
			keep[j] = doc.I[b*n+k0+j] == d
			any = any || keep[j]
		}
		return any
	}
	tile := func(b, h, q0, q1, k0, k1 int) rt.TileKind {
		bIv := rt.IvPoint(float64(b))
		return rt.IvTile(rt.IvEq(rt.IvCapture(doc, bIv, rt.IvRange(q0, q1)), rt.IvCapture(doc, bIv, rt.IvRange(k0, k1))))
	}
	pairs := float64(docs * (n / docs) * (n / docs))
	for _, c := range []struct {
		name string
		spec *rt.AttnSpec
	}{
		{"tiles", &rt.AttnSpec{Scale: 0.125, Mask: mask, MaskRow: row, Tile: tile, TileHeadFree: true}},
		{"rows", &rt.AttnSpec{Scale: 0.125, Mask: mask, MaskRow: row}},
		{"pairs", &rt.AttnSpec{Scale: 0.125, Mask: mask}},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				rt.Attention(q, k, v, c.spec)
			}
			reportGFLOPS(b, 4*64*pairs*8)
		})
	}
}

// BenchmarkAttentionShort times attention at a seq2seq-sized training
// shape (B=64, H=4, N=16, D=16, a prefix-LM mask with key spans, the
// bnhd layout the layout pass gives): many (b, h) pairs of one partial
// tile each, where the per-pair and per-tile overheads are the cost. It
// runs the short kernels (attention_short.go) and the tiled path.
// ATTN_SHORT=ptr gives pointer_sort's shape (B=256, H=4, N=10, D=32).
func BenchmarkAttentionShort(b *testing.B) {
	nb, nh, n, d := 64, 4, 16, 16
	if os.Getenv("ATTN_SHORT") == "ptr" {
		nb, nh, n, d = 256, 4, 10, 32
	}
	r := newRand(6)
	q, k, v, dy := randF32(r, nb, n, nh, d), randF32(r, nb, n, nh, d), randF32(r, nb, n, nh, d), randF32(r, nb, n, nh, d)
	spec := &rt.AttnSpec{Scale: 0.25, Layout: "bnhd",
		Mask: func(b, h, q, k int) bool { return k < 8 || k <= q },
		Rows: func(b, h, q int) rt.KeySpans { return rt.SpanBelow(max(8, q+1)) }}
	for _, kernels := range []string{"short", "tiled"} {
		if kernels == "short" && !rt.ShortAttentionKernels() {
			continue
		}
		on := rt.SetShortAttention(kernels == "short")
		b.Run("fwd/"+kernels, func(b *testing.B) {
			for b.Loop() {
				rt.AttentionWithLSE(q, k, v, spec)
			}
		})
		out, lse := rt.AttentionWithLSE(q, k, v, spec)
		rs := rt.ReduceSum(rt.Binary(rt.Mul, dy, out, dy.Shape), []int{3}, false)
		b.Run("grad/"+kernels, func(b *testing.B) {
			for b.Loop() {
				rt.AttentionGrad(q, k, v, lse, rs, dy, spec, rt.AttnGradWant{Q: true, K: true, V: true})
			}
		})
		rt.SetShortAttention(on)
	}
}
