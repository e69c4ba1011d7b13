package gogen_test

import (
	"bytes"
	"flag"
	"go/ast"
	"go/build"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	gogen "github.com/attnc/attnc/codegen/go"
	"github.com/attnc/attnc/lang"
	"github.com/attnc/attnc/passes"
	"github.com/attnc/attnc/runtime"
	"github.com/attnc/attnc/stdlib"
)

var update = flag.Bool("update", false, "rewrite golden files")

func small(kv ...any) map[string]lang.Value {
	out := map[string]lang.Value{}
	for i := 0; i < len(kv); i += 2 {
		out[kv[i].(string)] = lang.Value{Kind: "int", Int: int64(kv[i+1].(int))}
	}
	return out
}

// The generated code of a fixed set of small models is kept as golden
// files, so a change to what the renderer writes shows in review. Refresh
// with go test ./codegen/go -update.
func TestGolden(t *testing.T) {
	for _, c := range []struct {
		file   string
		config map[string]lang.Value
	}{
		{"pointer_sort.attn", small("d", 8, "heads", 2, "enc_layers", 1, "dec_layers", 1)},
		{"hybrid_ssm.attn", small("d", 8, "heads", 2, "layers", 2)}, // a causal layer and a windowed one
		// Masks with no key spans: their MaskRow loops (testdata/).
		{"row_masks.attn", nil},
	} {
		t.Run(c.file, func(t *testing.T) {
			src, err := stdlib.FS.ReadFile(c.file)
			path := lang.StdPrefix + c.file
			if err != nil {
				path = filepath.Join("testdata", c.file)
				src, err = os.ReadFile(path)
			}
			require.NoError(t, err)
			prog, diags := lang.Load(path, string(src), lang.LoadOptions{Std: stdlib.FS})
			require.Empty(t, diags)
			m, diags := prog.Elaborate("", lang.ElabOptions{Config: c.config})
			require.Empty(t, diags)
			lowered, err := passes.Run(m.IR, passes.Options{VerifyEach: true})
			require.NoError(t, err)
			files, err := gogen.Render(lowered, gogen.Options{RuntimeImport: "example.com/user/gen/rt", Source: c.file, Version: "golden"})
			require.NoError(t, err)
			golden := filepath.Join("testdata", c.file+".go.golden")
			if *update {
				require.NoError(t, os.WriteFile(golden, files["model.go"], 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run go test ./codegen/go -update")
			assert.Equal(t, string(want), string(files["model.go"]), "generated code changed; review and run go test ./codegen/go -update")
		})
	}
}

// typeCheck type-checks a generated package together with its copy of
// the runtime, with go/types: what a Go compiler would reject, it rejects,
// without running one.
func typeCheck(t *testing.T, files map[string][]byte) {
	t.Helper()
	fset := token.NewFileSet()
	// Only the files the go command would compile here: the runtime has
	// files for amd64 and for every other architecture.
	ctxt := build.Default
	ctxt.OpenFile = func(name string) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(files[name])), nil
	}
	ctxt.JoinPath = path.Join
	parse := func(prefix string) []*ast.File {
		var out []*ast.File
		for name, b := range files {
			if path.Dir(name) != prefix || !strings.HasSuffix(name, ".go") {
				continue
			}
			if ok, err := ctxt.MatchFile(prefix, path.Base(name)); err != nil || !ok {
				require.NoError(t, err)
				continue
			}
			f, err := parser.ParseFile(fset, name, b, 0)
			require.NoError(t, err)
			out = append(out, f)
		}
		return out
	}
	std := importer.ForCompiler(fset, "source", nil)
	conf := types.Config{Importer: std}
	rt, err := conf.Check("example.com/user/gen/rt", fset, parse(gogen.RuntimeDir), nil)
	require.NoError(t, err, "the runtime copy")
	conf.Importer = importerFunc(func(p string) (*types.Package, error) {
		if p == "example.com/user/gen/rt" {
			return rt, nil
		}
		return std.Import(p)
	})
	var errs []string
	conf.Error = func(err error) { errs = append(errs, err.Error()) }
	_, _ = conf.Check("example.com/user/gen", fset, parse("."), nil)
	assert.Empty(t, errs, "the generated package does not type-check")
}

type importerFunc func(path string) (*types.Package, error)

func (f importerFunc) Import(path string) (*types.Package, error) { return f(path) }

// TestRenderedCodeTypeChecks: the Go renderer's output compiles for the
// shapes of program that once broke it (issue 7, item 11): the gradient
// of a tensor captured by a score, a model without symbolic dimensions,
// -1.0 / 0.0 in a score and a mask, and non-finite config values.
func TestRenderedCodeTypeChecks(t *testing.T) {
	src := `import "std/layers.attn"
score hide(w) = if q - k > w then -1.0 / 0.0 else s
mask finite_window(w) = k <= q && (q - k) * 1.0 < w
model capgrad {
  config { wide = 1.0 / 0.0, nan = 0.0 / 0.0, d = 8 }
  input tokens: i32[B, N]
  let x = embed(tokens, 16, d)
  let hx = split_heads(x, 2)
  let bias = param(2, 8)
  let a = attend(hx, hx, hx, mask: finite_window(wide), score: rel(bias, 8))
  let c = attend(hx, hx, hx, mask: causal, score: hide(3))
  loss cross_entropy(linear(merge_heads(a + c), 16)[:, :-1], tokens[:, 1:])
}
model fixed {
  input x: f32[2, 8]
  let w = param(8)
  loss mean(x * w)
}
`
	prog, diags := lang.Load("item11.attn", src, lang.LoadOptions{Std: stdlib.FS})
	require.Empty(t, diags)
	for _, name := range []string{"capgrad", "fixed"} {
		t.Run(name, func(t *testing.T) {
			m, diags := prog.Elaborate(name, lang.ElabOptions{})
			require.Empty(t, diags)
			lowered, err := passes.Run(m.IR, passes.Options{VerifyEach: true})
			require.NoError(t, err)
			var config []gogen.ConfigValue
			for _, c := range m.Config {
				switch c.Value.Kind {
				case "int":
					config = append(config, gogen.ConfigValue{Name: c.Key, Value: c.Value.Int})
				case "float":
					config = append(config, gogen.ConfigValue{Name: c.Key, Value: c.Value.Float})
				}
			}
			files, err := gogen.Package(lowered, gogen.Options{RuntimeImport: "example.com/user/gen/rt", Source: "item11.attn", Config: config, Version: "test"}, runtime.Source)
			require.NoError(t, err)
			typeCheck(t, files)
		})
	}
}
