package tests

import (
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/attnc/attnc/ir"
	"github.com/attnc/attnc/ir/eval"
	"github.com/attnc/attnc/lang"
	"github.com/attnc/attnc/passes"
	"github.com/attnc/attnc/stdlib"
)

// seed describes how to run one stdlib model small: config overrides
// that shrink it, symbol sizes, and inputs that mean something for it.
type seed struct {
	file   string
	config map[string]lang.Value
	syms   map[string]int64
	inputs func(m *ir.Module, syms map[string]int64, rng *rand.Rand) map[string]*eval.Tensor
}

func ints(kv ...any) map[string]lang.Value {
	out := map[string]lang.Value{}
	for i := 0; i < len(kv); i += 2 {
		out[kv[i].(string)] = lang.Value{Kind: "int", Int: int64(kv[i+1].(int))}
	}
	return out
}

// tokens fills an i32 [B, N] tensor with values in [lo, hi).
func tokens(rng *rand.Rand, b, n int64, lo, hi int) *eval.Tensor {
	t := eval.NewTensor(ir.I32, int(b), int(n))
	for i := range t.Data {
		t.Data[i] = float64(lo + rng.IntN(hi-lo))
	}
	return t
}

var seeds = []seed{
	{
		file:   "seq2seq.attn",
		config: ints("d", 16, "heads", 2, "enc_layers", 1, "dec_layers", 1),
		syms:   map[string]int64{"B": 3, "S": 5, "T": 6},
		inputs: func(m *ir.Module, s map[string]int64, rng *rand.Rand) map[string]*eval.Tensor {
			return map[string]*eval.Tensor{"src": tokens(rng, s["B"], s["S"], 0, 16), "tgt": tokens(rng, s["B"], s["T"], 0, 16)}
		},
	},
	{
		file:   "pointer_sort.attn",
		config: ints("d", 16, "heads", 2, "enc_layers", 1, "dec_layers", 1),
		syms:   map[string]int64{"B": 3, "N": 6},
		inputs: sortInputs,
	},
	{
		file:   "ptrnet_lstm.attn",
		config: ints("d", 8),
		syms:   map[string]int64{"B": 3, "N": 6},
		inputs: sortInputs,
	},
	{
		file:   "titans_mem.attn",
		config: ints("d", 8, "heads", 2, "layers", 1, "window", 3),
		syms:   map[string]int64{"B": 3, "N": 8},
		inputs: recallInputs,
	},
	{
		file:   "lightning_lm.attn",
		config: ints("d", 16, "heads", 2, "layers", 1, "len", 8, "chunk", 4),
		syms:   map[string]int64{"B": 3},
		inputs: func(m *ir.Module, s map[string]int64, rng *rand.Rand) map[string]*eval.Tensor {
			return map[string]*eval.Tensor{"tokens": tokens(rng, s["B"], 9, 0, 256)}
		},
	},
	{
		file:   "rat_lm.attn",
		config: ints("d", 16, "heads", 2, "layers", 1, "len", 12, "chunk", 4),
		syms:   map[string]int64{"B": 3},
		inputs: func(m *ir.Module, s map[string]int64, rng *rand.Rand) map[string]*eval.Tensor {
			return map[string]*eval.Tensor{"tokens": tokens(rng, s["B"], 13, 0, 256)}
		},
	},
	{
		file:   "longvq.attn",
		config: ints("d", 16, "heads", 2, "layers", 1, "codes", 4, "len", 8, "chunk", 4),
		syms:   map[string]int64{"B": 3},
		inputs: func(m *ir.Module, s map[string]int64, rng *rand.Rand) map[string]*eval.Tensor {
			return map[string]*eval.Tensor{"tokens": tokens(rng, s["B"], 9, 0, 256)}
		},
	},
	{
		file:   "seqboat.attn",
		config: ints("d", 16, "heads", 2, "layers", 1, "keep", 4),
		syms:   map[string]int64{"B": 3, "N": 9},
		inputs: func(m *ir.Module, s map[string]int64, rng *rand.Rand) map[string]*eval.Tensor {
			return map[string]*eval.Tensor{"tokens": tokens(rng, s["B"], s["N"], 0, 256)}
		},
	},
	{
		file:   "routing_lm.attn",
		config: ints("d", 16, "heads", 2, "layers", 1, "clusters", 2, "window", 3),
		syms:   map[string]int64{"B": 3, "N": 9},
		inputs: func(m *ir.Module, s map[string]int64, rng *rand.Rand) map[string]*eval.Tensor {
			return map[string]*eval.Tensor{"tokens": tokens(rng, s["B"], s["N"], 0, 256)}
		},
	},
	{
		file:   "order_matters.attn",
		config: ints("d", 8, "steps", 2),
		syms:   map[string]int64{"B": 3, "N": 6},
		inputs: sortInputs,
	},
	{
		file:   "hybrid_ssm.attn",
		config: ints("d", 16, "heads", 2, "layers", 2, "window", 3), // a causal layer, then a window
		syms:   map[string]int64{"B": 3, "N": 8},
		inputs: recallInputs,
	},
	{
		file:   "mamba_hybrid.attn",
		config: ints("d", 16, "heads", 2, "layers", 2, "state", 3, "window", 3),
		syms:   map[string]int64{"B": 3, "N": 8},
		inputs: recallInputs,
	},
	{
		file:   "music_rel.attn",
		config: ints("d", 16, "heads", 2, "layers", 2, "span", 4),
		syms:   map[string]int64{"B": 3, "N": 9},
		inputs: func(m *ir.Module, s map[string]int64, rng *rand.Rand) map[string]*eval.Tensor {
			return map[string]*eval.Tensor{"tokens": tokens(rng, s["B"], s["N"], 0, 256)}
		},
	},
	{
		file:   "aaren.attn",
		config: ints("d", 16, "heads", 2, "layers", 2),
		syms:   map[string]int64{"B": 3, "N": 9},
		inputs: func(m *ir.Module, s map[string]int64, rng *rand.Rand) map[string]*eval.Tensor {
			return map[string]*eval.Tensor{"tokens": tokens(rng, s["B"], s["N"], 0, 256)}
		},
	},
	{
		file:   "topk_sparse_lm.attn",
		config: ints("d", 16, "heads", 2, "layers", 1, "len", 64, "bs", 16, "keep", 2),
		syms:   map[string]int64{"B": 3},
		inputs: func(m *ir.Module, s map[string]int64, rng *rand.Rand) map[string]*eval.Tensor {
			return recallInputs(m, map[string]int64{"B": s["B"], "N": 64}, rng)
		},
	},
	{
		file:   "mixed_span_lm.attn",
		config: ints("d", 16, "heads", 2, "layers", 4, "window", 3),
		syms:   map[string]int64{"B": 3, "N": 8},
		inputs: recallInputs,
	},
	{
		file:   "char_lm.attn",
		config: ints("d", 16, "heads", 2, "layers", 2),
		syms:   map[string]int64{"B": 3, "N": 9},
		inputs: func(m *ir.Module, s map[string]int64, rng *rand.Rand) map[string]*eval.Tensor {
			return map[string]*eval.Tensor{"tokens": tokens(rng, s["B"], s["N"], 0, 256)}
		},
	},
	{
		file:   "partial_lm.attn",
		config: ints("d", 16, "heads", 2, "layers", 1),
		syms:   map[string]int64{"B": 3, "S": 4, "T": 5},
		inputs: func(m *ir.Module, s map[string]int64, rng *rand.Rand) map[string]*eval.Tensor {
			return map[string]*eval.Tensor{"src": tokens(rng, s["B"], s["S"], 0, 16), "tgt": tokens(rng, s["B"], s["T"], 0, 16)}
		},
	},
}

func hasRecur(m *ir.Module) bool {
	for _, in := range m.Instrs {
		if in.Op == ir.OpRecur {
			return true
		}
	}
	return false
}

// sortInputs are reals and a permutation (not the sorting one: any
// permutation exercises the pointer's mask).
func sortInputs(m *ir.Module, s map[string]int64, rng *rand.Rand) map[string]*eval.Tensor {
	b, n := int(s["B"]), int(s["N"])
	x := eval.NewTensor(ir.F32, b, n)
	perm := eval.NewTensor(ir.I32, b, n)
	for i := 0; i < b; i++ {
		for j, p := range rng.Perm(n) {
			perm.Data[i*n+j] = float64(p)
		}
		for j := 0; j < n; j++ {
			x.Data[i*n+j] = rng.Float64()
		}
	}
	return map[string]*eval.Tensor{"x": x, "perm": perm}
}

func recallInputs(m *ir.Module, s map[string]int64, rng *rand.Rand) map[string]*eval.Tensor {
	// Targets are -1 (ignored) or a token: both paths of the loss run.
	return map[string]*eval.Tensor{"tokens": tokens(rng, s["B"], s["N"], 0, 64), "targets": tokens(rng, s["B"], s["N"], -1, 64)}
}

// Every stdlib file defines a listed model, and every listed model exists.
func TestSeedsCoverStdlib(t *testing.T) {
	entries, err := stdlib.FS.ReadDir(".")
	require.NoError(t, err)
	var files []string
	for _, e := range entries {
		if e.Name() != "layers.attn" {
			files = append(files, e.Name())
		}
	}
	var covered []string
	for _, s := range seeds {
		covered = append(covered, s.file)
	}
	assert.ElementsMatch(t, files, covered)
	assert.ElementsMatch(t, stdlib.Models, covered)
}

func elaborate(t *testing.T, file string, config map[string]lang.Value) *lang.Model {
	t.Helper()
	src, err := stdlib.FS.ReadFile(file)
	require.NoError(t, err)
	prog, diags := lang.Load(lang.StdPrefix+file, string(src), lang.LoadOptions{Std: stdlib.FS})
	require.Empty(t, diags, "load %s", file)
	m, diags := prog.Elaborate("", lang.ElabOptions{Config: config})
	require.Empty(t, diags, "elaborate %s", file)
	return m
}

// TestStdlibPipeline runs every stdlib model through every stage there
// is: check → elaborate → verify → print → parse → verify → print again,
// then one forward pass in the reference interpreter.
func TestStdlibPipeline(t *testing.T) {
	for _, s := range seeds {
		t.Run(s.file, func(t *testing.T) {
			// The full-size model elaborates and verifies too.
			full := elaborate(t, s.file, nil)
			require.NoError(t, ir.Verify(full.IR))
			_, ok := full.TrainValue("task")
			assert.True(t, ok, "%s has a default task", s.file)

			m := elaborate(t, s.file, s.config)
			require.NoError(t, ir.Verify(m.IR))
			text := ir.Print(m.IR)
			back, err := ir.Parse(s.file+".ir", text)
			require.NoError(t, err)
			require.NoError(t, ir.Verify(back))
			assert.Empty(t, m.IR.Diff(back), "the IR round-trips through its text form")
			assert.Equal(t, text, ir.Print(back))

			params, err := eval.InitParams(back, 1)
			require.NoError(t, err)
			rng := rand.New(rand.NewPCG(7, uint64(len(s.file))))
			res, err := eval.Run(back, eval.Env{Inputs: s.inputs(back, s.syms, rng), Params: params})
			require.NoError(t, err)
			loss, ok := res.Loss()
			require.True(t, ok)
			assert.False(t, math.IsNaN(loss) || math.IsInf(loss, 0), "loss %v is finite", loss)
			assert.Greater(t, loss, 0.0, "a random model has positive cross-entropy")
			t.Logf("loss %.4f", loss)
			for _, o := range back.Outputs {
				if o.Kind != ir.OutMetric {
					continue
				}
				v := res.Outputs[o.Name].Data[0]
				assert.True(t, v >= 0 && v <= 1, "metric %s = %v is a fraction", o.Name, v)
			}
		})
	}
}

// Weight names are stable and readable: they follow the bindings.
func TestWeightNames(t *testing.T) {
	m := elaborate(t, "mixed_span_lm.attn", nil)
	names := map[string]bool{}
	for _, p := range m.IR.Params() {
		names[p.Name()] = true
	}
	for _, want := range []string{
		"tok.weight",
		"pos.weight",
		"layers.0.transformer_layer.attn.q.weight",
		"layers.3.transformer_layer.mlp.down.bias",
		"layers.2.transformer_layer.ln1.weight",
		"out.weight",
		"logits.weight",
	} {
		assert.True(t, names[want], "missing weight %s in %v", want, names)
	}
	again := elaborate(t, "mixed_span_lm.attn", nil)
	assert.Equal(t, ir.Print(m.IR), ir.Print(again.IR), "elaboration is deterministic")
}

// The mixed-span model uses full attention in one layer of four and a
// sliding window in the others.
func TestMixedSpanMasks(t *testing.T) {
	m := elaborate(t, "mixed_span_lm.attn", nil)
	var masks []string
	for _, in := range m.IR.Instrs {
		if in.Op == ir.OpAttention {
			masks = append(masks, in.Attrs.Expr("mask").String())
		}
	}
	assert.Equal(t, []string{"k <= q", "k <= q && q - k < 64", "k <= q && q - k < 64", "k <= q && q - k < 64"}, masks)
}

// TestStdlibStepsPerGraphInstruction holds issue 9's goal for every
// stdlib model at its full size: its training step (LossAndGrad) runs at
// most half as many steps — kernels and runtime calls that compute — as
// its graph had instructions after autodiff, and attention returning
// its output runs in the layout its operands come in (no transposes
// around it).
func TestStdlibStepsPerGraphInstruction(t *testing.T) {
	for _, s := range seeds {
		t.Run(s.file, func(t *testing.T) {
			m := elaborate(t, s.file, nil)
			kp, err := passes.Run(m.IR, passes.Options{})
			require.NoError(t, err)
			k, c := kp.Steps("LossAndGrad")
			g := kp.GraphInstrs["LossAndGrad"]
			require.Positive(t, g)
			t.Logf("%d steps (%d kernels, %d calls) for %d graph instructions: %.2f", k+c, k, c, g, float64(k+c)/float64(g))
			if hasRecur(m.IR) {
				// A recurrence's step runs its cell op by op, the cells
				// not fused yet (DECISIONS.md): the goal is not held here.
				t.Logf("has a recur: the ratio is reported, not held")
			} else {
				assert.LessOrEqual(t, 2*(k+c), g, "steps of LossAndGrad against its graph's instructions")
			}
			for _, f := range kp.IR.Funcs {
				for _, in := range f.Body {
					r := in.Attrs.Str("returns")
					if (in.Op == ir.OpAttention || in.Op == ir.OpAttentionGrad) && (r == "" || r == "out") {
						assert.True(t, ir.AttentionBNHD(in.Attrs), "%s: %s", f.Name, in)
					}
				}
			}
		})
	}
}

// Aaren's two forms agree: the reference's form_gap (the largest
// difference between the parallel and the RNN form over the layers) is
// float64 rounding.
// Attentions computed in a cheaper form equal their definitions in
// float64: lightning (lightning_lm's linear attention: intra-chunk
// products, a scanned state across chunks) against the sum over every
// pair; vq_attention (longvq's: per-code sums for earlier chunks) against
// dense causal attention over the same quantised keys; a score's qdot
// (a product before the attention) against the relative embeddings of
// every pair gathered. Each program in tests/testdata/programs outputs
// both forms.
func TestChunkedForms(t *testing.T) {
	for _, c := range []struct{ file, chunked, direct string }{
		{"lightning_forms.attn", "chunked", "naive"},
		{"vq_forms.attn", "chunked", "dense"},
		{"vec_forms.attn", "scored", "pairs"},
	} {
		t.Run(c.file, func(t *testing.T) {
			src, err := os.ReadFile("testdata/programs/" + c.file)
			require.NoError(t, err)
			prog, diags := lang.Load(c.file, string(src), lang.LoadOptions{Std: stdlib.FS})
			require.Empty(t, diags)
			m, diags := prog.Elaborate("", lang.ElabOptions{})
			require.Empty(t, diags)
			params, err := eval.InitParams(m.IR, 5)
			require.NoError(t, err)
			rng := rand.New(rand.NewPCG(3, 4))
			inputs := map[string]*eval.Tensor{}
			for _, name := range []string{"q", "k", "v"} {
				x := eval.NewTensor(ir.F32, 3, 2, 12, 4)
				for i := range x.Data {
					x.Data[i] = 2 * rng.NormFloat64()
				}
				inputs[name] = x
			}
			res, err := eval.Run(m.IR, eval.Env{Inputs: inputs, Params: params})
			require.NoError(t, err)
			chunked, direct := res.Outputs[c.chunked].Data, res.Outputs[c.direct].Data
			gap := 0.0
			for i := range chunked {
				gap = max(gap, math.Abs(chunked[i]-direct[i]))
			}
			assert.Less(t, gap, 1e-9, "the chunked and the direct form differ by %g", gap)
			assert.Greater(t, maxAbs(chunked), 0.1, "the outputs are not all near zero")
		})
	}
}

// order_matters reads its set with no order: permuting the reals (and
// the target permutation to match) leaves its loss as it was, to float64
// rounding. ptrnet_lstm's LSTM encoder reads them in order, so its loss
// moves: the order-matters effect of docs/REPRODUCE.md, by construction.
func TestOrderMattersInvariance(t *testing.T) {
	lossOf := func(file string, config map[string]lang.Value, x, perm *eval.Tensor) float64 {
		m := elaborate(t, file, config)
		params, err := eval.InitParams(m.IR, 7)
		require.NoError(t, err)
		res, err := eval.Run(m.IR, eval.Env{Inputs: map[string]*eval.Tensor{"x": x, "perm": perm}, Params: params})
		require.NoError(t, err)
		l, _ := res.Loss()
		return l
	}
	rng := rand.New(rand.NewPCG(8, 9))
	const b, n = 4, 7
	x, perm := eval.NewTensor(ir.F32, b, n), eval.NewTensor(ir.I32, b, n)
	x2, perm2 := eval.NewTensor(ir.F32, b, n), eval.NewTensor(ir.I32, b, n)
	for i := 0; i < b; i++ {
		row := make([]float64, n)
		for j := range row {
			row[j] = rng.Float64()
		}
		order := make([]int, n) // the sorting permutation
		for j := range order {
			order[j] = j
		}
		sort.Slice(order, func(p, q int) bool { return row[order[p]] < row[order[q]] })
		sigma := rng.Perm(n) // x2[j] = x[sigma[j]]
		where := make([]int, n)
		for j, s := range sigma {
			x.Data[i*n+j] = row[j]
			x2.Data[i*n+j] = row[s]
			where[s] = j
		}
		for t, o := range order {
			perm.Data[i*n+t] = float64(o)
			perm2.Data[i*n+t] = float64(where[o])
		}
	}
	om := ints("d", 8, "steps", 2)
	a, c := lossOf("order_matters.attn", om, x, perm), lossOf("order_matters.attn", om, x2, perm2)
	assert.InDelta(t, a, c, 1e-12*math.Abs(a), "order_matters' loss changed with the input order: %v vs %v", a, c)
	p1, p2 := lossOf("ptrnet_lstm.attn", ints("d", 8), x, perm), lossOf("ptrnet_lstm.attn", ints("d", 8), x2, perm2)
	assert.Greater(t, math.Abs(p1-p2), 1e-6, "ptrnet_lstm's loss did not change with the input order: %v vs %v", p1, p2)
}

func maxAbs(xs []float64) float64 {
	m := 0.0
	for _, x := range xs {
		m = max(m, math.Abs(x))
	}
	return m
}

func TestAarenFormsAgree(t *testing.T) {
	m := elaborate(t, "aaren.attn", ints("d", 16, "heads", 2, "layers", 2))
	params, err := eval.InitParams(m.IR, 3)
	require.NoError(t, err)
	inputs := map[string]*eval.Tensor{"tokens": tokens(rand.New(rand.NewPCG(1, 2)), 3, 20, 0, 256)}
	res, err := eval.Run(m.IR, eval.Env{Inputs: inputs, Params: params, Syms: nil})
	require.NoError(t, err)
	for _, o := range m.IR.Outputs {
		if o.Kind == ir.OutMetric && o.Name == "form_gap" {
			gap := res.Values[o.Value.ID].Data[0]
			assert.Less(t, gap, 1e-12, "the parallel and the RNN form differ by %g", gap)
			return
		}
	}
	t.Fatal("aaren has no metric form_gap")
}
