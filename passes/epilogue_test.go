package passes

import (
	"testing"

	"github.com/attnc/attnc/ir"
)

// TestEpilogueGolden runs the epilogue pass on testdata/epilogue.ir and
// compares the module with testdata/epilogue.golden (go test -update
// rewrites it): the bias add before a reshape is folded (%4); the one a
// GELU follows is left to the fuse pass's chain (%7); the one whose
// product is read elsewhere too stays (%10); both adds of a sum of three
// products fold (%20, %21).
func TestEpilogueGolden(t *testing.T) {
	byID := passGolden(t, "epilogue", Epilogue)
	if in := byID[4]; in.Op != ir.OpEinsum || !in.Attrs.Bool("bias") || len(in.Args) != 3 {
		t.Errorf("%%4 was not folded: %s", in)
	}
	for _, id := range []int{7, 10} {
		if in := byID[id]; in.Op != ir.OpAdd {
			t.Errorf("%%%d was folded: %s", id, in)
		}
	}
	// A sum of three products: the outer add folds first, and then the
	// inner one, whose user is no longer an add (the second walk).
	for _, id := range []int{20, 21} {
		if in := byID[id]; in.Op != ir.OpEinsum || !in.Attrs.Bool("bias") {
			t.Errorf("%%%d was not folded: %s", id, in)
		}
	}
}
