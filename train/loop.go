package train

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/attnc/attnc/runtime"
)

// Model is what the trainer needs of a compiled model. A package written
// by attnc build has these methods; tensors are keyed by their names in
// the source, and results by "loss", "metric:NAME" and "output:NAME".
type Model interface {
	ForwardMap(in map[string]*runtime.Tensor) (map[string]*runtime.Tensor, error)
	LossAndGradMap(in map[string]*runtime.Tensor) (map[string]*runtime.Tensor, error)
	Params() []runtime.Named
	Grads() []runtime.Named
}

// Config is one training run.
type Config struct {
	Task        Task
	Steps       int
	Batch       int
	Schedule    Schedule // LR, Warmup, Kind; Steps is filled from Steps
	WeightDecay float64
	Clip        float64 // max global gradient norm; 0 disables
	EvalEvery   int
	EvalSize    int
	Target      float64 // stop when the task's main metric reaches it; 0 disables
	Seed        uint64
	LogEvery    int
	Dir         string // the run directory
	Resume      bool   // continue from Dir's checkpoint
	// StopAfter, when positive, ends the run after that step as a kill
	// would: no final checkpoint. Tests use it to check exact resumption.
	StopAfter int
	Out       io.Writer
	Terminal  bool // Out is a terminal: draw a progress bar
}

// Summary is what a run achieved.
type Summary struct {
	Steps    int
	Loss     float64
	Eval     map[string]float64
	Duration time.Duration
	Stopped  string // why the run ended early, if it did
}

// Files of a run directory.
const (
	CheckpointFile = "checkpoint.safetensors"
	MetricsFile    = "metrics.jsonl"
)

// A Record is one line of metrics.jsonl.
type Record struct {
	Step      int                `json:"step"`
	Loss      float64            `json:"loss"`
	LR        float64            `json:"lr"`
	GradNorm  float64            `json:"grad_norm"`
	ExPerSec  float64            `json:"examples_per_sec"`
	TokPerSec float64            `json:"tokens_per_sec"`
	Metrics   map[string]float64 `json:"metrics,omitempty"`
	Eval      map[string]float64 `json:"eval,omitempty"`
	ElapsedMS int64              `json:"elapsed_ms"`
}

// ErrInterrupted ends a run stopped by Config.StopAfter.
var ErrInterrupted = errors.New("interrupted")

// ErrNonFinite is wrapped by the error a run stops with when the loss or a
// gradient is NaN or infinite.
var ErrNonFinite = errors.New("non-finite value")

// Run trains m on cfg.Task. It writes checkpoints (params, optimizer
// state, step and data RNG, atomically) and metrics.jsonl to cfg.Dir, and
// evaluates on a held-out set generated from a seed the training data
// never uses. With the same seed, a resumed run takes exactly the steps an
// uninterrupted one would.
func Run(m Model, cfg Config) (*Summary, error) {
	if cfg.Steps <= 0 || cfg.Batch <= 0 {
		return nil, fmt.Errorf("steps and batch must be positive (got %d and %d)", cfg.Steps, cfg.Batch)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	if cfg.EvalSize <= 0 {
		cfg.EvalSize = 256
	}
	if cfg.LogEvery <= 0 {
		cfg.LogEvery = 10
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	cfg.Schedule.Steps = cfg.Steps
	if err := checkInputs(m, cfg.Task); err != nil {
		return nil, err
	}
	params := m.Params()
	opt := NewAdamW(params, cfg.WeightDecay)
	pcg := rand.NewPCG(cfg.Seed, 0x7ea1)
	rng := rand.New(pcg)
	start := 0
	if cfg.Resume {
		step, err := loadCheckpoint(filepath.Join(cfg.Dir, CheckpointFile), params, opt, pcg)
		if err != nil {
			return nil, fmt.Errorf("resume: %w", err)
		}
		start = step
		if err := truncateMetrics(filepath.Join(cfg.Dir, MetricsFile), start); err != nil {
			return nil, err
		}
		fmt.Fprintf(cfg.Out, "resuming %s at step %d\n", cfg.Dir, start)
	} else if err := os.WriteFile(filepath.Join(cfg.Dir, MetricsFile), nil, 0o644); err != nil {
		return nil, err
	}
	metrics, err := os.OpenFile(filepath.Join(cfg.Dir, MetricsFile), os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	defer metrics.Close()
	enc := json.NewEncoder(metrics)

	evalSet := evalBatches(cfg)
	sum := &Summary{}
	began := time.Now()
	lastLog := time.Now()
	var smooth float64
	for step := start; step < cfg.Steps; step++ {
		t0 := time.Now()
		batch := cfg.Task.Batch(rng, cfg.Batch)
		out, err := m.LossAndGradMap(batch)
		if err != nil {
			return sum, fmt.Errorf("step %d: %w", step, err)
		}
		loss := float64(scalar(out["loss"]))
		grads := m.Grads()
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return sum, fmt.Errorf("step %d: the loss is %v (%w); the last good checkpoint is kept in %s", step, loss, ErrNonFinite, cfg.Dir)
		}
		if bad := FirstBad(grads); bad != "" {
			return sum, fmt.Errorf("step %d: the gradient of %s is not finite (%w); the last good checkpoint is kept in %s", step, bad, ErrNonFinite, cfg.Dir)
		}
		norm := ClipGlobalNorm(grads, cfg.Clip)
		lr := cfg.Schedule.At(step)
		if err := opt.Step(params, grads, lr); err != nil {
			return sum, err
		}
		dt := time.Since(t0)
		if step == start {
			smooth = loss
		}
		smooth = 0.9*smooth + 0.1*loss
		rec := Record{Step: step + 1, Loss: loss, LR: lr, GradNorm: norm, ExPerSec: float64(cfg.Batch) / dt.Seconds(),
			TokPerSec: float64(tokens(batch)) / dt.Seconds(),
			Metrics:   metricsOf(out), ElapsedMS: time.Since(began).Milliseconds()}
		last := step+1 == cfg.Steps
		if cfg.EvalEvery > 0 && ((step+1)%cfg.EvalEvery == 0 || last) {
			ev, err := Evaluate(m, cfg.Task, evalSet)
			if err != nil {
				return sum, fmt.Errorf("evaluation at step %d: %w", step+1, err)
			}
			rec.Eval = ev
			sum.Eval = ev
			if err := saveCheckpoint(filepath.Join(cfg.Dir, CheckpointFile), params, opt, pcg, step+1); err != nil {
				return sum, err
			}
			fmt.Fprintf(cfg.Out, "%sstep %d  loss %.4f  eval %s\n", clearLine(cfg.Terminal), step+1, smooth, formatMetrics(ev))
			if main := MainMetric(cfg.Task); cfg.Target > 0 && main != "" && ev[main] >= cfg.Target {
				sum.Stopped = fmt.Sprintf("%s reached %.4f ≥ target %g at step %d", main, ev[main], cfg.Target, step+1)
				last = true
			}
		}
		if err := enc.Encode(rec); err != nil {
			return sum, err
		}
		sum.Steps, sum.Loss = step+1, smooth
		if cfg.Terminal {
			if time.Since(lastLog) > 200*time.Millisecond || last {
				fmt.Fprintf(cfg.Out, "\r%s", progressBar(step+1, cfg.Steps, smooth, rec.ExPerSec, time.Since(began)))
				lastLog = time.Now()
			}
		} else if (step+1)%cfg.LogEvery == 0 {
			fmt.Fprintf(cfg.Out, "step %d/%d  loss %.4f  lr %.2e  grad norm %.3f  %.0f examples/s\n", step+1, cfg.Steps, smooth, lr, norm, rec.ExPerSec)
		}
		if last {
			break
		}
		if cfg.StopAfter > 0 && step+1 == cfg.StopAfter {
			return sum, ErrInterrupted
		}
	}
	if cfg.Terminal {
		fmt.Fprintln(cfg.Out)
	}
	if err := saveCheckpoint(filepath.Join(cfg.Dir, CheckpointFile), params, opt, pcg, sum.Steps); err != nil {
		return sum, err
	}
	sum.Duration = time.Since(began)
	return sum, nil
}

// checkInputs reports a model whose inputs the task does not fill, when
// the model can say what its inputs are.
func checkInputs(m Model, task Task) error {
	named, ok := m.(interface{ InputNames() []string })
	if !ok {
		return nil
	}
	var gives []string
	for _, in := range task.Inputs() {
		gives = append(gives, in.Name)
	}
	for _, name := range named.InputNames() {
		if !contains(gives, name) {
			return fmt.Errorf("the model's input %s is not one the %s task fills (it gives %s): rename the input, or choose another task", name, task.Name(), strings.Join(gives, ", "))
		}
	}
	return nil
}

// tokens counts the positions of a batch: the elements of its largest
// input (B·N for a sequence, B·n for sort).
func tokens(b Batch) int {
	n := 0
	for _, t := range b {
		n = max(n, t.Len())
	}
	return n
}

func clearLine(terminal bool) string {
	if terminal {
		return "\r\033[K"
	}
	return ""
}

func progressBar(step, steps int, loss, exps float64, elapsed time.Duration) string {
	const width = 30
	filled := width * step / steps
	eta := time.Duration(float64(elapsed) / float64(step) * float64(steps-step))
	return fmt.Sprintf("[%s%s] %d/%d  loss %.4f  %.0f ex/s  %s left\033[K",
		strings.Repeat("█", filled), strings.Repeat("░", width-filled), step, steps, loss, exps, eta.Round(time.Second))
}

func scalar(t *runtime.Tensor) float32 {
	if t == nil {
		return float32(math.NaN())
	}
	if t.DType == runtime.I32 {
		return float32(t.I[0])
	}
	return t.F[0]
}

func metricsOf(out map[string]*runtime.Tensor) map[string]float64 {
	m := map[string]float64{}
	for k, t := range out {
		if name, ok := strings.CutPrefix(k, "metric:"); ok {
			m[name] = float64(scalar(t))
		}
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

func formatMetrics(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.4f", k, m[k]))
	}
	return strings.Join(parts, "  ")
}

// evalBatches generates the held-out set from a stream the training data
// never draws from.
func evalBatches(cfg Config) []Batch {
	rng := rand.New(rand.NewPCG(cfg.Seed, 0xe7a1))
	var out []Batch
	for left := cfg.EvalSize; left > 0; left -= cfg.Batch {
		out = append(out, cfg.Task.Batch(rng, min(left, cfg.Batch)))
	}
	return out
}

// saveCheckpoint writes params, the optimizer's moments, the step and the
// data RNG's state in one safetensors file, atomically.
func saveCheckpoint(path string, params []runtime.Named, opt *AdamW, pcg *rand.PCG, step int) error {
	ts := append([]runtime.Named(nil), params...)
	for _, p := range params {
		ts = append(ts, runtime.Named{Name: "adamw.m/" + p.Name, T: opt.M[p.Name]}, runtime.Named{Name: "adamw.v/" + p.Name, T: opt.V[p.Name]})
	}
	state, err := pcg.MarshalBinary()
	if err != nil {
		return err
	}
	meta := map[string]string{
		"step":    strconv.Itoa(step),
		"adamw.t": strconv.Itoa(opt.T),
		"rng":     base64.StdEncoding.EncodeToString(state),
	}
	if err := runtime.SaveSafetensors(path, ts, meta); err != nil {
		return fmt.Errorf("saving checkpoint: %w", err)
	}
	return nil
}

// LoadParams reads the params of a checkpoint into params, checking every
// name and shape; nothing changes unless all match.
func LoadParams(path string, params []runtime.Named) (map[string]string, error) {
	ts, meta, err := runtime.LoadSafetensors(path)
	if err != nil {
		return nil, err
	}
	for _, p := range params {
		t, ok := ts[p.Name]
		if !ok {
			return nil, fmt.Errorf("%s: weight %q is missing", path, p.Name)
		}
		if err := runtime.CheckShape(p.Name, t, runtime.F32, p.T.Shape); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	for _, p := range params {
		copy(p.T.F, ts[p.Name].F)
	}
	return meta, nil
}

func loadCheckpoint(path string, params []runtime.Named, opt *AdamW, pcg *rand.PCG) (int, error) {
	ts, meta, err := runtime.LoadSafetensors(path)
	if err != nil {
		return 0, err
	}
	step, err1 := strconv.Atoi(meta["step"])
	t, err2 := strconv.Atoi(meta["adamw.t"])
	state, err3 := base64.StdEncoding.DecodeString(meta["rng"])
	if err := errors.Join(err1, err2, err3); err != nil {
		return 0, fmt.Errorf("%s is not a training checkpoint (its step, optimizer or RNG state is missing or corrupt): %w", path, err)
	}
	for _, p := range params {
		for _, name := range []string{p.Name, "adamw.m/" + p.Name, "adamw.v/" + p.Name} {
			x, ok := ts[name]
			if !ok {
				return 0, fmt.Errorf("%s: %q is missing", path, name)
			}
			if err := runtime.CheckShape(name, x, runtime.F32, p.T.Shape); err != nil {
				return 0, fmt.Errorf("%s: %w", path, err)
			}
		}
	}
	if err := pcg.UnmarshalBinary(state); err != nil {
		return 0, fmt.Errorf("%s: RNG state: %w", path, err)
	}
	for _, p := range params {
		copy(p.T.F, ts[p.Name].F)
		copy(opt.M[p.Name].F, ts["adamw.m/"+p.Name].F)
		copy(opt.V[p.Name].F, ts["adamw.v/"+p.Name].F)
	}
	opt.T = t
	return step, nil
}

// truncateMetrics keeps the records of steps up to step, for a resumed
// run that redoes what came after its checkpoint.
func truncateMetrics(path string, step int) error {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	var keep []string
	for _, line := range strings.Split(string(b), "\n") {
		var r Record
		if line == "" || json.Unmarshal([]byte(line), &r) != nil || r.Step > step {
			continue
		}
		keep = append(keep, line+"\n")
	}
	return os.WriteFile(path, []byte(strings.Join(keep, "")), 0o644)
}
