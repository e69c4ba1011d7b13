package runtime_test

import (
	"bytes"
	"go/format"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	rt "github.com/attnc/attnc/runtime"
)

// TestSourceFilesAreSelfContained checks what the Go backend relies on
// when it copies the runtime: the right files, renamed, gofmt-clean,
// importing only the standard library, without cgo or //go:embed.
func TestSourceFilesAreSelfContained(t *testing.T) {
	files, err := rt.SourceFiles("rt")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"doc.go", "tensor.go", "attention.go", "safetensors.go", "gemm_amd64.s", "gemm_stub_amd64.go", "gemm_other.go", "vec_amd64.s", "vec_stub_amd64.go", "vec_other.go", "vec.go"} {
		if files[want] == nil {
			t.Errorf("SourceFiles lacks %s", want)
		}
	}
	for name, src := range files {
		if !rt.IsRuntimeFile(name) || name == "source.go" || strings.HasSuffix(name, "_test.go") {
			t.Errorf("SourceFiles includes %s", name)
		}
		if strings.HasSuffix(name, ".s") {
			if !bytes.Contains(src, []byte("\n//go:build !purego\n")) {
				t.Errorf("%s lacks its !purego constraint", name)
			}
			continue
		}
		if formatted, err := format.Source(src); err != nil || !bytes.Equal(formatted, src) {
			t.Errorf("%s is not gofmt-clean (%v)", name, err)
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, src, parser.ImportsOnly|parser.ParseComments)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if f.Name.Name != "rt" {
			t.Errorf("%s: package %s, want rt", name, f.Name.Name)
		}
		for _, imp := range f.Imports {
			path := strings.Trim(imp.Path.Value, `"`)
			if first, _, _ := strings.Cut(path, "/"); strings.Contains(first, ".") || path == "C" || path == "embed" {
				t.Errorf("%s imports %s; runtime files may import only the standard library", name, path)
			}
		}
		if bytes.Contains(src, []byte("\n//go:embed")) {
			t.Errorf("%s uses //go:embed", name)
		}
	}
	if doc := string(files["doc.go"]); !strings.Contains(doc, "// Package rt ") {
		t.Errorf("doc.go's package comment was not renamed")
	}
	// Every non-test file on disk is in the embedded set.
	disk, _ := filepath.Glob("*.go")
	asm, _ := filepath.Glob("*.s")
	disk = append(disk, asm...)
	for _, name := range disk {
		if rt.IsRuntimeFile(name) && files[name] == nil {
			t.Errorf("%s is not embedded", name)
		}
	}
}

// TestSourceFilesBuild writes the copy into a fresh module and vets it,
// as a generated package would build it.
func TestSourceFilesBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	files, err := rt.SourceFiles("rt")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pkg := filepath.Join(dir, "internal", "rt")
	if err := os.MkdirAll(pkg, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(pkg, name), src, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module gen\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The copy builds with its assembly, under purego, and on an
	// architecture without assembly kernels.
	for _, env := range [][]string{nil, {"GOFLAGS=-mod=mod -tags=purego"}, {"GOARCH=arm64"}} {
		cmd := exec.Command(goBin, "vet", "./...")
		cmd.Dir = dir
		cmd.Env = append(append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off", "CGO_ENABLED=0"), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go vet of the copied runtime (%v): %v\n%s", env, err, out)
		}
	}
}
