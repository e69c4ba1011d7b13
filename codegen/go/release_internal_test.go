package gogen

import (
	"slices"
	"testing"

	"github.com/attnc/attnc/ir"
	"github.com/attnc/attnc/passes"
)

// TestReleasesTupleResultsApart: the tensors of a multi-result op are
// released one by one through their extracts. A norm gradient whose dγ
// is a grad output (a result, never released) still releases its dx once
// dx is dead, and its dβ, which nothing takes out, right after it runs.
func TestReleasesTupleResultsApart(t *testing.T) {
	m, err := ir.Parse("release", `module release(B, N) {
  %0 = input {name = "x"} : f32[B, N, 8]
  %1 = input {name = "dy"} : f32[B, N, 8]
  %2 = param {name = "g", init = ones} : f32[8]
  %3 = layer_norm_grad %0, %1, %2 {eps = 1e-05, scale = true, params = true} : (f32[B, N, 8], f32[8], f32[8])
  %4 = extract %3 {index = 0} : f32[B, N, 8]
  %5 = extract %3 {index = 1} : f32[8]
  %6 = exp %4 : f32[B, N, 8]
  %7 = reduce_sum %6 {axes = [0, 1, 2]} : f32[]
  loss %7
  grad "g" = %5
}
`)
	if err != nil {
		t.Fatal(err)
	}
	p, err := passes.Lower(m)
	if err != nil {
		t.Fatal(err)
	}
	f := p.Func("LossAndGrad")
	plan := planReleases(f, fusion{})
	released := map[int]bool{}
	for _, vs := range plan.after {
		for _, v := range vs {
			released[v.ID] = true
		}
	}
	if !released[4] || !released[6] {
		t.Errorf("dx (%%4) and exp(dx) (%%6) must be released; released: %v", released)
	}
	if released[5] || released[3] {
		t.Errorf("neither dγ (%%5, a result) nor the tuple (%%3) may be released whole; released: %v", released)
	}
	var tuple *ir.Instr
	for _, in := range f.Body {
		if in.ID == 3 {
			tuple = in
		}
	}
	if got := plan.unread[tuple]; !slices.Equal(got, []int{2}) {
		t.Errorf("unread results of %%3: %v, want [2] (dβ)", got)
	}
}
