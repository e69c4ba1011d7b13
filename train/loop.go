package train

import (
	"bytes"
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

// buffered is what a model with buffers has besides Model: its state
// that training steps set by update rules, not trained (a package
// written by attnc build has it when the model declares buffers).
type buffered interface {
	Buffers() []runtime.Named
}

// buffersOf returns m's buffers, or none.
func buffersOf(m any) []runtime.Named {
	if b, ok := m.(buffered); ok {
		return b.Buffers()
	}
	return nil
}

// StateOf returns everything a checkpoint keeps of m but the optimizer's
// moments: the weights, then the buffers.
func StateOf(m interface{ Params() []runtime.Named }) []runtime.Named {
	return append(append([]runtime.Named(nil), m.Params()...), buffersOf(m)...)
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
	// Stop, when closed, ends the run after the step in progress with a
	// checkpoint of that step; Run then returns ErrStopped.
	Stop     <-chan struct{}
	Out      io.Writer
	Terminal bool // Out is a terminal: draw a progress bar
}

// Summary is what a run achieved.
type Summary struct {
	Steps    int
	Loss     float64
	Eval     map[string]float64
	EvalStep int // the step Eval was measured at
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

// ErrStopped ends a run stopped through Config.Stop, after a checkpoint.
var ErrStopped = errors.New("stopped")

// ErrNonFinite is wrapped by the error a run stops with when the loss, a
// gradient, the weights after an update or the held-out loss is NaN or
// infinite. No checkpoint ever holds such a weight.
var ErrNonFinite = errors.New("non-finite value")

// Run trains m on cfg.Task. It writes checkpoints (params, optimizer
// state, step and data RNG, atomically) and metrics.jsonl to cfg.Dir, and
// evaluates on a held-out set generated from a seed the training data
// never uses. With the same seed, a resumed run takes exactly the steps an
// uninterrupted one would.
//
// metrics.jsonl is only ever appended to, one line per step in order: a
// resumed run redoes the steps after its checkpoint (exactly), and writes
// lines only for steps the file does not hold yet. A resume of a run
// with all its steps done returns an error wrapping ErrAlreadyDone and
// changes nothing.
func Run(m Model, cfg Config) (*Summary, error) {
	if cfg.Steps <= 0 || cfg.Batch <= 0 {
		return nil, fmt.Errorf("steps and batch must be positive (got %d and %d)", cfg.Steps, cfg.Batch)
	}
	if k := cfg.Schedule.Kind; k != "cosine" && k != "constant" {
		return nil, fmt.Errorf("unknown schedule %q (cosine, constant)", k)
	}
	if lr := cfg.Schedule.LR; !(lr > 0) || math.IsInf(lr, 0) {
		return nil, fmt.Errorf("the learning rate must be a positive number, got %v", lr)
	}
	if cfg.EvalSize <= 0 {
		cfg.EvalSize = 256
	}
	if err := checkSize(cfg.Task, cfg.Batch, cfg.EvalSize); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
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
	buffers := buffersOf(m)
	opt := NewAdamW(params, cfg.WeightDecay)
	pcg := rand.NewPCG(cfg.Seed, 0x7ea1)
	rng := rand.New(pcg)
	ckpt := filepath.Join(cfg.Dir, CheckpointFile)
	metricsPath := filepath.Join(cfg.Dir, MetricsFile)
	start := 0
	saved := -1   // the step of the checkpoint on disk; -1: none of this run
	recorded := 0 // the last step metrics.jsonl holds
	if cfg.Resume {
		info, err := loadCheckpoint(ckpt, params, buffers, opt, pcg)
		if err != nil {
			return nil, fmt.Errorf("resume: %w", err)
		}
		if info.Step >= cfg.Steps {
			return &Summary{Steps: info.Step, Eval: info.Eval}, nothingToDo("%s is finished: all %d steps are done; nothing changed", cfg.Dir, info.Step)
		}
		start, saved = info.Step, info.Step
		if recorded, err = lastRecordedStep(metricsPath); err != nil {
			return nil, fmt.Errorf("resume: %w", err)
		}
		fmt.Fprintf(cfg.Out, "resuming %s at step %d\n", cfg.Dir, start)
	} else if err := os.WriteFile(metricsPath, nil, 0o644); err != nil {
		return nil, err
	}
	metrics, err := os.OpenFile(metricsPath, os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	defer metrics.Close()
	enc := json.NewEncoder(metrics)

	evalSet := evalBatches(cfg)
	sum := &Summary{}
	// diverged is the error for a non-finite value at step n (1-based, as
	// in metrics.jsonl); it says whether a good checkpoint is left.
	diverged := func(n int, format string, args ...any) error {
		kept := fmt.Sprintf("no checkpoint has been written, so none is kept (lower the learning rate, now %g)", cfg.Schedule.LR)
		if saved >= 0 {
			kept = fmt.Sprintf("the last good checkpoint (step %d) is kept in %s", saved, cfg.Dir)
		}
		return fmt.Errorf("step %d: %s (%w); %s", n, fmt.Sprintf(format, args...), ErrNonFinite, kept)
	}
	save := func(n int, eval map[string]float64) error {
		if err := saveCheckpoint(ckpt, params, buffers, opt, pcg, n, eval); err != nil {
			return err
		}
		saved = n
		return nil
	}
	began := time.Now()
	lastLog := time.Now()
	var smooth float64
	for step := start; step < cfg.Steps; step++ {
		n := step + 1
		t0 := time.Now()
		batch := cfg.Task.Batch(rng, cfg.Batch)
		out, err := m.LossAndGradMap(batch)
		if err != nil {
			return sum, fmt.Errorf("step %d: %w", n, err)
		}
		loss := float64(scalar(out["loss"]))
		grads := m.Grads()
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return sum, diverged(n, "the loss is %v", loss)
		}
		if bad := FirstBad(grads); bad != "" {
			return sum, diverged(n, "the gradient of %s is not finite", bad)
		}
		norm := ClipGlobalNorm(grads, cfg.Clip)
		lr := cfg.Schedule.At(step)
		if err := opt.Step(params, grads, lr); err != nil {
			return sum, err
		}
		if bad := FirstBad(params); bad != "" {
			return sum, diverged(n, "the update (learning rate %g) made weight %s non-finite", lr, bad)
		}
		// A step faster than the clock's resolution must not make a rate
		// infinite, which JSON cannot hold.
		dt := max(time.Since(t0), time.Microsecond)
		if step == start {
			smooth = loss
		}
		smooth = 0.9*smooth + 0.1*loss
		rec := Record{Step: n, Loss: loss, LR: lr, GradNorm: norm, ExPerSec: float64(cfg.Batch) / dt.Seconds(),
			TokPerSec: float64(tokens(batch)) / dt.Seconds(),
			Metrics:   finite(metricsOf(out)), ElapsedMS: time.Since(began).Milliseconds()}
		last := n == cfg.Steps
		if cfg.EvalEvery > 0 && (n%cfg.EvalEvery == 0 || last) {
			var progress func(done, total int)
			if cfg.Terminal {
				// The bar stays, with what evaluation has done, so the
				// line never sits still without a word.
				bar := progressBar(n, cfg.Steps, smooth, rec.ExPerSec, time.Since(began))
				progress = func(done, total int) {
					fmt.Fprintf(cfg.Out, "\r%s  evaluating %d/%d\033[K", strings.TrimSuffix(bar, "\033[K"), done, total)
				}
			}
			ev, err := evaluate(m, cfg.Task, evalSet, progress)
			if err != nil {
				return sum, fmt.Errorf("evaluation at step %d: %w", n, err)
			}
			if l := ev["loss"]; math.IsNaN(l) || math.IsInf(l, 0) {
				return sum, diverged(n, "the held-out loss is %v", l)
			}
			ev = finite(ev)
			rec.Eval, sum.Eval, sum.EvalStep = ev, ev, n
			if err := save(n, ev); err != nil {
				return sum, err
			}
			fmt.Fprintf(cfg.Out, "%sstep %d  loss %.4f  eval %s\n", clearLine(cfg.Terminal), n, smooth, formatMetrics(ev))
			if main := MainMetric(cfg.Task); cfg.Target > 0 && main != "" && ev[main] >= cfg.Target {
				sum.Stopped = fmt.Sprintf("%s reached %.4f ≥ target %g at step %d", main, ev[main], cfg.Target, n)
				last = true
			}
		}
		if n > recorded {
			if err := enc.Encode(rec); err != nil {
				return sum, err
			}
		}
		sum.Steps, sum.Loss = n, smooth
		if cfg.Terminal {
			if time.Since(lastLog) > 200*time.Millisecond || last {
				fmt.Fprintf(cfg.Out, "\r%s", progressBar(n, cfg.Steps, smooth, rec.ExPerSec, time.Since(began)))
				lastLog = time.Now()
			}
		} else if n%cfg.LogEvery == 0 {
			fmt.Fprintf(cfg.Out, "step %d/%d  loss %.4f  lr %.2e  grad norm %.3f  %.0f examples/s\n", n, cfg.Steps, smooth, lr, norm, rec.ExPerSec)
		}
		if last {
			break
		}
		if cfg.StopAfter > 0 && n == cfg.StopAfter {
			return sum, ErrInterrupted
		}
		select {
		case <-cfg.Stop:
			if cfg.Terminal {
				fmt.Fprintln(cfg.Out)
			}
			if saved != n {
				if err := save(n, nil); err != nil {
					return sum, err
				}
			}
			sum.Duration = time.Since(began)
			return sum, ErrStopped
		default:
		}
	}
	if cfg.Terminal {
		fmt.Fprintln(cfg.Out)
	}
	if saved != sum.Steps {
		if err := save(sum.Steps, nil); err != nil {
			return sum, err
		}
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
		out = append(out, heldOut(cfg.Task).Batch(rng, min(left, cfg.Batch)))
	}
	return out
}

// saveCheckpoint writes params, the optimizer's moments, the step, the
// data RNG's state and the evaluation at that step (if there was one) in
// one safetensors file, atomically. It refuses to write a NaN or an
// infinity: a checkpoint is always one a run can go on from.
func saveCheckpoint(path string, params, buffers []runtime.Named, opt *AdamW, pcg *rand.PCG, step int, eval map[string]float64) error {
	ts := append(append([]runtime.Named(nil), params...), buffers...)
	for _, p := range params {
		ts = append(ts, runtime.Named{Name: "adamw.m/" + p.Name, T: opt.M[p.Name]}, runtime.Named{Name: "adamw.v/" + p.Name, T: opt.V[p.Name]})
	}
	if bad := FirstBad(ts); bad != "" {
		return fmt.Errorf("step %d: %s is not finite (%w); the checkpoint was not written", step, bad, ErrNonFinite)
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
	if eval != nil {
		b, err := json.Marshal(finite(eval))
		if err != nil {
			return err
		}
		meta["eval"] = string(b)
	}
	if err := runtime.SaveSafetensors(path, ts, meta); err != nil {
		return fmt.Errorf("saving checkpoint: %w", err)
	}
	return nil
}

// LoadParams reads the params of a checkpoint into params, checking every
// name and shape, and that every value is finite (a diverged run's
// weights would give metrics that mean nothing); nothing changes unless
// all pass. The file may be a training checkpoint, whose optimizer
// moments are skipped (never allocated), or hold the params alone; any
// other tensor, or one of the wrong dtype or shape, is an error before
// anything is allocated, so a file that describes a huge tensor costs
// nothing.
func LoadParams(path string, params []runtime.Named) (map[string]string, error) {
	ts, meta, err := runtime.LoadSafetensorsChecked(path, checkpointCheck(params, false))
	if err != nil {
		return nil, err
	}
	for _, p := range params {
		if err := checkTensor(path, ts, p.Name, p.T.Shape); err != nil {
			return nil, err
		}
	}
	for _, p := range params {
		copy(p.T.F, ts[p.Name].F)
	}
	return meta, nil
}

// momentPrefixes are the name prefixes of the AdamW moments of a param in
// a training checkpoint.
var momentPrefixes = []string{"adamw.m/", "adamw.v/"}

// checkpointCheck returns the check that lets a checkpoint of params hold
// only them and their AdamW moments, each an f32 tensor of the param's
// shape. It keeps the params, and the moments when moments is set (a
// resume needs them, an evaluation does not).
func checkpointCheck(params []runtime.Named, moments bool) runtime.TensorCheck {
	shapes := make(map[string][]int, len(params))
	for _, p := range params {
		shapes[p.Name] = p.T.Shape
	}
	return func(name string, dt runtime.DType, shape []int) (bool, error) {
		param, keep := name, true
		for _, prefix := range momentPrefixes {
			if rest, ok := strings.CutPrefix(name, prefix); ok {
				param, keep = rest, moments
			}
		}
		want, ok := shapes[param]
		switch {
		case !ok && param != name:
			return false, fmt.Errorf("an optimizer moment of %q, which the model does not have", param)
		case !ok:
			return false, errors.New("the model has no weight of this name")
		}
		return keep, runtime.CheckType(dt, shape, runtime.F32, want)
	}
}

// checkTensor checks that ts holds name, an f32 tensor of shape with
// finite values.
func checkTensor(path string, ts map[string]*runtime.Tensor, name string, shape []int) error {
	t, ok := ts[name]
	if !ok {
		return fmt.Errorf("%s: weight %q is missing", path, name)
	}
	if err := runtime.CheckShape(name, t, runtime.F32, shape); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if FirstBad([]runtime.Named{{Name: name, T: t}}) != "" {
		return fmt.Errorf("%s: weight %q holds NaN or infinite values (%w): the run that wrote it diverged, or the file is damaged", path, name, ErrNonFinite)
	}
	return nil
}

// checkpointInfo is what a training checkpoint's metadata says.
type checkpointInfo struct {
	Step  int
	rng   []byte
	adamT int
	Eval  map[string]float64 // the evaluation at Step, if there was one
}

// readCheckpointInfo reads and checks the metadata of the training
// checkpoint at path. It allocates no tensor; the checksum, when there is
// one, is still verified over the whole file.
func readCheckpointInfo(path string) (checkpointInfo, error) {
	keepNone := func(string, runtime.DType, []int) (bool, error) { return false, nil }
	_, meta, err := runtime.LoadSafetensorsChecked(path, keepNone)
	if err != nil {
		return checkpointInfo{}, err
	}
	return parseCheckpointInfo(path, meta)
}

// parseCheckpointInfo checks a checkpoint's metadata as user input: the
// file may have been edited or damaged.
func parseCheckpointInfo(path string, meta map[string]string) (checkpointInfo, error) {
	var info checkpointInfo
	bad := func(format string, args ...any) (checkpointInfo, error) {
		return info, fmt.Errorf("%s is not a usable training checkpoint: %s", path, fmt.Sprintf(format, args...))
	}
	step, err := strconv.Atoi(meta["step"])
	if err != nil {
		return bad("its step %q is not a number", meta["step"])
	}
	if step < 0 {
		return bad("its step %d is negative", step)
	}
	t, err := strconv.Atoi(meta["adamw.t"])
	if err != nil {
		return bad("its optimizer step count %q is not a number", meta["adamw.t"])
	}
	if t != step {
		return bad("its optimizer step count %d differs from the step %d", t, step)
	}
	state, err := base64.StdEncoding.DecodeString(meta["rng"])
	if err == nil {
		err = rand.NewPCG(0, 0).UnmarshalBinary(state)
	}
	if err != nil {
		return bad("its RNG state is missing or corrupt (%v)", err)
	}
	info = checkpointInfo{Step: step, adamT: t, rng: state}
	if e, ok := meta["eval"]; ok {
		if err := json.Unmarshal([]byte(e), &info.Eval); err != nil {
			return bad("its eval %q is not a JSON object of numbers", e)
		}
	}
	return info, nil
}

// loadCheckpoint restores params, the optimizer and the data RNG from the
// checkpoint at path, after checking all of it; nothing changes on an
// error. A tensor that is not a param or its moment, or has the wrong
// shape, is an error before anything is allocated.
func loadCheckpoint(path string, params, buffers []runtime.Named, opt *AdamW, pcg *rand.PCG) (checkpointInfo, error) {
	ts, meta, err := runtime.LoadSafetensorsChecked(path, checkpointCheck(append(append([]runtime.Named(nil), params...), buffers...), true))
	if err != nil {
		return checkpointInfo{}, err
	}
	info, err := parseCheckpointInfo(path, meta)
	if err != nil {
		return info, err
	}
	for _, p := range params {
		for _, name := range []string{p.Name, "adamw.m/" + p.Name, "adamw.v/" + p.Name} {
			if err := checkTensor(path, ts, name, p.T.Shape); err != nil {
				return info, err
			}
		}
		// The second moment is a running mean of squared gradients: a
		// negative value makes the update's square root NaN a step later,
		// an error that would blame the learning rate for a bad file.
		v := "adamw.v/" + p.Name
		for i, x := range ts[v].F {
			if x < 0 {
				return info, fmt.Errorf("%s: optimizer moment %q holds a negative value (%g at index %d), which AdamW's second moments (means of squares) never do: the file is damaged or was edited", path, v, x, i)
			}
		}
	}
	for _, b := range buffers {
		if err := checkTensor(path, ts, b.Name, b.T.Shape); err != nil {
			return info, err
		}
	}
	if err := pcg.UnmarshalBinary(info.rng); err != nil {
		return info, fmt.Errorf("%s: RNG state: %w", path, err)
	}
	for _, b := range buffers {
		copy(b.T.F, ts[b.Name].F)
	}
	for _, p := range params {
		copy(p.T.F, ts[p.Name].F)
		copy(opt.M[p.Name].F, ts["adamw.m/"+p.Name].F)
		copy(opt.V[p.Name].F, ts["adamw.v/"+p.Name].F)
	}
	opt.T = info.adamT
	return info, nil
}

// maxMetricsFile bounds metrics.jsonl as it is read back on resume: a
// million steps of metrics are a few hundred MiB.
const maxMetricsFile = 1 << 30

// lastRecordedStep returns the step of the last line of metrics.jsonl (0
// when there is none). A torn last line, which only a kill in mid-write
// leaves, is cut off; anything else that is not a record is an error, as
// appending after it would bury it.
func lastRecordedStep(path string) (int, error) {
	b, err := runtime.ReadRegularFile(path, maxMetricsFile, MetricsFile)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if end := bytes.LastIndexByte(b, '\n') + 1; end < len(b) {
		if err := os.Truncate(path, int64(end)); err != nil {
			return 0, err
		}
		b = b[:end]
	}
	lines := bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
	last := lines[len(lines)-1]
	if len(last) == 0 {
		return 0, nil
	}
	var r Record
	if err := json.Unmarshal(last, &r); err != nil || r.Step <= 0 {
		return 0, fmt.Errorf("%s: line %d is not a step's record", path, len(lines))
	}
	return r.Step, nil
}
