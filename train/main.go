package train

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"strings"

	"github.com/attnc/attnc/runtime"
)

// SpecFile is the file in a run directory that describes the run.
const SpecFile = "run.json"

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

// ReadSpec reads DIR/run.json.
func ReadSpec(dir string) (*Spec, error) {
	b, err := runtime.ReadRegularFile(filepath.Join(dir, SpecFile), maxSpec, SpecFile)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s is not a run directory (it has no %s)", dir, SpecFile)
		}
		return nil, err
	}
	var s Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, SpecFile), err)
	}
	return &s, nil
}

// Main is the trainer program attnc train builds around a compiled model:
//
//	trainer train DIR [-resume]   train as DIR/run.json says
//	trainer eval DIR              metrics of DIR's checkpoint on fresh data
//	trainer predict DIR [-n N]    a few examples: input, target, prediction
//
// newModel makes the model with weights initialised from a seed.
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
	if err := run(os.Args[1:], os.Stdout, newModel); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer, newModel func(seed uint64) (Model, error)) error {
	if len(args) < 2 {
		return errors.New("usage: trainer train|eval|predict DIR [flags]")
	}
	cmd, dir := args[0], args[1]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	resume := fs.Bool("resume", false, "continue from the run's checkpoint")
	n := fs.Int("n", 3, "examples to print")
	stopAfter := fs.Int("stop-after", 0, "end the run after this step as a kill would (for tests)")
	if err := fs.Parse(args[2:]); err != nil {
		return err
	}
	spec, err := ReadSpec(dir)
	if err != nil {
		return err
	}
	task, err := NewTask(spec.Task, spec.TaskParams)
	if err != nil {
		return err
	}
	m, err := newModel(spec.Seed)
	if err != nil {
		return err
	}
	switch cmd {
	case "train":
		fmt.Fprintf(out, "training %s on %s: %d steps of %d examples\n", spec.Model, task.Describe(), spec.Steps, spec.Batch)
		sum, err := Run(m, Config{
			Task: task, Steps: spec.Steps, Batch: spec.Batch,
			Schedule:    Schedule{Kind: spec.Schedule, LR: spec.LR, Warmup: spec.Warmup},
			WeightDecay: spec.WeightDecay, Clip: spec.Clip,
			EvalEvery: spec.EvalEvery, EvalSize: spec.EvalSize, Target: spec.Target,
			Seed: spec.Seed, LogEvery: spec.LogEvery, Dir: dir, Resume: *resume, StopAfter: *stopAfter,
			Out: out, Terminal: isTerminal(out),
		})
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
		return writeJSON(filepath.Join(dir, "summary.json"), map[string]any{"steps": sum.Steps, "seconds": sum.Duration.Seconds(), "eval": sum.Eval, "stopped": sum.Stopped})
	case "eval", "predict":
		if _, err := LoadParams(filepath.Join(dir, CheckpointFile), m.Params()); err != nil {
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
				batches = append(batches, task.Batch(rng, min(left, spec.Batch)))
			}
			ev, err := Evaluate(m, task, batches)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "%s on %d fresh examples of %s:\n", spec.Model, size, task.Describe())
			fmt.Fprintf(out, "  %s\n", formatMetrics(ev))
			return nil
		}
		return predict(out, m, task, task.Batch(rng, *n))
	}
	return fmt.Errorf("unknown trainer command %q (train, eval, predict)", cmd)
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
	return runtime.SaveSafetensors(path, ts, nil)
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

// predict prints examples with their targets and the model's (greedy)
// predictions.
func predict(out io.Writer, m Model, task Task, b Batch) error {
	size := b.Size()
	switch t := task.(type) {
	case *sortTask:
		_, chosen, err := decodeSort(m, t, b)
		if err != nil {
			return err
		}
		for e := 0; e < size; e++ {
			fmt.Fprintf(out, "x       %s\n", floats(b["x"].F[e*t.n:(e+1)*t.n]))
			fmt.Fprintf(out, "target  %v\npredict %v\n\n", b["perm"].I[e*t.n:(e+1)*t.n], chosen[e])
		}
		return nil
	case *seqTask:
		_, rows, err := decodeSeq(m, t, b)
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
