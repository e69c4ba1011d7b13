package tests

import (
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/attnc/attnc/ir"
	"github.com/attnc/attnc/ir/eval"
	"github.com/attnc/attnc/passes"
)

// TestStdlibGradients checks every stdlib model's full gradient in
// float64 on a tiny config: for each param tensor, the directional
// derivative along a random direction by central differences must match
// the autodiff gradient's inner product with it to 1e-6, relative to
// max(|derivative|, 1e-4).
func TestStdlibGradients(t *testing.T) {
	if testing.Short() {
		t.Skip("finite differences over every param of every stdlib model")
	}
	for _, s := range seeds {
		t.Run(s.file, func(t *testing.T) {
			m := elaborate(t, s.file, s.config).IR
			checkFiniteDifferences(t, m, s.inputs(m, s.syms, rand.New(rand.NewPCG(5, 6))))
		})
	}
}

// TestCorpusGradients is TestStdlibGradients for the models of
// testdata/programs that have weights. Finite differences hold every
// stop_gradient at its unperturbed value, as the gradient assumes.
func TestCorpusGradients(t *testing.T) {
	if testing.Short() {
		t.Skip("finite differences over every param of every corpus model")
	}
	for _, p := range corpus(t) {
		if strings.HasPrefix(p.name, "std/") || len(p.m.Params()) == 0 {
			continue
		}
		t.Run(p.name, func(t *testing.T) {
			for _, in := range p.m.Instrs {
				if e := in.Attrs.Expr("score"); e != nil && stepsInS(e) {
					t.Skip("the score has floor(s·…): finite differences jump at its steps, which the gradient rightly ignores")
				}
			}
			checkFiniteDifferences(t, p.m, p.inputs)
		})
	}
}

// stepsInS reports whether e applies floor to something that depends on
// the score s: a step function of the weights.
func stepsInS(e *ir.Expr) bool {
	found := false
	e.Walk(func(x *ir.Expr) {
		if x.Kind == ir.ECall && x.Name == "floor" {
			x.Walk(func(y *ir.Expr) {
				if y.Kind == ir.EVar && y.Name == "s" {
					found = true
				}
			})
		}
	})
	return found
}

// checkFiniteDifferences differentiates m (elaborated) and compares, for
// each param tensor, the directional derivative along a random direction
// by central differences with the autodiff gradient's inner product with
// it, to 1e-6 relative to max(|derivative|, 1e-4), in float64.
func checkFiniteDifferences(t *testing.T, m *ir.Module, inputs map[string]*eval.Tensor) {
	t.Helper()
	forward, err := ir.Parse("forward.ir", ir.Print(m))
	require.NoError(t, err)
	require.NoError(t, passes.Autodiff(m))
	require.NoError(t, ir.Verify(m))

	params, err := eval.InitParams(m, 3)
	require.NoError(t, err)
	// Perturb the zero- and one-initialised params (biases, norm
	// scales) so that no gradient is special by construction.
	rng := rand.New(rand.NewPCG(11, 13))
	for _, name := range slices.Sorted(maps.Keys(params)) { // in order: the same values every run
		p := params[name]
		for i := range p.Data {
			p.Data[i] += 0.1 * rng.NormFloat64()
		}
	}
	res, err := eval.Run(m, eval.Env{Inputs: inputs, Params: params})
	require.NoError(t, err)
	// stop_gradient's values stay those at the unperturbed weights: the
	// gradient autodiff writes treats them as constants.
	frozen := map[int]*eval.Tensor{}
	for _, in := range forward.Instrs {
		if in.Op == ir.OpStopGradient {
			frozen[in.ID] = res.Values[in.ID]
		}
	}
	loss := func() float64 {
		r, err := eval.Run(forward, eval.Env{Inputs: inputs, Params: params, Frozen: frozen})
		require.NoError(t, err)
		l, _ := r.Loss()
		return l
	}
	const h = 1e-4
	worst := 0.0
	for _, o := range m.Outputs {
		if o.Kind != ir.OutGrad {
			continue
		}
		g := res.Values[o.Value.ID]
		p := params[o.Name]
		u := make([]float64, len(p.Data))
		want := 0.0
		for i := range u {
			u[i] = rng.NormFloat64()
			want += g.Data[i] * u[i]
		}
		orig := append([]float64(nil), p.Data...)
		at := func(step float64) float64 {
			for i := range u {
				p.Data[i] = orig[i] + step*u[i]
			}
			return loss()
		}
		// Richardson extrapolation of two central differences
		// cancels the h² error term: O(h⁴) truncation.
		d1 := (at(h) - at(-h)) / (2 * h)
		d2 := (at(h/2) - at(-h/2)) / h
		copy(p.Data, orig)
		fd := (4*d2 - d1) / 3
		// Finite differences in float64 carry rounding noise of
		// about ε·|loss|/h ≈ 1e-11, so tiny directional derivatives
		// (a key bias, which softmax ignores, has exactly zero) are
		// compared against a floor of 1e-4.
		rel := math.Abs(fd-want) / math.Max(math.Abs(fd), 1e-4)
		worst = math.Max(worst, rel)
		if rel > 1e-6 {
			t.Errorf("grad %s: directional derivative %.10g by autodiff, %.10g by finite differences (relative error %.2g)", o.Name, want, fd, rel)
		}
	}
	t.Logf("%d params, worst relative error %.2g", len(m.Params()), worst)
}
