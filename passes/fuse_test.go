package passes

import (
	"flag"
	"testing"

	"github.com/attnc/attnc/ir"
	"github.com/attnc/attnc/kir"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestFuseGolden lowers testdata/fuse.ir (a layer norm's affine part
// and GELU, then the row sum of a row-centred exp times the input, then
// a sum over the rows), fuses it for the default Go target
// and compares the kernels with testdata/fuse.golden (go test -update
// rewrites it). What each kernel computes is checked against the
// reference in tests/fuse_test.go.
func TestFuseGolden(t *testing.T) {
	kp := fuseIR(t, "fuse")
	checkGolden(t, "fuse", kp.Print())
	// Two groups: mul, add, gelu (the mean reads gelu's result, so it
	// ends the group) and sub, exp, mul, reduce_sum (a reduce group; the
	// sum over the rows is not one: it reduces other axes than the last).
	gs := kp.Funcs["Forward"].Groups
	if len(gs) != 2 {
		t.Fatalf("%d groups in Forward, want 2", len(gs))
	}
	if r := gs[1].Root; r.Op != ir.OpReduceSum || len(gs[1].Members) != 4 {
		t.Errorf("the second group is %s, want the row sum of 4 members", gs[1].Label())
	}
}

func TestFuseRejectsABadTarget(t *testing.T) {
	if _, err := Fuse(&ir.Program{Module: &ir.Module{Name: "m"}}, kir.Target{Name: "x"}); err == nil {
		t.Error("a target that does not check was accepted")
	}
}
