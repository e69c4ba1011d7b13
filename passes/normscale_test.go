package passes

import (
	"testing"

	"github.com/attnc/attnc/ir"
)

// TestNormScale folds dy·γ into layer_norm_grad (either operand order)
// and leaves a product read elsewhere, and one by a tensor that is not a
// vector along the last axis.
func TestNormScale(t *testing.T) {
	m, err := ir.Parse("normscale", `module normscale(B, N) {
  %0 = input {name = "x"} : f32[B, N, 8]
  %1 = input {name = "dy"} : f32[B, N, 8]
  %2 = param {name = "g", init = ones} : f32[8]
  %3 = param {name = "h", init = ones} : f32[N, 8]
  %4 = mul %1, %2 : f32[B, N, 8]
  %5 = layer_norm_grad %0, %4 {eps = 1e-05} : f32[B, N, 8]
  %6 = mul %2, %1 : f32[B, N, 8]
  %7 = rms_norm_grad %0, %6 {eps = 1e-06} : f32[B, N, 8]
  %8 = mul %1, %2 : f32[B, N, 8]
  %9 = layer_norm_grad %0, %8 {eps = 1e-05} : f32[B, N, 8]
  %10 = mul %1, %3 : f32[B, N, 8]
  %11 = layer_norm_grad %0, %10 {eps = 1e-05} : f32[B, N, 8]
  %12 = add %5, %7 : f32[B, N, 8]
  %13 = add %12, %9 : f32[B, N, 8]
  %14 = add %13, %11 : f32[B, N, 8]
  %15 = add %14, %8 : f32[B, N, 8]
  %16 = reduce_sum %15 {axes = [0, 1, 2]} : f32[]
  loss %16
}
`)
	if err != nil {
		t.Fatal(err)
	}
	if err := NormScale(m); err != nil {
		t.Fatal(err)
	}
	if err := ir.Verify(m); err != nil {
		t.Fatal(err)
	}
	byID := map[int]*ir.Instr{}
	for _, in := range m.Instrs {
		byID[in.ID] = in
	}
	for _, id := range []int{5, 7} {
		if in := byID[id]; !in.Attrs.Bool("scale") || in.Args[1].ID != 1 || in.Args[2].ID != 2 {
			t.Errorf("%%%d was not folded: %s", id, in)
		}
	}
	for _, id := range []int{9, 11} {
		if in := byID[id]; in.Attrs.Bool("scale") {
			t.Errorf("%%%d was folded: %s", id, in)
		}
	}
}
