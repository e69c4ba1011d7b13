package tests

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/attnc/attnc/ir"
	"github.com/attnc/attnc/ir/eval"
	"github.com/attnc/attnc/lang"
	"github.com/attnc/attnc/passes"
)

// stepAll runs a decode step over tokens one at a time in the reference
// interpreter, carrying its states, and returns the logits of each
// position, [n][V].
func stepAll(t *testing.T, step *passes.DecodeStep, params map[string]*eval.Tensor, tokens []int) [][]float64 {
	t.Helper()
	return stepAllWith(t, step, params, tokens, nil)
}

// stepAllWith is stepAll with inputs given whole at every step (an
// encoder's source).
func stepAllWith(t *testing.T, step *passes.DecodeStep, params map[string]*eval.Tensor, tokens []int, static map[string]*eval.Tensor) [][]float64 {
	t.Helper()
	states := map[string]*eval.Tensor{}
	for _, s := range step.States {
		shape := make([]int, s.Type.Rank())
		for i, d := range s.Type.Shape {
			switch {
			case i == 0:
				shape[i] = 1
			case i == s.Axis:
				shape[i] = 0
			default:
				n, ok := d.IsConst()
				require.True(t, ok, "state %s has the dim %s", s.Input, d)
				shape[i] = int(n)
			}
		}
		states[s.Input] = eval.NewTensor(s.Type.DType, shape...)
	}
	var out [][]float64
	for _, tok := range tokens {
		in := map[string]*eval.Tensor{step.Tokens: {DType: ir.I32, Shape: []int{1, 1}, Data: []float64{float64(tok)}}}
		for k, v := range states {
			in[k] = v
		}
		for k, v := range static {
			in[k] = v
		}
		res, err := eval.Run(step.Module, eval.Env{Inputs: in, Params: params})
		require.NoError(t, err)
		logits := res.Outputs[step.Logits]
		require.GreaterOrEqual(t, len(logits.Shape), 2)
		out = append(out, append([]float64(nil), logits.Data...))
		for _, s := range step.States {
			states[s.Input] = res.Outputs[s.Output]
		}
	}
	return out
}

// The decode step of a causal model, run one token at a time with its
// caches, gives the logits Forward gives at every position (reference
// interpreter, fresh random weights and tokens).
func TestDecodeStepMatchesForward(t *testing.T) {
	models := []struct {
		name string
		m    *lang.Model
	}{
		{"hybrid_ssm (scan, causal and window attention, positions)", elaborate(t, "hybrid_ssm.attn", ints("d", 16, "heads", 2, "layers", 2, "window", 3))},
		{"transformer LM", elaborateSource(t, "gen_lm.attn", `import "std/layers.attn"

model gen_lm {
  config { vocab = 32, d = 16, heads = 2, layers = 2, max_len = 32 }
  input tokens: i32[B, N]
  let x = embed(tokens, vocab, d) + embed(positions(tokens), max_len, d)
  repeat i in 0..layers {
    x = transformer_layer(x, heads, causal)
  }
  let logits = linear(norm(x), vocab)
  loss cross_entropy(logits[:, :-1], tokens[:, 1:])
  output logits = logits
}
`)},
	}
	models = append(models, struct {
		name string
		m    *lang.Model
	}{"token shift (a state of the row before)", elaborateSource(t, "shift_lm.attn", `import "std/layers.attn"

model shift_lm {
  config { vocab = 32, d = 16, max_len = 32 }
  input tokens: i32[B, N]
  let e = embed(tokens, vocab, d)
  let x = e + linear(shift(e), d) + embed(positions(tokens), max_len, d)
  x = transformer_layer(x, 2, causal)
  let logits = linear(norm(x + shift(x)), vocab)
  loss cross_entropy(logits[:, :-1], tokens[:, 1:])
  output logits = logits
}
`)}, struct {
		name string
		m    *lang.Model
	}{"no attention (no state)", elaborateSource(t, "plain_lm.attn", `model plain_lm {
  input tokens: i32[B, N]
  let logits = linear(layer_norm(embed(tokens, 32, 8)), 32)
  loss cross_entropy(logits[:, :-1], tokens[:, 1:])
  output logits = logits
}
`)})
	for i, c := range models {
		t.Run(c.name, func(t *testing.T) {
			step, err := passes.Decode(c.m.IR, "logits")
			require.NoError(t, err)
			params, err := eval.InitParams(c.m.IR, int64(3+i))
			require.NoError(t, err)
			rng := rand.New(rand.NewPCG(9, uint64(i)))
			for _, w := range params {
				for j := range w.Data {
					w.Data[j] += 0.2 * rng.NormFloat64()
				}
			}
			const n = 11
			tokens := make([]int, n)
			in := map[string]*eval.Tensor{}
			for _, x := range c.m.IR.Inputs() {
				tt := eval.NewTensor(x.Type.DType, 1, n)
				for j := range tt.Data {
					tokens[j] = rng.IntN(32)
					tt.Data[j] = float64(tokens[j])
				}
				in[x.Name()] = tt
			}
			in["tokens"].Data = make([]float64, n)
			for j := range tokens {
				in["tokens"].Data[j] = float64(tokens[j])
			}
			ref, err := eval.Run(c.m.IR, eval.Env{Inputs: in, Params: params})
			require.NoError(t, err)
			want := ref.Outputs["logits"]
			v := want.Shape[2]
			got := stepAll(t, step, params, tokens)
			require.Len(t, got, n)
			worst := 0.0
			for p := range n {
				for j := range v {
					worst = math.Max(worst, math.Abs(got[p][j]-want.Data[p*v+j]))
				}
			}
			assert.Less(t, worst, 1e-9, "largest difference from Forward's logits")
		})
	}
}

// What decoding cannot derive is an error that names the instruction.
func TestDecodeRefusals(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{`import "std/layers.attn"
model m {
  input tokens: i32[B, N]
  let x = embed(tokens, 8, 4)
  output logits = self_attn(x, 1)
  loss mean(x)
}`, "has no mask, so each position attends to later ones"},
		{`import "std/layers.attn"
mask band = abs(q - k) < 2
model m {
  input tokens: i32[B, N]
  let x = embed(tokens, 8, 4)
  output logits = self_attn(x, 1, band)
  loss mean(x)
}`, "admits key 1 for query 0: the model is not causal"},
		{`model m {
  input tokens: i32[B, N]
  let x = embed(tokens, 8, 4) + embed(positions(tokens), 8, 4)
  output logits = x
  loss mean(x)
}`, "reads positions but has no attention"},
		{`model m {
  input tokens: i32[B, N]
  let x = embed(tokens, 8, 4)
  output logits = softmax(x, 1)
  loss mean(x)
}`, "acts along the sequence"},
		{`model m {
  input tokens: i32[B, N]
  let x = embed(tokens, 8, 4)
  output logits = x + shift(x, 2)
  loss mean(x)
}`, "acts along the sequence"},
		{`model m {
  input tokens: i32[B, N]
  let x = embed(tokens, 8, 4)
  output logits = x[:, :-1]
  loss mean(x)
}`, "input of tokens with its length N"},
	} {
		m := elaborateSource(t, "m.attn", c.src)
		_, err := passes.Decode(m.IR, "logits")
		require.Error(t, err)
		assert.Contains(t, err.Error(), c.want)
	}
}

// The attention probe gives each attention op's probabilities: rows that
// sum to 1 over the keys the mask admits, none beyond it.
func TestProbeAttention(t *testing.T) {
	m := elaborate(t, "hybrid_ssm.attn", ints("d", 16, "heads", 2, "layers", 2, "window", 3))
	probe, probes, err := passes.ProbeAttention(m.IR)
	require.NoError(t, err)
	require.Len(t, probes, 2)
	assert.Contains(t, probes[1].Label, "attention 2 of 2 (")
	assert.Contains(t, probes[1].Label, "), mask k <= q && q - k < 3")
	all, err := eval.InitParams(m.IR, 5)
	require.NoError(t, err)
	params := map[string]*eval.Tensor{} // the probe reads the weights up to the last attention
	for _, p := range probe.Params() {
		params[p.Name()] = all[p.Name()]
	}
	rng := rand.New(rand.NewPCG(3, 4))
	const n = 7
	in := map[string]*eval.Tensor{}
	for _, x := range probe.Inputs() {
		tt := eval.NewTensor(x.Type.DType, 2, n)
		for j := range tt.Data {
			tt.Data[j] = float64(rng.IntN(32))
		}
		in[x.Name()] = tt
	}
	res, err := eval.Run(probe, eval.Env{Inputs: in, Params: params})
	require.NoError(t, err)
	for i, p := range probes {
		probs := res.Outputs[p.Output]
		require.Equal(t, []int{2, 2, n, n}, probs.Shape)
		for row := 0; row < 2*2*n; row++ {
			q := row % n
			sum := 0.0
			for k := range n {
				v := probs.Data[row*n+k]
				admitted := k <= q && (i == 0 || q-k < 3)
				if !admitted {
					assert.Zero(t, v, "probe %d row %d key %d is masked", i, row, k)
				}
				sum += v
			}
			assert.InDelta(t, 1, sum, 1e-9, "probe %d row %d", i, row)
		}
	}
	noAttn := elaborateSource(t, "plain.attn", `model plain {
  input tokens: i32[B, N]
  let logits = linear(embed(tokens, 8, 4), 8)
  loss cross_entropy(logits[:, :-1], tokens[:, 1:])
}
`)
	_, _, err = passes.ProbeAttention(noAttn.IR)
	assert.ErrorContains(t, err, "has no attention")
}

// An encoder-decoder decodes its target one token at a time, the source
// given whole at every step: seq2seq's greedy predictions (output pred)
// and, for a model with a padding mask on its cross-attention, the
// logits, equal Forward's at every position.
func TestDecodeEncoderDecoder(t *testing.T) {
	for i, c := range []struct {
		m      *lang.Model
		output string
	}{
		{elaborate(t, "seq2seq.attn", ints("d", 16, "heads", 2, "enc_layers", 1, "dec_layers", 2)), "pred"},
		{elaborateSource(t, "pads.attn", `import "std/layers.attn"

mask src_pad(n) = k < n[b]

model pads {
  input src: i32[B, S]
  input tgt: i32[B, T]
  input src_len: i32[B]
  let enc = self_attn(embed(src, 16, 8), 2, src_pad(src_len))
  let dec = self_attn(embed(tgt, 16, 8) + embed(positions(tgt), 16, 8), 2, causal)
  let logits = linear(norm(dec + cross_attn(dec, enc, 2, src_pad(src_len))), 16)
  loss cross_entropy(logits[:, :-1], tgt[:, 1:])
  output logits = logits
}
`), "logits"},
	} {
		step, err := passes.Decode(c.m.IR, c.output)
		require.NoError(t, err)
		require.Equal(t, "tgt", step.Tokens)
		params, err := eval.InitParams(c.m.IR, int64(11+i))
		require.NoError(t, err)
		rng := rand.New(rand.NewPCG(13, uint64(i)))
		for _, w := range params {
			for j := range w.Data {
				w.Data[j] += 0.3 * rng.NormFloat64()
			}
		}
		const s, n = 6, 7
		src := eval.NewTensor(ir.I32, 1, s)
		for j := range src.Data {
			src.Data[j] = float64(2 + rng.IntN(14))
		}
		tokens := make([]int, n)
		tgt := eval.NewTensor(ir.I32, 1, n)
		for j := range tokens {
			tokens[j] = 1 + rng.IntN(15)
			tgt.Data[j] = float64(tokens[j])
		}
		in := map[string]*eval.Tensor{"src": src, "tgt": tgt}
		static := map[string]*eval.Tensor{"src": src}
		for _, x := range c.m.IR.Inputs() {
			if x.Name() == "src_len" {
				in["src_len"] = &eval.Tensor{DType: ir.I32, Shape: []int{1}, Data: []float64{4}}
				static["src_len"] = in["src_len"]
			}
		}
		ref, err := eval.Run(c.m.IR, eval.Env{Inputs: in, Params: params})
		require.NoError(t, err)
		want := ref.Outputs[c.output]
		got := stepAllWith(t, step, params, tokens, static)
		per := len(want.Data) / n
		for p := range n {
			for j := range per {
				assert.InDelta(t, want.Data[p*per+j], got[p][j], 1e-9, "%s position %d", c.output, p)
			}
		}
	}
}

// Pointers finds pointer_sort's scores, choices and shape, and nothing in
// a language model or an encoder-decoder.
func TestPointers(t *testing.T) {
	p, err := passes.Pointers(elaborate(t, "pointer_sort.attn", nil).IR)
	require.NoError(t, err)
	assert.Equal(t, passes.PointerDecode{Scores: "logp", Target: "perm", Shape: "x"}, *p)
	for _, name := range []string{"seq2seq.attn", "char_lm.attn", "mixed_span_lm.attn"} {
		_, err := passes.Pointers(elaborate(t, name, nil).IR)
		assert.Error(t, err, name)
	}
}

// The probe's labels say where each attention op is, by its weights.
func TestProbeLabels(t *testing.T) {
	_, probes, err := passes.ProbeAttention(elaborate(t, "pointer_sort.attn", nil).IR)
	require.NoError(t, err)
	var labels []string
	for _, p := range probes {
		labels = append(labels, p.Label)
	}
	for _, l := range labels {
		t.Log(l)
	}
	require.Len(t, labels, 10)
	assert.Contains(t, labels[0], "(enc_layers.0.transformer_layer.attn)")
	assert.Contains(t, labels[3], "(dec_layers.0.decoder_layer.")
	assert.Contains(t, labels[3], "mask k <= q")
}

// A capture computed along the decoded sequence (music_rel's Q·Eᵀ) has
// only the current row in a step, and the score reads it at other rows:
// Decode refuses it by name, so generation reruns Forward.
func TestDecodeRefusesSequenceCaptures(t *testing.T) {
	m := elaborate(t, "music_rel.attn", ints("d", 16, "heads", 2, "layers", 1, "span", 4))
	_, err := passes.Decode(m.IR, "logits")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "along the decoded sequence")
}
