package passes

import (
	"testing"

	"github.com/attnc/attnc/ir"
)

// TestLayoutGolden runs the layout pass on testdata/layout.ir and
// compares the module with testdata/layout.golden (go test -update
// rewrites it). The attention whose q, k and v are split_heads
// transposes runs in the bnhd layout with its gradient: merge_heads'
// transpose of its output and dv's transpose back cancel (%7 and %19
// read the new values as they are); the sum dq + dk, taken in the old
// layout, reads them transposed back; the row sums are recomputed from
// the untransposed dy. The attention whose v is no transpose (%21) is
// left alone.
func TestLayoutGolden(t *testing.T) {
	byID := passGolden(t, "layout", Layout)
	// merge_heads reads the new output directly: no transpose is left
	// between the attention and the reshape.
	if a := byID[7].Args[0]; a.Op != ir.OpExtract || !ir.AttentionBNHD(a.Args[0].Attrs) {
		t.Errorf("%%7 reads %s, want an extract of the bnhd attention", a)
	}
	if a := byID[24].Args[0]; a.Op != ir.OpExtract || !ir.AttentionBNHD(a.Args[0].Attrs) {
		t.Errorf("%%24 reads %s, want an extract of the bnhd attention_grad", a)
	}
	// The old ops and the transposes that cancelled are gone.
	for _, id := range []int{3, 6, 13, 19} {
		if byID[id] != nil {
			t.Errorf("%%%d is left: %s", id, byID[id])
		}
	}
	if ir.AttentionBNHD(byID[21].Attrs) {
		t.Errorf("%%21 was rewritten: %s", byID[21])
	}
}
