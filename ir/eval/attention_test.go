package eval_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/attnc/attnc/ir"
	"github.com/attnc/attnc/ir/eval"
)

// Sizes of the random attention tests.
const (
	attnB, attnH, attnD, attnDv = 2, 3, 4, 3
	window                      = 3 // sliding-window width, given as the symbol W
	prefix                      = 3 // prefix-LM source length, bound as S by an input
	relBuckets                  = 8 // relative-position buckets of the bias
)

// An attnCase is a mask and score written twice: as IR expressions for
// the interpreter and as plain Go for the naive loop below.
type attnCase struct {
	name   string
	nq, nk int
	mask   *ir.Expr
	score  *ir.Expr
	// caps declares the captured operands (inputs) and returns them.
	caps func(c *ctx, rng *rand.Rand) []*ir.Instr
	// goMask and goScore are the same functions in Go; they read the
	// captured tensors c.inputs by name.
	goMask  func(in map[string]*eval.Tensor, b, h, q, k int) bool
	goScore func(in map[string]*eval.Tensor, s float64, b, h, q, k int) float64
}

func v(n string) *ir.Expr { return ir.Var(n) }

var (
	causalExpr = ir.Bin(ir.ELe, v("k"), v("q"))
	causal     = func(_ map[string]*eval.Tensor, b, h, q, k int) bool { return k <= q }
)

// docIDs returns non-decreasing document ids per batch row, as packed
// sequences have.
func docIDs(rng *rand.Rand, nb, n int) *eval.Tensor {
	t := eval.NewTensor(ir.I32, nb, n)
	for b := range nb {
		id := 0
		for i := range n {
			if i > 0 && rng.IntN(3) == 0 {
				id++
			}
			t.Set(float64(id), b, i)
		}
	}
	return t
}

func randn(rng *rand.Rand, dt ir.DType, shape ...int) *eval.Tensor {
	t := eval.NewTensor(dt, shape...)
	for i := range t.Data {
		t.Data[i] = rng.NormFloat64()
	}
	return t
}

var attnCases = []attnCase{
	{name: "none", nq: 7, nk: 7},
	{name: "causal", nq: 7, nk: 7, mask: causalExpr, goMask: causal},
	{name: "sliding window", nq: 9, nk: 9,
		mask: ir.Bin(ir.EAnd, causalExpr, ir.Bin(ir.ELt, ir.Bin(ir.ESub, v("q"), v("k")), v("W"))),
		goMask: func(_ map[string]*eval.Tensor, b, h, q, k int) bool {
			return k <= q && q-k < window
		}},
	{name: "prefix LM", nq: 8, nk: 8,
		mask: ir.Bin(ir.EOr, ir.Bin(ir.ELt, v("k"), v("S")), causalExpr),
		caps: func(c *ctx, _ *rand.Rand) []*ir.Instr {
			// Not captured: this input only binds S through its shape.
			c.inputs["source"] = eval.NewTensor(ir.Bool, prefix)
			input(c.b, "source", ir.Bool, sym("S"))
			return nil
		},
		goMask: func(_ map[string]*eval.Tensor, b, h, q, k int) bool {
			return k < prefix || k <= q
		}},
	{name: "document", nq: 9, nk: 9,
		mask: ir.Bin(ir.EEq, ir.Capture(0, v("b"), v("q")), ir.Capture(0, v("b"), v("k"))),
		caps: func(c *ctx, rng *rand.Rand) []*ir.Instr {
			c.inputs["doc"] = docIDs(rng, attnB, 9)
			return []*ir.Instr{input(c.b, "doc", ir.I32, sym("B"), sym("N"))}
		},
		goMask: func(in map[string]*eval.Tensor, b, h, q, k int) bool {
			return in["doc"].At(b, q) == in["doc"].At(b, k)
		}},
	{name: "relative position", nq: 10, nk: 10,
		score: relScore(),
		caps:  relBias,
		goScore: func(in map[string]*eval.Tensor, s float64, b, h, q, k int) float64 {
			return s + in["bias"].At(h, min(max(q-k, 0), relBuckets-1))
		}},
	{name: "relative position, causal", nq: 10, nk: 10,
		mask: causalExpr, goMask: causal,
		score: relScore(),
		caps:  relBias,
		goScore: func(in map[string]*eval.Tensor, s float64, b, h, q, k int) float64 {
			return s + in["bias"].At(h, min(max(q-k, 0), relBuckets-1))
		}},
	// Row q = 0 has no key.
	{name: "fully masked row", nq: 5, nk: 5,
		mask: ir.Bin(ir.ELt, v("k"), v("q")),
		goMask: func(_ map[string]*eval.Tensor, b, h, q, k int) bool {
			return k < q
		}},
	{name: "cross attention", nq: 5, nk: 7},
	// Causal aligned to the end of the keys, through the symbols N and M.
	{name: "cross attention, bottom-right causal", nq: 5, nk: 7,
		mask: ir.Bin(ir.ELe, v("k"), ir.Bin(ir.ESub, ir.Bin(ir.EAdd, v("q"), v("M")), v("N"))),
		goMask: func(_ map[string]*eval.Tensor, b, h, q, k int) bool {
			return k <= q+7-5
		}},
	// The capture is read at q - k only where q >= k: where and && must
	// not evaluate the side they do not take.
	{name: "guarded relative bias", nq: 8, nk: 8,
		score: ir.Call("where", ir.Bin(ir.EGe, v("q"), v("k")),
			ir.Bin(ir.EAdd, v("s"), ir.Capture(0, v("h"), ir.Bin(ir.ESub, v("q"), v("k")))),
			ir.Bin(ir.ESub, v("s"), ir.Float(1))),
		caps: func(c *ctx, rng *rand.Rand) []*ir.Instr {
			c.inputs["bias"] = randn(rng, ir.F32, attnH, 8)
			return []*ir.Instr{input(c.b, "bias", ir.F32, sym("H"), sym("N"))}
		},
		goScore: func(in map[string]*eval.Tensor, s float64, b, h, q, k int) float64 {
			if q >= k {
				return s + in["bias"].At(h, q-k)
			}
			return s - 1
		}},
	{name: "mask guarded by &&", nq: 8, nk: 8,
		mask: ir.Bin(ir.EAnd, causalExpr, ir.Bin(ir.EGt, ir.Capture(0, v("h"), ir.Bin(ir.ESub, v("q"), v("k"))), ir.Float(-0.5))),
		caps: func(c *ctx, rng *rand.Rand) []*ir.Instr {
			c.inputs["gate"] = randn(rng, ir.F32, attnH, 8)
			return []*ir.Instr{input(c.b, "gate", ir.F32, sym("H"), sym("N"))}
		},
		goMask: func(in map[string]*eval.Tensor, b, h, q, k int) bool {
			return k <= q && in["gate"].At(h, q-k) > -0.5
		}},
	{name: "softcap score", nq: 6, nk: 6,
		score: ir.Bin(ir.EMul, ir.Float(2), ir.Call("tanh", ir.Bin(ir.EDiv, v("s"), ir.Float(2)))),
		goScore: func(_ map[string]*eval.Tensor, s float64, b, h, q, k int) float64 {
			return 2 * math.Tanh(s/2)
		}},
}

func relScore() *ir.Expr {
	return ir.Bin(ir.EAdd, v("s"), ir.Capture(0, v("h"), ir.Call("clamp", ir.Bin(ir.ESub, v("q"), v("k")), ir.Int(0), ir.Int(relBuckets-1))))
}

func relBias(c *ctx, rng *rand.Rand) []*ir.Instr {
	c.inputs["bias"] = randn(rng, ir.F32, attnH, relBuckets)
	return []*ir.Instr{input(c.b, "bias", ir.F32, sym("H"), cd(relBuckets))}
}

// naiveAttention materialises the [B, H, Nq, Nk] scores with masked
// entries at -Inf and applies the softmax row by row.
func naiveAttention(tc attnCase, in map[string]*eval.Tensor, scale float64) (out, probs, logprobs *eval.Tensor) {
	q, k, v := in["q"], in["k"], in["v"]
	out = eval.NewTensor(ir.F32, attnB, attnH, tc.nq, attnDv)
	probs = eval.NewTensor(ir.F32, attnB, attnH, tc.nq, tc.nk)
	logprobs = eval.NewTensor(ir.F32, attnB, attnH, tc.nq, tc.nk)
	for b := range attnB {
		for h := range attnH {
			for i := range tc.nq {
				scores := make([]float64, tc.nk)
				anyKey := false
				for j := range tc.nk {
					if tc.goMask != nil && !tc.goMask(in, b, h, i, j) {
						scores[j] = math.Inf(-1)
						continue
					}
					anyKey = true
					s := 0.0
					for d := range attnD {
						s += q.At(b, h, i, d) * k.At(b, h, j, d)
					}
					s *= scale
					if tc.goScore != nil {
						s = tc.goScore(in, s, b, h, i, j)
					}
					scores[j] = s
				}
				if !anyKey {
					for j := range tc.nk {
						logprobs.Set(math.Inf(-1), b, h, i, j)
					}
					continue
				}
				mx := math.Inf(-1)
				for _, s := range scores {
					mx = math.Max(mx, s)
				}
				z := 0.0
				for _, s := range scores {
					z += math.Exp(s - mx)
				}
				for j, s := range scores {
					p := math.Exp(s-mx) / z
					probs.Set(p, b, h, i, j)
					logprobs.Set(s-mx-math.Log(z), b, h, i, j)
					for e := range attnDv {
						out.Set(out.At(b, h, i, e)+p*v.At(b, h, j, e), b, h, i, e)
					}
				}
			}
		}
	}
	return out, probs, logprobs
}

// checkRel fails unless got and want agree in shape, in the positions of
// infinities, and elsewhere to a relative error (max-norm of the
// difference over the max-norm of want) of tol.
func checkRel(t *testing.T, what string, got, want *eval.Tensor, tol float64) {
	t.Helper()
	if got == nil || !slices.Equal(got.Shape, want.Shape) {
		t.Fatalf("%s: got %v, want shape %v", what, got, want.Shape)
	}
	diff, norm := 0.0, 0.0
	for i, w := range want.Data {
		g := got.Data[i]
		if math.IsInf(w, 0) || math.IsInf(g, 0) || math.IsNaN(g) || math.IsNaN(w) {
			if g != w {
				t.Fatalf("%s: element %d is %v, want %v", what, i, g, w)
			}
			continue
		}
		diff = math.Max(diff, math.Abs(g-w))
		norm = math.Max(norm, math.Abs(w))
	}
	if norm == 0 {
		if diff != 0 {
			t.Fatalf("%s: max difference %g from an all-zero reference", what, diff)
		}
		return
	}
	if diff/norm > tol {
		t.Fatalf("%s: relative error %.3g > %g", what, diff/norm, tol)
	}
}

// TestAttentionMatchesNaive compares attention with naiveAttention on
// fresh random inputs, for every case and every returns.
func TestAttentionMatchesNaive(t *testing.T) {
	for ci, tc := range attnCases {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(ci)+1, 2024))
			c := newCtx("B", "H", "N", "M", "D", "E", "S", "W")
			c.inputs["q"] = randn(rng, ir.F32, attnB, attnH, tc.nq, attnD)
			c.inputs["k"] = randn(rng, ir.F32, attnB, attnH, tc.nk, attnD)
			c.inputs["v"] = randn(rng, ir.F32, attnB, attnH, tc.nk, attnDv)
			q := input(c.b, "q", ir.F32, sym("B"), sym("H"), sym("N"), sym("D"))
			k := input(c.b, "k", ir.F32, sym("B"), sym("H"), sym("M"), sym("D"))
			vv := input(c.b, "v", ir.F32, sym("B"), sym("H"), sym("M"), sym("E"))
			var caps []*ir.Instr
			if tc.caps != nil {
				caps = tc.caps(c, rng)
			}
			scale := 1 / math.Sqrt(attnD)
			op := func(returns string, args ...*ir.Instr) *ir.Instr {
				a := attrs("scale", ir.FloatAttr(scale), "returns", ir.WordAttr(returns))
				if tc.mask != nil {
					a["mask"] = ir.ExprAttr(tc.mask)
				}
				if tc.score != nil {
					a["score"] = ir.ExprAttr(tc.score)
				}
				return c.op(ir.OpAttention, a, append(args, caps...)...)
			}
			out := op("out", q, k, vv)
			probs := op("probs", q, k)
			logprobs := op("logprobs", q, k)
			if err := c.b.Err(); err != nil {
				t.Fatal(err)
			}
			res, err := eval.Run(c.b.M, eval.Env{Inputs: c.inputs, Syms: map[string]int64{"W": window}})
			if err != nil {
				t.Fatal(err)
			}
			wantOut, wantProbs, wantLogprobs := naiveAttention(tc, c.inputs, scale)
			checkRel(t, "out", res.Values[out.ID], wantOut, 1e-12)
			checkRel(t, "probs", res.Values[probs.ID], wantProbs, 1e-12)
			checkRel(t, "logprobs", res.Values[logprobs.ID], wantLogprobs, 1e-12)

			// The masked cases must really mask something, and the
			// fully masked row must come out as the op table says.
			if tc.goMask != nil && !contains(wantLogprobs.Data, math.Inf(-1)) {
				t.Errorf("mask %s hides no key; the case tests nothing", tc.mask)
			}
			if tc.name == "fully masked row" {
				got := res.Values[out.ID]
				for b := range attnB {
					for h := range attnH {
						for e := range attnDv {
							if x := got.At(b, h, 0, e); x != 0 {
								t.Errorf("out[%d, %d, 0, %d] = %v for a fully masked row, want 0", b, h, e, x)
							}
						}
						for j := range tc.nk {
							if p, lp := res.Values[probs.ID].At(b, h, 0, j), res.Values[logprobs.ID].At(b, h, 0, j); p != 0 || !math.IsInf(lp, -1) {
								t.Errorf("probs, logprobs[%d, %d, 0, %d] = %v, %v for a fully masked row, want 0, -Inf", b, h, j, p, lp)
							}
						}
					}
				}
			}
		})
	}
}

func contains(xs []float64, x float64) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// TestAttentionBoundSymbols checks that the symbols the expressions read
// are those the run bound.
func TestAttentionBoundSymbols(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	c := newCtx("B", "H", "N", "M", "D", "E", "S", "W")
	c.inputs["q"] = randn(rng, ir.F32, attnB, attnH, 5, attnD)
	c.inputs["k"] = randn(rng, ir.F32, attnB, attnH, 7, attnD)
	c.inputs["source"] = eval.NewTensor(ir.Bool, prefix)
	input(c.b, "q", ir.F32, sym("B"), sym("H"), sym("N"), sym("D"))
	input(c.b, "k", ir.F32, sym("B"), sym("H"), sym("M"), sym("D"))
	input(c.b, "source", ir.Bool, sym("S"))
	res := c.run(t)
	want := map[string]int64{"B": attnB, "H": attnH, "N": 5, "M": 7, "D": attnD, "S": prefix}
	for s, n := range want {
		if res.Syms[s] != n {
			t.Errorf("symbol %s = %d, want %d", s, res.Syms[s], n)
		}
	}
	if _, ok := res.Syms["W"]; ok {
		t.Errorf("W is bound though nothing determines it")
	}
}
