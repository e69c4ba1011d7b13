package lang

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestGrammarEBNF pins the grammar: a change to grammar.go shows in
// lang/grammar.ebnf, in review. Refresh with go test ./lang -update.
func TestGrammarEBNF(t *testing.T) {
	got := parser.String() + "\n"
	if *update {
		require.NoError(t, os.WriteFile("grammar.ebnf", []byte(got), 0o644))
	}
	want, err := os.ReadFile("grammar.ebnf")
	require.NoError(t, err, "run go test ./lang -update to create grammar.ebnf")
	assert.Equal(t, string(want), got, "the grammar changed; run go test ./lang -update and review lang/grammar.ebnf")
}

func stdFiles(t testing.TB) map[string]string {
	t.Helper()
	paths, err := filepath.Glob("../stdlib/*.attn")
	require.NoError(t, err)
	require.NotEmpty(t, paths)
	out := map[string]string{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		out[p] = string(b)
	}
	return out
}

func TestParseStdlib(t *testing.T) {
	for name, src := range stdFiles(t) {
		f, diags := Parse(name, src)
		require.Empty(t, diags, name)
		require.NotNil(t, f)
		assert.NotEmpty(t, f.Decls, name)
	}
}

func TestPositions(t *testing.T) {
	src := "mask causal = k <= q\n\nblock f(x: [B, N, D]) -> [B, N, D] {\n  let y = x + x\n  return y\n}\n"
	f, diags := Parse("p.attn", src)
	require.Empty(t, diags)
	require.Len(t, f.Decls, 2)
	m := f.Decls[0].(*FuncDef)
	assert.Equal(t, 1, m.Pos.Line)
	assert.Equal(t, 1, m.Pos.Column)
	body := m.Body.(*BinaryExpr)
	assert.Equal(t, "<=", body.Op)
	assert.Equal(t, 15, body.Pos.Column, "the comparison starts at k")
	assert.Equal(t, 21, body.EndPos.Column, "and ends after q")
	b := f.Decls[1].(*BlockDef)
	assert.Equal(t, 3, b.Pos.Line)
	let := b.Body[0].(*LetStmt)
	assert.Equal(t, 4, let.Pos.Line)
	assert.Equal(t, 3, let.Pos.Column)
	add := let.Value.(*BinaryExpr)
	assert.Equal(t, 11, add.Pos.Column)
	assert.Equal(t, 16, add.EndPos.Column)
	// Every node has a position inside the file.
	walkExpr(add, func(e Expr) {
		assert.Equal(t, "p.attn", e.Start().Filename)
		assert.Positive(t, e.Start().Line)
	})
}

func TestPrecedence(t *testing.T) {
	cases := map[string]string{
		"a + b * c":              "(a + (b * c))",
		"a - b - c":              "((a - b) - c)",
		"k <= q && q - k < w":    "((k <= q) && ((q - k) < w))",
		"k < s || k <= q":        "((k < s) || (k <= q))",
		"-x[1]":                  "(-x[1])",
		"!a && b":                "((!a) && b)",
		"if c then a else b + 1": "if c then a else (b + 1)",
		"f(x)[:, :-1]":           "f(x)[:, :(-1)]",
	}
	for src, want := range cases {
		f, diags := Parse("e.attn", "mask m = "+src)
		require.Empty(t, diags, src)
		assert.Equal(t, want, paren(f.Decls[0].(*FuncDef).Body), src)
	}
}

// paren prints an expression with every binary and unary node in
// parentheses, to make the tree visible.
func paren(e Expr) string {
	switch e := e.(type) {
	case *BinaryExpr:
		return "(" + paren(e.X) + " " + e.Op + " " + paren(e.Y) + ")"
	case *UnaryExpr:
		return "(" + e.Op + paren(e.X) + ")"
	case *IfExpr:
		return "if " + paren(e.Cond) + " then " + paren(e.Then) + " else " + paren(e.Else)
	case *IndexExpr:
		var items []string
		for _, it := range e.Items {
			s := ""
			if it.Lo != nil {
				s = paren(it.Lo)
			}
			if it.Slice {
				s += ":"
				if it.Hi != nil {
					s += paren(it.Hi)
				}
			}
			items = append(items, s)
		}
		return paren(e.X) + "[" + strings.Join(items, ", ") + "]"
	}
	return FormatExpr(e)
}

func TestSyntaxErrorIsPositioned(t *testing.T) {
	_, diags := Parse("bad.attn", "block f(x: [B, N]) {\n  let y = x +\n}\n")
	require.Len(t, diags, 1)
	assert.Equal(t, 2, diags[0].Pos.Line)
	assert.Equal(t, 13, diags[0].Pos.Column)
	assert.Contains(t, diags[0].Msg, "operator + is missing its right operand")
}

func TestDiagnosticsPrint(t *testing.T) {
	src := "model m {\n  let x = foo(1)\n}\n"
	ds := Diagnostics{{Pos: pos("f.attn", 2, 11), End: pos("f.attn", 2, 14), Msg: "unknown function foo"}}
	var sb strings.Builder
	ds.Print(&sb, map[string]string{"f.attn": src})
	assert.Equal(t, "f.attn:2:11: unknown function foo\n      let x = foo(1)\n              ^~~\n", sb.String())
}

func TestDidYouMean(t *testing.T) {
	assert.Equal(t, ` (did you mean "linear"?)`, didYouMean("lienar", []string{"embed", "linear", "layer_norm"}))
	assert.Equal(t, ` (did you mean "heads"?)`, didYouMean("haeds", []string{"heads", "d"}))
	assert.Equal(t, "", didYouMean("zzz", []string{"linear"}))
	assert.Equal(t, 1, editDistance("ab", "ba"))
	assert.Equal(t, 3, editDistance("", "abc"))
}

// TestByteOrderMark: editors on Windows may start a UTF-8 file with a
// byte order mark. It is skipped, as Go skips it, and positions are
// counted as if it were not there (an editor does not show it); a BOM
// anywhere else is an error.
func TestByteOrderMark(t *testing.T) {
	const bom = "\uFEFF"
	src := bom + "mask causal = k <= q\nmodel m {\n  input x: f32[B, N]\n  loss mean(x)\n}\n"
	f, diags := Parse("bom.attn", src)
	require.Empty(t, diags)
	require.Len(t, f.Decls, 2)
	assert.Equal(t, 1, f.Decls[0].Start().Line)
	assert.Equal(t, 1, f.Decls[0].Start().Column)

	// A diagnostic on the first line points where the editor shows it,
	// and its caret line has no BOM in it.
	prog, diags := Load("bom.attn", bom+"mask m = k <= qq\n", LoadOptions{ReadFile: noFiles})
	require.Len(t, diags, 1, "%v", diags)
	assert.Equal(t, 1, diags[0].Pos.Line)
	assert.Equal(t, len("mask m = k <= ")+1, diags[0].Pos.Column)
	var sb strings.Builder
	diags.Print(&sb, prog.Sources)
	assert.NotContains(t, sb.String(), bom)
	assert.Contains(t, sb.String(), "\n    mask m = k <= qq\n                  ^")

	// Imported files may have one too.
	read := func(name string) ([]byte, error) { return []byte(bom + "mask w = k <= q\n"), nil }
	_, diags = Load("root.attn", "import \"w.attn\"\n", LoadOptions{ReadFile: read})
	assert.Empty(t, diags)

	_, diags = Parse("mid.attn", "mask a = k <= q\n"+bom+"mask b = k <= q\n")
	assert.NotEmpty(t, diags)
}

// A caller that prints diagnostics with the text as read, BOM included
// (attnc fmt does), gets the caret in the same place.
func TestByteOrderMarkCaret(t *testing.T) {
	src := "\uFEFFmask m = k <= q q\n"
	_, diags := Parse("bom.attn", src)
	require.Len(t, diags, 1)
	var with, without strings.Builder
	diags.Print(&with, map[string]string{"bom.attn": src})
	diags.Print(&without, map[string]string{"bom.attn": src[len("\uFEFF"):]})
	assert.Equal(t, without.String(), with.String())
}
