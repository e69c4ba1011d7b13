package attnc_test

import (
	"go/build"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/attnc/attnc"

// allowed lists, for each package of attnc, the packages of attnc it may
// import (DESIGN.md, "Layers of the compiler"). Tests in package x_test
// may import more; only non-test imports are checked here.
var allowed = map[string][]string{
	"ir":             {},
	"ir/eval":        {"ir"},
	"kir":            {"ir"},
	"kir/eval":       {"ir", "ir/eval", "kir"},
	"lang":           {"ir"},
	"passes":         {"ir", "kir"},
	"codegen/go":     {"ir", "kir"},
	"codegen/cuda":   {"ir", "kir"},
	"codegen/triton": {"ir", "kir"},
	"runtime":        {},
	"train":          {"runtime"},
	"train/plot":     {"train", "runtime"},
	"stdlib":         {},
	// cmd/attnc and tests may import everything.
}

func TestLayering(t *testing.T) {
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		// The go command ignores directories named testdata or starting
		// with . or _ (runtime/_asm is the assembly generator's own module).
		if !d.IsDir() || strings.HasPrefix(d.Name(), ".") || strings.HasPrefix(d.Name(), "_") || d.Name() == "testdata" {
			if d.IsDir() && path != "." {
				return filepath.SkipDir
			}
			return nil
		}
		pkg, err := build.ImportDir(path, 0)
		if err != nil {
			return nil // no Go files here
		}
		rel := filepath.ToSlash(path)
		if strings.HasPrefix(rel, "cmd/") || rel == "tests" || rel == "." {
			return nil
		}
		ok, known := allowed[rel]
		if !known {
			t.Errorf("package %s is not in the layering table; add it to allowed in layering_test.go", rel)
			return nil
		}
		for _, imp := range pkg.Imports {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			dep := strings.TrimPrefix(imp, module+"/")
			if !contains(ok, dep) {
				t.Errorf("%s imports %s, which the layering forbids (allowed: %v)", rel, dep, ok)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
