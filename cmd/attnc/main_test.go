package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	repo "github.com/attnc/attnc"
	"github.com/attnc/attnc/ir"
	"github.com/attnc/attnc/runtime"
	"github.com/attnc/attnc/train"
)

func attnc(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, name, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(src), 0o644))
	return p
}

func TestCheckStdlib(t *testing.T) {
	files, _ := filepath.Glob("../../stdlib/*.attn")
	require.NotEmpty(t, files)
	code, out, errOut := attnc(t, append([]string{"check"}, files...)...)
	assert.Equal(t, exitOK, code, errOut)
	assert.Contains(t, out, "model pointer_sort")
	// std/ names read the embedded library from anywhere.
	code, _, errOut = attnc(t, "check", "-q", "std/seq2seq.attn")
	assert.Equal(t, exitOK, code, errOut)
}

func TestCheckErrorsExitOne(t *testing.T) {
	p := writeFile(t, "bad.attn", "model m {\n  input x: i32[B, N]\n  let y = lienar(x, 4)\n}\n")
	code, _, errOut := attnc(t, "check", p)
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "bad.attn:3:11: unknown function lienar")
	assert.Contains(t, errOut, `did you mean "linear"?`)
	assert.Contains(t, errOut, "\n              ^~~~~~\n", "a caret under the name")
}

func TestCheckMissingFile(t *testing.T) {
	code, _, errOut := attnc(t, "check", filepath.Join(t.TempDir(), "nope.attn"))
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "no such file")
	_, _, errOut = attnc(t, "check", filepath.Join(t.TempDir(), "stdlib", "seq2seq.attn"))
	assert.Contains(t, errOut, "the standard library's seq2seq.attn is std/seq2seq.attn, from any directory")
}

func TestUsageErrorsExitTwo(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"chekc"},
		{"check"},
		{"check", "-nosuchflag", "x.attn"},
		{"ir"},
		{"ir", "-dump=tiled", "../../stdlib/seq2seq.attn"},
		{"fmt"},
		{"version", "extra"},
	} {
		code, _, errOut := attnc(t, args...)
		assert.Equal(t, exitUsage, code, "attnc %v: %s", args, errOut)
		assert.NotEmpty(t, errOut, "attnc %v says why", args)
	}
	_, _, errOut := attnc(t, "chekc")
	assert.Contains(t, errOut, `did you mean "check"?`)
}

func TestHelp(t *testing.T) {
	code, out, _ := attnc(t, "help")
	assert.Equal(t, exitOK, code)
	for _, c := range commands {
		assert.Contains(t, out, c.name)
		code, out, _ := attnc(t, "help", c.name)
		assert.Equal(t, exitOK, code)
		assert.Contains(t, out, "usage: attnc "+c.name)
	}
	for _, h := range []string{"-h", "--help", "-help"} {
		code, out, errOut := attnc(t, "check", h)
		assert.Equal(t, exitOK, code, h)
		assert.Contains(t, out, "usage: attnc check", "%s prints the help on stdout", h)
		assert.Empty(t, errOut, h)
	}
}

func TestIRPrintsParsableIR(t *testing.T) {
	code, out, errOut := attnc(t, "ir", "../../stdlib/partial_lm.attn")
	require.Equal(t, exitOK, code, errOut)
	m, err := ir.Parse("out.ir", out)
	require.NoError(t, err)
	require.NoError(t, ir.Verify(m))
	assert.Contains(t, out, "attention")
	assert.Contains(t, out, "k < S || k <= q")
}

func TestFmt(t *testing.T) {
	p := writeFile(t, "m.attn", "mask  causal=k<=q // c\n")
	code, out, _ := attnc(t, "fmt", p)
	assert.Equal(t, exitOK, code)
	assert.Equal(t, "mask causal = k <= q  // c\n", out)

	code, out, _ = attnc(t, "fmt", "-l", p)
	assert.Equal(t, exitOK, code)
	assert.Equal(t, p+"\n", out)

	require.NoError(t, os.Chmod(p, 0o600))
	code, _, _ = attnc(t, "fmt", "-w", p)
	assert.Equal(t, exitOK, code)
	b, _ := os.ReadFile(p)
	assert.Equal(t, "mask causal = k <= q  // c\n", string(b))
	fi, _ := os.Stat(p)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "fmt -w keeps permissions")
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(p), ".*tmp"))
	assert.Empty(t, left, "no temporary files are left behind")

	// A file with a syntax error is left untouched.
	bad := writeFile(t, "bad.attn", "mask m = k <=\n")
	code, _, errOut := attnc(t, "fmt", "-w", bad)
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "bad.attn:")
	b, _ = os.ReadFile(bad)
	assert.Equal(t, "mask m = k <=\n", string(b))
}

func TestVersion(t *testing.T) {
	code, out, _ := attnc(t, "version")
	assert.Equal(t, exitOK, code)
	assert.True(t, strings.HasPrefix(out, "attnc "))
}

func TestBuild(t *testing.T) {
	mod := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(mod, "go.mod"), []byte("module example.com/u\n\ngo 1.26\n"), 0o644))
	out := filepath.Join(mod, "gen", "s2s")
	code, stdout, errOut := attnc(t, "build", "-o", out, "../../stdlib/seq2seq.attn")
	require.Equal(t, exitOK, code, errOut)
	assert.Contains(t, stdout, "example.com/u/gen/s2s")
	b, err := os.ReadFile(filepath.Join(out, "model.go"))
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(b), generatedMarker))
	assert.Contains(t, string(b), `rt "example.com/u/gen/s2s/rt"`)
	rtFiles, _ := filepath.Glob(filepath.Join(out, "rt", "*.go"))
	assert.NotEmpty(t, rtFiles)
	for _, f := range rtFiles {
		assert.False(t, strings.HasSuffix(f, "_test.go") || strings.HasSuffix(f, "source.go"), f)
	}

	// Building again replaces the package.
	code, _, errOut = attnc(t, "build", "-o", out, "-pkg", "seq", "../../stdlib/seq2seq.attn")
	require.Equal(t, exitOK, code, errOut)
	b, _ = os.ReadFile(filepath.Join(out, "model.go"))
	assert.Contains(t, string(b), "package seq\n")
	left, _ := filepath.Glob(filepath.Join(mod, "gen", ".*"))
	assert.Empty(t, left, "no temporary directories are left behind")
}

func TestBuildRefusesToClobber(t *testing.T) {
	mod := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(mod, "go.mod"), []byte("module example.com/u\n"), 0o644))
	mine := filepath.Join(mod, "mine")
	require.NoError(t, os.MkdirAll(mine, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(mine, "notes.txt"), []byte("precious"), 0o644))
	code, _, errOut := attnc(t, "build", "-o", mine, "../../stdlib/seq2seq.attn")
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "refusing to replace it")
	b, _ := os.ReadFile(filepath.Join(mine, "notes.txt"))
	assert.Equal(t, "precious", string(b))
}

func TestBuildErrors(t *testing.T) {
	// Outside any module, without -import.
	dir := t.TempDir()
	code, _, errOut := attnc(t, "build", "-o", filepath.Join(dir, "m"), "../../stdlib/seq2seq.attn")
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "not inside a Go module")
	_, err := os.Stat(filepath.Join(dir, "m"))
	assert.True(t, os.IsNotExist(err), "a failed build leaves no directory")

	// A model with errors writes nothing.
	bad := writeFile(t, "bad.attn", "model m {\n  input x: i32[B, N]\n  loss lienar(x)\n}\n")
	out := filepath.Join(dir, "bad")
	code, _, _ = attnc(t, "build", "-o", out, "-import", "example.com/x", bad)
	assert.Equal(t, exitError, code)
	_, err = os.Stat(out)
	assert.True(t, os.IsNotExist(err))

	code, _, _ = attnc(t, "build", "../../stdlib/seq2seq.attn")
	assert.Equal(t, exitUsage, code, "-o is required")
	code, _, _ = attnc(t, "build", "-o", out, "-pkg", "not-a-name", "../../stdlib/seq2seq.attn")
	assert.Equal(t, exitUsage, code)
}

func TestIRDump(t *testing.T) {
	code, out, errOut := attnc(t, "ir", "-dump=autodiff", "-time", "../../stdlib/hybrid_ssm.attn")
	require.Equal(t, exitOK, code, errOut)
	assert.Contains(t, out, "attention_grad")
	assert.Contains(t, out, `grad "tok.weight" = `)
	assert.Contains(t, errOut, "autodiff")
	assert.Contains(t, errOut, "lower")
	m, err := ir.Parse("dump.ir", out)
	require.NoError(t, err)
	require.NoError(t, ir.Verify(m))
}

func TestTrainShortRunLowersTheLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a trainer and trains for a few seconds")
	}
	t.Setenv("ATTNC_CACHE", t.TempDir())
	run := filepath.Join(t.TempDir(), "run")
	code, out, errOut := attnc(t, "train", "-steps", "40", "-eval-every", "20", "-out", run, "../../stdlib/hybrid_ssm.attn")
	require.Equal(t, exitOK, code, errOut)
	assert.Contains(t, out, "training hybrid_ssm on associative recall")
	for _, f := range []string{"run.json", "checkpoint.safetensors", "metrics.jsonl", "summary.json", "loss.png", "example.safetensors"} {
		_, err := os.Stat(filepath.Join(run, f))
		assert.NoError(t, err, f)
	}
	losses := readLosses(t, run)
	require.Len(t, losses, 40)
	mean := func(xs []float64) float64 {
		s := 0.0
		for _, x := range xs {
			s += x
		}
		return s / float64(len(xs))
	}
	assert.Less(t, mean(losses[30:]), mean(losses[:10])-0.1, "a short run lowers the loss")

	code, _, errOut = attnc(t, "train", "-steps", "5", "-out", run, "../../stdlib/hybrid_ssm.attn")
	assert.Equal(t, exitError, code, "a finished run is not overwritten")
	assert.Contains(t, errOut, "already holds a run")

	code, out, errOut = attnc(t, "eval", run)
	require.Equal(t, exitOK, code, errOut)
	assert.Contains(t, out, "fresh examples")
	code, out, errOut = attnc(t, "predict", "-n", "2", run)
	require.Equal(t, exitOK, code, errOut)
	assert.Equal(t, 2, strings.Count(out, "recall  ["), out)

	// attnc plot: the list of attention ops, one layer's head, all again.
	code, out, errOut = attnc(t, "plot", "-list", run)
	require.Equal(t, exitOK, code, errOut)
	assert.Contains(t, out, "-layer 1: ")
	code, out, errOut = attnc(t, "plot", run, "-layer", "1", "-head", "0")
	require.Equal(t, exitOK, code, errOut)
	assert.Contains(t, out, "attention-1-h0.png")
	assert.FileExists(t, filepath.Join(run, "attention-1-h0.png"))
	code, _, errOut = attnc(t, "plot", run, "-layer", "99")
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "no -layer 99")
	code, _, errOut = attnc(t, "plot", run, "-layer", "1", "-head", "7")
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "no head 7")
	code, _, _ = attnc(t, "plot", run, "-o", "x.png")
	assert.Equal(t, exitUsage, code, "-o needs -layer")
	require.NoError(t, os.Remove(filepath.Join(run, "loss.png")))
	code, _, errOut = attnc(t, "plot", run)
	require.Equal(t, exitOK, code, errOut)
	assert.FileExists(t, filepath.Join(run, "loss.png"))
}

func TestTrainLM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a trainer")
	}
	t.Setenv("ATTNC_CACHE", t.TempDir())
	model := writeFile(t, "tiny_lm.attn", `model tiny_lm {
  config { d = 16 }
  input tokens: i32[B, N]
  let x = embed(tokens, 256, d)
  let logits = linear(layer_norm(x), 256)
  loss cross_entropy(logits[:, :-1], tokens[:, 1:])
  train { task: lm(len: 16), batch: 4, steps: 6, eval_size: 8 }
}
`)
	code, _, errOut := attnc(t, "train", "-out", filepath.Join(t.TempDir(), "a"), model)
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "needs a text file: pass --data FILE")

	empty := writeFile(t, "empty.txt", "")
	code, _, errOut = attnc(t, "train", "-data", empty, "-out", filepath.Join(t.TempDir(), "b"), model)
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "has 0 bytes")

	text := writeFile(t, "text.txt", strings.Repeat("the quick brown fox jumps over the lazy dog. ", 20))
	run := filepath.Join(t.TempDir(), "c")
	code, out, errOut := attnc(t, "train", "-data", text, "-out", run, model)
	require.Equal(t, exitOK, code, errOut)
	assert.Contains(t, out, "perplexity")
	assert.Contains(t, out, "bits_per_byte")

	// generate needs the next-byte scores as an output; a prompt is
	// required, and the values are checked before the trainer runs.
	code, _, errOut = attnc(t, "generate", run, "-prompt", "the ")
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "add `output logits = …`")
	code, _, errOut = attnc(t, "generate", run)
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "-prompt must not be empty")
	code, _, errOut = attnc(t, "generate", run, "-p", "x", "--temperature", "-1")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "-temperature must be 0 or more")

	// export writes the weights alone, checked against the model.
	weights := filepath.Join(t.TempDir(), "w.safetensors")
	code, out, errOut = attnc(t, "export", run, "-o", weights)
	require.Equal(t, exitOK, code, errOut)
	assert.Contains(t, out, "wrote the 3 weights")
	ts, meta, err := runtime.LoadSafetensors(weights)
	require.NoError(t, err)
	var names []string
	for n := range ts {
		names = append(names, n)
	}
	sort.Strings(names)
	assert.Equal(t, []string{"logits.bias", "logits.weight", "x.weight"}, names)
	assert.Equal(t, "tiny_lm", meta["model"])
	assert.Equal(t, "6", meta["step"])
	code, _, errOut = attnc(t, "export", run, "-o", weights)
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "pass -force to replace it")
	code, _, errOut = attnc(t, "export", run)
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "-o FILE is required")

	// The run keeps a copy of its source: after an edit that would change
	// the model's shapes, eval and -resume use the copy and say so.
	copied, err := os.ReadFile(filepath.Join(run, SourceDir, "tiny_lm.attn"))
	require.NoError(t, err)
	orig, err := os.ReadFile(model)
	require.NoError(t, err)
	assert.Equal(t, string(orig), string(copied))
	require.NoError(t, os.WriteFile(model, []byte(strings.Replace(string(orig), "d = 16", "d = 24", 1)), 0o644))
	code, out, errOut = attnc(t, "eval", run)
	require.Equal(t, exitOK, code, errOut)
	assert.Contains(t, errOut, "since the run started, "+model+" changed; using the run's copy in "+filepath.Join(run, SourceDir))
	assert.Contains(t, out, "perplexity")
	code, _, errOut = attnc(t, "train", "-resume", run, "-steps", "8")
	require.Equal(t, exitOK, code, errOut)
	assert.Contains(t, errOut, model+" changed")
	require.NoError(t, os.Remove(model))
	code, _, errOut = attnc(t, "eval", run)
	require.Equal(t, exitOK, code, errOut)
	assert.Contains(t, errOut, model+" is gone")
}

func TestTrainWithoutGo(t *testing.T) {
	t.Setenv("ATTNC_CACHE", t.TempDir())
	t.Setenv("PATH", "")
	code, _, errOut := attnc(t, "train", "-steps", "1", "-out", filepath.Join(t.TempDir(), "r"), "../../stdlib/hybrid_ssm.attn")
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "no Go toolchain found")
}

// TestResumeThroughTheGeneratedTrainer: a run killed after its step-20
// checkpoint and resumed takes exactly the steps of an uninterrupted run,
// with the real generated model.
func TestResumeThroughTheGeneratedTrainer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a trainer and trains twice")
	}
	cache := t.TempDir()
	t.Setenv("ATTNC_CACHE", cache)
	whole := filepath.Join(t.TempDir(), "whole")
	code, _, errOut := attnc(t, "train", "-steps", "30", "-eval-every", "10", "-out", whole, "../../stdlib/partial_lm.attn")
	require.Equal(t, exitOK, code, errOut)

	// The same run, killed at step 25.
	split := filepath.Join(t.TempDir(), "split")
	require.NoError(t, os.MkdirAll(split, 0o755))
	spec, err := os.ReadFile(filepath.Join(whole, "run.json"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(split, "run.json"), spec, 0o644))
	bins, _ := filepath.Glob(filepath.Join(cache, "attnc", "trainers", "partial_lm-*", "trainer"))
	require.Len(t, bins, 1)
	kill := exec.Command(bins[0], "train", split, "-stop-after", "25")
	out, err := kill.CombinedOutput()
	require.Error(t, err, "the interrupted run fails")
	assert.Contains(t, string(out), "interrupted")

	code, _, errOut = attnc(t, "train", "-resume", split)
	require.Equal(t, exitOK, code, errOut)
	a, b := readLosses(t, whole), readLosses(t, split)
	require.Len(t, a, 30)
	assert.Equal(t, a, b, "the resumed run's losses equal the uninterrupted run's, step for step")
}

func TestBuildConfigOverride(t *testing.T) {
	mod := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(mod, "go.mod"), []byte("module example.com/u\n"), 0o644))
	out := filepath.Join(mod, "m")
	code, _, errOut := attnc(t, "build", "-config", "d=32", "-o", out, "../../stdlib/seq2seq.attn")
	require.Equal(t, exitOK, code, errOut)
	b, err := os.ReadFile(filepath.Join(out, "model.go"))
	require.NoError(t, err)
	assert.Contains(t, string(b), "D: 32,")
	code, _, errOut = attnc(t, "build", "-config", "d=lots", "-o", out, "../../stdlib/seq2seq.attn")
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "config override d: want int")
}

// readLosses returns the loss of each step of a run's metrics.jsonl.
func readLosses(t *testing.T, dir string) []float64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "metrics.jsonl"))
	require.NoError(t, err)
	var out []float64
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var r struct{ Loss float64 }
		require.NoError(t, json.Unmarshal([]byte(line), &r))
		out = append(out, r.Loss)
	}
	return out
}

// Flags go before or after the files, in --long, -long (Go's flag
// package's form, which the docs use) and -short forms.
func TestFlagForms(t *testing.T) {
	file := "../../stdlib/seq2seq.attn"
	for _, args := range [][]string{
		{"check", "-q", file},
		{"check", file, "-q"},
		{"check", file, "--quiet"},
		{"check", "-quiet", file},
	} {
		code, out, errOut := attnc(t, args...)
		assert.Equal(t, exitOK, code, "%v: %s", args, errOut)
		assert.Empty(t, out, "%v is quiet", args)
	}
	for _, args := range [][]string{
		{"ir", "-dump=shard", file},
		{"ir", file, "--dump", "shard"},
		{"ir", file, "-dump", "shard"},
	} {
		code, out, errOut := attnc(t, args...)
		assert.Equal(t, exitOK, code, "%v: %s", args, errOut)
		assert.Contains(t, out, "LossAndGrad runs on shards of B", args)
	}
}

// A mistyped flag or help topic is a usage error that suggests the name
// meant.
func TestSuggestions(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"train", "../../stdlib/seq2seq.attn", "-step", "3"}, `unknown flag: --step (did you mean "--steps"?)`},
		{[]string{"train", "--stpes", "3", "../../stdlib/seq2seq.attn"}, `did you mean "--steps"?`},
		{[]string{"help", "trian"}, `unknown command "trian" (did you mean "train"?)`},
		{[]string{"chekc"}, `did you mean "check"?`},
	} {
		code, out, errOut := attnc(t, c.args...)
		assert.Equal(t, exitUsage, code, "%v", c.args)
		assert.Contains(t, errOut, c.want, c.args)
		assert.Empty(t, out, c.args)
	}
}

// attnc completion prints a script for each shell, and the script's
// callback completes flags and commands.
func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		code, out, errOut := attnc(t, "completion", shell)
		assert.Equal(t, exitOK, code, "%s: %s", shell, errOut)
		assert.Contains(t, out, "attnc", shell)
		assert.Greater(t, len(out), 500, "%s: a script", shell)
	}
	code, out, _ := attnc(t, "__complete", "train", "--st")
	assert.Equal(t, exitOK, code)
	assert.Contains(t, out, "--steps")
	code, out, _ = attnc(t, "__complete", "tr")
	assert.Equal(t, exitOK, code)
	assert.Contains(t, out, "train")
	code, out, _ = attnc(t, "__complete", "check", "")
	assert.Equal(t, exitOK, code)
	assert.Contains(t, out, "attn", "model files are completed by their extension")
	code, _, _ = attnc(t, "completion", "tcsh")
	assert.Equal(t, exitUsage, code)
}

// A task whose tokens do not fit the model's vocabulary is refused before
// the trainer is built, in the model's terms, with the config to change.
func TestTokensMustFitTheVocabulary(t *testing.T) {
	model := writeFile(t, "small_lm.attn", `model small_lm {
  config { d = 8, vocab = 64 }
  input tokens: i32[B, N]
  let x = embed(tokens, vocab, d)
  let logits = linear(layer_norm(x), vocab)
  loss cross_entropy(logits[:, :-1], tokens[:, 1:])
  train { task: lm(len: 8), batch: 2, steps: 1, eval_size: 2 }
}
`)
	text := writeFile(t, "text.txt", strings.Repeat("the quick brown fox ", 20))
	t.Setenv("ATTNC_CACHE", t.TempDir())
	code, _, errOut := attnc(t, "train", "-data", text, "-out", filepath.Join(t.TempDir(), "r"), model)
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "task lm: the bytes of "+text+" (values up to 120, 'x') do not fit the model small_lm: its embedding of tokens has 64 rows. Give it room for 121 tokens (-config vocab=121, or edit the model)")
	assert.NotContains(t, errOut, "building the trainer")
}

func TestTrainNeedsWeights(t *testing.T) {
	model := writeFile(t, "noweights.attn", `model noweights {
  input x: f32[B, N]
  loss mean(x * x)
  train { task: sort(n: 4), steps: 1 }
}
`)
	code, _, errOut := attnc(t, "train", "-out", filepath.Join(t.TempDir(), "r"), model)
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "model noweights has no weights to train")
}

// attnc generate continues a prompt with a byte-level model trained on
// the lm task; a seed repeats its sample.
func TestGenerate(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a trainer")
	}
	t.Setenv("ATTNC_CACHE", t.TempDir())
	model := writeFile(t, "gen_lm.attn", `import "std/layers.attn"

model gen_lm {
  config { d = 16 }
  input tokens: i32[B, N]
  let x = embed(tokens, 256, d) + embed(positions(tokens), 64, d)
  let y = transformer_layer(x, 2, causal)
  let logits = linear(norm(y), 256)
  loss cross_entropy(logits[:, :-1], tokens[:, 1:])
  output logits = logits
  train { task: lm(len: 32), batch: 4, steps: 3, eval_size: 8 }
}
`)
	text := writeFile(t, "text.txt", strings.Repeat("the quick brown fox jumps over the lazy dog. ", 20))
	run := filepath.Join(t.TempDir(), "run")
	code, _, errOut := attnc(t, "train", "-data", text, "-out", run, model)
	require.Equal(t, exitOK, code, errOut)
	code, out, errOut := attnc(t, "generate", run, "-prompt", "the quick", "-n", "20", "--seed", "3")
	require.Equal(t, exitOK, code, errOut)
	first, _, ok := strings.Cut(out, "\n\n(")
	require.True(t, ok, out)
	assert.True(t, strings.HasPrefix(first, "the quick"), first)
	assert.Len(t, first, len("the quick")+20)
	assert.Contains(t, out, "20 bytes at")
	_, again, _ := attnc(t, "generate", run, "-prompt", "the quick", "-n", "20", "--seed", "3")
	againFirst, _, _ := strings.Cut(again, "\n\n(")
	assert.Equal(t, first, againFirst, "a seed repeats the sample")
	assert.Contains(t, out, "one step each over the cached keys and values", "the model's decode step ran")
	_, err := os.Stat(filepath.Join(run, "attention-1.png"))
	assert.NoError(t, err, "the run draws its attention layer")

	// The decode step's choices are Forward's, within the trained window.
	greedy := func(extra ...string) string {
		code, out, errOut := attnc(t, append([]string{"generate", run, "-prompt", "the quick", "-n", "20", "--temperature", "0"}, extra...)...)
		require.Equal(t, exitOK, code, errOut)
		text, _, _ := strings.Cut(out, "\n\n(")
		return text
	}
	assert.Equal(t, greedy("--no-cache"), greedy())
}

// The stdlib char_lm trains on attnc's embedded documentation with no
// flags; the run keeps its own copy of the text.
func TestCharLMTrainsOnTheEmbeddedText(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a trainer")
	}
	t.Setenv("ATTNC_CACHE", t.TempDir())
	run := filepath.Join(t.TempDir(), "run")
	code, out, errOut := attnc(t, "train", "std/char_lm.attn", "-out", run, "-steps", "2", "-config", "d=16", "-config", "layers=1", "-batch", "4")
	require.Equal(t, exitOK, code, errOut)
	assert.Contains(t, out, "byte-level language modelling of")
	b, err := os.ReadFile(filepath.Join(run, "data.txt"))
	require.NoError(t, err)
	assert.Equal(t, string(repo.Docs()), string(b))
	spec, err := train.ReadSpec(run)
	require.NoError(t, err)
	abs, _ := filepath.Abs(filepath.Join(run, "data.txt"))
	assert.Equal(t, abs, spec.TaskParams.Strings["data"])
}

// attnc build writes a causal model's decode step beside it; its Decoder,
// fed a sequence one token at a time, gives the logits Forward gives over
// the whole sequence, at every position (the generated Go, float32).
func TestBuildDecodeStep(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a Go program")
	}
	b := buildAndRun(t, "lm", []string{"-config", "d=16", "-config", "layers=2", "std/char_lm.attn"}, `package main

import (
	"fmt"
	"math"
	"math/rand/v2"

	lm "example.com/u/gen/lm"
	"example.com/u/gen/lm/step"
)

func main() {
	m, err := lm.New(lm.DefaultConfig(), 7)
	if err != nil {
		panic(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 20
	toks := make([]int32, n)
	for i := range toks {
		toks[i] = int32(rng.IntN(256))
	}
	in, err := lm.FromI32([]int{1, n}, toks)
	if err != nil {
		panic(err)
	}
	fwd, err := m.Forward(lm.Inputs{Tokens: in})
	if err != nil {
		panic(err)
	}
	d, err := step.NewDecoder(m.Params())
	if err != nil {
		panic(err)
	}
	worst := 0.0
	for p, tok := range toks {
		logits, err := d.Step(tok)
		if err != nil {
			panic(err)
		}
		for j, x := range logits {
			worst = math.Max(worst, math.Abs(float64(x-fwd.Logits.F[p*256+j])))
		}
	}
	fmt.Printf("steps %d worst %.3g\n", d.Len(), worst)
}
`)
	var steps int
	var worst float64
	_, err := fmt.Sscanf(b, "steps %d worst %g", &steps, &worst)
	require.NoError(t, err, "%s", b)
	assert.Equal(t, 20, steps)
	assert.Less(t, worst, 1e-4, "the decode step's logits against Forward's")
}

// The pairs task trains a model whose padding masks read the lengths it
// fills (src_len), from a TSV file of source/target pairs.
func TestTrainPairs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a trainer")
	}
	t.Setenv("ATTNC_CACHE", t.TempDir())
	model := writeFile(t, "pairs_s2s.attn", `import "std/layers.attn"

mask src_pad(n) = k < n[b]

model pairs_s2s {
  config { vocab = 259, d = 16 }
  input src: i32[B, S]
  input tgt: i32[B, T]
  input src_len: i32[B]
  let enc = self_attn(embed(src, vocab, d), 2, src_pad(src_len))
  let dec = self_attn(embed(tgt, vocab, d), 2, causal)
  let x = dec + cross_attn(dec, enc, 2, src_pad(src_len))
  let logits = linear(norm(x), vocab)
  loss cross_entropy(logits[:, :-1], tgt[:, 1:], ignore_index: 0)
  train { task: pairs(len: 12), batch: 4, steps: 3, eval_size: 4 }
}
`)
	var pairs strings.Builder
	for i := range 30 {
		fmt.Fprintf(&pairs, "%s\t%s\n", strings.Repeat("ab", 1+i%5), strings.Repeat("c", 1+i%3))
	}
	data := writeFile(t, "pairs.tsv", pairs.String())
	code, out, errOut := attnc(t, "train", model, "-data", data, "-out", filepath.Join(t.TempDir(), "run"))
	require.Equal(t, exitOK, code, errOut)
	assert.Contains(t, out, "27 source/target pairs of "+data)
	assert.Contains(t, out, "step 3")
}

// An encoder-decoder's step package decodes greedily with its source
// given once: the same tokens as rerunning Forward over the target so far.
func TestBuildDecodeStepSeq2Seq(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a Go program")
	}
	b := buildAndRun(t, "s2s", []string{"-config", "d=16", "-config", "heads=2", "std/seq2seq.attn"}, `package main

import (
	"fmt"
	"math/rand/v2"
	"slices"

	s2s "example.com/u/gen/s2s"
	"example.com/u/gen/s2s/step"
)

func main() {
	m, err := s2s.New(s2s.DefaultConfig(), 3)
	if err != nil {
		panic(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	const s, n = 8, 9
	srcTok := make([]int32, s)
	for i := range srcTok {
		srcTok[i] = int32(2 + rng.IntN(14))
	}
	src, _ := s2s.FromI32([]int{1, s}, srcTok)
	// Rerunning Forward over the target so far.
	tgt := make([]int32, n)
	tgt[0] = 1
	for pos := 1; pos < n; pos++ {
		t, _ := s2s.FromI32([]int{1, n}, slices.Clone(tgt))
		out, err := m.Forward(s2s.Inputs{Src: src, Tgt: t})
		if err != nil {
			panic(err)
		}
		tgt[pos] = out.Pred.I[pos-1]
	}
	d, err := step.NewDecoder(m.Params())
	if err != nil {
		panic(err)
	}
	d.SetInput("src", src)
	got, err := d.Greedy(1, n-1, -1)
	if err != nil {
		panic(err)
	}
	fmt.Println(slices.Equal(got, tgt[1:]), got, tgt[1:])
}
`)
	assert.True(t, strings.HasPrefix(b, "true "), "greedy decoding with the step equals rerunning Forward: %s", b)
}

// buildAndRun runs attnc build with args into gen/PKG of a fresh user
// module, checks that it wrote a decode step, and runs program (a main
// package using the generated packages) there, returning its output.
func buildAndRun(t *testing.T, pkg string, args []string, program string) string {
	return buildAndRunSaying(t, pkg, args, "and its decode step: package example.com/u/gen/"+pkg+"/step", program)
}

// buildAndRunSaying is buildAndRun with the line attnc build must print
// (what it wrote beside the package).
func buildAndRunSaying(t *testing.T, pkg string, args []string, says, program string) string {
	t.Helper()
	mod := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(mod, "go.mod"), []byte("module example.com/u\n\ngo 1.26\n"), 0o644))
	out := filepath.Join(mod, "gen", pkg)
	code, stdout, errOut := attnc(t, append([]string{"build", "-o", out}, args...)...)
	require.Equal(t, exitOK, code, errOut)
	assert.Contains(t, stdout, says)
	main := filepath.Join(mod, "cmd", "check", "main.go")
	require.NoError(t, os.MkdirAll(filepath.Dir(main), 0o755))
	require.NoError(t, os.WriteFile(main, []byte(program), 0o644))
	cmd := exec.Command("go", "run", "./cmd/check")
	cmd.Dir = mod
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", b)
	return string(b)
}

func TestBuildGreedyPointers(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a Go program")
	}
	b := buildAndRunSaying(t, "ptr", []string{"-config", "d=16", "-config", "heads=2", "-config", "enc_layers=1", "-config", "dec_layers=1", "std/pointer_sort.attn"},
		"and greedy pointer decoding: m.GreedyPointers(in)", `package main

import (
	"fmt"
	"math/rand/v2"
	"slices"

	ptr "example.com/u/gen/ptr"
)

func main() {
	m, err := ptr.New(ptr.DefaultConfig(), 3)
	if err != nil {
		panic(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	const b, n = 4, 7
	xs := make([]float32, b*n)
	for i := range xs {
		xs[i] = rng.Float32()
	}
	x, _ := ptr.FromF32([]int{b, n}, xs)
	chosen, err := m.GreedyPointers(ptr.Inputs{X: x})
	if err != nil {
		panic(err)
	}
	// Each row is a permutation, and each choice is the best free
	// position under teacher forcing with the choices themselves.
	flat := make([]int32, 0, b*n)
	for e, row := range chosen {
		sorted := slices.Sorted(slices.Values(row))
		for i, c := range sorted {
			if int(c) != i {
				fmt.Println("not a permutation:", e, row)
				return
			}
		}
		flat = append(flat, row...)
	}
	perm, _ := ptr.FromI32([]int{b, n}, flat)
	out, err := m.Forward(ptr.Inputs{X: x, Perm: perm})
	if err != nil {
		panic(err)
	}
	for e, row := range chosen {
		for step, c := range row {
			s := out.Logp.F[(e*n+step)*n:][:n]
			for _, k := range row[step:] {
				if s[k] > s[c] {
					fmt.Println("step", step, "of example", e, "chose", c, "but", k, "scores higher:", s[k], ">", s[c])
					return
				}
			}
		}
	}
	fmt.Println("ok", chosen)
}
`)
	assert.True(t, strings.HasPrefix(b, "ok "), "greedy pointers are permutations that teacher forcing agrees with: %s", b)
}

func TestBuildTriton(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sorter")
	code, out, errOut := attnc(t, "build", "std/pointer_sort.attn", "-target", "triton", "-o", dir)
	require.Equal(t, exitOK, code, errOut)
	assert.Contains(t, out, "sorter.Model is a torch.nn.Module")
	for _, f := range []string{"__init__.py", "model.py", "rt.py", "kernels.py", "train.py", ".attnc-manifest"} {
		assert.FileExists(t, filepath.Join(dir, f))
	}
	if py, err := exec.LookPath("python3"); err == nil {
		for _, f := range []string{"__init__.py", "model.py", "rt.py", "kernels.py", "train.py"} {
			b, err := exec.Command(py, "-m", "py_compile", filepath.Join(dir, f)).CombinedOutput()
			assert.NoError(t, err, "py_compile %s: %s", f, b)
		}
	}
	// Building again replaces the package; a name Python cannot import,
	// a Go-only flag and an unknown target are refused.
	code, _, errOut = attnc(t, "build", "-target", "triton", "-o", dir, "std/pointer_sort.attn")
	assert.Equal(t, exitOK, code, errOut)
	code, _, errOut = attnc(t, "build", "-target", "triton", "-o", filepath.Join(t.TempDir(), "my-model"), "std/pointer_sort.attn")
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "Python cannot import it")
	code, _, errOut = attnc(t, "build", "-target", "triton", "-pkg", "x", "-o", dir, "std/pointer_sort.attn")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "-pkg and -import name a Go package")
	code, _, errOut = attnc(t, "build", "-target", "tpu", "-o", dir, "std/pointer_sort.attn")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "-target must be go, triton or cuda")
}

// fakeCU stands in for gorgonia.org/cu v0.9.6 (which needs the CUDA
// driver to build): the signatures the CUDA target's host uses, copied
// from it, so that a build with the tag cuda type-checks the host here.
const fakeCU = `package cu

import "unsafe"

type Device int
type ContextFlags byte

const SchedAuto ContextFlags = 0

type CUContext struct{}
type Module struct{}
type Function struct{}
type Stream struct{}

func GetDevice(ordinal int) (Device, error)                         { return 0, nil }
func (d Device) ComputeCapability() (major, minor int, err error)   { return 8, 0, nil }
func (d Device) MakeContext(flags ContextFlags) (CUContext, error) { return CUContext{}, nil }
func LoadData(image string) (Module, error)                         { return Module{}, nil }
func (m Module) Function(name string) (Function, error)             { return Function{}, nil }
func (fn Function) LaunchAndSync(gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, sharedMemBytes int, stream Stream, kernelParams []unsafe.Pointer) error {
	return nil
}
`

func TestBuildCUDA(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Go programs")
	}
	mod := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(mod, "go.mod"), []byte("module example.com/u\n\ngo 1.26\n\nrequire gorgonia.org/cu v0.9.6\n\nreplace gorgonia.org/cu => ./fakecu\n"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(mod, "fakecu"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(mod, "fakecu", "go.mod"), []byte("module gorgonia.org/cu\n\ngo 1.26\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(mod, "fakecu", "cu.go"), []byte(fakeCU), 0o644))
	code, out, errOut := attnc(t, "build", "-target", "cuda", "-o", filepath.Join(mod, "gen", "sorterk"), "std/pointer_sort.attn")
	require.Equal(t, exitOK, code, errOut)
	assert.Contains(t, out, "CUDA kernels for 9 attention ops (kernels.cu) and ")
	for _, f := range []string{"kernels.cu", "kernels.json", "kernels.ll", "attention.go", "launch_cuda.go", "launch_nocuda.go", "ptx.go"} {
		assert.FileExists(t, filepath.Join(mod, "gen", "sorterk", f))
	}
	main := filepath.Join(mod, "cmd", "check", "main.go")
	require.NoError(t, os.MkdirAll(filepath.Dir(main), 0o755))
	require.NoError(t, os.WriteFile(main, []byte(`package main

import (
	"fmt"

	"example.com/u/gen/sorterk"
)

func main() {
	_, err := sorterk.Load()
	fmt.Println(len(sorterk.Kernels), err)
}
`), 0o644))
	run := func(args ...string) string {
		cmd := exec.Command("go", args...)
		cmd.Dir = mod
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "GOPROXY=off")
		b, err := cmd.CombinedOutput()
		require.NoError(t, err, "go %v:\n%s", args, b)
		return string(b)
	}
	got := run("run", "./cmd/check")
	assert.Contains(t, got, "9 built without the cuda tag: the GPU path is off")
	// With the tag, the host type-checks and builds against cu's API.
	run("build", "-tags", "cuda", "./...")
	run("vet", "-tags", "cuda", "./gen/...")
}
