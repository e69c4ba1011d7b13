package tests

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	gogen "github.com/attnc/attnc/codegen/go"
	"github.com/attnc/attnc/ir"
	"github.com/attnc/attnc/ir/eval"
	"github.com/attnc/attnc/lang"
	"github.com/attnc/attnc/passes"
	"github.com/attnc/attnc/runtime"
	"github.com/attnc/attnc/stdlib"
)

// userModule makes a fresh Go module outside this repository, the way a
// user's project would be, and returns its directory.
func userModule(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/user\n\ngo 1.26\n"), 0o644))
	return dir
}

// configOf lists a model's scalar config values for the generator.
func configOf(m *lang.Model) []gogen.ConfigValue {
	var out []gogen.ConfigValue
	for _, s := range m.Config {
		switch s.Value.Kind {
		case "int":
			out = append(out, gogen.ConfigValue{Name: s.Key, Value: s.Value.Int})
		case "float":
			out = append(out, gogen.ConfigValue{Name: s.Key, Value: s.Value.Float})
		}
	}
	return out
}

// generate compiles a module to a Go package in dir/gen/<name>.
func generate(t *testing.T, m *ir.Module, config []gogen.ConfigValue, dir, name string) *ir.Program {
	t.Helper()
	// A pointer network gets GreedyPointers, as attnc build gives it.
	var pointer *gogen.Pointer
	if p, err := passes.Pointers(m); err == nil {
		pointer = &gogen.Pointer{Scores: p.Scores, Target: p.Target, Shape: p.Shape}
	}
	prog, err := passes.Run(m, passes.Options{VerifyEach: true})
	require.NoError(t, err)
	files, err := gogen.Package(prog, gogen.Options{
		Pointer:       pointer,
		Package:       name,
		RuntimeImport: "example.com/user/gen/" + name + "/rt",
		Source:        m.Name + ".attn",
		Config:        config,
		Version:       "test",
	}, runtime.Source)
	require.NoError(t, err)
	for path, b := range files {
		p := filepath.Join(dir, "gen", name, filepath.FromSlash(path))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, b, 0o644))
	}
	return prog.IR
}

// goRun builds the main package in dir and runs it with args.
func goRun(t *testing.T, dir string, args ...string) string {
	t.Helper()
	bin := filepath.Join(dir, "prog")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build in the user module:\n%s", out)
	vet := exec.Command("go", "vet", "./...")
	vet.Dir = dir
	vet.Env = build.Env
	out, err = vet.CombinedOutput()
	require.NoError(t, err, "go vet of the generated package:\n%s", out)
	run := exec.Command(bin, args...)
	run.Dir = dir
	out, err = run.CombinedOutput()
	require.NoError(t, err, "running the program:\n%s", out)
	return string(out)
}

// harness is a user program that loads weights and inputs from
// safetensors files, runs Forward and LossAndGrad, and saves everything
// they return. It finds fields by their attnc tags.
const harness = `package main

import (
	"fmt"
	"os"
	"reflect"
	"strings"

	model "example.com/user/gen/NAME"
	"example.com/user/gen/NAME/rt"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run() error {
	m, err := model.New(model.DefaultConfig(), 1)
	if err != nil {
		return err
	}
	if err := m.Load(os.Args[1]); err != nil {
		return err
	}
	ts, _, err := rt.LoadSafetensors(os.Args[2])
	if err != nil {
		return err
	}
	var in model.Inputs
	iv := reflect.ValueOf(&in).Elem()
	for i := 0; i < iv.NumField(); i++ {
		name := iv.Type().Field(i).Tag.Get("attnc")
		iv.Field(i).Set(reflect.ValueOf(ts[name]))
	}
	var save []rt.Named
	collect := func(prefix string, out *model.Outputs) {
		ov := reflect.ValueOf(out).Elem()
		for i := 0; i < ov.NumField(); i++ {
			name := ov.Type().Field(i).Tag.Get("attnc")
			name = prefix + strings.TrimPrefix(strings.TrimPrefix(name, "metric:"), "output:")
			switch v := ov.Field(i).Interface().(type) {
			case float32:
				save = append(save, rt.Named{Name: name, T: rt.FromF32(nil, []float32{v})})
			case *rt.Tensor:
				if v != nil {
					save = append(save, rt.Named{Name: name, T: v})
				}
			}
		}
	}
	fwd, err := m.Forward(in)
	if err != nil {
		return err
	}
	collect("forward.", fwd)
	out, err := m.LossAndGrad(in)
	if err != nil {
		return err
	}
	collect("grad.", out)
	for _, g := range m.Grads() {
		save = append(save, rt.Named{Name: "grad:" + g.Name, T: g.T})
	}
	return rt.SaveSafetensors(os.Args[3], save, nil)
}
`

func toRuntime(t *eval.Tensor) *runtime.Tensor {
	switch t.DType {
	case ir.I32:
		d := make([]int32, len(t.Data))
		for i, v := range t.Data {
			d[i] = int32(v)
		}
		return runtime.FromI32(t.Shape, d)
	case ir.Bool:
		out := runtime.New(runtime.Bool, t.Shape...)
		for i, v := range t.Data {
			out.B[i] = v != 0
		}
		return out
	}
	d := make([]float32, len(t.Data))
	for i, v := range t.Data {
		d[i] = float32(v)
	}
	return runtime.FromF32(t.Shape, d)
}

func fromRuntime(t *runtime.Tensor) []float64 {
	var out []float64
	switch t.DType {
	case runtime.I32:
		for _, v := range t.I {
			out = append(out, float64(v))
		}
	case runtime.Bool:
		for _, v := range t.B {
			out = append(out, map[bool]float64{false: 0, true: 1}[v])
		}
	default:
		for _, v := range t.F {
			out = append(out, float64(v))
		}
	}
	return out
}

// relErr is ‖got - want‖ / ‖want‖, with ‖want‖ floored at 1e-3 per
// element (RMS): a gradient that is exactly zero in exact arithmetic (a
// key bias, which softmax ignores; q's gradient when a row admits a single
// key, where dP - D cancels but D = rowsum(dy ∘ out) and dP = dy·v round
// differently in float32) is float32 rounding noise in the generated
// code, 1e-8 to 1e-7, and must not count as a relative error of 1e8.
func relErr(got, want []float64) float64 {
	var num, den float64
	for i := range want {
		if math.IsInf(want[i], 0) && got[i] == want[i] {
			continue // a masked log-probability: -inf on both sides
		}
		num += (got[i] - want[i]) * (got[i] - want[i])
		den += want[i] * want[i]
	}
	floor := 1e-6 * float64(len(want))
	return math.Sqrt(num / math.Max(den, floor))
}

func TestGeneratedPackageRejectsBadInputs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go package")
	}
	dir := userModule(t)
	lm := elaborate(t, "seq2seq.attn", seeds[0].config)
	generate(t, lm.IR, configOf(lm), dir, "s2s")
	main := `package main

import (
	"fmt"

	model "example.com/user/gen/s2s"
)

func main() {
	m, err := model.New(model.DefaultConfig(), 1)
	if err != nil {
		panic(err)
	}
	src, _ := model.FromI32([]int{2, 5}, make([]int32, 10))
	f32, _ := model.FromF32([]int{2, 5}, make([]float32, 10))
	_, err = m.Forward(model.Inputs{Src: src, Tgt: f32})
	fmt.Println(err)
	wide, _ := model.FromI32([]int{3, 5}, make([]int32, 15))
	_, err = m.Forward(model.Inputs{Src: src, Tgt: wide})
	fmt.Println(err)
	_, err = m.Forward(model.Inputs{Src: src})
	fmt.Println(err)
	oov, _ := model.FromI32([]int{2, 5}, []int32{99, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	_, err = m.Forward(model.Inputs{Src: oov, Tgt: src})
	fmt.Println(err)
	cfg := model.DefaultConfig()
	cfg.D++
	_, err = model.New(cfg, 1)
	fmt.Println(err)
	fmt.Println(m.Load("missing.safetensors") != nil)
}
`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte(main), 0o644))
	out := goRun(t, dir)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 6, out)
	assert.Contains(t, lines[0], `input "tgt": want i32[B, T]`)
	assert.Contains(t, lines[1], `input "tgt": dim 0 is B = 2 from input "src", got 3`)
	assert.Contains(t, lines[2], `input "tgt" is missing`)
	assert.Contains(t, lines[3], "gather")
	assert.Contains(t, lines[3], "99")
	assert.Contains(t, lines[4], "compile the model again")
	assert.Equal(t, "true", lines[5])
}

// TestHostileNames: names in the source cannot break or inject into the
// generated code.
func TestHostileNames(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go package")
	}
	b := ir.NewBuilder("func", "B")
	x := b.MustGiven(ir.OpInput, ir.TensorOf(ir.F32, ir.SymDim("B"), ir.ConstDim(3)), ir.Attrs{"name": ir.StringAttr("x\"; panic(1) //")})
	y := b.MustGiven(ir.OpInput, ir.TensorOf(ir.F32, ir.SymDim("B"), ir.ConstDim(3)), ir.Attrs{"name": ir.StringAttr("x`\n}")})
	w := b.MustGiven(ir.OpParam, ir.TensorOf(ir.F32, ir.ConstDim(3)), ir.Attrs{"name": ir.StringAttr("w\")\n\tos.Exit(3)\n//"), "init": ir.WordAttr("ones")})
	s := b.Must(ir.OpMul, nil, b.Must(ir.OpAdd, nil, x, y), w)
	loss := b.Must(ir.OpReduceSum, ir.Attrs{"axes": ir.IntsAttr(0, 1)}, s)
	b.Output(ir.OutLoss, "loss", loss)
	b.Output(ir.OutMetric, "*/ metric \"quoted\"", loss)
	b.Output(ir.OutValue, "type", s)
	require.NoError(t, b.Err())
	dir := userModule(t)
	generate(t, b.M, nil, dir, "hostile")
	main := `package main

import (
	"fmt"

	model "example.com/user/gen/hostile"
)

func main() {
	m, err := model.New(model.DefaultConfig(), 1)
	if err != nil {
		panic(err)
	}
	one, err := model.FromF32([]int{1, 3}, []float32{1, 2, 3})
	if err != nil {
		panic(err)
	}
	out, err := m.Forward(model.Inputs{XPanic1: one, X: one})
	if err != nil {
		panic(err)
	}
	fmt.Println(out.Loss, m.Params()[0].Name)
}
`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte(main), 0o644))
	out := goRun(t, dir)
	assert.Equal(t, fmt.Sprintf("12 %s\n", "w\")\n\tos.Exit(3)\n//"), out)
}

// TestGoAPIExample runs the program docs/GO_API.md shows, against the
// full-size pointer_sort model.
func TestGoAPIExample(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go package")
	}
	doc, err := os.ReadFile("../docs/GO_API.md")
	require.NoError(t, err)
	// The program: the ```go block that is a whole program (package main).
	_, rest, ok := strings.Cut(string(doc), "```go\npackage main\n")
	require.True(t, ok, "docs/GO_API.md has a Go program")
	program, _, ok := strings.Cut(rest, "```")
	require.True(t, ok)
	program = "package main\n" + program

	dir := userModule(t)
	lm := elaborate(t, "pointer_sort.attn", nil)
	generate(t, lm.IR, configOf(lm), dir, "sorter")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte(program), 0o644))
	out := goRun(t, dir)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3, out)
	assert.Regexp(t, `^loss \d+\.\d+`, lines[0])
	assert.Regexp(t, `^pointers \[(\d ){9}\d\]$`, lines[1])
	assert.Regexp(t, `^greedy \[\[(\d ){9}\d\]\]$`, lines[2])
}

// TestTiledMasksOnLongSequences runs masks the sparsity pass marks for
// tile classification on sequences longer than a tile (64), so that the
// generated kernels really skip empty tiles and drop the mask on full
// ones, and compares everything with the reference.
func TestTiledMasksOnLongSequences(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go package")
	}
	src := `import "std/layers.attn"
model long {
  input x: f32[B, N, 8]
  let h = split_heads(linear(x, 8), 2)
  let a = attend(h, h, h, mask: sliding(40))
  let c = attend(h, h, h, mask: causal)
  let p = attend(h, h, h, mask: prefix_lm(70))
  let l = attend(h, h, h, mask: local(20))
  let y = merge_heads(a + c + p + l)
  let out = linear(y, 8)
  loss mean(out * out)
  output y = y
}
`
	lowered, _ := runLongMasks(t, src)
	tiled := 0
	for _, in := range lowered.Module.Instrs {
		if in.Attrs.Str("tiles") == "interval" {
			tiled++
		}
	}
	require.Positive(t, tiled, "the sparsity pass marks the masks")
}

// runLongMasks builds the model long from src (input x f32[B, N, 8]) as
// a Go package, runs it on a sequence of 150, longer than two tiles, and
// compares every output with the reference; it returns the lowered
// program and the module's directory.
func runLongMasks(t *testing.T, src string, extra ...map[string]*eval.Tensor) (*ir.Program, string) {
	t.Helper()
	prog, diags := lang.Load("long.attn", src, lang.LoadOptions{Std: stdlib.FS})
	require.Empty(t, diags)
	lm, diags := prog.Elaborate("", lang.ElabOptions{})
	require.Empty(t, diags)
	m := lm.IR
	dir := userModule(t)
	lowered := generate(t, m, nil, dir, "long")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte(strings.ReplaceAll(harness, "NAME", "long")), 0o644))

	params, err := eval.InitParams(m, 5)
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(8, 9))
	x := eval.NewTensor(ir.F32, 1, 150, 8)
	for i := range x.Data {
		x.Data[i] = rng.NormFloat64()
	}
	var ps []runtime.Named
	for n, p := range params {
		ps = append(ps, runtime.Named{Name: n, T: toRuntime(p)})
		for i, v := range ps[len(ps)-1].T.F {
			p.Data[i] = float64(v)
		}
	}
	require.NoError(t, runtime.SaveSafetensors(filepath.Join(dir, "params.safetensors"), ps, nil))
	inputs := map[string]*eval.Tensor{"x": x}
	named := []runtime.Named{{Name: "x", T: toRuntime(x)}}
	for _, e := range extra {
		for n, v := range e {
			inputs[n] = v
			named = append(named, runtime.Named{Name: n, T: toRuntime(v)})
		}
	}
	require.NoError(t, runtime.SaveSafetensors(filepath.Join(dir, "inputs.safetensors"), named, nil))
	goRun(t, dir, "params.safetensors", "inputs.safetensors", "out.safetensors")
	got, _, err := runtime.LoadSafetensors(filepath.Join(dir, "out.safetensors"))
	require.NoError(t, err)
	ref, err := eval.Run(m, eval.Env{Inputs: inputs, Params: params})
	require.NoError(t, err)
	for _, o := range m.Outputs {
		name := map[ir.OutputKind]string{ir.OutLoss: "forward.loss", ir.OutValue: "forward." + o.Name, ir.OutGrad: "grad:" + o.Name}[o.Kind]
		g := got[name]
		require.NotNil(t, g, name)
		e := relErr(fromRuntime(g), ref.Values[o.Value.ID].Data)
		assert.LessOrEqual(t, e, 1e-4, "%s: relative error %.3g", name, e)
	}
	return lowered, dir
}

// TestNestedCapturesOnLongSequences runs masks and scores that index a
// captured tensor by another (testdata/programs/nested.attn) past a tile
// of keys, where the kernels classify tiles from the captures' values
// (a read's interval over the box of an index that is itself a read),
// against the reference.
func TestNestedCapturesOnLongSequences(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go package")
	}
	src, err := os.ReadFile("testdata/programs/nested.attn")
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(3, 4))
	const n = 150
	doc, srcPos, bucket := eval.NewTensor(ir.I32, 1, n), eval.NewTensor(ir.I32, 1, n), eval.NewTensor(ir.I32, 1, n, n)
	for i := range n {
		doc.Data[i] = float64(i / 40) // documents of 40 positions
		srcPos.Data[i] = float64(max(0, i-rng.IntN(30)))
	}
	for i := range bucket.Data {
		bucket.Data[i] = float64(rng.IntN(4))
	}
	runLongMasks(t, string(src), map[string]*eval.Tensor{"doc": doc, "src": srcPos, "bucket": bucket})
}

// TestRowMasksOnLongSequences runs masks whose admitted keys per query
// the renderer derives as at most two spans (AttnSpec.Rows): negations,
// abs, !=, == and two-span unions, on partial tiles, against the
// reference.
func TestRowMasksOnLongSequences(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go package")
	}
	src := `import "std/layers.attn"
mask notdiag = k != q
mask band(w) = abs(q - k) <= w && k != q
mask far(w) = w < abs(k - q)
mask sinkwin(w) = k <= q && (k < 4 || q - k < w)
mask spike = !(k > q) || k == q + 3
mask late(w) = !(k < q - w || k > q) && -k + q >= 2
model long {
  input x: f32[B, N, 8]
  let h = split_heads(linear(x, 8), 2)
  let ya = merge_heads(attend(h, h, h, mask: notdiag))
  let yb = merge_heads(attend(h, h, h, mask: band(30)))
  let yc = merge_heads(attend(h, h, h, mask: far(50)))
  let yd = merge_heads(attend(h, h, h, mask: sinkwin(40)))
  let ye = merge_heads(attend(h, h, h, mask: spike))
  let yf = merge_heads(attend(h, h, h, mask: late(70)))
  let out = linear(ya + yb + yc + yd + ye + yf, 8)
  loss mean(out * out)
  output ya = ya
  output yb = yb
  output yc = yc
  output yd = yd
  output ye = ye
  output yf = yf
}
`
	_, dir := runLongMasks(t, src)
	// Each mask's forward attention, and its gradient's, has Rows.
	rows := 0
	files, err := filepath.Glob(filepath.Join(dir, "gen", "long", "*.go"))
	require.NoError(t, err)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		rows += strings.Count(string(b), ".Rows = func(b, h, q int) rt.KeySpans")
	}
	require.GreaterOrEqual(t, rows, 12, "the renderer derives Rows for every mask")
}
