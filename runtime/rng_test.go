package runtime_test

import (
	"math"
	"testing"

	"github.com/attnc/attnc/ir"
	"github.com/attnc/attnc/ir/eval"
	rt "github.com/attnc/attnc/runtime"
)

func TestRNGDeterministic(t *testing.T) {
	a, b, c := rt.NewRNG(42), rt.NewRNG(42), rt.NewRNG(43)
	differ := false
	for range 1000 {
		x, y, z := a.Normal(), b.Normal(), c.Normal()
		if math.Float32bits(x) != math.Float32bits(y) {
			t.Fatalf("same seed gave %v and %v", x, y)
		}
		differ = differ || x != z
		u, w := a.Uniform(-2, 3), b.Uniform(-2, 3)
		if u != w || u < -2 || u > 3 {
			t.Fatalf("Uniform(-2, 3) gave %v and %v", u, w)
		}
	}
	if !differ {
		t.Error("seeds 42 and 43 gave the same stream")
	}
}

func TestRNGMoments(t *testing.T) {
	r := rt.NewRNG(1)
	const n = 100000
	var s, ss, us float64
	for range n {
		x := float64(r.Normal())
		s += x
		ss += x * x
		us += float64(r.Uniform(0, 1))
	}
	if mean, vr := s/n, ss/n-(s/n)*(s/n); math.Abs(mean) > 0.02 || math.Abs(vr-1) > 0.02 {
		t.Errorf("Normal: mean %.4f, variance %.4f, want 0 and 1", mean, vr)
	}
	if mean := us / n; math.Abs(mean-0.5) > 0.01 {
		t.Errorf("Uniform(0, 1): mean %.4f, want 0.5", mean)
	}
}

// TestInitParamMatchesReference checks that a param gets the values the
// reference interpreter's InitParams gives it, and that they depend only on
// the seed and the param's own name.
func TestInitParamMatchesReference(t *testing.T) {
	b := ir.NewBuilder("init")
	params := []struct {
		name, init string
		scale      float32
		shape      []int
	}{
		{"attn.q.weight", "normal", 0.5, []int{8, 4}},
		{"attn.k.weight", "uniform", 0.25, []int{3, 5}},
		{"norm.scale", "ones", 1, []int{6}},
		{"norm.bias", "zeros", 1, []int{6}},
	}
	for _, p := range params {
		b.MustGiven(ir.OpParam, ir.TensorOf(ir.F32, constDims(p.shape)...), ir.Attrs{
			"name": ir.StringAttr(p.name), "init": ir.WordAttr(p.init), "scale": ir.FloatAttr(float64(p.scale)),
		})
	}
	if err := b.Err(); err != nil {
		t.Fatal(err)
	}
	want, err := eval.InitParams(b.M, 7)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range params {
		got := rt.New(rt.F32, p.shape...)
		got.F[0] = 99 // zeros must overwrite
		rt.InitParam(got, p.init, p.scale, 7, p.name)
		w := want[p.name]
		for i, x := range got.F {
			if x != float32(w.Data[i]) {
				t.Fatalf("%s[%d] = %v, want the reference's %v", p.name, i, x, float32(w.Data[i]))
			}
		}
	}
	// Another seed changes the values; another param does not matter.
	a, c := rt.New(rt.F32, 10), rt.New(rt.F32, 10)
	rt.InitParam(a, "normal", 1, 7, "x")
	rt.InitParam(c, "normal", 1, 8, "x")
	if a.F[0] == c.F[0] {
		t.Error("seeds 7 and 8 gave the same param")
	}
	mustPanic(t, "unknown init", func() { rt.InitParam(a, "xavier", 1, 7, "x") })
}
