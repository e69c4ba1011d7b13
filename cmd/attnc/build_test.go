package main

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	gogen "github.com/attnc/attnc/codegen/go"
	"github.com/attnc/attnc/passes"
	attncruntime "github.com/attnc/attnc/runtime"
)

// buildModule returns a fresh module and the absolute path of a stdlib
// model to build in it.
func buildModule(t *testing.T) (mod, src string) {
	t.Helper()
	mod = t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(mod, "go.mod"), []byte("module example.com/u\n\ngo 1.26\n"), 0o644))
	src, err := filepath.Abs("../../stdlib/seq2seq.attn")
	require.NoError(t, err)
	return mod, src
}

// userFiles are what a user adds to a generated package's directory.
var userFiles = map[string]string{
	"helper.go":         "package seq2seq\n\n// Helper is the user's.\nfunc Helper() int { return 1 }\n",
	"NOTES.md":          "my notes\n",
	"testdata/case.txt": "precious\n",
}

func addUserFiles(t *testing.T, dir string) {
	t.Helper()
	for name, body := range userFiles {
		p := filepath.Join(dir, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	}
}

func assertUserFiles(t *testing.T, dir string) {
	t.Helper()
	for name, body := range userFiles {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		if assert.NoError(t, err, "%s was lost", name) {
			assert.Equal(t, body, string(b), name)
		}
	}
}

// Building again into a directory attnc wrote replaces only attnc's own
// files: what the user added there survives.
func TestRebuildKeepsUserFiles(t *testing.T) {
	mod, src := buildModule(t)
	out := filepath.Join(mod, "gen", "s2s")
	code, _, errOut := attnc(t, "build", "-o", out, src)
	require.Equal(t, exitOK, code, errOut)
	assert.FileExists(t, filepath.Join(out, manifestName))
	addUserFiles(t, out)

	code, _, errOut = attnc(t, "build", "-o", out, "-pkg", "seq", src)
	require.Equal(t, exitOK, code, errOut)
	b, err := os.ReadFile(filepath.Join(out, "model.go"))
	require.NoError(t, err)
	assert.Contains(t, string(b), "package seq\n", "model.go was replaced")
	assertUserFiles(t, out)
	left, _ := filepath.Glob(filepath.Join(out, ".*tmp*"))
	assert.Empty(t, left, "no temporary files are left behind")
}

// The same from inside the directory, as attnc build -o . does.
func TestRebuildIntoDotKeepsUserFiles(t *testing.T) {
	mod, src := buildModule(t)
	out := filepath.Join(mod, "m")
	require.NoError(t, os.MkdirAll(out, 0o755))
	t.Chdir(out)
	code, _, errOut := attnc(t, "build", "-o", ".", src)
	require.Equal(t, exitOK, code, errOut)
	addUserFiles(t, out)
	code, _, errOut = attnc(t, "build", "-o", ".", "-pkg", "seq", src)
	require.Equal(t, exitOK, code, errOut)
	assertUserFiles(t, out)
	b, err := os.ReadFile(filepath.Join(out, "model.go"))
	require.NoError(t, err)
	assert.Contains(t, string(b), "package seq\n")
	_, err = os.Stat(out)
	require.NoError(t, err, "the directory itself survives")
}

// A file attnc wrote that the user has since edited is not overwritten
// unless -force; the refusal names it and changes nothing.
func TestRebuildRefusesEditedFiles(t *testing.T) {
	mod, src := buildModule(t)
	out := filepath.Join(mod, "m")
	code, _, errOut := attnc(t, "build", "-o", out, src)
	require.Equal(t, exitOK, code, errOut)
	addUserFiles(t, out)
	edited := filepath.Join(out, "rt", "tensor.go")
	b, err := os.ReadFile(edited)
	require.NoError(t, err)
	mine := append(b, "\n// my fix\n"...)
	require.NoError(t, os.WriteFile(edited, mine, 0o644))

	code, _, errOut = attnc(t, "build", "-o", out, "-pkg", "seq", src)
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "rt/tensor.go")
	assert.Contains(t, errOut, "-force")
	got, _ := os.ReadFile(edited)
	assert.Equal(t, string(mine), string(got), "the edited file is kept")
	model, _ := os.ReadFile(filepath.Join(out, "model.go"))
	assert.False(t, strings.Contains(string(model), "package seq\n"), "a refused build changes nothing")

	code, _, errOut = attnc(t, "build", "-o", out, "-pkg", "seq", "-force", src)
	require.Equal(t, exitOK, code, errOut)
	got, _ = os.ReadFile(edited)
	assert.Equal(t, string(b), string(got), "-force overwrites it")
	assertUserFiles(t, out)
}

// Files the previous build wrote and this one does not are removed; the
// manifest cannot name a file outside the directory.
func TestRebuildRemovesStaleFilesOnly(t *testing.T) {
	mod, src := buildModule(t)
	out := filepath.Join(mod, "m")
	code, _, errOut := attnc(t, "build", "-o", out, src)
	require.Equal(t, exitOK, code, errOut)
	stale := []byte("package rt\n")
	require.NoError(t, os.WriteFile(filepath.Join(out, "rt", "old.go"), stale, 0o644))
	man := filepath.Join(out, manifestName)
	b, err := os.ReadFile(man)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(man, append(b, manifestLine("rt/old.go", stale)...), 0o644))

	code, _, errOut = attnc(t, "build", "-o", out, src)
	require.Equal(t, exitOK, code, errOut)
	assert.NoFileExists(t, filepath.Join(out, "rt", "old.go"))
	b, err = os.ReadFile(man)
	require.NoError(t, err)
	assert.NotContains(t, string(b), "old.go")

	outside := filepath.Join(mod, "outside.txt")
	require.NoError(t, os.WriteFile(outside, []byte("x"), 0o644))
	require.NoError(t, os.WriteFile(man, append(b, manifestLine("../outside.txt", []byte("x"))...), 0o644))
	code, _, errOut = attnc(t, "build", "-o", out, src)
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, manifestName)
	assert.FileExists(t, outside)
}

// A directory written by an attnc that kept no manifest is still
// recognised by its model.go, and the user's files there survive.
func TestRebuildWithoutManifest(t *testing.T) {
	mod, src := buildModule(t)
	out := filepath.Join(mod, "m")
	code, _, errOut := attnc(t, "build", "-o", out, src)
	require.Equal(t, exitOK, code, errOut)
	require.NoError(t, os.Remove(filepath.Join(out, manifestName)))
	addUserFiles(t, out)
	code, _, errOut = attnc(t, "build", "-o", out, "-pkg", "seq", src)
	require.Equal(t, exitOK, code, errOut)
	assertUserFiles(t, out)

	// A directory attnc never wrote is refused, naming what is there.
	foreign := filepath.Join(mod, "foreign")
	addUserFiles(t, foreign)
	code, _, errOut = attnc(t, "build", "-o", foreign, src)
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "NOTES.md")
	assertUserFiles(t, foreign)
	assert.NoFileExists(t, filepath.Join(foreign, "model.go"))
}

// A target path taken by something that is not a file fails the build
// before anything is replaced.
func TestRebuildFailureChangesNothing(t *testing.T) {
	mod, src := buildModule(t)
	out := filepath.Join(mod, "m")
	code, _, errOut := attnc(t, "build", "-o", out, src)
	require.Equal(t, exitOK, code, errOut)
	before, err := os.ReadFile(filepath.Join(out, "model.go"))
	require.NoError(t, err)
	require.NoError(t, os.Remove(filepath.Join(out, "rt", "tensor.go")))
	require.NoError(t, os.MkdirAll(filepath.Join(out, "rt", "tensor.go", "x"), 0o755))
	code, _, errOut = attnc(t, "build", "-o", out, "-pkg", "seq", src)
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "rt/tensor.go")
	after, _ := os.ReadFile(filepath.Join(out, "model.go"))
	assert.Equal(t, string(before), string(after))
	tmps, _ := filepath.Glob(filepath.Join(out, "*", ".*tmp*"))
	assert.Empty(t, tmps)
	assert.False(t, strings.Contains(errOut, "panic"))
}

// Names that would give a package no one can import, or one that does not
// compile, are refused or replaced.
func TestBuildPackageNames(t *testing.T) {
	mod, src := buildModule(t)
	m := writeFile(t, "main.attn", "model main {\n  input x: f32[B, N]\n  loss mean(x * x)\n}\n")
	out := filepath.Join(mod, "m")
	code, _, errOut := attnc(t, "build", "-o", out, m)
	require.Equal(t, exitOK, code, errOut)
	b, err := os.ReadFile(filepath.Join(out, "model.go"))
	require.NoError(t, err)
	assert.False(t, strings.Contains(string(b), "\npackage main\n"), "model main is not a command")

	for _, c := range []struct{ flag, value, msg string }{
		{"-pkg", "_", "blank identifier"},
		{"-pkg", "main", "package main is a command"},
		{"-pkg", "init", "init"},
		{"-pkg", "func", "keyword"},
		{"-pkg", "not-a-name", "not a Go package name"},
		{"-import", `example.com/a"b`, "character"},
		{"-import", "example.com/a b", "character"},
		{"-import", "/abs/path", "empty element"},
		{"-import", "example.com//x", "empty element"},
		{"-import", "example.com/../x", "dot"},
	} {
		dir := filepath.Join(mod, "x")
		code, _, errOut := attnc(t, "build", "-o", dir, c.flag, c.value, src)
		assert.Equal(t, exitUsage, code, "%s %q: %s", c.flag, c.value, errOut)
		assert.Contains(t, errOut, c.msg, "%s %q", c.flag, c.value)
		assert.NoDirExists(t, dir)
	}

	bad := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(bad, "go.mod"), []byte("module example.com/a\"b\n"), 0o644))
	code, _, errOut = attnc(t, "build", "-o", filepath.Join(bad, "m"), src)
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "give one with -import")
}

// typeCheck finds code that does not compile in a generated package.
func TestTypeCheckFindsRendererBugs(t *testing.T) {
	models, ok := (&cli{stdout: io.Discard, stderr: io.Discard}).compile("../../stdlib/seq2seq.attn", "", false, nil)
	require.True(t, ok)
	prog, err := passes.Run(models[0].IR, passes.Options{})
	require.NoError(t, err)
	files, err := gogen.Package(prog, gogen.Options{RuntimeImport: "example.com/u/m/rt", Version: "test"}, attncruntime.Source)
	require.NoError(t, err)
	require.NoError(t, typeCheck(files, "example.com/u/m"))

	files["model.go"] = append(files["model.go"], "\nfunc broken() int {\n\tsz := 1\n\treturn \"x\"\n}\n"...)
	err = typeCheck(files, "example.com/u/m")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "does not type-check")
	assert.Contains(t, err.Error(), "model.go:")
	assert.Contains(t, err.Error(), "declared and not used: sz")
}

// TestBuildSuccessMeansItCompiles: whatever attnc build says it wrote
// compiles (go vet); the programs issue 7 found breaking the renderer
// either compile or are refused with an internal error and write nothing.
func TestBuildSuccessMeansItCompiles(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go vet on generated packages")
	}
	mod, _ := buildModule(t)
	programs := map[string]string{
		"nosym": "model nosym {\n  input x: f32[2, 8]\n  loss mean(x)\n}\n",
		"main":  "model main {\n  input x: f32[B, N]\n  loss mean(x * x)\n}\n",
		"neginf": `score sc = max(s, -1.0 / 0.0)

model neginf {
  input x: f32[B, 2, N, 8]
  loss mean(attend(x, x, x, score: sc))
}
`,
		"capgrad": `import "std/layers.attn"
model capgrad_lm {
  input tokens: i32[B, N]
  let x = embed(tokens, 64, 32)
  let hx = split_heads(x, 4)
  let bias = param(4, 32)
  let o = merge_heads(attend(hx, hx, hx, mask: causal, score: rel(bias, 32)))
  let logits = linear(o, 64)
  loss cross_entropy(logits[:, :-1], tokens[:, 1:])
}
`,
	}
	var wrote []string
	for name, src := range programs {
		out := filepath.Join(mod, name)
		code, _, errOut := attnc(t, "build", "-o", out, writeFile(t, name+".attn", src))
		if code == exitOK {
			wrote = append(wrote, name)
			continue
		}
		assert.Equal(t, exitError, code, "%s: %s", name, errOut)
		assert.Contains(t, errOut, "internal error", "%s: only a renderer bug may fail this build", name)
		assert.NoDirExists(t, out, "a package that does not type-check is not written")
	}
	if len(wrote) == 0 {
		return
	}
	vet := exec.Command("go", "vet", "./...")
	vet.Dir = mod
	vet.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	b, err := vet.CombinedOutput()
	assert.NoError(t, err, "attnc build exited 0 for %v, but:\n%s", wrote, b)
}
