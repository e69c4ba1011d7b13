package train

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/attnc/attnc/runtime"
)

func task(t *testing.T, name string, ints map[string]int) Task {
	t.Helper()
	tk, err := NewTask(name, Params{Ints: ints, Strings: map[string]string{}})
	require.NoError(t, err)
	return tk
}

func TestTasksAreSeeded(t *testing.T) {
	for _, name := range []string{"copy", "reverse", "sort", "recall"} {
		tk := task(t, name, nil)
		a := tk.Batch(rand.New(rand.NewPCG(1, 2)), 4)
		b := tk.Batch(rand.New(rand.NewPCG(1, 2)), 4)
		c := tk.Batch(rand.New(rand.NewPCG(3, 2)), 4)
		for _, in := range tk.Inputs() {
			assert.Equal(t, a[in.Name], b[in.Name], "%s: same seed, same batch", name)
			assert.Equal(t, in.DType, a[in.Name].DType)
			assert.Equal(t, 4, a[in.Name].Shape[0])
		}
		assert.NotEqual(t, a, c, "%s: another seed, another batch", name)
	}
}

func TestSortTask(t *testing.T) {
	b := task(t, "sort", map[string]int{"n": 7}).Batch(rand.New(rand.NewPCG(1, 1)), 50)
	for e := 0; e < 50; e++ {
		x, p := b["x"].F[e*7:(e+1)*7], b["perm"].I[e*7:(e+1)*7]
		seen := map[int32]bool{}
		for i := range p {
			seen[p[i]] = true
			if i > 0 {
				assert.LessOrEqual(t, x[p[i-1]], x[p[i]])
			}
		}
		assert.Len(t, seen, 7, "perm is a permutation")
	}
}

// order lays the reals out already sorted, or reversed: perm is then the
// identity, or its reverse; a bad order is refused with the choices.
func TestSortTaskOrder(t *testing.T) {
	for _, order := range []string{"sorted", "reversed"} {
		tk, err := NewTask("sort", Params{Ints: map[string]int{"n": 5}, Strings: map[string]string{"order": order}})
		require.NoError(t, err)
		assert.Contains(t, tk.Describe(), order)
		b := tk.Batch(rand.New(rand.NewPCG(2, 2)), 20)
		for e := 0; e < 20; e++ {
			x, p := b["x"].F[e*5:(e+1)*5], b["perm"].I[e*5:(e+1)*5]
			for i := range p {
				want := int32(i)
				if order == "reversed" {
					want = int32(4 - i)
				}
				assert.Equal(t, want, p[i])
				if i > 0 {
					assert.LessOrEqual(t, x[p[i-1]], x[p[i]])
				}
			}
		}
	}
	_, err := NewTask("sort", Params{Strings: map[string]string{"order": "shuffled"}})
	assert.ErrorContains(t, err, "order must be one of random, sorted, reversed")
	_, err = NewTask("sort", Params{Ints: map[string]int{"order": 2}})
	assert.ErrorContains(t, err, "got the number 2")
}

func TestReverseTask(t *testing.T) {
	b := task(t, "reverse", map[string]int{"len": 5, "vocab": 9}).Batch(rand.New(rand.NewPCG(1, 1)), 3)
	for e := 0; e < 3; e++ {
		src, tgt := b["src"].I[e*5:(e+1)*5], b["tgt"].I[e*6:(e+1)*6]
		assert.Equal(t, int32(BOS), tgt[0])
		for i := range src {
			assert.Equal(t, src[4-i], tgt[1+i])
			assert.True(t, src[i] >= 2 && src[i] < 9)
		}
	}
}

func TestRecallTask(t *testing.T) {
	const pairs, n = 4, 20
	b := task(t, "recall", map[string]int{"pairs": pairs, "len": n, "vocab": 32}).Batch(rand.New(rand.NewPCG(1, 1)), 10)
	for e := 0; e < 10; e++ {
		tok, tgt := b["tokens"].I[e*n:(e+1)*n], b["targets"].I[e*n:(e+1)*n]
		value := map[int32]int32{}
		for i := 0; i < pairs; i++ {
			require.GreaterOrEqual(t, tok[2*i], int32(16), "keys come from the upper half")
			value[tok[2*i]] = tok[2*i+1]
		}
		require.Len(t, value, pairs, "keys are distinct")
		queries := 0
		for i, y := range tgt {
			if y == Ignore {
				if i >= 2*pairs {
					assert.Less(t, tok[i], int32(16), "no key outside the pairs and queries")
				}
				continue
			}
			queries++
			assert.GreaterOrEqual(t, i, 2*pairs)
			assert.Equal(t, value[tok[i]], y, "a query's target is its key's value")
		}
		assert.Equal(t, pairs, queries)
	}
}

func TestLMTask(t *testing.T) {
	path := filepath.Join(t.TempDir(), "text.txt")
	require.NoError(t, os.WriteFile(path, []byte(strings.Repeat("hello world. ", 20)), 0o644))
	tk, err := NewTask("lm", Params{Ints: map[string]int{"len": 16}, Strings: map[string]string{"data": path}})
	require.NoError(t, err)
	b := tk.Batch(rand.New(rand.NewPCG(1, 1)), 2)
	assert.Equal(t, []int{2, 17}, b["tokens"].Shape)
	assert.Contains(t, "hello world. hello world. ", string(rune(b["tokens"].I[0])))
}

// The lm task holds out the last tenth of its file, which training
// batches never read and evaluation batches read alone; -val names a
// held-out file instead.
func TestLMTaskHoldsOut(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "text.txt")
	require.NoError(t, os.WriteFile(path, []byte(strings.Repeat("a", 900)+strings.Repeat("z", 100)), 0o644))
	tk, err := NewTask("lm", Params{Ints: map[string]int{"len": 8}, Strings: map[string]string{"data": path}})
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(1, 2))
	count := func(b Batch, c byte) int {
		n := 0
		for _, x := range b["tokens"].I {
			if x == int32(c) {
				n++
			}
		}
		return n
	}
	for range 50 {
		b := tk.Batch(rng, 16)
		require.Zero(t, count(b, 'z'), "a training batch read the held-out tenth")
		e := heldOut(tk).Batch(rng, 16)
		require.Zero(t, count(e, 'a'), "an evaluation batch read the training text")
	}
	assert.Contains(t, tk.Describe(), "the last 100 held out")

	val := filepath.Join(dir, "val.txt")
	require.NoError(t, os.WriteFile(val, []byte(strings.Repeat("v", 40)), 0o644))
	tk, err = NewTask("lm", Params{Ints: map[string]int{"len": 8}, Strings: map[string]string{"data": path, "val": val}})
	require.NoError(t, err)
	assert.Positive(t, count(tk.Batch(rng, 64), 'z'), "with -val the whole file trains")
	assert.Equal(t, 16*9, count(heldOut(tk).Batch(rng, 16), 'v'))
}

// A target no run can reach is refused up front.
func TestTargetIsReachable(t *testing.T) {
	spec := func(task string, target float64) *Spec {
		return &Spec{Model: "m", Source: "m.attn", Schedule: "cosine", Steps: 10, Batch: 2, LR: 1e-3, Task: task, Target: target}
	}
	assert.NoError(t, spec("sort", 0.95).Validate())
	assert.NoError(t, spec("lm", 0).Validate())
	assert.ErrorContains(t, spec("sort", 2).Validate(), "target 2 can never be reached: the sort task's main metric, exact, is a fraction")
	assert.ErrorContains(t, spec("lm", 0.5).Validate(), "the lm task has no metric to stop at")
}

func TestTaskErrors(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty.txt")
	require.NoError(t, os.WriteFile(empty, nil, 0o644))
	short := filepath.Join(t.TempDir(), "short.txt")
	require.NoError(t, os.WriteFile(short, []byte(strings.Repeat("x", 100)), 0o644))
	for _, c := range []struct {
		name string
		p    Params
		want string
	}{
		{"sortt", Params{}, "unknown task \"sortt\" (tasks: copy, lm, pairs, recall, reverse, sort)"},
		{"sort", Params{Ints: map[string]int{"m": 3}}, "task sort has no parameter \"m\""},
		{"sort", Params{Ints: map[string]int{"n": 0}}, "n must be positive"},
		{"sort", Params{Strings: map[string]string{"n": "x"}}, `task sort: n must be a whole number, got "x"`},
		{"lm", Params{Ints: map[string]int{"data": 3}}, "data must be a file name"},
		{"lm", Params{Ints: map[string]int{"len": 16}, Strings: map[string]string{"data": short}}, "too few to hold out its last tenth"},
		{"recall", Params{Ints: map[string]int{"pairs": 10, "len": 12}}, "too short"},
		{"lm", Params{}, "needs a text file: pass --data FILE"},
		{"lm", Params{Strings: map[string]string{"data": "/nonexistent/x.txt"}}, "no such file"},
		{"lm", Params{Strings: map[string]string{"data": empty}}, "has 0 bytes"},
	} {
		_, err := NewTask(c.name, c.p)
		require.Error(t, err, c.name)
		assert.Contains(t, err.Error(), c.want)
	}
}

func named(name string, shape []int, data ...float32) runtime.Named {
	return runtime.Named{Name: name, T: runtime.FromF32(shape, data)}
}

func TestAdamWStep(t *testing.T) {
	w := named("w", []int{1, 2}, 1, -1)
	b := named("b", []int{2}, 0.5, 0.5)
	opt := NewAdamW([]runtime.Named{w, b}, 0.1)
	gw := named("w", []int{1, 2}, 0.2, -0.4)
	gb := named("b", []int{2}, 1, 0)
	require.NoError(t, opt.Step([]runtime.Named{w, b}, []runtime.Named{gw, gb}, 0.01))
	// After one step m̂ = g and v̂ = g², so the update is lr·g/(|g|+ε) = ±lr,
	// plus decay lr·wd·p on the matrix only.
	assert.InDelta(t, 1-0.01-0.01*0.1*1, w.T.F[0], 1e-6)
	assert.InDelta(t, -1+0.01+0.01*0.1*1, w.T.F[1], 1e-6)
	assert.InDelta(t, 0.5-0.01, b.T.F[0], 1e-6, "no weight decay on a vector")
	assert.InDelta(t, 0.5, b.T.F[1], 1e-6, "a zero gradient moves nothing")
	assert.Error(t, opt.Step([]runtime.Named{w}, []runtime.Named{gw, gb}, 0.01))
}

func TestScheduleAndClip(t *testing.T) {
	s := Schedule{Kind: "cosine", LR: 1, Warmup: 10, Steps: 110, MinLR: 0.1}
	assert.InDelta(t, 0.1, s.At(0), 1e-12)
	assert.InDelta(t, 1, s.At(9), 1e-12)
	assert.InDelta(t, 1, s.At(10), 1e-12)
	assert.InDelta(t, 0.55, s.At(10+99/2), 0.01)
	assert.InDelta(t, 0.1, s.At(109), 1e-12)
	for i := 11; i < 110; i++ {
		assert.LessOrEqual(t, s.At(i), s.At(i-1))
	}
	assert.Equal(t, 0.5, Schedule{Kind: "constant", LR: 0.5, Steps: 10}.At(7))

	g := []runtime.Named{named("a", []int{2}, 3, 4)}
	assert.InDelta(t, 5, ClipGlobalNorm(g, 1), 1e-9)
	assert.InDelta(t, 1, GlobalNorm(g), 1e-6)
	assert.InDelta(t, 1, ClipGlobalNorm(g, 0), 1e-6, "0 disables clipping")
	assert.Equal(t, "", FirstBad(g))
	g[0].T.F[1] = float32(math.Inf(1))
	assert.Equal(t, "a", FirstBad(g))
}

// linearModel is a tiny model for testing the loop: y ≈ x·w + b on the
// linearTask, with mean squared error and analytic gradients.
type linearModel struct {
	w, b, gw, gb runtime.Named
	poison       int // LossAndGrad calls before a NaN appears; 0 never
	calls        int
}

func newLinear(seed uint64) *linearModel {
	m := &linearModel{
		w: named("w", []int{3, 2}, 0, 0, 0, 0, 0, 0), b: named("b", []int{2}, 0, 0),
		gw: named("w", []int{3, 2}, 0, 0, 0, 0, 0, 0), gb: named("b", []int{2}, 0, 0),
	}
	rng := runtime.NewRNG(seed)
	for i := range m.w.T.F {
		m.w.T.F[i] = rng.Normal()
	}
	return m
}

func (m *linearModel) Params() []runtime.Named { return []runtime.Named{m.w, m.b} }
func (m *linearModel) Grads() []runtime.Named  { return []runtime.Named{m.gw, m.gb} }

func (m *linearModel) run(in map[string]*runtime.Tensor, grad bool) (map[string]*runtime.Tensor, error) {
	x, y := in["x"], in["y"]
	n := x.Shape[0]
	for i := range m.gw.T.F {
		m.gw.T.F[i] = 0
	}
	m.gb.T.F[0], m.gb.T.F[1] = 0, 0
	loss := 0.0
	for e := 0; e < n; e++ {
		for j := 0; j < 2; j++ {
			p := m.b.T.F[j]
			for i := 0; i < 3; i++ {
				p += x.F[e*3+i] * m.w.T.F[i*2+j]
			}
			d := p - y.F[e*2+j]
			loss += float64(d * d)
			for i := 0; i < 3; i++ {
				m.gw.T.F[i*2+j] += 2 * d * x.F[e*3+i] / float32(2*n)
			}
			m.gb.T.F[j] += 2 * d / float32(2*n)
		}
	}
	if grad {
		m.calls++
		if m.poison > 0 && m.calls >= m.poison {
			m.gb.T.F[1] = float32(math.NaN())
		}
	}
	return map[string]*runtime.Tensor{"loss": runtime.FromF32(nil, []float32{float32(loss / float64(2*n))})}, nil
}

func (m *linearModel) ForwardMap(in map[string]*runtime.Tensor) (map[string]*runtime.Tensor, error) {
	return m.run(in, false)
}

func (m *linearModel) LossAndGradMap(in map[string]*runtime.Tensor) (map[string]*runtime.Tensor, error) {
	return m.run(in, true)
}

// linearTask: y = x·W* + noise-free bias.
type linearTask struct{}

func (linearTask) Name() string        { return "linear" }
func (linearTask) Describe() string    { return "a linear map" }
func (linearTask) Inputs() []InputSpec { return []InputSpec{{"x", runtime.F32}, {"y", runtime.F32}} }
func (linearTask) Batch(rng *rand.Rand, n int) Batch {
	x, y := runtime.New(runtime.F32, n, 3), runtime.New(runtime.F32, n, 2)
	for e := 0; e < n; e++ {
		for i := 0; i < 3; i++ {
			x.F[e*3+i] = float32(rng.NormFloat64())
		}
		y.F[e*2] = x.F[e*3] - 2*x.F[e*3+1] + 0.5
		y.F[e*2+1] = 3*x.F[e*3+2] - 1
	}
	return Batch{"x": x, "y": y}
}

func config(dir string, steps int) Config {
	return Config{Task: linearTask{}, Steps: steps, Batch: 16, Schedule: Schedule{Kind: "cosine", LR: 0.05, Warmup: 5},
		Clip: 1, EvalEvery: 10, EvalSize: 64, Seed: 3, Dir: dir}
}

func readMetrics(t *testing.T, dir string) []Record {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, MetricsFile))
	require.NoError(t, err)
	var out []Record
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var r Record
		require.NoError(t, json.Unmarshal([]byte(line), &r))
		out = append(out, r)
	}
	return out
}

func TestRunLowersTheLoss(t *testing.T) {
	dir := t.TempDir()
	sum, err := Run(newLinear(1), config(dir, 200))
	require.NoError(t, err)
	recs := readMetrics(t, dir)
	require.Len(t, recs, 200)
	assert.Less(t, recs[199].Loss, recs[0].Loss/20, "the loss falls")
	assert.Less(t, sum.Eval["loss"], 0.05)
	_, err = os.Stat(filepath.Join(dir, CheckpointFile))
	assert.NoError(t, err)
}

// A resumed run takes exactly the steps an uninterrupted one takes.
func TestResumeIsExact(t *testing.T) {
	whole := t.TempDir()
	_, err := Run(newLinear(1), config(whole, 40))
	require.NoError(t, err)

	// The same run, killed at step 25 (after its step-20 checkpoint),
	// then resumed.
	split := t.TempDir()
	killed := newLinear(1)
	killed.poison = 25
	_, err = Run(killed, config(split, 40))
	require.ErrorIs(t, err, ErrNonFinite)
	cfg := config(split, 40)
	cfg.Resume = true
	_, err = Run(newLinear(99), cfg) // other initial weights: the checkpoint must win
	require.NoError(t, err)

	a, b := readMetrics(t, whole), readMetrics(t, split)
	require.Len(t, b, 40)
	for i := range a {
		assert.Equal(t, a[i].Loss, b[i].Loss, "step %d", i+1)
	}
}

func TestNaNStopsTheRun(t *testing.T) {
	dir := t.TempDir()
	m := newLinear(1)
	m.poison = 25
	_, err := Run(m, config(dir, 100))
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrNonFinite))
	// The step is 1-based, as in metrics.jsonl: the 25th step failed.
	assert.Contains(t, err.Error(), "step 25: the gradient of b is not finite")
	assert.Contains(t, err.Error(), "the last good checkpoint (step 20) is kept")
	ts, meta, err := runtime.LoadSafetensors(filepath.Join(dir, CheckpointFile))
	require.NoError(t, err)
	assert.Equal(t, "20", meta["step"])
	assert.Equal(t, "", FirstBad([]runtime.Named{{Name: "b", T: ts["b"]}}))
}

func TestResumeRejectsBadCheckpoints(t *testing.T) {
	dir := t.TempDir()
	cfg := config(dir, 10)
	cfg.Resume = true
	_, err := Run(newLinear(1), cfg)
	require.Error(t, err, "no checkpoint")
	require.NoError(t, os.WriteFile(filepath.Join(dir, CheckpointFile), []byte("garbage"), 0o644))
	_, err = Run(newLinear(1), cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "resume")
}

func TestEvaluateDecodes(t *testing.T) {
	// A "model" that knows the answer: it returns the true permutation
	// as its pointers whatever it is fed, so greedy decoding scores 1.
	tk := task(t, "sort", map[string]int{"n": 5})
	b := tk.Batch(rand.New(rand.NewPCG(1, 1)), 8)
	oracle := oracleModel{truth: b["perm"]}
	ev, err := Evaluate(oracle, tk, []Batch{b})
	require.NoError(t, err)
	assert.Equal(t, 1.0, ev["exact"])
	assert.Equal(t, 1.0, ev["step_acc"])
	keys := make([]string, 0, len(ev))
	for k := range ev {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	assert.Equal(t, []string{"exact", "loss", "step_acc"}, keys)
}

type oracleModel struct{ truth *runtime.Tensor }

func (o oracleModel) ForwardMap(in map[string]*runtime.Tensor) (map[string]*runtime.Tensor, error) {
	return map[string]*runtime.Tensor{"loss": runtime.FromF32(nil, []float32{0}), "output:pointers": o.truth}, nil
}
func (o oracleModel) LossAndGradMap(in map[string]*runtime.Tensor) (map[string]*runtime.Tensor, error) {
	return o.ForwardMap(in)
}
func (o oracleModel) Params() []runtime.Named { return nil }
func (o oracleModel) Grads() []runtime.Named  { return nil }

type namedLinear struct{ *linearModel }

func (namedLinear) InputNames() []string { return []string{"x", "tokens"} }

func TestRunChecksTheModelsInputs(t *testing.T) {
	_, err := Run(namedLinear{newLinear(1)}, config(t.TempDir(), 5))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the model's input tokens is not one the linear task fills (it gives x, y)")
}

// On a terminal the progress line says what evaluation has done while it
// runs, instead of standing still.
func TestEvaluationShowsProgress(t *testing.T) {
	cfg := config(t.TempDir(), 10)
	cfg.EvalSize = 40
	var out strings.Builder
	cfg.Out, cfg.Terminal = &out, true
	_, err := Run(newLinear(1), cfg)
	require.NoError(t, err)
	for _, s := range []string{"evaluating 0/40", "evaluating 16/40", "evaluating 32/40", "evaluating 40/40"} {
		assert.Contains(t, out.String(), s)
	}
}
