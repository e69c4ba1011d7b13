package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	repo "github.com/attnc/attnc"
	"github.com/attnc/attnc/lang"
	"github.com/attnc/attnc/runtime"
	"github.com/attnc/attnc/train"
	"github.com/attnc/attnc/train/plot"
)

// kvFlag collects repeated KEY=VALUE flags.
type kvFlag map[string]string

func (f kvFlag) String() string { return "" }
func (f kvFlag) Type() string   { return "key=value" }
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

-resume DIR continues the run in DIR from its checkpoint. It keeps the
settings the run started with; -steps N (more than the steps done) trains
it longer, and -target and -eval-every change when it stops and
evaluates (all three are recorded in run.json). Other flags are refused
when they differ from the run's. A finished run is left as it is; a run
stopped before its first checkpoint starts over with its settings.

Ctrl-C (SIGINT) or SIGTERM stops training after the step in progress,
with a checkpoint, summary.json and the command that resumes the run;
the exit status is then 130; on Linux, a kill -9 of attnc sends the
trainer SIGTERM. One writer at a time: a second train or -resume on a
run directory in use is refused.

Tasks are generated in process from the seed: copy and reverse (len,
vocab), sort (n), recall (pairs, len, vocab), and lm (len; the text file
given with -data, whose last tenth is held out for evaluation unless
-val names a held-out file).`,
	setup: func(fs *pflag.FlagSet) func(*cli, []string) int {
		f := &trainFlags{
			out:       fs.StringP("out", "o", "", "run directory (default runs/<model>-<time>)"),
			resume:    fs.String("resume", "", "continue the run in this directory"),
			steps:     fs.Int("steps", 0, "training steps (default: the train section's; with -resume: the new total)"),
			batch:     fs.Int("batch", 0, "examples per step"),
			lr:        fs.Float64("lr", 0, "peak learning rate"),
			seed:      fs.Uint64("seed", 0, "seed of the weights and the data (default 1)"),
			evalEvery: fs.Int("eval-every", 0, "evaluate (and checkpoint) every N steps"),
			target:    fs.Float64("target", 0, "stop when the task's main metric reaches this (0: never)"),
			data:      fs.String("data", "", "text file for the lm task"),
			val:       fs.String("val", "", "held-out text file for the lm task (default: the last tenth of -data, which training then leaves out)"),
			model:     fs.String("model", "", "the model to train, when the file defines several"),
			task:      kvFlag{},
			config:    kvFlag{},
		}
		fs.Var(f.task, "task", "override a task parameter, as -task n=12 (repeatable)")
		fs.Var(f.config, "config", "override a config value of the model, as -config window=64 (repeatable; kept in run.json)")
		return func(c *cli, args []string) int {
			f.given = map[string]bool{}
			fs.Visit(func(fl *pflag.Flag) { f.given[fl.Name] = true })
			if *f.resume != "" {
				return c.resume(*f.resume, args, f)
			}
			return c.newRun(args, f)
		}
	},
}

// trainFlags are attnc train's flags; given holds the names of those on
// the command line, so that a value equal to the flag's zero is applied
// (or refused) rather than taken for "not given".
type trainFlags struct {
	out, resume, data, model *string
	val                      *string
	steps, batch, evalEvery  *int
	lr, target               *float64
	seed                     *uint64
	task, config             kvFlag
	given                    map[string]bool
}

// exitInterrupted is attnc train's exit status when a signal stopped the
// run (after a checkpoint), as a shell reports a job stopped by SIGINT.
const exitInterrupted = train.ExitInterrupted

// newRun starts a run in a new run directory.
func (c *cli) newRun(args []string, f *trainFlags) int {
	if len(args) != 1 {
		return c.usageError("train", "want exactly one file, got %d", len(args))
	}
	if f.given["eval-every"] && *f.evalEvery < 1 {
		return c.usageError("train", "-eval-every must be at least 1, got %d", *f.evalEvery)
	}
	m, spec, sources, ok := c.resolveSpecSources("train", args[0], *f.model, f.config, f.task, *f.data)
	if !ok {
		return exitError
	}
	if len(m.IR.Params()) == 0 {
		fmt.Fprintf(c.stderr, "attnc train: model %s has no weights to train (no param, embed, linear or block that makes one)\n", m.Name)
		return exitError
	}
	if f.given["steps"] {
		spec.Steps = *f.steps
	}
	if f.given["batch"] {
		spec.Batch = *f.batch
	}
	if f.given["eval-every"] {
		spec.EvalEvery = *f.evalEvery
	}
	if f.given["lr"] {
		spec.LR = *f.lr
	}
	if f.given["seed"] {
		spec.Seed = *f.seed
	}
	if f.given["target"] {
		spec.Target = *f.target
	}
	if f.given["val"] {
		abs, _ := filepath.Abs(*f.val)
		spec.TaskParams.Strings["val"] = abs
	}
	if spec.EvalEvery == 0 {
		spec.EvalEvery = max(spec.Steps/10, 1)
	}
	if err := spec.Validate(); err != nil {
		fmt.Fprintf(c.stderr, "attnc train: %v\n", err)
		return exitError
	}
	task, err := train.NewTask(spec.Task, spec.TaskParams)
	if err == nil {
		err = spec.CheckSize(task)
	}
	if err == nil {
		err = checkTokens(m, task)
	}
	if err != nil {
		fmt.Fprintf(c.stderr, "attnc train: %v\n", err)
		return exitError
	}
	dir := *f.out
	if dir == "" {
		dir = filepath.Join("runs", fmt.Sprintf("%s-%s", m.Name, time.Now().Format("20060102-150405")))
	}
	if _, err := os.Stat(filepath.Join(dir, train.CheckpointFile)); err == nil {
		fmt.Fprintf(c.stderr, "attnc train: %s already holds a run; continue it with -resume %s, or choose another -out\n", dir, dir)
		return exitError
	}
	bin, err := c.trainer(m)
	if err != nil {
		fmt.Fprintf(c.stderr, "attnc train: %v\n", err)
		return exitError
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintf(c.stderr, "attnc train: %v\n", err)
		return exitError
	}
	// The lock covers run.json too: a second attnc train with the same
	// -out must not rewrite the settings of a run in progress. The
	// trainer inherits it.
	lock, err := train.LockRun(dir)
	if err != nil {
		fmt.Fprintf(c.stderr, "attnc train: %v\n", err)
		return exitError
	}
	defer lock.Release()
	if _, err := os.Stat(filepath.Join(dir, train.CheckpointFile)); err == nil {
		fmt.Fprintf(c.stderr, "attnc train: %s already holds a run; continue it with -resume %s, or choose another -out\n", dir, dir)
		return exitError
	}
	if cp, err := embeddedCorpusPath(); err == nil && spec.TaskParams.Strings["data"] == cp {
		// The embedded text's file lives in the cache, which may be
		// cleared: the run keeps its own copy, as it keeps its source.
		own, _ := filepath.Abs(filepath.Join(dir, "data.txt"))
		if err := writeFileAtomic(own, repo.Docs()); err != nil {
			fmt.Fprintf(c.stderr, "attnc train: %v\n", err)
			return exitError
		}
		spec.TaskParams.Strings["data"] = own
	}
	if err := writeSnapshot(dir, spec.Source, sources); err != nil {
		fmt.Fprintf(c.stderr, "attnc train: keeping a copy of the model's source in %s: %v\n", dir, err)
		return exitError
	}
	b, _ := json.MarshalIndent(spec, "", "  ")
	if err := writeFileAtomic(filepath.Join(dir, train.SpecFile), append(b, '\n')); err != nil {
		fmt.Fprintf(c.stderr, "attnc train: %v\n", err)
		return exitError
	}
	return c.trained(dir, m.Name, c.runTrainer(bin, lock, "train", dir))
}

// resume continues the run in dir. The settings that decide which steps
// the run takes (model, config, task, data, batch, lr, seed) are the
// run's own: giving another value is refused, since the resumed run
// would then be neither the run it continues nor a run of the settings
// asked for. -steps, -target and -eval-every go to the trainer, which
// checks them against the checkpoint and records them in run.json.
func (c *cli) resume(dir string, args []string, f *trainFlags) int {
	spec, err := train.ReadSpec(dir)
	if err != nil {
		fmt.Fprintf(c.stderr, "attnc train: %v\n", err)
		return exitError
	}
	if diffs := resumeConflicts(dir, spec, args, f); len(diffs) > 0 {
		fmt.Fprintf(c.stderr, "attnc train: -resume continues %s with the settings it started with, so that it takes exactly the steps the run would have; these differ from run.json:\n", dir)
		for _, d := range diffs {
			fmt.Fprintf(c.stderr, "  %s\n", d)
		}
		fmt.Fprintf(c.stderr, "Leave them out, or start a new run with -out NEW_DIR. (-steps, -target and -eval-every may change on -resume.)\n")
		return exitUsage
	}
	if f.given["eval-every"] && *f.evalEvery < 1 {
		return c.usageError("train", "-eval-every must be at least 1, got %d", *f.evalEvery)
	}
	lock, err := train.LockRun(dir)
	if err != nil {
		fmt.Fprintf(c.stderr, "attnc train: %v\n", err)
		return exitError
	}
	defer lock.Release()
	m, ok := c.compileRun("train", dir, spec.Source, spec.Model, spec.Config)
	if !ok {
		return exitError
	}
	bin, err := c.trainer(m)
	if err != nil {
		fmt.Fprintf(c.stderr, "attnc train: %v\n", err)
		return exitError
	}
	targs := []string{"train", dir, "-resume"}
	if f.given["steps"] {
		targs = append(targs, "-steps", strconv.Itoa(*f.steps))
	}
	if f.given["target"] {
		targs = append(targs, "-target", strconv.FormatFloat(*f.target, 'g', -1, 64))
	}
	if f.given["eval-every"] {
		targs = append(targs, "-eval-every", strconv.Itoa(*f.evalEvery))
	}
	return c.trained(dir, spec.Model, c.runTrainer(bin, lock, targs...))
}

// resumeConflicts lists the flags (and the file) given with -resume that
// differ from the run's settings.
func resumeConflicts(dir string, spec *train.Spec, args []string, f *trainFlags) []string {
	var diffs []string
	differ := func(gave, has string) {
		diffs = append(diffs, fmt.Sprintf("%s (the run has %s)", gave, has))
	}
	if len(args) > 1 {
		diffs = append(diffs, fmt.Sprintf("%d files (-resume takes the run's own, %s)", len(args), spec.Source))
	} else if len(args) == 1 && sourcePath(args[0]) != spec.Source {
		differ(args[0], spec.Source)
	}
	if f.given["out"] && !sameDir(*f.out, dir) {
		differ("-out "+*f.out, "its directory "+dir)
	}
	if f.given["model"] && *f.model != spec.Model {
		differ("-model "+*f.model, spec.Model)
	}
	if f.given["batch"] && *f.batch != spec.Batch {
		differ(fmt.Sprintf("-batch %d", *f.batch), fmt.Sprintf("batch %d", spec.Batch))
	}
	if f.given["lr"] && *f.lr != spec.LR {
		differ(fmt.Sprintf("-lr %g", *f.lr), fmt.Sprintf("lr %g", spec.LR))
	}
	if f.given["seed"] && *f.seed != spec.Seed {
		differ(fmt.Sprintf("-seed %d", *f.seed), fmt.Sprintf("seed %d", spec.Seed))
	}
	if f.given["data"] {
		abs, _ := filepath.Abs(*f.data)
		if has := spec.TaskParams.Strings["data"]; abs != has {
			differ("-data "+*f.data, "data "+orNone(has))
		}
	}
	if f.given["val"] {
		abs, _ := filepath.Abs(*f.val)
		if has := spec.TaskParams.Strings["val"]; abs != has {
			differ("-val "+*f.val, "val "+orNone(has))
		}
	}
	for _, k := range sortedKeys(f.task) {
		has, ok := spec.TaskParams.Strings[k]
		if n, isInt := spec.TaskParams.Ints[k]; isInt {
			has, ok = strconv.Itoa(n), true
		}
		if !ok || has != f.task[k] {
			differ("-task "+k+"="+f.task[k], "task "+spec.Task+" with "+k+" "+orNone(has))
		}
	}
	for _, k := range sortedKeys(f.config) {
		if has, ok := spec.Config[k]; !ok || has != f.config[k] {
			if !ok {
				has = "the source's value"
			}
			differ("-config "+k+"="+f.config[k], "config "+k+" "+has)
		}
	}
	return diffs
}

// trained finishes attnc train after the trainer's exit status code: the
// pictures and the run directory when it trained (also when a signal
// stopped it), nothing when a resume found nothing to do.
func (c *cli) trained(dir, model string, code int) int {
	switch code {
	case train.ExitAlreadyDone:
		return exitOK
	case exitOK, exitInterrupted:
		c.pictures(dir, model)
		fmt.Fprintf(c.stdout, "run directory: %s\n", dir)
		return code
	}
	return exitError
}

// sourcePath spells a model file as run.json does.
func sourcePath(source string) string {
	if strings.HasPrefix(source, lang.StdPrefix) {
		return source
	}
	abs, _ := filepath.Abs(source)
	return abs
}

func sameDir(a, b string) bool {
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	if errA == nil && errB == nil {
		return os.SameFile(fa, fb)
	}
	a, _ = filepath.Abs(a)
	b, _ = filepath.Abs(b)
	return a == b
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// resolveSpec compiles the model in file (with -model and -config) and
// resolves its train section into a run spec with the -config, -task and
// -data flags applied, as attnc train and attnc bench both start. It
// reports errors itself, as attnc CMD.
func (c *cli) resolveSpec(cmd, file, model string, config, task kvFlag, data string) (*lang.Model, *train.Spec, bool) {
	m, spec, _, ok := c.resolveSpecSources(cmd, file, model, config, task, data)
	return m, spec, ok
}

// resolveSpecSources is resolveSpec, with the text of every file the
// model was compiled from (compileSources), for the run directory's copy.
func (c *cli) resolveSpecSources(cmd, file, model string, config, task kvFlag, data string) (*lang.Model, *train.Spec, map[string]string, bool) {
	m, sources, ok := c.compileSources(file, model, config)
	if !ok {
		return nil, nil, nil, false
	}
	spec, err := specFor(m, file)
	if err != nil {
		fmt.Fprintf(c.stderr, "attnc %s: %s: %v\n", cmd, file, err)
		return nil, nil, nil, false
	}
	if len(config) > 0 {
		spec.Config = config
	}
	for k, v := range task {
		if n, err := strconv.Atoi(v); err == nil {
			spec.TaskParams.Ints[k] = n
		} else {
			spec.TaskParams.Strings[k] = v
		}
	}
	if data != "" {
		abs, _ := filepath.Abs(data)
		spec.TaskParams.Strings["data"] = abs
	} else if spec.TaskParams.Strings["data"] == repo.DocsCorpus {
		path, err := embeddedCorpus()
		if err != nil {
			fmt.Fprintf(c.stderr, "attnc %s: %s: %v\n", cmd, repo.DocsCorpus, err)
			return nil, nil, nil, false
		}
		spec.TaskParams.Strings["data"] = path
	}
	return m, spec, sources, true
}

// embeddedCorpus writes attnc's embedded text ("std/docs.txt", its own
// documentation) to a file in the cache named by its hash, once, and
// returns the file's path: the lm task reads its data from a file.
func embeddedCorpus() (string, error) {
	path, err := embeddedCorpusPath()
	if err != nil {
		return "", err
	}
	text := repo.Docs()
	if b, err := os.ReadFile(path); err == nil && bytes.Equal(b, text) {
		return path, nil
	}
	return path, writeFileAtomic(path, text)
}

// embeddedCorpusPath is where embeddedCorpus writes the text.
func embeddedCorpusPath() (string, error) {
	cache, err := trainerCache()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(repo.Docs())
	return filepath.Join(filepath.Dir(cache), "docs-"+hex.EncodeToString(sum[:8])+".txt"), nil
}

// specFor resolves a model's train section into a run spec, with the
// defaults filled in.
func specFor(m *lang.Model, source string) (*train.Spec, error) {
	s := &train.Spec{Model: m.Name, Source: sourcePath(source), Steps: 1000, Batch: 32, LR: 1e-3, WeightDecay: 0.01,
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
// progress bar draws, and returns its exit status (-1 when it could not
// be run, or a signal killed it). A lock, when given, is handed down to
// the trainer, and taken back (with attnc's pid in the lock file) when it
// exits. SIGINT and SIGTERM sent to attnc are passed on to the trainer,
// which checkpoints and stops, and attnc waits for it; where the system
// allows (Linux), the trainer is also sent SIGTERM when attnc dies of a
// signal it cannot catch (kill -9), so killing attnc never leaves a
// trainer running on its own.
func (c *cli) runTrainer(bin string, lock *train.RunLock, args ...string) int {
	// The parent-death signal follows the thread that starts the child:
	// keep this goroutine on one thread from Start until Wait returns, so
	// the runtime never ends that thread while the trainer runs.
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = c.stdout, c.stderr
	stopWithParent(cmd)
	if lock != nil {
		cmd.ExtraFiles = lock.ExtraFiles()
		cmd.Env = append(os.Environ(), lock.Env())
		defer lock.RecordHolder() // the trainer wrote its pid there
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(c.stderr, "attnc: running the trainer: %v\n", err)
		return -1
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case sig := <-sigs:
				// Where signals cannot be sent (Windows), Ctrl-C reaches
				// every process of the console anyway; anything else
				// ends the trainer.
				if cmd.Process.Signal(sig) != nil && sig != os.Interrupt {
					cmd.Process.Kill()
				}
			case <-done:
				return
			}
		}
	}()
	err := cmd.Wait()
	close(done)
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			if exit.ExitCode() < 0 {
				// Killed by a signal it could not catch (kill -9, the
				// out-of-memory killer): it could say nothing itself.
				fmt.Fprintf(c.stderr, "attnc: the trainer was stopped by a signal (%v); a run keeps its last checkpoint, and attnc train -resume continues it\n", exit.ProcessState)
			}
			return exit.ExitCode()
		}
		fmt.Fprintf(c.stderr, "attnc: running the trainer: %v\n", err)
		return -1
	}
	return exitOK
}

// runCmd makes eval and predict: both rebuild (or reuse) the trainer of
// the run's model and ask it about the run's checkpoint. extra declares
// the command's own flags and returns what checks them (a usage error)
// and turns them into the trainer's arguments.
func runCmd(name, summary, help string, extra func(fs *pflag.FlagSet) func() ([]string, error)) *command {
	return &command{
		name:     name,
		args:     "RUN_DIR",
		summary:  summary,
		help:     help,
		complete: argDirs,
		setup: func(fs *pflag.FlagSet) func(*cli, []string) int {
			more := extra(fs)
			return func(c *cli, args []string) int {
				if len(args) != 1 {
					return c.usageError(name, "want one run directory, got %d", len(args))
				}
				targs, err := more()
				if err != nil {
					return c.usageError(name, "%v", err)
				}
				spec, err := train.ReadSpec(args[0])
				if err != nil {
					fmt.Fprintf(c.stderr, "attnc %s: %v\n", name, err)
					return exitError
				}
				m, ok := c.compileRun(name, args[0], spec.Source, spec.Model, spec.Config)
				if !ok {
					return exitError
				}
				bin, err := c.trainer(m)
				if err != nil {
					fmt.Fprintf(c.stderr, "attnc %s: %v\n", name, err)
					return exitError
				}
				if c.runTrainer(bin, nil, append([]string{name, args[0]}, targs...)...) != exitOK {
					return exitError
				}
				return exitOK
			}
		},
	}
}

var evalCmd = runCmd("eval", "evaluate a trained model on fresh data",
	`Eval reports the metrics of a run's checkpoint on examples generated
fresh (from a stream neither training nor its held-out set used).`,
	func(fs *pflag.FlagSet) func() ([]string, error) { return func() ([]string, error) { return nil, nil } })

var predictCmd = runCmd("predict", "show a trained model's predictions",
	`Predict prints a few fresh examples with their targets and the model's
predictions (greedy decoding for sort, copy and reverse).`,
	func(fs *pflag.FlagSet) func() ([]string, error) {
		n := fs.IntP("count", "n", 3, fmt.Sprintf("how many examples (1 to %d)", train.MaxPredict))
		return func() ([]string, error) {
			if *n < 1 || *n > train.MaxPredict {
				return nil, fmt.Errorf("-n must be between 1 and %d, got %d", train.MaxPredict, *n)
			}
			return []string{"-n", strconv.Itoa(*n)}, nil
		}
	})

var generateCmd = runCmd("generate", "continue a text with a trained language model",
	`Generate continues -prompt TEXT by -n bytes with the model of a run
trained on the lm task (a byte-level language model with an output
logits, f32[B, N, 256]): each byte is sampled from the model's scores at
the last position, divided by -temperature (0: the most likely byte),
among the -top-k most likely (0: all), with -seed. The model reads at
most the last len+1 bytes (the window it was trained on).

attnc compiles a causal model's one-token decode step along with its
trainer: each attention layer keeps the keys and values of the bytes
before (a KV cache), each scan its last state, so a byte costs one step.
A model it cannot derive a step for (a shift along the sequence, a
non-causal mask) reruns Forward over the window for every byte, as
-no-cache does for any.`,
	func(fs *pflag.FlagSet) func() ([]string, error) {
		prompt := fs.StringP("prompt", "p", "", "the text to continue (required)")
		n := fs.IntP("count", "n", 200, "how many bytes to generate")
		temperature := fs.Float64("temperature", 0.8, "sampling temperature (0: the most likely byte)")
		topK := fs.Int("top-k", 40, "sample among this many most likely bytes (0: all)")
		seed := fs.Uint64("seed", 1, "the sampling seed")
		noCache := fs.Bool("no-cache", false, "rerun the model over the window for every byte instead of the decode step (to compare them)")
		return func() ([]string, error) {
			opts := train.GenerateOptions{Prompt: *prompt, N: *n, Temperature: *temperature, TopK: *topK, Seed: *seed}
			if err := opts.Validate(); err != nil {
				return nil, err
			}
			args := []string{"-prompt", *prompt, "-n", strconv.Itoa(*n), "-temperature", strconv.FormatFloat(*temperature, 'g', -1, 64),
				"-top-k", strconv.Itoa(*topK), "-seed", strconv.FormatUint(*seed, 10)}
			if *noCache {
				args = append(args, "-no-cache")
			}
			return args, nil
		}
	})

// pictures draws loss.png (with the task's main metric beside the loss),
// attention-i.png for the i-th attention op of the model (every head, on
// one example; the trainer's probe computes them) and, for a model that
// outputs a distribution over positions (a pointer network),
// attention.png. A picture that cannot be drawn is a warning, not a
// failed run; pictures reports whether all were drawn.
func (c *cli) pictures(dir, model string) bool {
	ok := true
	warn := func(format string, a ...any) {
		fmt.Fprintf(c.stderr, "attnc: warning: "+format+"\n", a...)
		ok = false
	}
	metric := ""
	if spec, err := train.ReadSpec(dir); err == nil {
		metric = train.PlotMetric(spec.Task)
	}
	recs, err := plot.ReadMetrics(filepath.Join(dir, train.MetricsFile))
	if err == nil {
		err = plot.Loss(filepath.Join(dir, "loss.png"), model+" loss", recs, metric)
	}
	if err != nil {
		warn("loss.png: %v", err)
	}
	ex, meta, err := runtime.LoadSafetensors(filepath.Join(dir, train.ExampleFile))
	if err != nil {
		return ok
	}
	// Every attention op's probabilities on the example, a picture each.
	for i, probs := range attentionOps(ex) {
		path := filepath.Join(dir, fmt.Sprintf("attention-%d.png", i+1))
		if err := plot.AttentionMaps(path, model+", "+meta[attentionName(i)], probs); err != nil {
			warn("%s: %v", filepath.Base(path), err)
		}
	}
	outputs := map[string]*runtime.Tensor{}
	for name, t := range ex {
		if o, ok := strings.CutPrefix(name, "output:"); ok {
			outputs[o] = t
		}
	}
	if name := plot.AttentionOutput(outputs); name != "" {
		if err := plot.HeatMap(filepath.Join(dir, "attention.png"), model+": "+name+" of one example", outputs[name]); err != nil {
			warn("attention.png: %v", err)
		}
	}
	return ok
}
