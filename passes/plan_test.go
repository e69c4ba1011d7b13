package passes

import (
	"slices"
	"testing"

	"github.com/attnc/attnc/ir"
	"github.com/attnc/attnc/kir"
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
	p, err := Lower(m)
	if err != nil {
		t.Fatal(err)
	}
	f := p.Func("LossAndGrad")
	plan := planFunc(f, &kir.FuncKernels{Of: map[*ir.Instr]*kir.Group{}})
	released := map[int]bool{}
	for _, vs := range plan.Release {
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
	if got := plan.Unread[tuple]; !slices.Equal(got, []int{2}) {
		t.Errorf("unread results of %%3: %v, want [2] (dβ)", got)
	}
}

// TestPlanGolden runs Lower, Fuse and Plan on testdata/plan.ir and
// compares the program, with its releases, to testdata/plan.golden (go
// test -update rewrites it): the fused chain's buffer dies after its last
// reader; the reshape of a fused result is a view, so that buffer lives
// as long as the view does; the output (%8) and the grad output (%11) are
// never released, nor the model's param or the caller's inputs; dβ, which
// no extract takes, goes right after the norm gradient.
func TestPlanGolden(t *testing.T) {
	kp := fuseIR(t, "plan")
	if err := Plan(kp); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "plan", kp.Print())
	plan := kp.Plans["LossAndGrad"]
	released := map[int]bool{}
	for _, vs := range plan.Release {
		for _, v := range vs {
			released[v.ID] = true
		}
	}
	for _, id := range []int{0, 1, 2, 8, 11} {
		if released[id] {
			t.Errorf("%%%d is released, but it is an input, a param or a result", id)
		}
	}
	if !released[10] || !released[12] {
		t.Errorf("dx (%%10) and the sum (%%12) are dead before the end: released %v", released)
	}
}
