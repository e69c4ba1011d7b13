package train

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/attnc/attnc/runtime"
)

// GenerateOptions are attnc generate's settings.
type GenerateOptions struct {
	Prompt      string
	N           int     // tokens to generate
	Temperature float64 // 0: the most likely token each time
	TopK        int     // sample among the k most likely (0: all)
	Seed        uint64
	// Context is how many tokens the model reads at once (the last ones):
	// the window it was trained on, len+1 of the lm task.
	Context int
}

// Validate checks the options' ranges.
func (o GenerateOptions) Validate() error {
	switch {
	case o.N < 1:
		return fmt.Errorf("-n must be at least 1, got %d", o.N)
	case o.Temperature < 0 || math.IsNaN(o.Temperature) || math.IsInf(o.Temperature, 0):
		return fmt.Errorf("-temperature must be 0 or more, got %v", o.Temperature)
	case o.TopK < 0:
		return fmt.Errorf("-top-k must not be negative, got %d", o.TopK)
	case o.Prompt == "":
		return errors.New("-prompt must not be empty: the model continues a text")
	}
	return nil
}

// Generate continues opts.Prompt by opts.N bytes, sampled one at a time
// from a byte-level language model (the lm task's: input tokens, output
// logits over the next byte at each position), and writes the prompt and
// what follows it to out, as the bytes come. Each token runs the model on
// the last opts.Context tokens (no cache of keys and values: the cost of
// a token grows with the context). It returns the tokens generated a
// second.
func Generate(out io.Writer, m Model, opts GenerateOptions) (float64, error) {
	if err := opts.Validate(); err != nil {
		return 0, err
	}
	ctx := max(opts.Context, 2)
	tokens := make([]int32, 0, len(opts.Prompt)+opts.N)
	for _, b := range []byte(opts.Prompt) {
		tokens = append(tokens, int32(b))
	}
	if _, err := io.WriteString(out, opts.Prompt); err != nil {
		return 0, err
	}
	rng := rand.New(rand.NewPCG(opts.Seed, 0x6e6e))
	start := time.Now()
	for range opts.N {
		window := tokens[max(0, len(tokens)-ctx):]
		in := runtime.FromI32([]int{1, len(window)}, append([]int32(nil), window...))
		res, err := m.ForwardMap(Batch{"tokens": in})
		if err != nil {
			return 0, err
		}
		logits, ok := res["output:logits"]
		if !ok || logits.DType != runtime.F32 || len(logits.Shape) != 3 || logits.Shape[1] != len(window) {
			return 0, errors.New("generate needs the model's next-token scores at every position: add `output logits = …` (f32[B, N, vocab]) to the model")
		}
		v := logits.Shape[2]
		next := sample(logits.F[(len(window)-1)*v:len(window)*v], opts.Temperature, opts.TopK, rng)
		if next > 255 {
			return 0, fmt.Errorf("the model chose token %d, which is no byte: a byte-level model's vocabulary is 256", next)
		}
		tokens = append(tokens, int32(next))
		if _, err := out.Write([]byte{byte(next)}); err != nil {
			return 0, err
		}
	}
	return float64(opts.N) / max(time.Since(start).Seconds(), 1e-9), nil
}

// sample returns a token drawn from the scores row: the highest at
// temperature 0, else from softmax(row/temperature) over the topK highest
// (all when topK is 0). Non-finite scores never win.
func sample(row []float32, temperature float64, topK int, rng *rand.Rand) int {
	idx := make([]int, 0, len(row))
	for i, x := range row {
		if !math.IsNaN(float64(x)) && !math.IsInf(float64(x), 0) {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return 0
	}
	sort.SliceStable(idx, func(a, b int) bool { return row[idx[a]] > row[idx[b]] })
	if temperature == 0 {
		return idx[0]
	}
	if topK > 0 && topK < len(idx) {
		idx = idx[:topK]
	}
	top := float64(row[idx[0]])
	w := make([]float64, len(idx))
	total := 0.0
	for i, j := range idx {
		w[i] = math.Exp((float64(row[j]) - top) / temperature)
		total += w[i]
	}
	u := rng.Float64() * total
	for i, x := range w {
		if u < x {
			return idx[i]
		}
		u -= x
	}
	return idx[len(idx)-1]
}
