package lang

import (
	"fmt"
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
