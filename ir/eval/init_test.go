package eval_test

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/attnc/attnc/ir"
	"github.com/attnc/attnc/ir/eval"
)

func param(b *ir.Builder, n, init string, scale float64, dims ...ir.Dim) *ir.Instr {
	a := attrs("name", ir.StringAttr(n), "init", ir.WordAttr(init))
	if scale != 0 {
		a["scale"] = ir.FloatAttr(scale)
	}
	return b.MustGiven(ir.OpParam, ir.TensorOf(ir.F32, dims...), a)
}

func paramModule(t *testing.T, extra bool) *ir.Module {
	t.Helper()
	b := ir.NewBuilder("params")
	if extra {
		param(b, "extra", "normal", 1, cd(7))
	}
	param(b, "normal", "normal", 0.5, cd(100), cd(100))
	param(b, "unit", "normal", 0, cd(10000))
	param(b, "uniform", "uniform", 0.1, cd(50), cd(50))
	param(b, "zeros", "zeros", 0, cd(3))
	param(b, "ones", "ones", 0.3, cd(2), cd(2))
	if err := b.Err(); err != nil {
		t.Fatal(err)
	}
	return b.M
}

func moments(xs []float64) (mean, std float64) {
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	for _, x := range xs {
		std += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(std / float64(len(xs)))
}

func TestInitParams(t *testing.T) {
	m := paramModule(t, false)
	ps, err := eval.InitParams(m, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 5 {
		t.Fatalf("got %d params, want 5", len(ps))
	}
	for name, want := range map[string][]int{"normal": {100, 100}, "unit": {10000}, "uniform": {50, 50}, "zeros": {3}, "ones": {2, 2}} {
		if p := ps[name]; p == nil || p.DType != ir.F32 || !slices.Equal(p.Shape, want) {
			t.Fatalf("param %s = %v, want f32 of shape %v", name, p, want)
		}
	}
	for _, x := range ps["zeros"].Data {
		if x != 0 {
			t.Errorf("zeros holds %v", x)
		}
	}
	for _, x := range ps["ones"].Data {
		if x != 1 {
			t.Errorf("ones holds %v", x)
		}
	}
	for name, scale := range map[string]float64{"normal": 0.5, "unit": 1} {
		data := ps[name].Data
		mean, std := moments(data)
		if tol := 5 * scale / math.Sqrt(float64(len(data))); math.Abs(mean) > tol {
			t.Errorf("%s: mean %v, want 0 ± %v", name, mean, tol)
		}
		if math.Abs(std/scale-1) > 0.05 {
			t.Errorf("%s: standard deviation %v, want %v", name, std, scale)
		}
	}
	u := ps["uniform"].Data
	lo, hi := slices.Min(u), slices.Max(u)
	if lo < -0.1 || hi > 0.1 || lo > -0.099 || hi < 0.099 {
		t.Errorf("uniform(0.1) spans [%v, %v], want about [-0.1, 0.1]", lo, hi)
	}
	if mean, std := moments(u); math.Abs(mean) > 0.01 || math.Abs(std-0.1/math.Sqrt(3)) > 0.005 {
		t.Errorf("uniform(0.1): mean %v, std %v, want 0, %v", mean, std, 0.1/math.Sqrt(3))
	}
}

func TestInitParamsDeterministic(t *testing.T) {
	m := paramModule(t, false)
	a, _ := eval.InitParams(m, 42)
	b, _ := eval.InitParams(m, 42)
	c, _ := eval.InitParams(m, 43)
	for _, name := range []string{"normal", "uniform"} {
		if !slices.Equal(a[name].Data, b[name].Data) {
			t.Errorf("%s differs between two runs with seed 42", name)
		}
		if slices.Equal(a[name].Data, c[name].Data) {
			t.Errorf("%s is the same with seeds 42 and 43", name)
		}
	}
	if slices.Equal(a["normal"].Data[:100], a["unit"].Data[:100]) {
		t.Errorf("two params drew the same numbers")
	}
	// Each param has its own stream: adding one leaves the others alone.
	d, err := eval.InitParams(paramModule(t, true), 42)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a["normal"].Data, d["normal"].Data) {
		t.Errorf("adding a param changed the initialisation of another")
	}
}

func TestInitParamsSymbolicShape(t *testing.T) {
	b := ir.NewBuilder("sym", "D")
	param(b, "w", "normal", 1, sym("D"))
	if err := b.Err(); err != nil {
		t.Fatal(err)
	}
	_, err := eval.InitParams(b.M, 1)
	if err == nil || !strings.Contains(err.Error(), `param "w": shape [D] is not constant`) {
		t.Errorf("got %v, want an error about the symbolic shape", err)
	}
}

func TestRandomInputs(t *testing.T) {
	b := ir.NewBuilder("inputs", "B", "N")
	input(b, "x", ir.F32, sym("B"), sym("N"), cd(4))
	input(b, "tokens", ir.I32, sym("B"), sym("N"))
	input(b, "keep", ir.Bool, sym("N"))
	if err := b.Err(); err != nil {
		t.Fatal(err)
	}
	syms := map[string]int64{"B": 3, "N": 50}
	vocab := func(string) (int, int) { return -5, 7 }
	in, err := eval.RandomInputs(b.M, syms, 9, vocab)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(in["x"].Shape, sh(3, 50, 4)) || !slices.Equal(in["tokens"].Shape, sh(3, 50)) || !slices.Equal(in["keep"].Shape, sh(50)) {
		t.Fatalf("shapes: %v %v %v", in["x"].Shape, in["tokens"].Shape, in["keep"].Shape)
	}
	if mean, std := moments(in["x"].Data); math.Abs(mean) > 0.15 || math.Abs(std-1) > 0.1 {
		t.Errorf("f32 input: mean %v, std %v, want N(0, 1)", mean, std)
	}
	seen := map[float64]bool{}
	for _, x := range in["tokens"].Data {
		if x != math.Trunc(x) || x < -5 || x >= 7 {
			t.Fatalf("token %v outside [-5, 7)", x)
		}
		seen[x] = true
	}
	if len(seen) != 12 {
		t.Errorf("150 tokens from [-5, 7) took %d distinct values", len(seen))
	}
	for _, x := range in["keep"].Data {
		if x != 0 && x != 1 {
			t.Fatalf("bool input holds %v", x)
		}
	}
	// The inputs are valid: Run accepts them and binds the symbols.
	res, err := eval.Run(b.M, eval.Env{Inputs: in})
	if err != nil {
		t.Fatal(err)
	}
	if res.Syms["B"] != 3 || res.Syms["N"] != 50 {
		t.Errorf("bound %v", res.Syms)
	}
	again, _ := eval.RandomInputs(b.M, syms, 9, vocab)
	if !slices.Equal(in["x"].Data, again["x"].Data) {
		t.Errorf("RandomInputs is not deterministic")
	}
	if _, err := eval.RandomInputs(b.M, syms, 9, nil); err == nil || !strings.Contains(err.Error(), `input "tokens" is i32`) {
		t.Errorf("no range for an i32 input: got %v", err)
	}
	if _, err := eval.RandomInputs(b.M, map[string]int64{"B": 3}, 9, vocab); err == nil {
		t.Errorf("unbound N: no error")
	}
}
