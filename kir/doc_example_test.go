package kir

import (
	"strings"
	"testing"
)

// TestDocExample parses, verifies and prints the kernel of the package
// documentation: it must be in the printed form.
func TestDocExample(t *testing.T) {
	src := "kir m(M)\n\n" + strings.Join([]string{
		"kernel scale(x: f32[M, 128], out: f32[M, 128]) grid [(M + 63) / 64] {",
		"  %0 = program_id {axis = 0} : index",
		"  %1 = const {value = 64.0} : index",
		"  %2 = mul %0, %1 : index",
		"  %3 = const {value = 0.0} : index",
		"  %4 = load %x, %2, %3 {dims = [0, 1], pad = 0.0} : f32[64, 128]",
		"  %5 = const {value = 0.5} : f32[]",
		"  %6 = mul %4, %5 : f32[64, 128]",
		"  store %out, %6, %2, %3 {dims = [0, 1]}",
		"}",
	}, "\n") + "\n"
	m, err := Parse("doc", src)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(m); err != nil {
		t.Fatal(err)
	}
	if got := Print(m); got != src {
		t.Errorf("the documented kernel prints as\n%s", got)
	}
}
