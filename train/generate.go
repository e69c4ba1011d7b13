package train

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
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
	// NoCache runs Forward over the window for every token even where
	// attnc compiled a decode step (to compare the two).
	NoCache bool
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
// what follows it to out, as the bytes come. The model reads at most the
// last opts.Context tokens. Where attnc compiled the model's decode step
// (SetDecoder), each token costs one step over the cached keys and
// values; otherwise, or with opts.NoCache, each token runs Forward over
// the window. It returns the tokens generated a second and whether the
// cache was used.
func Generate(out io.Writer, m Model, opts GenerateOptions) (float64, bool, error) {
	if err := opts.Validate(); err != nil {
		return 0, false, err
	}
	ctx := max(opts.Context, 2)
	tokens := make([]int32, 0, len(opts.Prompt)+opts.N)
	for _, b := range []byte(opts.Prompt) {
		tokens = append(tokens, int32(b))
	}
	if _, err := io.WriteString(out, opts.Prompt); err != nil {
		return 0, false, err
	}
	rng := rand.New(rand.NewPCG(opts.Seed, 0x6e6e))
	if newDecoder != nil && !opts.NoCache {
		rate, err := generateCached(out, m, opts, tokens, ctx, rng)
		return rate, true, err
	}
	start := time.Now()
	for range opts.N {
		window := tokens[max(0, len(tokens)-ctx):]
		in := runtime.FromI32([]int{1, len(window)}, append([]int32(nil), window...))
		res, err := m.ForwardMap(Batch{"tokens": in})
		if err != nil {
			return 0, false, err
		}
		logits, ok := res["output:logits"]
		if !ok || logits.DType != runtime.F32 || len(logits.Shape) != 3 || logits.Shape[1] != len(window) {
			return 0, false, errors.New("generate needs the model's next-token scores at every position: add `output logits = …` (f32[B, N, vocab]) to the model")
		}
		v := logits.Shape[2]
		next, err := emit(out, sample(logits.F[(len(window)-1)*v:len(window)*v], opts.Temperature, opts.TopK, rng))
		if err != nil {
			return 0, false, err
		}
		tokens = append(tokens, next)
	}
	return float64(opts.N) / max(time.Since(start).Seconds(), 1e-9), false, nil
}

// emit writes a sampled token as its byte.
func emit(out io.Writer, next int) (int32, error) {
	if next > 255 {
		return 0, fmt.Errorf("the model chose token %d, which is no byte: a byte-level model's vocabulary is 256", next)
	}
	_, err := out.Write([]byte{byte(next)})
	return int32(next), err
}

// generateCached is Generate with the decode step: the prompt is fed one
// token at a time, then each sampled token. When the tokens fed reach
// the context the model was trained on, the step starts over from the
// last half of them (its positions would otherwise pass the longest it
// saw in training).
func generateCached(out io.Writer, m Model, opts GenerateOptions, tokens []int32, ctx int, rng *rand.Rand) (float64, error) {
	d, err := newDecoder(m.Params())
	if err != nil {
		return 0, err
	}
	// A step's ops are a row each: handing their chunks to other cores
	// costs more than it saves, so they run on this goroutine.
	var rate float64
	runtime.RunShards(1, true, func(int) { rate, err = decode(d, out, opts, tokens, ctx, rng) })
	return rate, err
}

func decode(d Decoder, out io.Writer, opts GenerateOptions, tokens []int32, ctx int, rng *rand.Rand) (float64, error) {
	var err error
	start := time.Now()
	var logits []float32
	refeed := func(from []int32) error {
		d.Reset()
		for _, tok := range from {
			if logits, err = d.Step(tok); err != nil {
				return err
			}
		}
		return nil
	}
	if err := refeed(tokens[max(0, len(tokens)-ctx+1):]); err != nil {
		return 0, err
	}
	for range opts.N {
		next, err := emit(out, sample(logits, opts.Temperature, opts.TopK, rng))
		if err != nil {
			return 0, err
		}
		tokens = append(tokens, next)
		if d.Len()+1 >= ctx {
			err = refeed(tokens[len(tokens)-ctx/2:])
		} else {
			logits, err = d.Step(next)
		}
		if err != nil {
			return 0, err
		}
	}
	return float64(opts.N) / max(time.Since(start).Seconds(), 1e-9), nil
}

// sample returns a token drawn from the scores row: the highest at
// temperature 0, else from softmax(row/temperature) over the topK highest
// (all when topK is 0). Non-finite scores never win; ties go to the
// lower token.
func sample(row []float32, temperature float64, topK int, rng *rand.Rand) int {
	finite := func(x float32) bool { return !math.IsNaN(float64(x)) && !math.IsInf(float64(x), 0) }
	better := func(i, j int) bool { return row[i] > row[j] || row[i] == row[j] && i < j }
	if temperature == 0 {
		best := -1
		for i, x := range row {
			if finite(x) && (best < 0 || better(i, best)) {
				best = i
			}
		}
		return max(best, 0)
	}
	// The topK best, kept in order by insertion: k is small next to the
	// vocabulary, and this runs once a token.
	k := topK
	if k <= 0 || k > len(row) {
		k = len(row)
	}
	idx := make([]int, 0, k)
	for i, x := range row {
		if !finite(x) || len(idx) == k && !better(i, idx[k-1]) {
			continue
		}
		at := len(idx)
		for at > 0 && better(i, idx[at-1]) {
			at--
		}
		if len(idx) < k {
			idx = append(idx, 0)
		}
		copy(idx[at+1:], idx[at:len(idx)-1])
		idx[at] = i
	}
	if len(idx) == 0 {
		return 0
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
