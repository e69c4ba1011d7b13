package passes

import (
	"os"
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
	src, err := os.ReadFile("testdata/layout.ir")
	if err != nil {
		t.Fatal(err)
	}
	m, err := ir.Parse("layout.ir", string(src))
	if err != nil {
		t.Fatal(err)
	}
	if err := Layout(m); err != nil {
		t.Fatal(err)
	}
	if err := ir.Verify(m); err != nil {
		t.Fatal(err)
	}
	got := ir.Print(m)
	if *update {
		if err := os.WriteFile("testdata/layout.golden", []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile("testdata/layout.golden")
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("the module differs from testdata/layout.golden (run go test -update to accept):\n%s", got)
	}
	byID := map[int]*ir.Instr{}
	for _, in := range m.Instrs {
		byID[in.ID] = in
	}
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
