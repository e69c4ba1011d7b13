package passes

import (
	"flag"
	"os"
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
	src, err := os.ReadFile("testdata/fuse.ir")
	if err != nil {
		t.Fatal(err)
	}
	m, err := ir.Parse("fuse.ir", string(src))
	if err != nil {
		t.Fatal(err)
	}
	prog, err := Lower(m)
	if err != nil {
		t.Fatal(err)
	}
	tg, err := kir.TargetByName(kir.DefaultGoTarget)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := Fuse(prog, tg)
	if err != nil {
		t.Fatal(err)
	}
	got := kp.Print()
	if *update {
		if err := os.WriteFile("testdata/fuse.golden", []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile("testdata/fuse.golden")
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("the fused kernels differ from testdata/fuse.golden (run go test -update to accept):\n%s", got)
	}
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
