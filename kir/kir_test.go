package kir

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/attnc/attnc/ir"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestGolden parses each testdata/*.kir, verifies it and prints it back:
// the text must be the file itself (the files are in the printed form),
// and parsing the print must give the same print again.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.kir")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	seen := map[Op]bool{}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m, err := Parse(f, string(src))
		if err != nil {
			t.Fatal(err)
		}
		if err := Verify(m); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		got := Print(m)
		if *update {
			if err := os.WriteFile(f, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if got != string(src) {
			t.Errorf("%s: Print differs from the file (run go test -update to accept):\n%s", f, got)
		}
		again, err := Parse(f, got)
		if err != nil || Print(again) != got {
			t.Errorf("%s: the print does not parse back to itself: %v", f, err)
		}
		for _, k := range m.Kernels {
			k.Body.Walk(func(in *Instr) { seen[in.Op] = true })
		}
	}
	for _, op := range AllOps() {
		if !seen[op] {
			t.Errorf("no golden kernel uses %s", op)
		}
	}
}

// TestOpTable checks every row: a unique name OpByName finds, a type
// rule and a meaning; and that the graph IR's elementwise functions are
// reachable by their names.
func TestOpTable(t *testing.T) {
	names := map[string]bool{}
	for _, op := range AllOps() {
		info := op.Info()
		if info.Name == "" || names[info.Name] || info.Infer == nil || info.Doc == "" {
			t.Errorf("op %d (%q) lacks a unique name, a type rule or a doc", op, info.Name)
		}
		names[info.Name] = true
		if op == OpElem {
			continue
		}
		if back, _, ok := OpByName(info.Name); !ok || back != op {
			t.Errorf("OpByName(%s) = %v, %v", info.Name, back, ok)
		}
	}
	for _, e := range ir.AllOps() {
		op, elem, ok := OpByName(e.String())
		switch {
		case IsElementwise(e) && (!ok || op != OpElem || elem != e):
			t.Errorf("elementwise %s is not reachable by name", e)
		case !IsElementwise(e) && ok && op == OpElem:
			t.Errorf("%s is not elementwise but parses as one", e)
		}
		if IsElementwise(e) && names[e.String()] {
			t.Errorf("kir op %s shadows the elementwise function of that name", e)
		}
	}
	if _, _, ok := OpByName("elem"); ok {
		t.Error(`"elem" must name no instruction`)
	}
}

func TestTargets(t *testing.T) {
	for _, name := range TargetNames() {
		tg, err := TargetByName(name)
		if err != nil || tg.Name != name {
			t.Fatalf("%s: %v", name, err)
		}
		if err := tg.Check(); err != nil {
			t.Error(err)
		}
	}
	if _, err := TargetByName(DefaultGoTarget); err != nil {
		t.Error(err)
	}
	if _, err := TargetByName("tpu"); err == nil || !strings.Contains(err.Error(), "go-avx512") {
		t.Errorf("an unknown target: %v", err)
	}
	bad := targets["cuda-sm80"]
	bad.SharedMem = 0
	if bad.Check() == nil {
		t.Error("a GPU target without shared memory passed")
	}
	bad = targets["go-avx512"]
	bad.WarpSize = 32
	if bad.Check() == nil {
		t.Error("a CPU target with a warp of 32 passed")
	}
	if got := targets["go-avx512"].F32Lanes(); got != 16 {
		t.Errorf("AVX-512 holds %d floats, want 16", got)
	}
}

const okKernel = `kir m(N)

kernel k(x: f32[N, 128], y: f32[N, 128]) grid [(N + 63) / 64] {
  %0 = program_id {axis = 0} : index
  %1 = const {value = 64.0} : index
  %2 = mul %0, %1 : index
  %3 = const {value = 0.0} : index
  %4 = load %x, %2, %3 {dims = [0, 1]} : f32[64, 128]
  %5 = exp %4 : f32[64, 128]
  store %y, %5, %2, %3 {dims = [0, 1]}
}
`

// TestVerifyErrors breaks a valid kernel one way at a time; each must
// be refused with a message that says what is wrong.
func TestVerifyErrors(t *testing.T) {
	m, err := Parse("ok", okKernel)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(m); err != nil {
		t.Fatalf("the valid kernel: %v", err)
	}
	for _, c := range []struct{ old, new, want string }{
		{"{axis = 0}", "{axis = 1}", "axis 1 of a grid of 1 axes"},
		{"{axis = 0}", "{axis = 0, extra = 1}", "has no attribute extra"},
		{"%5 = exp %4 : f32[64, 128]", "%5 = exp %4 : f32[64, 64]", "result 0 is f32[64, 64], want f32[64, 128]"},
		{"%5 = exp %4 : f32[64, 128]", "%5 = exp %0 : f32[64, 128]", "exp on indices"},
		{"{dims = [0, 1]} : f32[64, 128]", "{dims = [1, 1]} : f32[64, 128]", "want distinct axes"},
		{"{dims = [0, 1]} : f32[64, 128]", "{dims = [0, 1]} : i32[64, 128]", "load of f32[N, 128] as i32[64, 128]"},
		{"%2 = mul %0, %1 : index", "%2 = mul %0, %1 : f32[]", "want index"},
		{"%3 = const {value = 0.0} : index", "%3 = const {value = 0.5} : index", "not an integer"},
		{"grid [(N + 63) / 64]", "grid [(M + 63) / 64]", `unknown variable "M"`},
		{"grid [(N + 63) / 64]", "grid []", "grid of 0 axes"},
		{"x: f32[N, 128], y", "x: f32[M, 128], y", "uses M, not a symbol"},
		{"store %y, %5, %2, %3 {dims = [0, 1]}", "store %y, %5, %2 {dims = [0, 1]}", "1 offsets for a buffer of rank 2"},
		{"store %y, %5, %2, %3 {dims = [0, 1]}", "store %y, %5, %2, %3 {dims = [0, 1]}\n  yield", "yield may only end a region"},
	} {
		src := strings.Replace(okKernel, c.old, c.new, 1)
		if src == okKernel {
			t.Fatalf("case %q does not change the kernel", c.old)
		}
		m, err := Parse("bad", src)
		if err == nil {
			err = Verify(m)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q → %q: got %v, want an error containing %q", c.old, c.new, err, c.want)
		}
	}
}

// TestVerifyScopes checks that a value defined inside a region is not
// visible after it, and that a loop's region must end with its yield of
// the carried types.
func TestVerifyScopes(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{`%1 = for %2 = %0 to %0 step %0 iter(%3 = %0) : (index) {
    %4 = add %3, %2 : index
    yield %4
  }
  %5 = add %4, %1 : index`, "is not defined before its use"},
		{`%1 = for %2 = %0 to %0 step %0 iter(%3 = %0) : (index) {
    %4 = add %3, %2 : index
  }`, "must end with yield"},
		{`%1 = for %2 = %0 to %0 step %0 iter(%3 = %0) : (index) {
    %4 = const {value = 1.0} : f32[]
    yield %4
  }`, "yield value 0 is f32[], want index"},
		{`%1 = lt %0, %0 : bool[]
  %2 = if %1 : (index) {
    yield %0
  } else {
    yield %1
  }`, "yield value 0 is bool[], want index"},
		{`%1 = const {value = 1.0} : index
  %1 = const {value = 2.0} : index`, "defined twice"},
	} {
		src := "kir m(N)\n\nkernel k(x: f32[N]) grid [N] {\n  %0 = program_id {axis = 0} : index\n  " + c.body + "\n}\n"
		m, err := Parse("scope", src)
		if err == nil {
			err = Verify(m)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\ngot %v, want an error containing %q", c.body, err, c.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"", `want "kir"`},
		{"kir m(N)\nkernel k() grid [N] {\n  %0 = frob : index\n}\n", "3:8: unknown op frob"},
		{"kir m(N)\nkernel k() grid [N] {\n  %0 = program_id {axis = 0} : index\n  %1 = add %0, %9 : index\n}\n", "%9 is not defined"},
		{"kir m(N)\nkernel k() grid [N + ] {\n}\n", "grid extent"},
		{"kir m(N)\nkernel k(x: f32[N) grid [N] {\n}\n", "dim"},
		{"kir m(N)\nkernel k() grid [N] {\n  %0 = const {value = x} : index\n}\n", "want a number"},
		{"kir m(N)\nkernel k() grid [N] {\n  call {fn = \"unterminated}\n}\n", "closing quote"},
	} {
		_, err := Parse("p.kir", c.src)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want an error containing %q", c.src, err, c.want)
		}
	}
}

// FuzzParse: Parse never panics, and a module that parses and verifies
// prints to a text that parses and prints the same.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.kir")
	for _, file := range files {
		src, _ := os.ReadFile(file)
		f.Add(string(src))
	}
	f.Add(okKernel)
	f.Fuzz(func(t *testing.T, src string) {
		m, err := Parse("fuzz", src)
		if err != nil || Verify(m) != nil {
			return
		}
		text := Print(m)
		again, err := Parse("fuzz", text)
		if err != nil {
			t.Fatalf("the print does not parse: %v\n%s", err, text)
		}
		if Print(again) != text {
			t.Fatalf("print, parse, print differs:\n%s", text)
		}
	})
}
