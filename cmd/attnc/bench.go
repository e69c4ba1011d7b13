package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/spf13/pflag"

	"github.com/attnc/attnc/train"
)

var benchCmd = &command{
	name:    "bench",
	args:    "FILE | -kernels",
	summary: "time a model's Forward and LossAndGrad, or the runtime's kernels",
	help: `Bench FILE builds the model's trainer (as attnc train does, and cached the
same way), makes one batch of the task its train section names, at the
train section's batch size, and times the generated package's Forward and
LossAndGrad on it: milliseconds a call, steps/s (a step is one
LossAndGrad, forward and backward, without the optimizer's update) and
tokens/s (the batch times the longest sequence among the inputs). It then
profiles a few LossAndGrad calls and lists the ten (-top N) most
expensive instructions of the IR, then the time by kind of op. -batch, -task, -config, -data and -model change
the shapes as they do for attnc train. -cpuprofile FILE writes a CPU
profile of LossAndGrad calls, -memprofile FILE their allocations (go tool
pprof TRAINER FILE reads either; the trainer's path is the first line
bench prints).

Bench -kernels times the runtime's kernels directly (B=1, H=8, d=64,
f32): matmul 1024³ and 2048³; attention forward and forward+backward,
full at N=1024 and 4096, causal at N=4096 and sliding window 256 at
N=8192. -quick uses small sizes (seconds), -run REGEXP a subset of the
cases. GFLOP/s counts 2n³ for a matmul and 4·pairs·d·H for an attention
forward, where pairs are the (query, key) pairs the mask admits, and
three times that for forward+backward. peak MiB is the largest growth of
the Go heap during one call (sampled every millisecond after a garbage
collection; garbage not yet collected counts), alloc MiB every byte the
call allocated.

Bench -peers runs the same cases in PyTorch (bench/peers/bench.py in the
shared folder, found as ../shared from the project or given with -shared,
in its tuned configuration: jemalloc, passive OpenMP), each case right
after attnc's, and prints the ratios. It needs python3 with torch and
numpy; without them it says what to install and exits with status 1.

Timings are medians of the timed calls after a warm-up; on a noisy
machine only ratios from one interleaved run mean much. -json prints one
JSON object a line, each with at least case, ms, gflops and peak_mib
(null where not measured).`,
	setup: func(fs *pflag.FlagSet) func(*cli, []string) int {
		f := &benchFlags{
			kernels:    fs.Bool("kernels", false, "time the runtime's kernels instead of a model"),
			quick:      fs.Bool("quick", false, "with -kernels: small sizes, for a smoke test"),
			peers:      fs.Bool("peers", false, "with the kernel cases, run PyTorch's on the same shapes, interleaved, and print ratios"),
			shared:     fs.String("shared", "", "the shared folder holding bench/peers/bench.py (default: ../shared from the project)"),
			python:     fs.String("python", "python3", "the Python interpreter for -peers"),
			run:        fs.String("run", "", "with -kernels: only the cases whose name matches this regular expression"),
			json:       fs.Bool("json", false, "print one JSON object a line"),
			reps:       fs.Int("reps", 0, "timed calls of each case (0: at least 3 and -min-time)"),
			top:        fs.Int("top", 10, "how many of the most expensive instructions of LossAndGrad to list"),
			cpuProfile: fs.String("cpuprofile", "", "write a CPU profile of LossAndGrad calls (about -min-time of them) to this file, for go tool pprof"),
			memProfile: fs.String("memprofile", "", "write the allocations of LossAndGrad calls (every one sampled) to this file, for go tool pprof"),
			minTime:    fs.Duration("min-time", 0, "time each case for at least this long (default 2s for a model, 1s for a kernel)"),
			model:      fs.String("model", "", "the model to time, when the file defines several"),
			batch:      fs.Int("batch", 0, "examples a batch (default: the train section's)"),
			data:       fs.String("data", "", "text file for the lm task"),
			task:       kvFlag{},
			config:     kvFlag{},
		}
		fs.Var(f.task, "task", "override a task parameter, as -task len=256 (repeatable)")
		fs.Var(f.config, "config", "override a config value of the model, as -config layers=2 (repeatable)")
		return func(c *cli, args []string) int {
			f.given = map[string]bool{}
			fs.Visit(func(fl *pflag.Flag) { f.given[fl.Name] = true })
			if err := f.check(args); err != nil {
				return c.usageError("bench", "%v", err)
			}
			if *f.kernels || *f.peers {
				return c.benchKernels(f)
			}
			return c.benchModel(args[0], f)
		}
	},
}

// benchFlags are attnc bench's flags; given holds the names of those on
// the command line.
type benchFlags struct {
	kernels, quick, peers, json *bool
	shared, python, run         *string
	cpuProfile, memProfile      *string
	model, data                 *string
	reps, batch, top            *int
	minTime                     *time.Duration
	task, config                kvFlag
	given                       map[string]bool
}

// check refuses flags that do not go together: a file with -kernels,
// model flags without a file, kernel flags with one.
func (f *benchFlags) check(args []string) error {
	kernels := *f.kernels || *f.peers
	if *f.reps < 0 || *f.minTime < 0 {
		return fmt.Errorf("-reps and -min-time must not be negative")
	}
	if *f.top < 1 {
		return fmt.Errorf("-top must be at least 1, got %d", *f.top)
	}
	if kernels {
		if len(args) > 0 {
			return fmt.Errorf("-kernels and -peers time the runtime's kernels, not a model: leave out %s (or leave out the flag)", args[0])
		}
		for _, name := range []string{"model", "batch", "data", "task", "config", "top", "cpuprofile", "memprofile"} {
			if f.given[name] {
				return fmt.Errorf("-%s goes with a model file, not with -kernels", name)
			}
		}
		if *f.run != "" {
			if _, err := regexp.Compile(*f.run); err != nil {
				return fmt.Errorf("-run: %v", err)
			}
		}
		return nil
	}
	for _, name := range []string{"quick", "run", "shared", "python"} {
		if f.given[name] {
			return fmt.Errorf("-%s goes with -kernels", name)
		}
	}
	if len(args) != 1 {
		return fmt.Errorf("want one model file (or -kernels), got %d arguments", len(args))
	}
	if f.given["batch"] && *f.batch < 1 {
		return fmt.Errorf("-batch must be at least 1, got %d", *f.batch)
	}
	return nil
}

// benchModel times the model in file through its trainer's bench
// command, on a spec resolved as attnc train resolves it.
func (c *cli) benchModel(file string, f *benchFlags) int {
	m, spec, ok := c.resolveSpec("bench", file, *f.model, f.config, f.task, *f.data)
	if !ok {
		return exitError
	}
	if f.given["batch"] {
		spec.Batch = *f.batch
	}
	if err := spec.Validate(); err != nil {
		fmt.Fprintf(c.stderr, "attnc bench: %v\n", err)
		return exitError
	}
	task, err := train.NewTask(spec.Task, spec.TaskParams)
	if err == nil {
		err = spec.CheckSize(task)
	}
	if err != nil {
		fmt.Fprintf(c.stderr, "attnc bench: %v\n", err)
		return exitError
	}
	bin, err := c.trainer(m)
	if err != nil {
		fmt.Fprintf(c.stderr, "attnc bench: %v\n", err)
		return exitError
	}
	// The trainer reads its settings from a run directory's run.json:
	// give it a scratch one.
	dir, err := os.MkdirTemp("", "attnc-bench-")
	if err != nil {
		fmt.Fprintf(c.stderr, "attnc bench: %v\n", err)
		return exitError
	}
	defer os.RemoveAll(dir)
	b, _ := json.MarshalIndent(spec, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, train.SpecFile), append(b, '\n'), 0o600); err != nil {
		fmt.Fprintf(c.stderr, "attnc bench: %v\n", err)
		return exitError
	}
	targs := []string{"bench", dir}
	if *f.reps > 0 {
		targs = append(targs, "-reps", strconv.Itoa(*f.reps))
	}
	if f.given["min-time"] {
		targs = append(targs, "-min-time", f.minTime.String())
	}
	if *f.json {
		targs = append(targs, "-json")
	}
	if f.given["top"] {
		targs = append(targs, "-top", strconv.Itoa(*f.top))
	}
	for _, p := range []struct{ flag, path string }{{"cpuprofile", *f.cpuProfile}, {"memprofile", *f.memProfile}} {
		if p.path == "" {
			continue
		}
		abs, err := filepath.Abs(p.path)
		if err != nil {
			fmt.Fprintf(c.stderr, "attnc bench: -%s: %v\n", p.flag, err)
			return exitError
		}
		targs = append(targs, "-"+p.flag, abs)
	}
	if c.runTrainer(bin, nil, targs...) != exitOK {
		return exitError
	}
	return exitOK
}
