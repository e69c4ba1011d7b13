package tests

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/attnc/attnc"
	"github.com/attnc/attnc/ir"
	"github.com/attnc/attnc/ir/eval"
	"github.com/attnc/attnc/lang"
	"github.com/attnc/attnc/passes"
	"github.com/attnc/attnc/runtime"
	"github.com/attnc/attnc/stdlib"
	"github.com/attnc/attnc/train"
)

// A program is one model of the corpus: a file of testdata/programs or a
// stdlib model at its small test config.
type program struct {
	name   string // file:model
	lm     *lang.Model
	m      *ir.Module
	inputs map[string]*eval.Tensor
}

// taskOf returns the task of a model's train section.
func taskOf(t *testing.T, lm *lang.Model) *taskSpec {
	t.Helper()
	v, ok := lm.TrainValue("task")
	require.True(t, ok, "%s has a train section with a task", lm.Name)
	spec := &taskSpec{Ints: map[string]int{}, Strings: map[string]string{}}
	switch v.Kind {
	case "record":
		spec.Name = v.Record.Name
		for _, a := range v.Record.Args {
			if a.Value.Kind == "int" {
				spec.Ints[a.Name] = int(a.Value.Int)
			} else {
				spec.Strings[a.Name] = a.Value.Str
			}
		}
	default:
		spec.Name = v.Str
	}
	if spec.Strings["data"] == attnc.DocsCorpus {
		// The embedded text, as attnc train writes it to a file.
		path := filepath.Join(t.TempDir(), "docs.txt")
		require.NoError(t, os.WriteFile(path, attnc.Docs(), 0o644))
		spec.Strings["data"] = path
	}
	return spec
}

// taskInputs draws a batch of two from a task, as the reference's
// tensors.
func taskInputs(t *testing.T, m *ir.Module, spec *taskSpec, seed uint64) map[string]*eval.Tensor {
	t.Helper()
	declared := map[string]bool{}
	for _, in := range m.Inputs() {
		declared[in.Name()] = true
	}
	task, err := train.NewTask(spec.Name, train.Params{Ints: spec.Ints, Strings: spec.Strings})
	require.NoError(t, err)
	out := map[string]*eval.Tensor{}
	for name, x := range task.Batch(rand.New(rand.NewPCG(seed, 3)), 2) {
		if !declared[name] {
			continue // the task fills more than the model reads
		}
		dt := map[runtime.DType]ir.DType{runtime.F32: ir.F32, runtime.I32: ir.I32, runtime.Bool: ir.Bool}[x.DType]
		out[name] = eval.FromData(dt, x.Shape, fromRuntime(x))
	}
	return out
}

// corpus loads every model of testdata/programs and every stdlib model.
func corpus(t *testing.T) []program {
	t.Helper()
	files, err := filepath.Glob("testdata/programs/*.attn")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	var out []program
	for _, f := range files {
		src, err := os.ReadFile(f)
		require.NoError(t, err)
		p, diags := lang.Load(f, string(src), lang.LoadOptions{Std: stdlib.FS})
		require.Empty(t, diags, "load %s", f)
		var names []string
		for n := range p.Models {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			lm, diags := p.Elaborate(n, lang.ElabOptions{})
			require.Empty(t, diags, "elaborate %s %s", f, n)
			prog := program{name: filepath.Base(f) + ":" + n, lm: lm, m: lm.IR}
			if _, ok := lm.TrainValue("task"); ok {
				prog.inputs = taskInputs(t, lm.IR, taskOf(t, lm), uint64(len(out)))
			} else {
				// i32 inputs (positions, buckets, documents) in [0, 4):
				// valid positions of N = 5.
				inputs, err := eval.RandomInputs(lm.IR, map[string]int64{"B": 2, "N": 5}, 3, func(string) (int, int) { return 0, 4 })
				require.NoError(t, err)
				prog.inputs = inputs
			}
			out = append(out, prog)
		}
	}
	for _, s := range seeds {
		lm := elaborate(t, s.file, s.config)
		rng := rand.New(rand.NewPCG(21, uint64(len(s.file))))
		out = append(out, program{name: "std/" + s.file, lm: lm, m: lm.IR, inputs: s.inputs(lm.IR, s.syms, rng)})
	}
	return out
}

// TestPrograms builds every model of the corpus (testdata/programs: learned
// score biases, no symbolic dims, infinite constants in masks, scores and
// config values, several models per file; and every stdlib model) into one
// Go program with one go build, compares the loss, metrics, outputs and
// every gradient with the reference on a batch of the model's own task
// (the stdlib models: on their test inputs), and trains each model with
// weights for two steps with train.Run: the loss must be finite. It runs
// the program three times: with the batch whole (ATTNC_SHARDS=1), on
// two shards and on three (GOMAXPROCS 2 and 3), so that every model the
// shard pass lets run on shards (every stdlib model) is checked against
// the reference both ways, with uneven shards among them.
func TestPrograms(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a Go program")
	}
	progs := corpus(t)
	var units []*unit
	for i, p := range progs {
		lowered, err := passes.Run(p.m, passes.Options{VerifyEach: true})
		require.NoError(t, err, p.name)
		params, err := eval.InitParams(p.m, 7)
		require.NoError(t, err)
		rng := rand.New(rand.NewPCG(5, uint64(i)))
		for _, w := range params {
			for j := range w.Data {
				w.Data[j] += 0.1 * rng.NormFloat64()
			}
		}
		u := &unit{name: "p" + strconv.Itoa(i) + "_" + identifier(p.lm.Name), prog: lowered, config: configOf(p.lm),
			envs: []eval.Env{{Inputs: p.inputs, Params: params}}}
		if _, ok := p.lm.TrainValue("task"); ok && len(params) > 0 {
			u.task = taskOf(t, p.lm)
		}
		units = append(units, u)
	}
	runs := []string{"whole batch", "2 shards", "3 shards"}
	results := runUnitsEnvs(t, units, [][]string{{"ATTNC_SHARDS=1"}, {"GOMAXPROCS=2", "ATTNC_SHARDS=2"}, {"GOMAXPROCS=3", "ATTNC_SHARDS=3"}})
	for i, p := range progs {
		u := units[i]
		t.Run(p.name, func(t *testing.T) {
			if strings.HasPrefix(p.name, "std/") {
				if len(p.m.Buffers()) > 0 {
					// A buffer's update reads the whole batch: the step
					// runs whole (DECISIONS.md).
					assert.Nil(t, u.prog.Shards["LossAndGrad"], "a step that updates buffers runs whole")
				} else {
					assert.NotNil(t, u.prog.Shards["LossAndGrad"], "the stdlib model's step runs on shards (%s)", u.prog.NoShard["LossAndGrad"])
				}
			}
			ref, err := eval.Run(p.m, u.envs[0])
			require.NoError(t, err, "reference")
			for k, run := range runs {
				res := results[k][u.name]
				require.Len(t, res, 1)
				require.Empty(t, res[0].Err, "the generated code failed (%s)", run)
				for _, d := range compareOutputs(p.m, ref, res[0], 1e-4) {
					t.Errorf("%s: %s", run, d)
				}
			}
			loss, _ := ref.Loss()
			assert.False(t, math.IsNaN(loss) || math.IsInf(loss, 0), "the reference loss %v is finite", loss)
			if u.task == nil {
				return
			}
			tr := u.trained
			require.Empty(t, tr.Err, "training two steps")
			assert.Equal(t, 2, tr.Steps)
			l, err := strconv.ParseFloat(tr.Loss, 64)
			require.NoError(t, err)
			assert.False(t, math.IsNaN(l) || math.IsInf(l, 0), "training loss %v is finite", l)
			t.Logf("reference loss %.4f; after two training steps %.4f", loss, l)
		})
	}
}

// identifier turns a model name into a Go identifier fragment.
func identifier(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}
