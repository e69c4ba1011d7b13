package lang

import (
	"testing"

	"github.com/attnc/attnc/ir"
	"github.com/attnc/attnc/stdlib"
)

func addStdSeeds(f *testing.F) {
	for _, src := range stdFiles(f) {
		f.Add(src)
	}
	f.Add("model m { input x: i32[B, N]\n loss cross_entropy(linear(embed(x, 4, 4), 4), x) }")
	f.Add("mask m(t) = t[b, q] < k\nblock f(x: [B, N, D]) -> [B, N, D] { return x }")
}

// FuzzParse: parsing never panics, and what parses formats to a fixed
// point that parses again.
func FuzzParse(f *testing.F) {
	addStdSeeds(f)
	f.Fuzz(func(t *testing.T, src string) {
		file, diags := Parse("fuzz.attn", src)
		if file == nil || len(diags) > 0 {
			return
		}
		out, diags := Format("fuzz.attn", src)
		if len(diags) > 0 {
			t.Fatalf("Format failed on a file Parse accepted: %v", diags)
		}
		again, diags := Format("fuzz.attn", out)
		if len(diags) > 0 {
			t.Fatalf("formatted output does not parse: %v\n%s", diags, out)
		}
		if again != out {
			t.Fatalf("fmt is not idempotent:\n--- once\n%s\n--- twice\n%s", out, again)
		}
	})
}

// FuzzCheck: loading and elaborating never panics, and a model that
// elaborates verifies.
func FuzzCheck(f *testing.F) {
	addStdSeeds(f)
	f.Fuzz(func(t *testing.T, src string) {
		prog, diags := Load("fuzz.attn", src, LoadOptions{Std: stdlib.FS, ReadFile: noFiles})
		if len(diags) > 0 {
			return
		}
		for _, name := range prog.ModelNames() {
			m, diags := prog.Elaborate(name, ElabOptions{})
			if len(diags) > 0 {
				continue
			}
			if err := ir.Verify(m.IR); err != nil {
				t.Fatalf("elaborated model does not verify: %v", err)
			}
		}
	})
}
