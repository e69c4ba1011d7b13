package train

import (
	"fmt"
	"math"

	"github.com/attnc/attnc/runtime"
)

// AdamW is Adam with decoupled weight decay (Loshchilov & Hutter):
//
//	m ← β₁m + (1-β₁)g,  v ← β₂v + (1-β₂)g²
//	p ← p - lr·(m̂/(√v̂ + ε) + wd·p),  m̂ = m/(1-β₁ᵗ), v̂ = v/(1-β₂ᵗ)
//
// Weight decay applies to weights of rank ≥ 2 only (matrices, embedding
// tables), not to biases and norm scales, as is usual.
type AdamW struct {
	Beta1, Beta2, Eps, WeightDecay float64
	// M and V hold the moment estimates, by param name.
	M, V map[string]*runtime.Tensor
	// T is the number of steps taken.
	T int
}

// NewAdamW returns an optimizer with zero moments for params.
func NewAdamW(params []runtime.Named, weightDecay float64) *AdamW {
	a := &AdamW{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: weightDecay,
		M: map[string]*runtime.Tensor{}, V: map[string]*runtime.Tensor{}}
	for _, p := range params {
		a.M[p.Name] = runtime.New(runtime.F32, p.T.Shape...)
		a.V[p.Name] = runtime.New(runtime.F32, p.T.Shape...)
	}
	return a
}

// Step updates params in place from grads (matched by name) with
// learning rate lr.
func (a *AdamW) Step(params, grads []runtime.Named, lr float64) error {
	if len(params) != len(grads) {
		return fmt.Errorf("adamw: %d params but %d gradients", len(params), len(grads))
	}
	a.T++
	c1 := 1 - math.Pow(a.Beta1, float64(a.T))
	c2 := 1 - math.Pow(a.Beta2, float64(a.T))
	b1, b2 := float32(a.Beta1), float32(a.Beta2)
	for i, p := range params {
		g := grads[i]
		if g.Name != p.Name || len(g.T.F) != len(p.T.F) {
			return fmt.Errorf("adamw: gradient %d is %s, want %s", i, g.Name, p.Name)
		}
		m, v := a.M[p.Name], a.V[p.Name]
		if m == nil || v == nil {
			return fmt.Errorf("adamw: no state for %s", p.Name)
		}
		decay := 0.0
		if len(p.T.Shape) >= 2 {
			decay = a.WeightDecay
		}
		step := float32(lr / c1)
		rc2 := float32(1 / math.Sqrt(c2))
		eps := float32(a.Eps)
		wd := float32(lr * decay)
		runtime.AdamWUpdate(p.T.F, g.T.F, m.F, v.F, b1, b2, step, rc2, eps, wd)
	}
	return nil
}

// GlobalNorm returns the L2 norm of all gradients together.
func GlobalNorm(grads []runtime.Named) float64 {
	s := 0.0
	for _, g := range grads {
		for _, x := range g.T.F {
			s += float64(x) * float64(x)
		}
	}
	return math.Sqrt(s)
}

// ClipGlobalNorm scales grads so their global norm is at most maxNorm and
// returns the norm before clipping. maxNorm ≤ 0 disables clipping.
func ClipGlobalNorm(grads []runtime.Named, maxNorm float64) float64 {
	n := GlobalNorm(grads)
	if maxNorm > 0 && n > maxNorm {
		f := float32(maxNorm / n)
		for _, g := range grads {
			for j := range g.T.F {
				g.T.F[j] *= f
			}
		}
	}
	return n
}

// FirstBad returns the name of the first tensor holding a NaN or an Inf,
// or "".
func FirstBad(ts []runtime.Named) string {
	for _, t := range ts {
		for _, x := range t.T.F {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return t.Name
			}
		}
	}
	return ""
}

// Schedule gives the learning rate at a step.
type Schedule struct {
	Kind   string // "cosine" or "constant"
	LR     float64
	Warmup int
	Steps  int
	MinLR  float64 // the floor of the cosine, as a fraction of LR
}

// At returns the learning rate for step (0-based): linear warmup over the
// first Warmup steps, then constant or a cosine decay to MinLR·LR at the
// last step.
func (s Schedule) At(step int) float64 {
	if s.Warmup > 0 && step < s.Warmup {
		return s.LR * float64(step+1) / float64(s.Warmup)
	}
	if s.Kind != "cosine" || s.Steps <= s.Warmup {
		return s.LR
	}
	p := float64(step-s.Warmup) / float64(max(s.Steps-s.Warmup-1, 1))
	p = math.Min(math.Max(p, 0), 1)
	floor := s.MinLR * s.LR
	return floor + (s.LR-floor)*0.5*(1+math.Cos(math.Pi*p))
}
