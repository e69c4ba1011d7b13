package lang

import (
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/attnc/attnc/ir"
	"github.com/attnc/attnc/stdlib"
)

func elabSrc(t *testing.T, src string) (*Model, Diagnostics) {
	t.Helper()
	prog, diags := Load("t.attn", src, LoadOptions{Std: stdlib.FS, ReadFile: noFiles})
	if len(diags) > 0 {
		return nil, diags
	}
	return prog.Elaborate("", ElabOptions{})
}

func paramNames(m *Model) []string {
	var out []string
	for _, p := range m.IR.Params() {
		out = append(out, p.Name())
	}
	return out
}

func TestTwoLoopsOverOneBound(t *testing.T) {
	m, diags := elabSrc(t, `model m {
  config { layers = 2 }
  input x: f32[B, N, 4]
  let y = x
  repeat i in 0..layers { y = linear(y, 4) }
  repeat i in 0..layers { y = linear(y, 4) }
  loss mean(y)
}`)
	require.Empty(t, diags)
	assert.Subset(t, paramNames(m), []string{"layers.0.linear.weight", "layers.1.linear.weight", "layers_1.0.linear.weight", "layers_1.1.linear.weight"})
}

func TestChosenNameDoesNotCollideWithGenerated(t *testing.T) {
	m, diags := elabSrc(t, `model m {
  input x: f32[B, N, 4]
  let a = linear(x, 4) + linear(x, 4)
  let linear_1 = linear(x, 4)
  loss mean(a + linear_1)
}`)
	require.Empty(t, diags)
	assert.Subset(t, paramNames(m), []string{"linear.weight", "linear_1.weight", "linear_1_1.weight"})
}

func TestWeightsNeedCompileTimeSizes(t *testing.T) {
	_, diags := elabSrc(t, "model m {\n  input x: f32[B, N, 4]\n  loss mean(linear(x, N))\n}")
	require.Len(t, diags, 1)
	assert.Contains(t, diags[0].Msg, "known only at run time")
	assert.Equal(t, 3, diags[0].Pos.Line)
}

func TestInfIsNotADimension(t *testing.T) {
	_, diags := elabSrc(t, "model m {\n  input x: f32[B, inf]\n  loss mean(x)\n}")
	require.NotEmpty(t, diags)
	assert.Contains(t, diags[0].Msg, "inf cannot name a dimension")
}

func TestMaskParameterTypesAreChecked(t *testing.T) {
	_, diags := elabSrc(t, "mask m(w: int) = q - k < w\nmodel x {\n  input t: f32[B, 1, N, 4]\n  loss mean(attend(t, t, t, mask: m(2.5)))\n}")
	require.NotEmpty(t, diags)
	assert.Contains(t, diags[0].Msg, "must be an int")
}

func TestIfChoosesBetweenConditionsInAMask(t *testing.T) {
	m, diags := elabSrc(t, "mask m(full) = if full then k <= q else k == q\nmodel x {\n  input t: f32[B, 1, N, 4]\n  loss mean(attend(t, t, t, mask: m(true)))\n}")
	require.Empty(t, diags)
	var mask string
	for _, in := range m.IR.Instrs {
		if in.Op == ir.OpAttention {
			mask = in.Attrs.Expr("mask").String()
		}
	}
	assert.Equal(t, "where(true, k <= q, k == q)", mask)
}

func TestFloatParameterGivenAnInt(t *testing.T) {
	m, diags := elabSrc(t, `block half(x: [B, N, D], r: float) -> [B, N, D] { return x * (r / 2) }
model m {
  input x: f32[B, N, 4]
  loss mean(half(x, 3))
}`)
	require.Empty(t, diags)
	found := false
	for _, in := range m.IR.Instrs {
		if in.Op == ir.OpConst && in.Attrs.Float("value") == 1.5 {
			found = true
		}
	}
	assert.True(t, found, "3 / 2 is 1.5 for a float parameter:\n%s", ir.Print(m.IR))
}

func TestDefaultUsesEarlierParameter(t *testing.T) {
	_, diags := elabSrc(t, `import "std/layers.attn"
block f(x: [B, N, D], src: dim, m: mask = prefix_lm(src)) -> [B, N, D] {
  let o = self_attn(x, 2, m)
  return o
}
model mm {
  input x: f32[B, N, 4]
  loss mean(f(x, 2))
}`)
	assert.Empty(t, diags)
}

func TestNoneCombinesWithMasks(t *testing.T) {
	m, diags := elabSrc(t, `import "std/layers.attn"
block f(x: [B, N, D], extra: mask = none) -> [B, N, D] {
  let o = self_attn(x, 2, extra && causal)
  return o
}
model mm {
  input x: f32[B, N, 4]
  loss mean(f(x))
}`)
	require.Empty(t, diags)
	assert.True(t, strings.Contains(ir.Print(m.IR), "mask = (k <= q)"))
}

func TestFloatModuloFloors(t *testing.T) {
	m, diags := elabSrc(t, "model m {\n  config { r = -1.5 % 1.0 }\n  input x: f32[B]\n  loss mean(x)\n}")
	require.Empty(t, diags)
	v, _ := m.ConfigValue("r")
	assert.Equal(t, 0.5, v.Float)
}

func TestErrorInUserBlockNamesTheCall(t *testing.T) {
	_, diags := elabSrc(t, "block f(x: [B, N, D]) -> [B, N, D] {\n  return x + linear(x, 3)\n}\nmodel m {\n  input x: f32[B, N, 4]\n  loss mean(f(x))\n}\n")
	require.Len(t, diags, 1)
	assert.Equal(t, 2, diags[0].Pos.Line, "reported in the block, where to fix it")
	assert.Contains(t, diags[0].Msg, "(in f, called at 6:13)")
}

func TestImportSpellingsAreOneFile(t *testing.T) {
	src := "import \"a.attn\"\nmask m = k <= q\n"
	read := func(name string) ([]byte, error) {
		if filepath.Clean(name) == "a.attn" {
			return []byte(src), nil
		}
		return nil, fs.ErrNotExist
	}
	// sub/../a.attn and a.attn are one file: importing it is importing
	// itself, not loading a second copy that redefines m.
	_, diags := Load("sub/../a.attn", src, LoadOptions{ReadFile: read})
	require.Len(t, diags, 1, "%v", diags)
	assert.Contains(t, diags[0].Msg, "file imports itself")
}
