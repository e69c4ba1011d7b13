package tests

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	gogen "github.com/attnc/attnc/codegen/go"
	"github.com/attnc/attnc/ir"
	"github.com/attnc/attnc/ir/eval"
	"github.com/attnc/attnc/kir"
	"github.com/attnc/attnc/runtime"
	"github.com/attnc/attnc/train"
)

// This file holds the machinery the every-op test and the program corpus
// share: many compiled models go into one Go module with one copy of the
// runtime, built with one `go build` into one program that runs every
// model on every input set it is given and prints what came out. Building
// once is what keeps these tests fast: a build per model would cost most
// of a minute on a small CI machine.

// A unit is one compiled model to run: the lowered program and the
// environments (inputs and weights) to run it on.
type unit struct {
	name   string // unique; also the Go package name
	prog   *kir.Program
	config []gogen.ConfigValue
	envs   []eval.Env
	// task, when set, is the task the model trains on for two steps (with
	// train.Run, batch 2) after the comparison runs.
	task    *taskSpec
	trained trainResult // filled by runUnits
}

// A taskSpec names a training task and its parameters.
type taskSpec struct {
	Name    string            `json:"name"`
	Ints    map[string]int    `json:"ints"`
	Strings map[string]string `json:"strings"`
}

// A wire tensor is a tensor in the JSON the harness reads and writes:
// float32 data as IEEE bits, so NaN and ±Inf survive.
type wireTensor struct {
	DType string   `json:"dtype"`
	Shape []int    `json:"shape"`
	F     []uint32 `json:"f,omitempty"`
	I     []int32  `json:"i,omitempty"`
	B     []bool   `json:"b,omitempty"`
}

// A runResult is what the harness reports for one environment of a unit.
type runResult struct {
	Err     string                `json:"err"`
	Forward map[string]wireTensor `json:"forward"` // ForwardMap's results
	Grad    map[string]wireTensor `json:"grad"`    // LossAndGradMap's results
	Grads   map[string]wireTensor `json:"grads"`   // Grads(), by param name
}

// A trainResult is what two steps of train.Run reported.
type trainResult struct {
	Err   string `json:"err"`
	Steps int    `json:"steps"`
	Loss  string `json:"loss"` // formatted, so NaN and Inf survive JSON
}

type harnessEnv struct {
	Inputs map[string]wireTensor `json:"inputs"`
	Params map[string]wireTensor `json:"params"`
}

func toWire(t *eval.Tensor) wireTensor {
	w := wireTensor{DType: t.DType.String(), Shape: append([]int{}, t.Shape...)}
	if w.Shape == nil {
		w.Shape = []int{}
	}
	switch t.DType {
	case ir.F32:
		w.F = make([]uint32, len(t.Data))
		for i, v := range t.Data {
			w.F[i] = math.Float32bits(float32(v))
		}
	case ir.I32:
		w.I = make([]int32, len(t.Data))
		for i, v := range t.Data {
			w.I[i] = int32(v)
		}
	default:
		w.B = make([]bool, len(t.Data))
		for i, v := range t.Data {
			w.B[i] = v != 0
		}
	}
	return w
}

// values returns the tensor's elements as float64.
func (w wireTensor) values() []float64 {
	var out []float64
	switch w.DType {
	case "f32":
		for _, b := range w.F {
			out = append(out, float64(math.Float32frombits(b)))
		}
	case "i32":
		for _, v := range w.I {
			out = append(out, float64(v))
		}
	default:
		for _, v := range w.B {
			out = append(out, map[bool]float64{false: 0, true: 1}[v])
		}
	}
	return out
}

// roundF32 rounds the environment's f32 tensors to float32, so that the
// reference sees exactly what the generated code sees.
func roundF32(env eval.Env) {
	for _, m := range []map[string]*eval.Tensor{env.Inputs, env.Params} {
		for _, t := range m {
			if t.DType == ir.F32 {
				for i, v := range t.Data {
					t.Data[i] = float64(float32(v))
				}
			}
		}
	}
}

// runUnits writes every unit as a package of one module, builds one
// program with one `go build` (and vets the generated packages), runs it
// once and returns its results by unit name, one per environment.
func runUnits(t *testing.T, units []*unit) map[string][]runResult {
	t.Helper()
	return runUnitsEnvs(t, units, nil)[0]
}

// runUnitsEnvs is runUnits with one build and a run of the harness for
// each environment in envs (variables added to the test's), the results
// in the same order; a nil envs runs it once, as runUnits does.
func runUnitsEnvs(t *testing.T, units []*unit, runEnvs [][]string) []map[string][]runResult {
	t.Helper()
	if runEnvs == nil {
		runEnvs = [][]string{nil}
	}
	dir := t.TempDir()
	const module = "example.com/attnctest"
	write := func(rel string, b []byte) {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, b, 0o644))
	}
	write("go.mod", []byte("module "+module+"\n\ngo 1.26\n"))
	rtFiles, err := gogen.CopyPackage(runtime.Source, "runtime", "rt", nil, "test")
	require.NoError(t, err)
	for name, b := range rtFiles {
		write("rt/"+name, b)
	}
	var imports, table strings.Builder
	envs := map[string][]harnessEnv{}
	tasks := map[string]*taskSpec{}
	training := false
	for _, u := range units {
		if u.task != nil {
			training = true
		}
	}
	if training {
		trFiles, err := gogen.CopyPackage(train.Source, "train", "train", map[string]string{"github.com/attnc/attnc/runtime": module + "/rt"}, "test")
		require.NoError(t, err)
		for name, b := range trFiles {
			write("train/"+name, b)
		}
		fmt.Fprintf(&imports, "\t%q\n", module+"/train")
	}
	for _, u := range units {
		files, err := gogen.Render(u.prog, gogen.Options{
			Package:       u.name,
			RuntimeImport: module + "/rt",
			Source:        u.name + ".attn",
			Config:        u.config,
			Version:       "test",
		})
		require.NoError(t, err, "rendering %s", u.name)
		for name, b := range files {
			write("m/"+u.name+"/"+name, b)
		}
		fmt.Fprintf(&imports, "\t%q\n", module+"/m/"+u.name)
		hasGrad := len(u.prog.Funcs) > 1
		fmt.Fprintf(&table, "\t%q: {\n\t\trun: func(in, ps map[string]*rt.Tensor) (r result) {\n", u.name)
		fmt.Fprintf(&table, "\t\t\tm, err := %s.New(%s.DefaultConfig(), 1)\n\t\t\tif err != nil {\n\t\t\t\treturn result{Err: err.Error()}\n\t\t\t}\n", u.name, u.name)
		fmt.Fprintf(&table, "\t\t\treturn run(append(m.Params(), m.Buffers()...), ps, func() (map[string]*rt.Tensor, error) { return m.ForwardMap(in) }, ")
		if hasGrad {
			// The buffers after the step, as update:NAME.
			fmt.Fprintf(&table, "func() (map[string]*rt.Tensor, []rt.Named, error) {\n\t\t\t\tout, err := m.LossAndGradMap(in)\n\t\t\t\treturn out, append(m.Grads(), updated(m.Buffers())...), err\n\t\t\t})\n\t\t},\n")
		} else {
			fmt.Fprintf(&table, "nil)\n\t\t},\n")
		}
		if u.task != nil {
			require.True(t, hasGrad, "%s: a model without weights cannot train", u.name)
			tasks[u.name] = u.task
			fmt.Fprintf(&table, "\t\ttrain: func(task train.Task, dir string) (train.Model, error) { return %s.New(%s.DefaultConfig(), 1) },\n", u.name, u.name)
		}
		fmt.Fprintf(&table, "\t},\n")
		for _, env := range u.envs {
			roundF32(env)
			he := harnessEnv{Inputs: map[string]wireTensor{}, Params: map[string]wireTensor{}}
			for n, x := range env.Inputs {
				he.Inputs[n] = toWire(x)
			}
			for n, x := range env.Params {
				he.Params[n] = toWire(x)
			}
			envs[u.name] = append(envs[u.name], he)
		}
	}
	src := harnessMain
	if training {
		src += harnessTrain
	} else {
		src += "\nfunc trainUnit(u unit, spec *taskSpec) trainResult { return trainResult{Err: \"no training\"} }\n"
	}
	src = strings.Replace(src, "//IMPORTS\n", imports.String(), 1)
	src = strings.Replace(src, "//TABLE\n", table.String(), 1)
	if !training {
		src = strings.Replace(src, "\ttrain func(task train.Task, dir string) (train.Model, error)\n", "", 1)
	}
	write("main.go", []byte(src))
	b, err := json.Marshal(struct {
		Envs  map[string][]harnessEnv `json:"envs"`
		Tasks map[string]*taskSpec    `json:"tasks"`
	}{envs, tasks})
	require.NoError(t, err)
	write("envs.json", b)

	env := append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	bin := filepath.Join(dir, "harness")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir, build.Env = dir, env
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build of the generated packages:\n%s", out)
	// go vet reuses the build's type information; only the generated
	// packages, not the runtime copy, which has its own tests.
	vet := exec.Command("go", "vet", "./m/...")
	vet.Dir, vet.Env = dir, env
	out, err = vet.CombinedOutput()
	require.NoError(t, err, "go vet of the generated packages:\n%s", out)
	var all []map[string][]runResult
	for _, extra := range runEnvs {
		run := exec.Command(bin, "envs.json", "results.json")
		run.Dir, run.Env = dir, append(os.Environ(), extra...)
		out, err = run.CombinedOutput()
		require.NoError(t, err, "running the harness (%v):\n%s", extra, out)
		b, err = os.ReadFile(filepath.Join(dir, "results.json"))
		require.NoError(t, err)
		var results struct {
			Runs  map[string][]runResult `json:"runs"`
			Train map[string]trainResult `json:"train"`
		}
		require.NoError(t, json.Unmarshal(b, &results))
		for _, u := range units {
			if u.task != nil {
				u.trained = results.Train[u.name]
			}
		}
		all = append(all, results.Runs)
	}
	return all
}

// harnessMain runs every unit of the module on its environments. It finds
// the units in a table the test writes (//TABLE), one closure per
// package.
const harnessMain = `// Command harness runs generated models on inputs read from a JSON file
// and writes what they return, for attnc's tests.
package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"sort"

	"example.com/attnctest/rt"
//IMPORTS
)

type wire struct {
	DType string   ` + "`json:\"dtype\"`" + `
	Shape []int    ` + "`json:\"shape\"`" + `
	F     []uint32 ` + "`json:\"f,omitempty\"`" + `
	I     []int32  ` + "`json:\"i,omitempty\"`" + `
	B     []bool   ` + "`json:\"b,omitempty\"`" + `
}

type env struct {
	Inputs map[string]wire ` + "`json:\"inputs\"`" + `
	Params map[string]wire ` + "`json:\"params\"`" + `
}

type result struct {
	Err     string          ` + "`json:\"err\"`" + `
	Forward map[string]wire ` + "`json:\"forward\"`" + `
	Grad    map[string]wire ` + "`json:\"grad\"`" + `
	Grads   map[string]wire ` + "`json:\"grads\"`" + `
}

type taskSpec struct {
	Name    string            ` + "`json:\"name\"`" + `
	Ints    map[string]int    ` + "`json:\"ints\"`" + `
	Strings map[string]string ` + "`json:\"strings\"`" + `
}

type trainResult struct {
	Err   string ` + "`json:\"err\"`" + `
	Steps int    ` + "`json:\"steps\"`" + `
	Loss  string ` + "`json:\"loss\"`" + `
}

func fromWire(w wire) *rt.Tensor {
	switch w.DType {
	case "f32":
		d := make([]float32, len(w.F))
		for i, b := range w.F {
			d[i] = math.Float32frombits(b)
		}
		return rt.FromF32(w.Shape, d)
	case "i32":
		return rt.FromI32(w.Shape, append([]int32{}, w.I...))
	}
	return rt.FromBool(w.Shape, append([]bool{}, w.B...))
}

func toWire(t *rt.Tensor) wire {
	w := wire{Shape: append([]int{}, t.Shape...)}
	switch t.DType {
	case rt.F32:
		w.DType = "f32"
		for _, v := range t.F {
			w.F = append(w.F, math.Float32bits(v))
		}
	case rt.I32:
		w.DType, w.I = "i32", t.I
	default:
		w.DType, w.B = "bool", t.B
	}
	return w
}

// updated names a model's buffers as the step left them: update:NAME.
func updated(bs []rt.Named) []rt.Named {
	out := make([]rt.Named, len(bs))
	for i, b := range bs {
		out[i] = rt.Named{Name: "update:" + b.Name, T: b.T}
	}
	return out
}

func toWires(m map[string]*rt.Tensor) map[string]wire {
	out := map[string]wire{}
	for k, t := range m {
		out[k] = toWire(t)
	}
	return out
}

// run sets the weights, runs forward and (when grad is not nil) the
// gradient.
func run(params []rt.Named, ps map[string]*rt.Tensor, fwd func() (map[string]*rt.Tensor, error),
	grad func() (map[string]*rt.Tensor, []rt.Named, error)) (r result) {
	defer func() {
		if p := recover(); p != nil {
			r.Err = fmt.Sprintf("panic: %v", p)
		}
	}()
	if len(params) != len(ps) {
		return result{Err: fmt.Sprintf("%d params given, the model has %d", len(ps), len(params))}
	}
	for _, p := range params {
		t, ok := ps[p.Name]
		if !ok || !slices.Equal(t.Shape, p.T.Shape) {
			return result{Err: fmt.Sprintf("param %s: given %v", p.Name, t)}
		}
		copy(p.T.F, t.F)
	}
	out, err := fwd()
	if err != nil {
		return result{Err: "forward: " + err.Error()}
	}
	r.Forward = toWires(out)
	if grad == nil {
		return r
	}
	out, grads, err := grad()
	if err != nil {
		return result{Err: "loss and grad: " + err.Error()}
	}
	r.Grad = toWires(out)
	r.Grads = map[string]wire{}
	for _, g := range grads {
		r.Grads[g.Name] = toWire(g.T)
	}
	return r
}

// A unit is one generated package: run compares it, train (when the
// test gives it a task) makes a fresh model for train.Run.
type unit struct {
	run   func(in, ps map[string]*rt.Tensor) result
	train func(task train.Task, dir string) (train.Model, error)
}

var units = map[string]unit{
//TABLE
}

func main() {
	b, err := os.ReadFile(os.Args[1])
	if err != nil {
		panic(err)
	}
	var all struct {
		Envs  map[string][]env      ` + "`json:\"envs\"`" + `
		Tasks map[string]*taskSpec ` + "`json:\"tasks\"`" + `
	}
	if err := json.Unmarshal(b, &all); err != nil {
		panic(err)
	}
	names := make([]string, 0, len(all.Envs))
	for n := range all.Envs {
		names = append(names, n)
	}
	sort.Strings(names)
	var results struct {
		Runs  map[string][]result    ` + "`json:\"runs\"`" + `
		Train map[string]trainResult ` + "`json:\"train\"`" + `
	}
	results.Runs, results.Train = map[string][]result{}, map[string]trainResult{}
	for _, n := range names {
		for _, e := range all.Envs[n] {
			in, ps := map[string]*rt.Tensor{}, map[string]*rt.Tensor{}
			for k, w := range e.Inputs {
				in[k] = fromWire(w)
			}
			for k, w := range e.Params {
				ps[k] = fromWire(w)
			}
			results.Runs[n] = append(results.Runs[n], units[n].run(in, ps))
		}
		if spec := all.Tasks[n]; spec != nil {
			results.Train[n] = trainUnit(units[n], spec)
		}
	}
	b, err = json.Marshal(results)
	if err != nil {
		panic(err)
	}
	if err := os.WriteFile(os.Args[2], b, 0o644); err != nil {
		panic(err)
	}
}
`

// harnessTrain is the harness's training part, added when a unit
// trains: two steps of train.Run, batch 2, on the unit's task.
const harnessTrain = `
func trainUnit(u unit, spec *taskSpec) (r trainResult) {
	defer func() {
		if p := recover(); p != nil {
			r.Err = fmt.Sprintf("panic: %v", p)
		}
	}()
	task, err := train.NewTask(spec.Name, train.Params{Ints: spec.Ints, Strings: spec.Strings})
	if err != nil {
		return trainResult{Err: err.Error()}
	}
	dir, err := os.MkdirTemp("", "attnc-train-")
	if err != nil {
		return trainResult{Err: err.Error()}
	}
	defer os.RemoveAll(dir)
	m, err := u.train(task, dir)
	if err != nil {
		return trainResult{Err: err.Error()}
	}
	s, err := train.Run(m, train.Config{Task: task, Steps: 2, Batch: 2, EvalSize: 4, LogEvery: 1, Seed: 1, Dir: dir,
		Schedule: train.Schedule{Kind: "constant", LR: 1e-3}, Clip: 1})
	if err != nil {
		return trainResult{Err: err.Error()}
	}
	return trainResult{Steps: s.Steps, Loss: fmt.Sprint(s.Loss)}
}
`

// mismatch compares a result of the generated code with the reference
// and describes the difference, or returns "". Dtype and shape must
// agree; i32 and bool exactly; f32 NaNs and infinities (after rounding the
// reference to float32) must sit at the same places, and elsewhere the
// relative error (RMS of the difference over RMS of the reference, the
// latter floored at 1e-4 per element) must be at most tol.
func mismatch(got wireTensor, want *eval.Tensor, tol float64) string {
	if got.DType != want.DType.String() || !slices.Equal(got.Shape, want.Shape) && !(len(got.Shape) == 0 && len(want.Shape) == 0) {
		return fmt.Sprintf("got %s%v, want %s%v", got.DType, got.Shape, want.DType, want.Shape)
	}
	g := got.values()
	if len(g) != len(want.Data) {
		return fmt.Sprintf("got %d elements, want %d", len(g), len(want.Data))
	}
	var num, den float64
	n := 0
	for i, w := range want.Data {
		if want.DType != ir.F32 {
			if g[i] != w {
				return fmt.Sprintf("element %d is %v, want %v\n%s", i, g[i], w, sample(g, want.Data))
			}
			continue
		}
		w32 := float64(float32(w))
		switch {
		case math.IsNaN(w32) || math.IsInf(w32, 0):
			if !(math.IsNaN(w32) && math.IsNaN(g[i])) && g[i] != w32 {
				return fmt.Sprintf("element %d is %v, want %v\n%s", i, g[i], w32, sample(g, want.Data))
			}
		case math.IsNaN(g[i]) || math.IsInf(g[i], 0):
			return fmt.Sprintf("element %d is %v, want %v\n%s", i, g[i], w, sample(g, want.Data))
		default:
			num += (g[i] - w) * (g[i] - w)
			den += w * w
			n++
		}
	}
	if n == 0 {
		return ""
	}
	// ‖want‖ is floored at 1e-3 RMS, as relErr explains: a value that is
	// zero in exact arithmetic comes out as float32 noise.
	if e := math.Sqrt(num / math.Max(den, 1e-6*float64(n))); e > tol {
		return fmt.Sprintf("relative error %.3g > %.0g\n%s", e, tol, sample(g, want.Data))
	}
	return ""
}

func sample(got, want []float64) string {
	n := min(len(want), 8)
	return fmt.Sprintf("  got  %.6g…\n  want %.6g…", got[:n], want[:n])
}

// compareOutputs checks every output of the module (loss, metrics, named
// outputs and gradients) that the harness returned against the reference
// results, and returns one line per difference.
func compareOutputs(m *ir.Module, ref *eval.Result, r runResult, tol float64) []string {
	var bad []string
	check := func(what string, got wireTensor, ok bool, want *eval.Tensor) {
		if !ok {
			bad = append(bad, what+": missing from the generated program's results")
			return
		}
		if d := mismatch(got, want, tol); d != "" {
			bad = append(bad, what+": "+d)
		}
	}
	hasGrad := false
	for _, o := range m.Outputs {
		hasGrad = hasGrad || o.Kind == ir.OutGrad
	}
	for _, o := range m.Outputs {
		want := ref.Values[o.Value.ID]
		switch o.Kind {
		case ir.OutLoss:
			g, ok := r.Forward["loss"]
			check("forward loss", g, ok, want)
			if hasGrad {
				g, ok = r.Grad["loss"]
				check("LossAndGrad loss", g, ok, want)
			}
		case ir.OutMetric:
			g, ok := r.Forward["metric:"+o.Name]
			check("metric "+o.Name, g, ok, want)
		case ir.OutValue:
			g, ok := r.Forward["output:"+o.Name]
			check("output "+o.Name, g, ok, want)
		case ir.OutGrad:
			g, ok := r.Grads[o.Name]
			check("grad "+o.Name, g, ok, want)
		case ir.OutUpdate:
			if hasGrad {
				g, ok := r.Grads["update:"+o.Name]
				check("update "+o.Name, g, ok, want)
			}
		}
	}
	sort.Strings(bad)
	return bad
}
