package train

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/attnc/attnc/runtime"
)

// SpecFile is the file in a run directory that describes the run.
const SpecFile = "run.json"

// SummaryFile is the file in which the trainer sums a run up when it ends
// or is stopped by a signal.
const SummaryFile = "summary.json"

// Spec is a run's settings, as attnc train resolves them from the model's
// train section and the command line, and writes to DIR/run.json.
type Spec struct {
	Model  string `json:"model"`
	Source string `json:"source"`
	// Config holds the -config overrides the model was compiled with.
	Config      map[string]string `json:"config,omitempty"`
	Task        string            `json:"task"`
	TaskParams  Params            `json:"task_params"`
	Steps       int               `json:"steps"`
	Batch       int               `json:"batch"`
	LR          float64           `json:"lr"`
	WeightDecay float64           `json:"weight_decay"`
	Schedule    string            `json:"schedule"`
	Warmup      int               `json:"warmup"`
	Clip        float64           `json:"clip"`
	EvalEvery   int               `json:"eval_every"`
	EvalSize    int               `json:"eval_size"`
	Target      float64           `json:"target"`
	Seed        uint64            `json:"seed"`
	LogEvery    int               `json:"log_every"`
}

// maxSpec bounds the size of run.json, which attnc writes as a few
// hundred bytes: a run directory whose run.json is a device, a pipe or a
// huge file is refused instead of read until memory runs out.
const maxSpec = 1 << 20

// Limits on what run.json may ask for. A hand-edited or mistyped value
// beyond them would otherwise exhaust memory, or loop for days, before
// anything reported it.
const (
	maxSteps     = 1_000_000_000
	maxBatch     = 1 << 16
	maxEvalSize  = 1 << 20
	maxTaskParam = 1 << 20
	// maxBatchElems bounds the input elements of one batch (of training
	// examples, or of the whole held-out set): 1 GiB of int32.
	maxBatchElems = 1 << 28
)

// MaxPredict is the most examples predict prints: one batch.
const MaxPredict = maxBatch

// ReadSpec reads DIR/run.json and checks it as it would check a command
// line: an unknown field, a value out of range or an unknown schedule or
// task is an error naming the file and the field.
func ReadSpec(dir string) (*Spec, error) {
	path := filepath.Join(dir, SpecFile)
	b, err := runtime.ReadRegularFile(path, maxSpec, SpecFile)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s is not a run directory (it has no %s)", dir, SpecFile)
		}
		return nil, err
	}
	var s Spec
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s: more than one JSON value", path)
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &s, nil
}

// Validate checks every setting of a run against its range, naming the
// field as run.json spells it. The task and its parameters are NewTask's
// to check, as it may read a file.
func (s *Spec) Validate() error {
	between := func(name string, v, lo, hi int) error {
		if v < lo || v > hi {
			return fmt.Errorf("%s must be between %d and %d, got %d", name, lo, hi, v)
		}
		return nil
	}
	number := func(name string, v float64, positive bool) error {
		switch {
		case math.IsNaN(v) || math.IsInf(v, 0):
			return fmt.Errorf("%s must be a finite number, got %v", name, v)
		case positive && v <= 0:
			return fmt.Errorf("%s must be a positive number, got %v", name, v)
		case v < 0:
			return fmt.Errorf("%s must not be negative, got %v", name, v)
		}
		return nil
	}
	if s.Model == "" {
		return errors.New("model must name the model to train")
	}
	if s.Source == "" {
		return errors.New("source must name the model's .attn file")
	}
	if s.Schedule != "cosine" && s.Schedule != "constant" {
		return fmt.Errorf("schedule must be \"cosine\" or \"constant\", got %q", s.Schedule)
	}
	if err := errors.Join(
		between("steps", s.Steps, 1, maxSteps),
		between("batch", s.Batch, 1, maxBatch),
		between("warmup", s.Warmup, 0, maxSteps),
		between("eval_every", s.EvalEvery, 0, maxSteps),
		between("eval_size", s.EvalSize, 0, maxEvalSize),
		between("log_every", s.LogEvery, 0, maxSteps),
		number("lr", s.LR, true),
		number("weight_decay", s.WeightDecay, false),
		number("clip", s.Clip, false),
		number("target", s.Target, false),
	); err != nil {
		return err
	}
	for k, v := range s.TaskParams.Ints {
		if err := between(k, v, 1, maxTaskParam); err != nil {
			return fmt.Errorf("task_params: %w", err)
		}
	}
	if s.Target > 0 {
		// Every main metric is a fraction; lm has none to stop on.
		switch main := PlotMetric(s.Task); {
		case s.Task == "lm":
			return errors.New("target: the lm task has no metric to stop at (its held-out bits_per_byte is reported, not a target); leave target out")
		case main != "" && s.Target > 1:
			return fmt.Errorf("target %v can never be reached: the %s task's main metric, %s, is a fraction from 0 to 1", s.Target, s.Task, main)
		}
	}
	return nil
}

// CheckSize reports a run whose batches would be too large to hold: it
// measures one example of task and bounds the batch and the held-out set.
func (s *Spec) CheckSize(task Task) error {
	return checkSize(task, s.Batch, s.EvalSize)
}

func checkSize(task Task, batch, evalSize int) error {
	per := 0
	for _, t := range task.Batch(rand.New(rand.NewPCG(0, 0)), 1) {
		per += t.Len()
	}
	per = max(per, 1)
	if batch > maxBatchElems/per {
		return fmt.Errorf("batch: a batch of %d examples of %s holds %d values each, more than the %d a batch may hold", batch, task.Describe(), per, maxBatchElems)
	}
	if evalSize > maxBatchElems/per {
		return fmt.Errorf("eval_size: %d held-out examples of %s hold %d values each, more than the %d the held-out set may hold", evalSize, task.Describe(), per, maxBatchElems)
	}
	return nil
}

// Exit statuses of the trainer beyond 0 and 1, which attnc train reads.
const (
	// ExitAlreadyDone: a resumed run had nothing left to do; nothing was
	// written.
	ExitAlreadyDone = 3
	// ExitInterrupted: a signal stopped the run after a checkpoint.
	ExitInterrupted = 130
)

// Main is the trainer program attnc train builds around a compiled model:
//
//	trainer train DIR [-resume [-steps N] [-target T] [-eval-every E]]
//	trainer eval DIR              metrics of DIR's checkpoint on fresh data
//	trainer predict DIR [-n N]    a few examples: input, target, prediction
//	trainer bench DIR [-reps N] [-min-time D] [-json]
//	                              time Forward and LossAndGrad on a batch (Bench)
//
// newModel makes the model with weights initialised from a seed. The
// exit status is 0 on success, 1 on an error, ExitAlreadyDone when a
// resumed run was already finished and ExitInterrupted when SIGINT or
// SIGTERM stopped it.
func Main(newModel func(seed uint64) (Model, error)) {
	if os.Getenv("GOGC") == "" {
		// Training allocates and drops the same activations every step; a
		// lazier collector trades a little memory for less time in GC.
		debug.SetGCPercent(400)
	}
	// ATTNC_CPUPROFILE=FILE writes a CPU profile of the run (go tool
	// pprof reads it), for work on the kernels.
	if path := os.Getenv("ATTNC_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				defer pprof.StopCPUProfile()
			}
		}
	}
	err := run(os.Args[1:], os.Stdout, newModel)
	if err == nil {
		return
	}
	pprof.StopCPUProfile()
	var stopped *StoppedError
	switch {
	case errors.Is(err, ErrAlreadyDone):
		fmt.Fprintln(os.Stdout, err)
		os.Exit(ExitAlreadyDone)
	case errors.As(err, &stopped):
		os.Exit(ExitInterrupted)
	}
	fmt.Fprintln(os.Stderr, "error:", err)
	os.Exit(1)
}

// ErrAlreadyDone is wrapped by the error a resume returns when the run
// has nothing left to do: all its steps are done, or it has reached its
// target. Nothing in the run directory changes.
var ErrAlreadyDone = errors.New("nothing to do")

// alreadyDone is an error that says why a resume has nothing to do, in
// its own words, and matches ErrAlreadyDone.
type alreadyDone struct{ msg string }

func (e alreadyDone) Error() string        { return e.msg }
func (e alreadyDone) Is(target error) bool { return target == ErrAlreadyDone }

// nothingToDo returns an alreadyDone error with the formatted message.
func nothingToDo(format string, args ...any) error {
	return alreadyDone{fmt.Sprintf(format, args...)}
}

// StoppedError is what the trainer returns when a signal stopped the run:
// it checkpointed the last step and wrote summary.json.
type StoppedError struct {
	Signal os.Signal
	Step   int
}

func (e *StoppedError) Error() string {
	return fmt.Sprintf("%v: stopped after step %d", e.Signal, e.Step)
}

func run(args []string, out io.Writer, newModel func(seed uint64) (Model, error)) error {
	if len(args) < 2 {
		return errors.New("usage: trainer train|eval|predict|bench|generate DIR [flags]")
	}
	cmd, dir := args[0], args[1]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	resume := fs.Bool("resume", false, "continue from the run's checkpoint")
	n := fs.Int("n", 3, "examples to print")
	stopAfter := fs.Int("stop-after", 0, "end the run after this step as a kill would (for tests)")
	steps := fs.Int("steps", 0, "with -resume: train to this many steps in all (recorded in run.json)")
	target := fs.Float64("target", 0, "with -resume: the target to stop at (recorded in run.json)")
	evalEvery := fs.Int("eval-every", 0, "with -resume: the evaluation interval (recorded in run.json)")
	reps := fs.Int("reps", 0, "bench: timed calls of each function (0: at least 3, for -min-time)")
	minTime := fs.Duration("min-time", 2*time.Second, "bench: time each function for at least this long")
	asJSON := fs.Bool("json", false, "bench: one JSON object a line")
	top := fs.Int("top", 10, "bench: how many of the most expensive instructions to list")
	cpuProf := fs.String("cpuprofile", "", "bench: write a CPU profile of LossAndGrad calls to this file")
	memProf := fs.String("memprofile", "", "bench: write the allocations of LossAndGrad calls to this file")
	prompt := fs.String("prompt", "", "generate: the text to continue")
	temperature := fs.Float64("temperature", 0.8, "generate: sampling temperature (0: the most likely byte)")
	topK := fs.Int("top-k", 40, "generate: sample among this many most likely bytes (0: all)")
	seed := fs.Uint64("seed", 1, "generate: the sampling seed")
	noCache := fs.Bool("no-cache", false, "generate: run the model over the window for every byte, not the compiled decode step")
	if err := fs.Parse(args[2:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if (set["steps"] || set["target"] || set["eval-every"]) && (cmd != "train" || !*resume) {
		return errors.New("-steps, -target and -eval-every go with train -resume (a new run takes them from run.json)")
	}
	if (set["reps"] || set["min-time"] || set["json"] || set["top"] || set["cpuprofile"] || set["memprofile"]) && cmd != "bench" {
		return errors.New("-reps, -min-time, -json, -top, -cpuprofile and -memprofile go with bench")
	}
	if (set["prompt"] || set["temperature"] || set["top-k"] || set["seed"] || set["no-cache"]) && cmd != "generate" {
		return errors.New("-prompt, -temperature, -top-k, -seed and -no-cache go with generate")
	}
	if *reps < 0 || *minTime < 0 || *top < 1 {
		return fmt.Errorf("-reps and -min-time must not be negative and -top must be at least 1, got %d, %v and %d", *reps, *minTime, *top)
	}
	var lock *RunLock
	if cmd == "train" {
		if _, err := ReadSpec(dir); err != nil {
			return err // not a run directory: say so before locking it
		}
		var err error
		if lock, err = LockRun(dir); err != nil {
			return err
		}
		defer lock.Release()
	}
	spec, err := ReadSpec(dir)
	if err != nil {
		return err
	}
	task, err := NewTask(spec.Task, spec.TaskParams)
	if err == nil {
		err = spec.CheckSize(task)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, SpecFile), err)
	}
	m, err := newModel(spec.Seed)
	if err != nil {
		return err
	}
	switch cmd {
	case "train":
		if *resume {
			edited := *spec
			if set["steps"] {
				edited.Steps = *steps
			}
			if set["target"] {
				edited.Target = *target
			}
			if set["eval-every"] {
				edited.EvalEvery = *evalEvery
			}
			if err := edited.Validate(); err != nil {
				return fmt.Errorf("resume: %w", err)
			}
			fresh, err := startsOver(dir)
			if err != nil {
				return err
			}
			if !fresh {
				if err := resumable(dir, spec, &edited, task); err != nil {
					return err
				}
			}
			if edited.Steps != spec.Steps || edited.Target != spec.Target || edited.EvalEvery != spec.EvalEvery {
				if err := writeJSON(filepath.Join(dir, SpecFile), &edited); err != nil {
					return err
				}
				spec = &edited
			}
			if fresh {
				fmt.Fprintf(out, "%s has no checkpoint yet (the run stopped before its first one): starting it over from step 0 with the settings in %s\n", dir, SpecFile)
				*resume = false
			}
		}
		return train(out, dir, spec, task, m, *resume, *stopAfter)
	case "bench":
		return Bench(out, spec, task, m, BenchOptions{Reps: *reps, MinTime: *minTime, JSON: *asJSON, TopOps: *top, CPUProfile: *cpuProf, MemProfile: *memProf})
	case "generate":
		lm, ok := task.(*lmTask)
		if !ok {
			return fmt.Errorf("generate continues text with a language model trained on the lm task; this run's task is %s (attnc predict shows its predictions)", task.Name())
		}
		if _, err := LoadParams(filepath.Join(dir, CheckpointFile), StateOf(m)); err != nil {
			return err
		}
		opts := GenerateOptions{Prompt: *prompt, N: *n, Temperature: *temperature, TopK: *topK, Seed: *seed, Context: lm.length + 1, NoCache: *noCache}
		rate, cached, err := Generate(out, m, opts)
		if err != nil {
			return err
		}
		how := fmt.Sprintf("each rereading the last %d", opts.Context)
		if cached {
			how = fmt.Sprintf("one step each over the cached keys and values of up to %d", opts.Context)
		}
		fmt.Fprintf(out, "\n\n(%d bytes at %.0f a second, %s; sampled at temperature %g, top-k %d, seed %d)\n", *n, rate, how, *temperature, *topK, *seed)
		return nil
	case "eval", "predict":
		if _, err := LoadParams(filepath.Join(dir, CheckpointFile), StateOf(m)); err != nil {
			return err
		}
		// Fresh data: a stream neither training nor its held-out set used.
		rng := rand.New(rand.NewPCG(spec.Seed, 0xf7e5))
		if cmd == "eval" {
			size := spec.EvalSize
			if size <= 0 {
				size = 256
			}
			var batches []Batch
			for left := size; left > 0; left -= spec.Batch {
				batches = append(batches, heldOut(task).Batch(rng, min(left, spec.Batch)))
			}
			ev, err := Evaluate(m, task, batches)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "%s on %d fresh examples of %s:\n", spec.Model, size, heldOut(task).Describe())
			fmt.Fprintf(out, "  %s\n", formatMetrics(ev))
			return nil
		}
		if *n < 1 || *n > MaxPredict {
			return fmt.Errorf("-n must be between 1 and %d, got %d", MaxPredict, *n)
		}
		return predict(out, m, task, heldOut(task).Batch(rng, *n))
	}
	return fmt.Errorf("unknown trainer command %q (train, eval, predict, bench)", cmd)
}

// startsOver reports whether a resume of the run in dir must start it
// over: it has no checkpoint because it stopped before its first one, so
// nothing it did was kept, and starting over with its run.json takes
// exactly the steps it would have taken. A run whose summary.json says it
// took steps has lost its checkpoint since, and is refused rather than
// started over on top of its results.
func startsOver(dir string) (bool, error) {
	_, err := os.Lstat(filepath.Join(dir, CheckpointFile))
	if !errors.Is(err, os.ErrNotExist) {
		return false, nil // there is one, or readCheckpointInfo says what is wrong
	}
	b, err := runtime.ReadRegularFile(filepath.Join(dir, SummaryFile), maxSpec, SummaryFile)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	var sum struct{ Steps int }
	if err == nil && json.Unmarshal(b, &sum) == nil && sum.Steps == 0 {
		return true, nil // stopped before its first step
	}
	return false, fmt.Errorf("resume: %s has no %s, but its %s shows that the run got further: the checkpoint was moved or deleted; put it back to resume the run, or start a new one with attnc train -out NEW_DIR",
		dir, CheckpointFile, SummaryFile)
}

// resumable checks a resume of the run in dir, whose run.json is spec and
// which the command line would change to edited, against its checkpoint:
// the checkpoint's metadata must be sound, -steps may not undo steps
// taken, and a run that is finished or at its target has nothing to do
// (an error wrapping ErrAlreadyDone).
func resumable(dir string, spec, edited *Spec, task Task) error {
	path := filepath.Join(dir, CheckpointFile)
	info, err := readCheckpointInfo(path)
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	if edited.Steps != spec.Steps && edited.Steps <= info.Step {
		return fmt.Errorf("resume: -steps %d: the checkpoint is at step %d; give more steps to train longer (a resumed run never undoes steps)", edited.Steps, info.Step)
	}
	if info.Step > edited.Steps {
		return fmt.Errorf("resume: %s: step %d is beyond the run's %d steps (%s)", path, info.Step, edited.Steps, filepath.Join(dir, SpecFile))
	}
	again := fmt.Sprintf("attnc train -resume %s -steps N", dir)
	if info.Step == edited.Steps {
		return nothingToDo("%s is finished: all %d steps are done; nothing changed (%s, with N > %d, trains it longer)", dir, edited.Steps, again, edited.Steps)
	}
	if main := MainMetric(task); edited.Target > 0 && main != "" {
		if v, ok := info.Eval[main]; ok && v >= edited.Target {
			return nothingToDo("%s already reached its target: %s %.4f ≥ %g at step %d; nothing changed (a higher -target, or -target 0, continues it)", dir, main, v, edited.Target, info.Step)
		}
	}
	return nil
}

// train runs the training loop of the trainer: it stops after the step
// in progress on SIGINT or SIGTERM, and writes summary.json.
func train(out io.Writer, dir string, spec *Spec, task Task, m Model, resume bool, stopAfter int) error {
	terminal := isTerminal(out)
	out = &syncWriter{w: out} // the loop and the signal handler both write
	stop := make(chan struct{})
	var sig os.Signal
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	defer func() {
		signal.Stop(sigs)
		close(done)
	}()
	go func() {
		select {
		case sig = <-sigs:
		case <-done:
			return
		}
		fmt.Fprintf(out, "\n%v: stopping after this step, to checkpoint it (a second signal stops at once, keeping the last checkpoint)\n", sig)
		first := time.Now()
		close(stop)
		for {
			select {
			case <-sigs:
				// attnc forwards the signal a terminal also sent to the
				// trainer: one Ctrl-C can arrive twice at once.
				if time.Since(first) > time.Second {
					fmt.Fprintf(out, "stopping at once; the last checkpoint is kept in %s\n", dir)
					os.Exit(ExitInterrupted)
				}
			case <-done:
				return
			}
		}
	}()

	fmt.Fprintf(out, "training %s on %s: %d steps of %d examples\n", spec.Model, task.Describe(), spec.Steps, spec.Batch)
	sum, err := Run(m, Config{
		Task: task, Steps: spec.Steps, Batch: spec.Batch,
		Schedule:    Schedule{Kind: spec.Schedule, LR: spec.LR, Warmup: spec.Warmup},
		WeightDecay: spec.WeightDecay, Clip: spec.Clip,
		EvalEvery: spec.EvalEvery, EvalSize: spec.EvalSize, Target: spec.Target,
		Seed: spec.Seed, LogEvery: spec.LogEvery, Dir: dir, Resume: resume, StopAfter: stopAfter,
		Stop: stop, Out: out, Terminal: terminal,
	})
	summary := func() error {
		s := map[string]any{"steps": sum.Steps, "seconds": sum.Duration.Seconds(), "eval": finite(sum.Eval), "stopped": sum.Stopped}
		if sum.EvalStep > 0 {
			s["eval_step"] = sum.EvalStep
		}
		return writeJSON(filepath.Join(dir, SummaryFile), s)
	}
	if errors.Is(err, ErrStopped) {
		sum.Stopped = fmt.Sprintf("interrupted by %v after step %d", sig, sum.Steps)
		if err := summary(); err != nil {
			return err
		}
		fmt.Fprintf(out, "%s; the checkpoint is saved. Continue with:\n  attnc train -resume %s\n", sum.Stopped, dir)
		return &StoppedError{Signal: sig, Step: sum.Steps}
	}
	if err != nil {
		return err
	}
	if sum.Stopped != "" {
		fmt.Fprintf(out, "stopped early: %s\n", sum.Stopped)
	}
	fmt.Fprintf(out, "done: %d steps in %s; final eval %s\n", sum.Steps, sum.Duration.Round(1e6), formatMetrics(sum.Eval))
	if err := saveExample(filepath.Join(dir, ExampleFile), m, task, spec.Seed); err != nil {
		return err
	}
	return summary()
}

// syncWriter serialises writes to w.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// finite returns m without its NaN and infinite values, which JSON cannot
// hold (a metric is NaN when, say, a batch has nothing to score).
func finite(m map[string]float64) map[string]float64 {
	if m == nil {
		return nil
	}
	out := make(map[string]float64, len(m))
	for k, v := range m {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			out[k] = v
		}
	}
	return out
}

// ExampleFile holds one fresh example's inputs ("input:NAME") and the
// trained model's outputs on it, for pictures such as an attention heat
// map.
const ExampleFile = "example.safetensors"

func saveExample(path string, m Model, task Task, seed uint64) error {
	ex := task.Batch(rand.New(rand.NewPCG(seed, 0xe8a)), 1)
	out, err := m.ForwardMap(ex)
	if err != nil {
		return err
	}
	var ts []runtime.Named
	for name, t := range ex {
		ts = append(ts, runtime.Named{Name: "input:" + name, T: t})
	}
	for name, t := range out {
		ts = append(ts, runtime.Named{Name: name, T: t})
	}
	probes, meta, err := probeExample(m, ex)
	if err != nil {
		return err
	}
	return runtime.SaveSafetensors(path, append(ts, probes...), meta)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// predictSeq decodes b's examples greedily: with the model's compiled
// decode step where attnc made one (one example at a time, its source
// given once), else by rerunning Forward (decodeSeq).
func predictSeq(m Model, t *seqTask, b Batch) ([][]int32, error) {
	if newDecoder == nil {
		_, rows, err := decodeSeq(m, t, b, nil)
		return rows, err
	}
	d, err := newDecoder(m.Params())
	if err != nil {
		return nil, err
	}
	src := b["src"]
	rows := make([][]int32, src.Shape[0])
	for e := range rows {
		d.SetInput("src", rowsOf(src, []int{e}))
		if rows[e], err = d.Greedy(BOS, t.length, -1); err != nil {
			return nil, err
		}
	}
	return rows, nil
}

// predict prints examples with their targets and the model's (greedy)
// predictions.
func predict(out io.Writer, m Model, task Task, b Batch) error {
	size := b.Size()
	switch t := task.(type) {
	case *sortTask:
		_, chosen, err := decodeSort(m, t, b, nil)
		if err != nil {
			return err
		}
		for e := 0; e < size; e++ {
			fmt.Fprintf(out, "x       %s\n", floats(b["x"].F[e*t.n:(e+1)*t.n]))
			fmt.Fprintf(out, "target  %v\npredict %v\n\n", b["perm"].I[e*t.n:(e+1)*t.n], chosen[e])
		}
		return nil
	case *seqTask:
		rows, err := predictSeq(m, t, b)
		if err != nil {
			return err
		}
		l := t.length + 1
		for e := 0; e < size; e++ {
			fmt.Fprintf(out, "src     %v\ntarget  %v\npredict %v\n\n", b["src"].I[e*t.length:(e+1)*t.length], b["tgt"].I[e*l+1:(e+1)*l], rows[e])
		}
		return nil
	}
	res, err := m.ForwardMap(b)
	if err != nil {
		return err
	}
	logits := findLogits(res)
	for e := 0; e < size; e++ {
		switch task.(type) {
		case *recallTask:
			tok, tgt := b["tokens"], b["targets"]
			n := tok.Shape[1]
			fmt.Fprintf(out, "tokens  %v\n", tok.I[e*n:(e+1)*n])
			var want, got []int32
			for i := 0; i < n; i++ {
				if tgt.I[e*n+i] != Ignore {
					want = append(want, tgt.I[e*n+i])
					got = append(got, argmaxAt(logits, e, i))
				}
			}
			fmt.Fprintf(out, "recall  %v\npredict %v\n\n", want, got)
		case *lmTask:
			tok := b["tokens"]
			n := tok.Shape[1]
			text := make([]byte, n)
			for i := range text {
				text[i] = byte(tok.I[e*n+i])
			}
			if logits == nil || logits.Shape[1] != n {
				fmt.Fprintf(out, "text     %q\n(add `output logits = …` to the model to see its predictions; attnc generate samples from it)\n\n", text)
				continue
			}
			// The byte each position predicts comes after it: the text
			// from its second byte on, against the predictions.
			pred := make([]byte, n-1)
			right := 0
			for i := range pred {
				pred[i] = byte(argmaxAt(logits, e, i))
				if pred[i] == text[i+1] {
					right++
				}
			}
			fmt.Fprintf(out, "text     %q\npredict  %q (the most likely next byte at each position: %d of %d right)\n\n", text[1:], pred, right, n-1)
		default:
			fmt.Fprintf(out, "example %d: loss %.4f\n", e, scalar(res["loss"]))
		}
	}
	return nil
}

func floats(xs []float32) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%.3f", x)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// findLogits returns an f32 output of rank 3 ([B, N, V]), if the model
// has one.
func findLogits(res map[string]*runtime.Tensor) *runtime.Tensor {
	for k, t := range res {
		if strings.HasPrefix(k, "output:") && t.DType == runtime.F32 && len(t.Shape) == 3 {
			return t
		}
	}
	return nil
}

func argmaxAt(t *runtime.Tensor, b, i int) int32 {
	if t == nil {
		return -1
	}
	n, v := t.Shape[1], t.Shape[2]
	row := t.F[(b*n+i)*v:][:v]
	best := 0
	for j := range row {
		if row[j] > row[best] {
			best = j
		}
	}
	return int32(best)
}
