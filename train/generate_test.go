package train

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/attnc/attnc/runtime"
)

func TestSample(t *testing.T) {
	row := []float32{0.5, 3, -1, 2.9, float32(nan())}
	rng := rand.New(rand.NewPCG(1, 1))
	assert.Equal(t, 1, sample(row, 0, 0, rng), "temperature 0 takes the highest score")
	seen := map[int]int{}
	for range 2000 {
		seen[sample(row, 1, 2, rng)]++
	}
	assert.Len(t, seen, 2, "top-k 2 samples among the two highest: %v", seen)
	assert.InDelta(t, 1/(1+0.904837), float64(seen[1])/2000, 0.04, "in proportion to e^score")
	a := rand.New(rand.NewPCG(5, 5))
	b := rand.New(rand.NewPCG(5, 5))
	for range 50 {
		require.Equal(t, sample(row, 0.7, 0, a), sample(row, 0.7, 0, b), "a seed repeats")
	}
	assert.NotEqual(t, 4, sample(row, 100, 0, rng), "a NaN score is never chosen")
}

func nan() float64 { var z float64; return z / z }

// echoLM predicts, at every position, the byte after the one there
// ('a' → 'b'), with certainty, and counts the context lengths it saw.
type echoLM struct{ widths []int }

func (m *echoLM) ForwardMap(in map[string]*runtime.Tensor) (map[string]*runtime.Tensor, error) {
	tok := in["tokens"]
	bs, n := tok.Shape[0], tok.Shape[1]
	m.widths = append(m.widths, n)
	logits := runtime.New(runtime.F32, bs, n, 256)
	for p := 0; p < bs*n; p++ {
		for v := range 256 {
			logits.F[p*256+v] = -10
		}
		logits.F[p*256+int(tok.I[p]+1)%256] = 10
	}
	return map[string]*runtime.Tensor{"output:logits": logits}, nil
}
func (m *echoLM) LossAndGradMap(in map[string]*runtime.Tensor) (map[string]*runtime.Tensor, error) {
	return m.ForwardMap(in)
}
func (m *echoLM) Params() []runtime.Named { return nil }
func (m *echoLM) Grads() []runtime.Named  { return nil }

func TestGenerate(t *testing.T) {
	m := &echoLM{}
	var out strings.Builder
	rate, cached, err := Generate(&out, m, GenerateOptions{Prompt: "ab", N: 5, Temperature: 0.5, TopK: 3, Seed: 1, Context: 4})
	require.NoError(t, err)
	assert.False(t, cached)
	assert.Equal(t, "abcdefg", out.String())
	assert.Positive(t, rate)
	assert.Equal(t, []int{2, 3, 4, 4, 4}, m.widths, "the model reads the last Context tokens")

	stub, err := newRecallStub(1)
	require.NoError(t, err)
	_, _, err = Generate(&out, stub, GenerateOptions{Prompt: "x", N: 1})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "add `output logits")
	for _, o := range []GenerateOptions{{Prompt: "x"}, {Prompt: "x", N: 1, Temperature: -1}, {Prompt: "x", N: 1, TopK: -2}, {N: 3}} {
		assert.Error(t, o.Validate(), "%+v", o)
	}
}

// predict on an lm run shows each window and the byte the model expects
// after each position.
func TestPredictLM(t *testing.T) {
	task := &lmTask{data: []byte("abcdefghijklmnopqrstuvwxyz"), length: 5, path: "abc.txt"}
	b := task.Batch(rand.New(rand.NewPCG(1, 1)), 2)
	var out strings.Builder
	require.NoError(t, predict(&out, &echoLM{}, task, b))
	assert.Equal(t, 2, strings.Count(out.String(), "(the most likely next byte at each position: 5 of 5 right)"), out.String())
	assert.Contains(t, out.String(), "text     \"")
}
