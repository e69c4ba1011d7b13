package passes

import (
	"os"
	"testing"

	"github.com/attnc/attnc/ir"
	"github.com/attnc/attnc/kir"
)

// readIR parses testdata/NAME.ir.
func readIR(t *testing.T, name string) *ir.Module {
	t.Helper()
	src, err := os.ReadFile("testdata/" + name + ".ir")
	if err != nil {
		t.Fatal(err)
	}
	m, err := ir.Parse(name+".ir", string(src))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// passGolden runs pass on testdata/NAME.ir, verifies the module and
// compares its text with testdata/NAME.golden; it returns the module's
// instructions by ID for the test's own checks.
func passGolden(t *testing.T, name string, pass func(*ir.Module) error) map[int]*ir.Instr {
	t.Helper()
	m := readIR(t, name)
	if err := pass(m); err != nil {
		t.Fatal(err)
	}
	if err := ir.Verify(m); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, name, ir.Print(m))
	byID := map[int]*ir.Instr{}
	for _, in := range m.Instrs {
		byID[in.ID] = in
	}
	return byID
}

// fuseIR lowers testdata/NAME.ir and fuses it for the default Go target.
func fuseIR(t *testing.T, name string) *kir.Program {
	t.Helper()
	prog, err := Lower(readIR(t, name))
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
	return kp
}

// checkGolden compares got with testdata/NAME.golden, which go test
// -update rewrites.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := "testdata/" + name + ".golden"
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("the result differs from %s (run go test -update to accept):\n%s", path, got)
	}
}
