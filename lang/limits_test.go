package lang

import (
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The inputs here are too big to keep in the error corpus, so they are
// generated. Each once crashed the compiler (a stack overflow), hung, or
// ate gigabytes; each must now give one positioned error, quickly.

// configModel wraps a config value in the smallest model that compiles.
func configModel(value string) string {
	return "model m {\n  config { a = " + value + " }\n  input tokens: i32[B, N]\n  loss mean(embed(tokens, 16, 32))\n}\n"
}

func TestDeepNestingIsAnError(t *testing.T) {
	const n = 100000
	limit := DefaultLimits().Nesting
	cases := []struct {
		name, value string
		// col is where the error must be, the token past the limit
		// (the model's and the config's braces count too), or -1.
		col int
		msg string
	}{
		{"parens", strings.Repeat("(", n) + "1" + strings.Repeat(")", n), limit - 1, "brackets nested more than 1000 deep"},
		{"calls", strings.Repeat("abs(", n) + "1" + strings.Repeat(")", n), -1, "expression nested more than 1000 deep"},
		{"minus", strings.Repeat("-", n) + "1", limit - 1, "expression nested more than 1000 deep"},
		{"ifs", strings.Repeat("if true then ", n) + "1" + strings.Repeat(" else 2", n), -1, "expression nested more than 1000 deep"},
		{"sum", "1" + strings.Repeat(" + 1", 10*n), -1, "expression nested more than 1000 deep"},
		{"subscripts", "x" + strings.Repeat("[0]", n), -1, "expression nested more than 1000 deep"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, diags := elabSrc(t, configModel(c.value))
			require.Len(t, diags, 1, "%v", diags)
			d := diags[0]
			assert.Contains(t, d.Msg, c.msg)
			assert.Equal(t, 2, d.Pos.Line)
			if c.col > 0 {
				assert.Equal(t, len("  config { a = ")+c.col, d.Pos.Column)
			}
		})
	}
}

func TestNestingBelowTheLimitParses(t *testing.T) {
	// The check must not refuse what a person writes: 500 parentheses
	// and a 500-term sum are fine.
	_, diags := elabSrc(t, configModel(strings.Repeat("(", 500)+"1"+strings.Repeat(")", 500)+strings.Repeat(" + 1", 500)))
	assert.Empty(t, diags)
}

// repeatModel has a loop with the given range and body.
func repeatModel(rng, body string) string {
	return "model m {\n  input tokens: i32[B, N]\n  let x = embed(tokens, 16, 32)\n  repeat i in " + rng + " {" + body + "}\n  loss mean(x)\n}\n"
}

func TestRepeatBudget(t *testing.T) {
	cases := []struct{ name, rng, body, msg string }{
		{"hundred million", "0..100000000", "", "repeat unrolls 100000000 iterations; the limit is 10000"},
		{"maxint", "0..9223372036854775807", "", "repeat unrolls 9223372036854775807 iterations; the limit is 10000"},
		{"minint to maxint", "-9223372036854775807 - 1..9223372036854775807", "", "repeat bound -9223372036854775808 is negative"},
		{"nested", "0..5000", "repeat j in 0..5000 { }", "10000 unrolled iterations"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, diags := elabSrc(t, repeatModel(c.rng, c.body))
			require.NotEmpty(t, diags)
			assert.Contains(t, diags[0].Msg, c.msg)
			assert.Equal(t, 4, diags[0].Pos.Line)
		})
	}
}

func TestBlockCallBudget(t *testing.T) {
	// Each block calls the one below it twice: 2^40 calls, none of
	// which emits an instruction.
	var sb strings.Builder
	sb.WriteString("block b0(x) { return x }\n")
	for i := 1; i < 40; i++ {
		fmt.Fprintf(&sb, "block b%d(x) { let y = b%d(x)\n  return b%d(y) }\n", i, i-1, i-1)
	}
	sb.WriteString("model m {\n  input tokens: i32[B, N]\n  let x = embed(tokens, 16, 32)\n  loss mean(b39(x))\n}\n")
	_, diags := elabSrc(t, sb.String())
	require.NotEmpty(t, diags)
	assert.Contains(t, diags[0].Msg, "the limit is 10000 block calls")
}

func TestMaskSizeBudget(t *testing.T) {
	// Each mask's default is the one below it, used twice: the
	// expression doubles at every level.
	var sb strings.Builder
	sb.WriteString("import \"std/layers.attn\"\nmask m0 = k <= q\n")
	for i := 1; i < 40; i++ {
		fmt.Fprintf(&sb, "mask m%d(a = m%d) = a && a\n", i, i-1)
	}
	sb.WriteString("model m {\n  input tokens: i32[B, N]\n  let x = split_heads(embed(tokens, 16, 32), 2)\n  loss mean(attend(x, x, x, mask: m39))\n}\n")
	_, diags := elabSrc(t, sb.String())
	require.NotEmpty(t, diags)
	assert.Contains(t, diags[0].Msg, "the limit is 10000 nodes")
}

func TestMaskGrowingInALoop(t *testing.T) {
	_, diags := elabSrc(t, `import "std/layers.attn"
model m {
  input tokens: i32[B, N]
  let x = split_heads(embed(tokens, 16, 32), 2)
  let c = causal
  repeat i in 0..40 { c = c && c }
  loss mean(attend(x, x, x, mask: c))
}`)
	require.NotEmpty(t, diags)
	assert.Contains(t, diags[0].Msg, "the limit is 10000 nodes")
	assert.Equal(t, 6, diags[0].Pos.Line)
}

func TestLimitsCanBeChanged(t *testing.T) {
	prog, diags := Load("t.attn", repeatModel("0..20", ""), LoadOptions{ReadFile: noFiles})
	require.Empty(t, diags)
	_, diags = prog.Elaborate("", ElabOptions{Limits: &Limits{Iterations: 10}})
	require.Len(t, diags, 1)
	assert.Contains(t, diags[0].Msg, "repeat unrolls 20 iterations; the limit is 10")
	_, diags = prog.Elaborate("", ElabOptions{})
	assert.Empty(t, diags)
}

func TestMaskNodesPerModelBudget(t *testing.T) {
	// Each mask is within the per-mask limit, but every use by name is
	// a fresh copy: a loop of them must not fill memory.
	var sb strings.Builder
	sb.WriteString("import \"std/layers.attn\"\nmask m0 = k <= q\n")
	for i := 1; i < 12; i++ {
		fmt.Fprintf(&sb, "mask m%d(a = m%d) = a && a\n", i, i-1)
	}
	sb.WriteString(`model m {
  input tokens: i32[B, N]
  let x = split_heads(embed(tokens, 16, 32), 2)
  repeat i in 0..1000 {
    x = attend(x, x, x, mask: m11)
  }
  loss mean(x)
}
`)
	_, diags := elabSrc(t, sb.String())
	require.NotEmpty(t, diags)
	assert.Contains(t, diags[0].Msg, "the limit is 1000000 nodes per model")
	// At the instance that crossed the limit, which may be a default.
	assert.Equal(t, "t.attn", diags[0].Pos.Filename)
	assert.Positive(t, diags[0].Pos.Line)
}

// chainFiles returns n files, f0.attn importing f1.attn importing …, each
// defining one mask, served from memory.
func chainFiles(n int) (string, LoadOptions) {
	files := map[string]string{}
	for i := range n {
		src := fmt.Sprintf("mask m%d = k <= q\n", i)
		if i+1 < n {
			src = fmt.Sprintf("import %q\n", fmt.Sprintf("f%d.attn", i+1)) + src
		}
		files[fmt.Sprintf("f%d.attn", i)] = src
	}
	read := func(name string) ([]byte, error) {
		if src, ok := files[name]; ok {
			return []byte(src), nil
		}
		return nil, fs.ErrNotExist
	}
	return files["f0.attn"], LoadOptions{ReadFile: read}
}

func TestDeepImportChainIsAnError(t *testing.T) {
	src, opts := chainFiles(2000)
	_, diags := Load("f0.attn", src, opts)
	require.Len(t, diags, 1, "%v", diags)
	d := diags[0]
	limit := DefaultLimits().ImportDepth
	// f0 is depth 1; the import in the file at depth limit is the one
	// that crosses it.
	assert.Equal(t, fmt.Sprintf("f%d.attn", limit-1), d.Pos.Filename)
	assert.Equal(t, 1, d.Pos.Line)
	assert.Contains(t, d.Msg, fmt.Sprintf("imports nested more than %d deep", limit))

	src, opts = chainFiles(200)
	prog, diags := Load("f0.attn", src, opts)
	assert.Empty(t, diags)
	assert.Len(t, prog.Files, 200)
}

// TestImportChainLoadsInLinearWork: loading a chain twice as long does
// about twice the work. Each import used to compare its target with
// every file on the import stack, each comparison making the paths
// absolute, so a 2000-deep chain took seconds. Work is measured in
// allocations, which a quadratic loop shows, rather than in time.
func TestImportChainLoadsInLinearWork(t *testing.T) {
	allocs := func(n int) float64 {
		src, opts := chainFiles(n)
		opts.Limits = &Limits{ImportDepth: 10 * n}
		return testing.AllocsPerRun(1, func() {
			if _, diags := Load("f0.attn", src, opts); len(diags) > 0 {
				t.Fatal(diags)
			}
		})
	}
	small, large := allocs(400), allocs(800)
	assert.Less(t, large, 2.5*small, "allocations for 400 files: %v, for 800: %v", small, large)
}

func TestTooManyFilesIsAnError(t *testing.T) {
	// A wide program: the root imports n files directly.
	const n = 50
	files := map[string]string{}
	var root strings.Builder
	for i := range n {
		fmt.Fprintf(&root, "import \"g%d.attn\"\n", i)
		files[fmt.Sprintf("g%d.attn", i)] = fmt.Sprintf("mask g%d = k <= q\n", i)
	}
	read := func(name string) ([]byte, error) {
		if src, ok := files[name]; ok {
			return []byte(src), nil
		}
		return nil, fs.ErrNotExist
	}
	_, diags := Load("root.attn", root.String(), LoadOptions{ReadFile: read, Limits: &Limits{Files: 20}})
	require.Len(t, diags, 1, "%v", diags)
	assert.Equal(t, "root.attn", diags[0].Pos.Filename)
	assert.Equal(t, 20, diags[0].Pos.Line) // the import of the 21st file
	assert.Contains(t, diags[0].Msg, "more than 20 files")
	_, diags = Load("root.attn", root.String(), LoadOptions{ReadFile: read})
	assert.Empty(t, diags)
}
