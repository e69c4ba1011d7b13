package passes

import (
	"strings"
	"testing"

	"github.com/attnc/attnc/ir"
)

// TestNormParamsGolden runs the normparams pass on
// testdata/normparams.ir and compares the module with
// testdata/normparams.golden (go test -update rewrites it). Folded: the
// layer norm's weight and bias sums into its gradient (%10: one of the
// two sums of dy, %31) and its affine part into the norm (%6); the rms
// norm's weight sum, summed over the axes listed in another order
// (%15), and its weight (%12); the other sum of dy stays (%7: an rms
// norm has no bias). Left: a
// gradient whose product's sum keeps an axis (%21: its norm %16, read
// by that product too, keeps its affine part outside), one whose
// product reads a norm of another eps (%24) or kind (%44), and an
// affine part whose
// product is read elsewhere too (%29).
func TestNormParamsGolden(t *testing.T) {
	byID := passGolden(t, "normparams", NormParams)
	for id, index := range map[int]int64{10: 0, 9: 1, 31: 2, 15: 0, 14: 1} {
		in := byID[id]
		if in.Op != ir.OpExtract || in.Attrs.Int("index") != int(index) || !in.Args[0].Attrs.Bool("params") {
			t.Errorf("%%%d was not folded as result %d: %s", id, index, in)
		}
	}
	for _, id := range []int{6, 12} {
		if in := byID[id]; !in.Attrs.Bool("affine") {
			t.Errorf("%%%d was not folded: %s", id, in)
		}
	}
	// The residual add into the gradient: %55 (dx read by the add alone)
	// folds, %64 (dx also an output) does not.
	if in := byID[55]; in.Op != ir.OpExtract || !in.Args[0].Attrs.Bool("accumulate") || in.Args[0].Args[3] != byID[50] {
		t.Errorf("%%55 was not folded into its norm gradient: %s", in)
	}
	if in := byID[64]; in.Op != ir.OpAdd {
		t.Errorf("%%64 was folded although dx is an output: %s", in)
	}
	for _, id := range []int{7, 18, 20, 21, 23, 24, 28, 29, 43, 44} {
		if in := byID[id]; in.Op == ir.OpExtract || in.Attrs.Bool("affine") {
			t.Errorf("%%%d was folded: %s", id, in)
		}
	}
}

// TestNormParamsAfterAutodiff runs the passes up to normparams on a
// layer norm and an rms norm with learned weights, as the stdlib's
// blocks write them: every live norm ends affine and every live norm
// gradient returns its weights' gradients, so a step runs one kernel
// for each norm in each direction. An affine norm is refused by
// autodiff.
func TestNormParamsAfterAutodiff(t *testing.T) {
	m, err := ir.Parse("blocks", `module blocks(B, N) {
  %11 = input {name = "x"} : f32[B, N, 8]
  %12 = param {name = "shift", init = zeros} : f32[8]
  %0 = add %11, %12 : f32[B, N, 8]
  %1 = param {name = "ln.weight", init = ones} : f32[8]
  %2 = param {name = "ln.bias", init = zeros} : f32[8]
  %3 = param {name = "rms.weight", init = ones} : f32[8]
  %4 = layer_norm %0 {eps = 1e-05} : f32[B, N, 8]
  %5 = mul %4, %1 : f32[B, N, 8]
  %6 = add %5, %2 : f32[B, N, 8]
  %7 = rms_norm %6 {eps = 1e-06} : f32[B, N, 8]
  %8 = mul %7, %3 : f32[B, N, 8]
  %9 = mul %8, %8 : f32[B, N, 8]
  %10 = reduce_sum %9 {axes = [0, 1, 2]} : f32[]
  loss %10
}
`)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range Pipeline {
		if err := p.Run(m); err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
		if p.Name == "normparams" {
			break
		}
	}
	if err := ir.Verify(m); err != nil {
		t.Fatal(err)
	}
	live, _, _ := liveUses(m)
	count := map[string]int{}
	for _, in := range m.Instrs {
		if !live[in] {
			continue
		}
		switch in.Op {
		case ir.OpLayerNorm, ir.OpRMSNorm:
			if !in.Attrs.Bool("affine") {
				t.Errorf("a norm was left without its affine part: %s", in)
			}
			count[in.Op.String()]++
		case ir.OpLayerNormGrad, ir.OpRMSNormGrad:
			if !in.Attrs.Bool("params") {
				t.Errorf("a norm gradient was left without its weights': %s", in)
			}
			count[in.Op.String()]++
		}
	}
	for _, op := range []string{"layer_norm", "rms_norm", "layer_norm_grad", "rms_norm_grad"} {
		if count[op] != 1 {
			t.Errorf("%d live %s, want 1:\n%s", count[op], op, ir.Print(m))
		}
	}
	for _, src := range []string{
		`%2 = layer_norm %0, %1, %1 {eps = 1e-05, affine = true} : f32[N, 8]`,
		`%2 = rms_norm %0, %1 {eps = 1e-05, affine = true} : f32[N, 8]`,
	} {
		a, err := ir.Parse("affine", `module affine(N) {
  %0 = input {name = "x"} : f32[N, 8]
  %1 = param {name = "g", init = ones} : f32[8]
  `+src+`
  %3 = reduce_sum %2 {axes = [0, 1]} : f32[]
  loss %3
}
`)
		if err != nil {
			t.Fatal(err)
		}
		if err := Autodiff(a); err == nil || !strings.Contains(err.Error(), "no gradient rule") {
			t.Errorf("autodiff of %s: %v, want an error saying it has no gradient rule", src, err)
		}
	}
}
