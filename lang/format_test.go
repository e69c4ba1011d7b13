package lang

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every stdlib file is already in canonical form.
func TestFormatStdlibIsFixedPoint(t *testing.T) {
	for name, src := range stdFiles(t) {
		out, diags := Format(name, src)
		require.Empty(t, diags, name)
		assert.Equal(t, src, out, "%s is not in canonical form; run attnc fmt -w %s", name, name)
	}
}

func TestFormatCanonicalises(t *testing.T) {
	src := `import   "std/layers.attn"
// leading comment
mask   causal=k<=q
mask sliding(w)=k<=q&&q-k<w   // trailing



block f(x:[B,N,D],heads:int=4)->[B,N,D]{
    // inside
    let y=(x+x)*2.0
      y = y[:,:-1 , 0:N ]
    return y
}
model m{
config{vocab=16,d=64}
  input tokens :i32[B,N]
  repeat i in 0..2 { let z = if i%2==0 then causal else sliding(4) }
  loss cross_entropy(linear(embed(tokens,vocab,d),vocab),tokens)
  train{task:copy(len:8),batch:4}
}
// the end
`
	want := `import "std/layers.attn"
// leading comment
mask causal = k <= q
mask sliding(w) = k <= q && q - k < w  // trailing

block f(x: [B, N, D], heads: int = 4) -> [B, N, D] {
  // inside
  let y = (x + x) * 2.0
  y = y[:, :-1, 0:N]
  return y
}

model m {
  config { vocab = 16, d = 64 }
  input tokens: i32[B, N]
  repeat i in 0..2 {
    let z = if i % 2 == 0 then causal else sliding(4)
  }
  loss cross_entropy(linear(embed(tokens, vocab, d), vocab), tokens)
  train { task: copy(len: 8), batch: 4 }
}
// the end
`
	out, diags := Format("f.attn", src)
	require.Empty(t, diags)
	assert.Equal(t, want, out)
	again, diags := Format("f.attn", out)
	require.Empty(t, diags)
	assert.Equal(t, out, again, "fmt is idempotent")
}

func TestFormatKeepsEveryComment(t *testing.T) {
	src := `// a
model m { // b
  // c
  config { // d
    // e
    vocab = 16, // f
    d = 8
    // g
  } // h
  input t: i32[B, N] // i
  loss cross_entropy(linear(embed(t, vocab, d), vocab), t)
  // j
}
// k
`
	out, diags := Format("c.attn", src)
	require.Empty(t, diags)
	for _, c := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"} {
		assert.Contains(t, out, "// "+c, "comment %s lost:\n%s", c, out)
	}
	again, _ := Format("c.attn", out)
	assert.Equal(t, out, again, "fmt is idempotent:\n%s", out)
}

func TestFormatLongSectionSplits(t *testing.T) {
	src := "model m {\n  train { task: recall(pairs: 16, len: 512), batch: 16, steps: 2000, optimizer: adamw(lr: 3e-4, weight_decay: 0.1), schedule: cosine(warmup: 100) }\n}\n"
	out, diags := Format("t.attn", src)
	require.Empty(t, diags)
	assert.True(t, strings.Contains(out, "  train {\n    task: recall(pairs: 16, len: 512),\n"), out)
	assert.Contains(t, out, "    optimizer: adamw(lr: 3e-4, weight_decay: 0.1),\n")
}

func TestFormatReportsSyntaxErrors(t *testing.T) {
	_, diags := Format("bad.attn", "model m {")
	require.NotEmpty(t, diags)
}

// TestFormatDropsByteOrderMark: the canonical form has no BOM, as gofmt's
// output has none.
func TestFormatDropsByteOrderMark(t *testing.T) {
	out, diags := Format("bom.attn", "\uFEFFmask   causal=k<=q  // c\n")
	require.Empty(t, diags)
	assert.Equal(t, "mask causal = k <= q  // c\n", out)
}
