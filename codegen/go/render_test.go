package gogen_test

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	gogen "github.com/attnc/attnc/codegen/go"
	"github.com/attnc/attnc/lang"
	"github.com/attnc/attnc/passes"
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
		{"hybrid_ssm.attn", small("d", 8, "heads", 2, "layers", 1)},
	} {
		t.Run(c.file, func(t *testing.T) {
			src, err := stdlib.FS.ReadFile(c.file)
			require.NoError(t, err)
			prog, diags := lang.Load(lang.StdPrefix+c.file, string(src), lang.LoadOptions{Std: stdlib.FS})
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
