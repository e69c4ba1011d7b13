package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/attnc/attnc/lang"
	"github.com/attnc/attnc/runtime"
	"github.com/attnc/attnc/train"
	"github.com/attnc/attnc/train/plot"
)

// kvFlag collects repeated KEY=VALUE flags.
type kvFlag map[string]string

func (f kvFlag) String() string { return "" }
func (f kvFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", s)
	}
	f[k] = v
	return nil
}

var trainCmd = &command{
	name:    "train",
	args:    "FILE",
	summary: "train a model on its default task",
	help: `Train compiles the model to Go, builds a trainer around it (cached by
the hash of the model and attnc's version, so a second run starts at
once), and trains it on the task its train section names, on this CPU.
The flags below override the train section's steps, batch, learning rate,
seed, evaluation interval, target and task parameters, and the model's
config (docs/TRAINING.md lists every setting). The run directory (-out,
default runs/<model>-<time>) gets run.json, checkpoint.safetensors (with
the optimizer state: -resume DIR continues a run exactly), metrics.jsonl,
summary.json, loss.png and, for a pointer network, attention.png.

Tasks are generated in process from the seed: copy and reverse (len,
vocab), sort (n), recall (pairs, len, vocab), and lm (len; the text file
given with -data).`,
	setup: func(fs *flag.FlagSet) func(*cli, []string) int {
		out := fs.String("out", "", "run directory (default runs/<model>-<time>)")
		resume := fs.String("resume", "", "continue the run in this directory")
		steps := fs.Int("steps", 0, "training steps (default: the train section's)")
		batch := fs.Int("batch", 0, "examples per step")
		lr := fs.Float64("lr", 0, "peak learning rate")
		seed := fs.Uint64("seed", 0, "seed of the weights and the data (default 1)")
		evalEvery := fs.Int("eval-every", 0, "evaluate (and checkpoint) every N steps")
		target := fs.Float64("target", 0, "stop when the task's main metric reaches this")
		data := fs.String("data", "", "text file for the lm task")
		model := fs.String("model", "", "the model to train, when the file defines several")
		taskArgs := kvFlag{}
		fs.Var(taskArgs, "task", "override a task parameter, as -task n=12 (repeatable)")
		config := kvFlag{}
		fs.Var(config, "config", "override a config value of the model, as -config window=64 (repeatable; kept in run.json)")
		return func(c *cli, args []string) int {
			if *resume != "" {
				spec, err := train.ReadSpec(*resume)
				if err != nil {
					fmt.Fprintf(c.stderr, "attnc train: %v\n", err)
					return exitError
				}
				if len(args) == 0 {
					args = []string{spec.Source}
				}
				for k, v := range spec.Config {
					config[k] = v
				}
			}
			if len(args) != 1 {
				return c.usageError("train", "want exactly one file, got %d", len(args))
			}
			models, ok := c.compile(args[0], *model, false, config)
			if !ok {
				return exitError
			}
			m := models[0]
			spec, err := specFor(m, args[0])
			if err == nil && len(config) > 0 {
				spec.Config = config
			}
			if err != nil {
				fmt.Fprintf(c.stderr, "attnc train: %s: %v\n", args[0], err)
				return exitError
			}
			for k, v := range taskArgs {
				if n, err := strconv.Atoi(v); err == nil {
					spec.TaskParams.Ints[k] = n
				} else {
					spec.TaskParams.Strings[k] = v
				}
			}
			if *data != "" {
				abs, _ := filepath.Abs(*data)
				spec.TaskParams.Strings["data"] = abs
			}
			override := func(dst *int, v int) {
				if v != 0 {
					*dst = v
				}
			}
			override(&spec.Steps, *steps)
			override(&spec.Batch, *batch)
			override(&spec.EvalEvery, *evalEvery)
			if *lr != 0 {
				spec.LR = *lr
			}
			if *seed != 0 {
				spec.Seed = *seed
			}
			if *target != 0 {
				spec.Target = *target
			}
			if spec.EvalEvery == 0 {
				spec.EvalEvery = max(spec.Steps/10, 1)
			}
			if _, err := train.NewTask(spec.Task, spec.TaskParams); err != nil {
				fmt.Fprintf(c.stderr, "attnc train: %v\n", err)
				return exitError
			}
			dir := *out
			if *resume != "" {
				dir = *resume
			} else if dir == "" {
				dir = filepath.Join("runs", fmt.Sprintf("%s-%s", m.Name, time.Now().Format("20060102-150405")))
			}
			if *resume == "" {
				if _, err := os.Stat(filepath.Join(dir, train.CheckpointFile)); err == nil {
					fmt.Fprintf(c.stderr, "attnc train: %s already holds a run; continue it with -resume %s, or choose another -out\n", dir, dir)
					return exitError
				}
			}
			bin, err := c.trainer(m)
			if err != nil {
				fmt.Fprintf(c.stderr, "attnc train: %v\n", err)
				return exitError
			}
			if *resume == "" {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					fmt.Fprintf(c.stderr, "attnc train: %v\n", err)
					return exitError
				}
				b, _ := json.MarshalIndent(spec, "", "  ")
				if err := writeFileAtomic(filepath.Join(dir, train.SpecFile), append(b, '\n')); err != nil {
					fmt.Fprintf(c.stderr, "attnc train: %v\n", err)
					return exitError
				}
			}
			targs := []string{"train", dir}
			if *resume != "" {
				targs = append(targs, "-resume")
			}
			if code := c.runTrainer(bin, targs...); code != exitOK {
				return code
			}
			c.pictures(dir, m.Name)
			fmt.Fprintf(c.stdout, "run directory: %s\n", dir)
			return exitOK
		}
	},
}

// specFor resolves a model's train section into a run spec, with the
// defaults filled in.
func specFor(m *lang.Model, source string) (*train.Spec, error) {
	abs, _ := filepath.Abs(source)
	if strings.HasPrefix(source, lang.StdPrefix) {
		abs = source
	}
	s := &train.Spec{Model: m.Name, Source: abs, Steps: 1000, Batch: 32, LR: 1e-3, WeightDecay: 0.01,
		Schedule: "cosine", Warmup: 0, Clip: 1.0, EvalSize: 512, Seed: 1, LogEvery: 50,
		TaskParams: train.Params{Ints: map[string]int{}, Strings: map[string]string{}}}
	task, ok := m.TrainValue("task")
	if !ok {
		return nil, errors.New("the model has no train section with a task; add train { task: ... }")
	}
	switch task.Kind {
	case "record":
		s.Task = task.Record.Name
		for _, a := range task.Record.Args {
			switch a.Value.Kind {
			case "int":
				s.TaskParams.Ints[a.Name] = int(a.Value.Int)
			case "string":
				s.TaskParams.Strings[a.Name] = a.Value.Str
			default:
				return nil, fmt.Errorf("task parameter %s must be an int or a string, got %s", a.Name, a.Value)
			}
		}
	case "string":
		s.Task = task.Str
	default:
		return nil, fmt.Errorf("task must name a task, like sort(n: 10), got %s", task)
	}
	getInt := func(key string, dst *int) error {
		if v, ok := m.TrainValue(key); ok {
			if v.Kind != "int" || v.Int <= 0 {
				return fmt.Errorf("%s must be a positive int, got %s", key, v)
			}
			*dst = int(v.Int)
		}
		return nil
	}
	getFloat := func(key string, dst *float64) error {
		if v, ok := m.TrainValue(key); ok {
			f, isNum := v.AsFloat()
			if !isNum || f < 0 {
				return fmt.Errorf("%s must be a non-negative number, got %s", key, v)
			}
			*dst = f
		}
		return nil
	}
	var seed int
	if err := errors.Join(getInt("steps", &s.Steps), getInt("batch", &s.Batch), getInt("eval_every", &s.EvalEvery),
		getInt("eval_size", &s.EvalSize), getInt("log_every", &s.LogEvery), getInt("seed", &seed),
		getFloat("clip", &s.Clip), getFloat("target", &s.Target)); err != nil {
		return nil, err
	}
	if seed > 0 {
		s.Seed = uint64(seed)
	}
	if opt, ok := m.TrainValue("optimizer"); ok {
		if opt.Kind != "record" || opt.Record.Name != "adamw" {
			return nil, fmt.Errorf("optimizer must be adamw(lr: ..., weight_decay: ...), got %s", opt)
		}
		for _, a := range opt.Record.Args {
			f, isNum := a.Value.AsFloat()
			switch {
			case !isNum:
				return nil, fmt.Errorf("adamw %s must be a number, got %s", a.Name, a.Value)
			case a.Name == "lr":
				s.LR = f
			case a.Name == "weight_decay":
				s.WeightDecay = f
			default:
				return nil, fmt.Errorf("adamw has no parameter %s (lr, weight_decay)", a.Name)
			}
		}
	}
	if sch, ok := m.TrainValue("schedule"); ok {
		if sch.Kind != "record" || (sch.Record.Name != "cosine" && sch.Record.Name != "constant") {
			return nil, fmt.Errorf("schedule must be cosine(warmup: N) or constant(warmup: N), got %s", sch)
		}
		s.Schedule = sch.Record.Name
		for _, a := range sch.Record.Args {
			if a.Name != "warmup" || a.Value.Kind != "int" {
				return nil, fmt.Errorf("%s takes warmup: N, got %s", sch.Record.Name, a.Name)
			}
			s.Warmup = int(a.Value.Int)
		}
	}
	return s, nil
}

// runTrainer runs the trainer with the terminal as its output, so its
// progress bar draws, and returns attnc's exit status.
func (c *cli) runTrainer(bin string, args ...string) int {
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = c.stdout, c.stderr
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			fmt.Fprintf(c.stderr, "attnc: running the trainer: %v\n", err)
		}
		return exitError
	}
	return exitOK
}

// runCmd makes eval and predict: both rebuild (or reuse) the trainer of
// the run's model and ask it about the run's checkpoint.
func runCmd(name, summary, help string, extra func(fs *flag.FlagSet) func() []string) *command {
	return &command{
		name:    name,
		args:    "RUN_DIR",
		summary: summary,
		help:    help,
		setup: func(fs *flag.FlagSet) func(*cli, []string) int {
			more := extra(fs)
			return func(c *cli, args []string) int {
				if len(args) != 1 {
					return c.usageError(name, "want one run directory, got %d", len(args))
				}
				spec, err := train.ReadSpec(args[0])
				if err != nil {
					fmt.Fprintf(c.stderr, "attnc %s: %v\n", name, err)
					return exitError
				}
				models, ok := c.compile(spec.Source, spec.Model, false, spec.Config)
				if !ok {
					return exitError
				}
				bin, err := c.trainer(models[0])
				if err != nil {
					fmt.Fprintf(c.stderr, "attnc %s: %v\n", name, err)
					return exitError
				}
				return c.runTrainer(bin, append([]string{name, args[0]}, more()...)...)
			}
		},
	}
}

var evalCmd = runCmd("eval", "evaluate a trained model on fresh data",
	`Eval reports the metrics of a run's checkpoint on examples generated
fresh (from a stream neither training nor its held-out set used).`,
	func(fs *flag.FlagSet) func() []string { return func() []string { return nil } })

var predictCmd = runCmd("predict", "show a trained model's predictions",
	`Predict prints a few fresh examples with their targets and the model's
predictions (greedy decoding for sort, copy and reverse).`,
	func(fs *flag.FlagSet) func() []string {
		n := fs.Int("n", 3, "how many examples")
		return func() []string { return []string{"-n", strconv.Itoa(*n)} }
	})

// pictures draws loss.png and, for a model that outputs a distribution
// over positions (a pointer network), attention.png. A picture that
// cannot be drawn is a warning, not a failed run.
func (c *cli) pictures(dir, model string) {
	recs, err := plot.ReadMetrics(filepath.Join(dir, train.MetricsFile))
	if err == nil {
		err = plot.Loss(filepath.Join(dir, "loss.png"), model+" loss", recs)
	}
	if err != nil {
		fmt.Fprintf(c.stderr, "attnc train: warning: loss.png: %v\n", err)
	}
	ex, _, err := runtime.LoadSafetensors(filepath.Join(dir, train.ExampleFile))
	if err != nil {
		return
	}
	outputs := map[string]*runtime.Tensor{}
	for name, t := range ex {
		if o, ok := strings.CutPrefix(name, "output:"); ok {
			outputs[o] = t
		}
	}
	if name := plot.AttentionOutput(outputs); name != "" {
		if err := plot.HeatMap(filepath.Join(dir, "attention.png"), model+": "+name+" of one example", outputs[name]); err != nil {
			fmt.Fprintf(c.stderr, "attnc train: warning: attention.png: %v\n", err)
		}
	}
}
