package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBenchIsInHelp(t *testing.T) {
	code, out, _ := attnc(t, "help")
	require.Equal(t, exitOK, code)
	assert.Regexp(t, `(?m)^  bench +time a model's Forward and LossAndGrad`, out)
	code, out, _ = attnc(t, "help", "bench")
	require.Equal(t, exitOK, code)
	for _, s := range []string{"usage: attnc bench [flags] FILE | -kernels", "-kernels", "-peers", "-json", "-quick", "-shared", "pairs the mask admits"} {
		assert.Contains(t, out, s)
	}
}

func TestBenchUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"bench"}, "want one model file (or -kernels)"},
		{[]string{"bench", "a.attn", "b.attn"}, "want one model file"},
		{[]string{"bench", "-kernels", "a.attn"}, "leave out a.attn"},
		{[]string{"bench", "-peers", "a.attn"}, "leave out a.attn"},
		{[]string{"bench", "-kernels", "-batch", "2"}, "-batch goes with a model file"},
		{[]string{"bench", "-kernels", "-config", "d=8"}, "-config goes with a model file"},
		{[]string{"bench", "-quick", "a.attn"}, "-quick goes with -kernels"},
		{[]string{"bench", "-shared", "/x", "a.attn"}, "-shared goes with -kernels"},
		{[]string{"bench", "-kernels", "-reps", "-1"}, "must not be negative"},
		{[]string{"bench", "-top", "0", "a.attn"}, "-top must be at least 1, got 0"},
		{[]string{"bench", "-kernels", "-top", "3"}, "-top goes with a model file"},
		{[]string{"bench", "-kernels", "-run", "("}, "-run: error parsing regexp"},
		{[]string{"bench", "-kernels", "-quick", "-run", "nomatch"}, `matches no case (cases: matmul-128, matmul-256, attn-fwd-full-128`},
		{[]string{"bench", "-batch", "0", "a.attn"}, "-batch must be at least 1"},
		{[]string{"bench", "-nosuchflag"}, "unknown flag: --nosuchflag"},
		{[]string{"bench", "-kernel"}, `unknown flag: --kernel (did you mean "--kernels"?)`},
	} {
		code, out, errOut := attnc(t, c.args...)
		assert.Equal(t, exitUsage, code, "%v: %s", c.args, errOut)
		assert.Contains(t, errOut, c.want, c.args)
		assert.Empty(t, out, c.args)
	}
}

// The cases are the issue's: matmul 1024³ and 2048³; attention forward
// and forward+backward, full at 1024 and 4096, causal at 4096, window
// 256 at 8192. FLOPs count the admitted pairs.
func TestKernelCases(t *testing.T) {
	var names []string
	byName := map[string]kernelCase{}
	for _, kc := range kernelCases(false) {
		names = append(names, kc.name)
		byName[kc.name] = kc
	}
	assert.Equal(t, []string{"matmul-1024", "matmul-2048",
		"attn-fwd-full-1024", "attn-fwdbwd-full-1024", "attn-fwd-full-4096", "attn-fwdbwd-full-4096",
		"attn-fwd-causal-4096", "attn-fwdbwd-causal-4096", "attn-fwd-window256-8192", "attn-fwdbwd-window256-8192"}, names)
	assert.Equal(t, 2.0*1024*1024*1024, byName["matmul-1024"].flops())
	assert.Equal(t, 4.0*4096*4096*64*8, byName["attn-fwd-full-4096"].flops())
	assert.Equal(t, 4.0*4096*4097/2*64*8, byName["attn-fwd-causal-4096"].flops())
	assert.Equal(t, 3*byName["attn-fwd-causal-4096"].flops(), byName["attn-fwdbwd-causal-4096"].flops())
	assert.Equal(t, 4.0*(256*257/2+(8192-256)*256)*64*8, byName["attn-fwd-window256-8192"].flops())

	// The pair count is what the mask admits, counted pair by pair.
	for _, kc := range kernelCases(true) {
		if kc.op != "attention" {
			continue
		}
		spec, n := kc.attnSpec(), 0
		for q := 0; q < kc.n; q++ {
			for k := 0; k < kc.n; k++ {
				if spec.Mask == nil || spec.Mask(0, 0, q, k) {
					n++
				}
			}
		}
		assert.Equal(t, float64(n), kc.pairs(), kc.name)
	}
}

// benchLines parses -json output: one object a line, each with every
// field a bench line must have.
func benchLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var r map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &r), "not a JSON line: %q", l)
		for _, f := range []string{"case", "ms", "gflops", "peak_mib"} {
			require.Contains(t, r, f, l)
		}
		recs = append(recs, r)
	}
	return recs
}

func TestBenchKernelsQuickJSON(t *testing.T) {
	code, out, errOut := attnc(t, "bench", "-kernels", "-quick", "-reps", "1", "-json")
	require.Equal(t, exitOK, code, errOut)
	recs := benchLines(t, out)
	cases := kernelCases(true)
	require.Len(t, recs, len(cases))
	for i, r := range recs {
		assert.Equal(t, cases[i].name, r["case"])
		ms, gf := r["ms"].(float64), r["gflops"].(float64)
		assert.Greater(t, ms, 0.0, r)
		assert.InEpsilon(t, cases[i].flops()/(ms/1e3)/1e9, gf, 0.01, "gflops is the case's FLOPs over its time: %v", r)
		assert.GreaterOrEqual(t, r["peak_mib"].(float64), 0.0)
		assert.GreaterOrEqual(t, r["alloc_mib"].(float64), r["peak_mib"].(float64)-0.01, "the sampled peak is at most what was allocated")
		assert.Equal(t, 1.0, r["reps"])
	}
	// An attention forward allocates at least its output.
	assert.GreaterOrEqual(t, recs[2]["alloc_mib"].(float64), float64(8*128*64*4)/(1<<20))
}

func TestBenchKernelsQuickTable(t *testing.T) {
	code, out, errOut := attnc(t, "bench", "-kernels", "-quick", "-reps", "1", "-run", "^matmul|causal")
	require.Equal(t, exitOK, code, errOut)
	assert.Regexp(t, `^attnc bench -kernels: B=1, H=8, d=64, f32; .*; GOMAXPROCS \d+`, out)
	assert.Regexp(t, `(?m)^case +ms +GFLOP/s +peak MiB +alloc MiB +reps$`, out)
	row := func(name string) string {
		return `(?m)^` + regexp.QuoteMeta(name) + ` +\d+\.\d\d +\d+\.\d\d +\d+\.\d +\d+\.\d +1$`
	}
	for _, name := range []string{"matmul-128", "matmul-256", "attn-fwd-causal-256", "attn-fwdbwd-causal-256"} {
		assert.Regexp(t, row(name), out)
	}
	assert.NotContains(t, out, "attn-fwd-full", "-run selects the cases")
	assert.Contains(t, out, "pairs the mask admits")
}

func TestBenchPeersSaysWhatToInstall(t *testing.T) {
	shared := fakeShared(t)
	code, out, errOut := attnc(t, "bench", "-peers", "-quick", "-shared", shared, "-python", filepath.Join(t.TempDir(), "nopython"))
	assert.Equal(t, exitError, code)
	assert.Empty(t, out, "no case runs")
	assert.Contains(t, errOut, "apt-get install -y python3-torch python3-numpy libopenblas0-pthread libjemalloc2")

	// An interpreter without torch.
	py := writeScript(t, "python", "#!/bin/sh\necho \"ModuleNotFoundError: No module named 'torch'\" >&2\nexit 1\n")
	code, _, errOut = attnc(t, "bench", "-peers", "-quick", "-shared", shared, "-python", py)
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "cannot import torch and numpy (ModuleNotFoundError: No module named 'torch')")
	assert.Contains(t, errOut, "apt-get install -y python3-torch")

	code, _, errOut = attnc(t, "bench", "-peers", "-quick", "-shared", t.TempDir())
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "no bench/peers/bench.py there")
}

// fakeShared makes a shared folder with a bench/peers/bench.py that only
// a fake interpreter runs.
func fakeShared(t *testing.T) string {
	t.Helper()
	shared := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(shared, "bench", "peers"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(shared, "bench", "peers", "bench.py"), []byte("# fake\n"), 0o644))
	return shared
}

func writeScript(t *testing.T, name, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(src), 0o755))
	return p
}

// -peers runs each case in the peers' script right after attnc's, in
// the tuned configuration, and prints the ratios. The interpreter here
// is a fake that logs its arguments and answers as bench.py does, always
// 1000 ms.
func TestBenchPeersInterleaved(t *testing.T) {
	shared := fakeShared(t)
	log := filepath.Join(t.TempDir(), "log")
	lib := filepath.Join(t.TempDir(), "libjemalloc.so.2")
	require.NoError(t, os.WriteFile(lib, nil, 0o644))
	defer func(old []string) { jemallocPaths = old }(jemallocPaths)
	jemallocPaths = []string{lib}
	py := writeScript(t, "python", fmt.Sprintf(`#!/bin/sh
[ "$1" = -c ] && exit 0
echo "$* | $LD_PRELOAD $OMP_WAIT_POLICY" >>%s
case "$2" in
matmul) echo '{"bench": "matmul", "median_ms": 1000, "gflops": 1.5}' ;;
attn-one) echo "# a comment"
  echo '{"bench": "attn", "pass": "fwd", "median_ms": 1000, "gflops": 2.5, "peak_rss_delta_mib": 64.0}'
  case "$*" in *"--bwd-max-n 0 "*) ;; *) echo '{"bench": "attn", "pass": "fwd+bwd", "median_ms": 1000, "gflops": 7.5, "peak_rss_delta_mib": 96.0}' ;; esac ;;
esac
`, log))
	code, out, errOut := attnc(t, "bench", "-peers", "-quick", "-reps", "1", "-shared", shared, "-python", py, "-json", "-run", "matmul-128|causal")
	require.Equal(t, exitOK, code, errOut)
	recs := benchLines(t, out)
	require.Len(t, recs, 3)
	b, err := os.ReadFile(log)
	require.NoError(t, err)
	calls := strings.Split(strings.TrimSpace(string(b)), "\n")
	require.Len(t, calls, 3, "one peer run a case")
	script := filepath.Join(shared, "bench", "peers", "bench.py")
	assert.Equal(t, script+" matmul --sizes 128 --reps 1 --mode tuned | "+lib+" PASSIVE", calls[0])
	assert.Equal(t, script+" attn-one --kind causal --n 256 --d 64 --heads 8 --window 1 --bwd-max-n 0 --reps 1 --mode tuned | "+lib+" PASSIVE", calls[1])
	assert.Contains(t, calls[2], "attn-one --kind causal --n 256 --d 64 --heads 8 --window 1 --bwd-max-n 256 ")
	for i, want := range []struct {
		name    string
		gflops  float64
		peakMiB any
	}{{"matmul-128", 1.5, nil}, {"attn-fwd-causal-256", 2.5, 64.0}, {"attn-fwdbwd-causal-256", 7.5, 96.0}} {
		r := recs[i]
		assert.Equal(t, want.name, r["case"])
		assert.Equal(t, 1000.0, r["torch_ms"])
		assert.Equal(t, want.gflops, r["torch_gflops"])
		assert.Equal(t, want.peakMiB, r["torch_peak_mib"])
		assert.InEpsilon(t, 1000/r["ms"].(float64), r["speedup_vs_torch"], 0.01)
	}

	// The table, and a case the peers do not run.
	code, out, errOut = attnc(t, "bench", "-peers", "-quick", "-reps", "1", "-shared", shared, "-python", py, "-run", "window")
	require.Equal(t, exitOK, code, errOut)
	assert.Regexp(t, `(?m)^case +attnc ms +torch ms +speed +attnc MiB +torch MiB$`, out)
	assert.Regexp(t, `(?m)^attn-fwd-window32-512 +\d+\.\d\d +1000\.00 +\d+\.\d\d× +\d+\.\d +64\.0$`, out)
	assert.Contains(t, out, "speed: torch ms / attnc ms")
}

// attnc bench FILE builds the model's trainer and times it, with the
// per-op profile from the generated code's hooks.
func TestBenchModel(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a trainer")
	}
	t.Setenv("ATTNC_CACHE", t.TempDir())
	args := []string{"bench", "-reps", "1", "-batch", "2", "-config", "layers=1", "-config", "d=16", "../../stdlib/partial_lm.attn"}
	code, out, errOut := attnc(t, args...)
	require.Equal(t, exitOK, code, errOut)
	assert.Contains(t, out, "bench partial_lm: batches of 2 examples of")
	assert.Regexp(t, `(?m)^Forward +\d+\.\d\d +\d+\.\d+ +\d+ `, out)
	assert.Regexp(t, `(?m)^LossAndGrad +\d+\.\d\d `, out)
	assert.Regexp(t, `steps/s \d+\.\d+, tokens/s \d+`, out)
	assert.Regexp(t, `the 10 most expensive ops of LossAndGrad \(1 profiled calls`, out)
	ops := regexp.MustCompile(`(?m)^ +\d+\.\d\d +\d+\.\d% +%\d+ = \w+`).FindAllString(out, -1)
	assert.Len(t, ops, 10, out)
	assert.Regexp(t, `by kind of op: \w+ \d+\.\d%`, out)

	code, out, errOut = attnc(t, append([]string{"bench", "-json"}, args[1:]...)...)
	require.Equal(t, exitOK, code, errOut)
	recs := benchLines(t, out)
	assert.Equal(t, "partial_lm.Forward", recs[0]["case"])
	assert.Equal(t, "partial_lm.LossAndGrad", recs[1]["case"])
	assert.Greater(t, recs[1]["tokens_per_s"], 0.0)
	var nOps, nKinds int
	for _, r := range recs[2:] {
		switch {
		case r["op"] != nil:
			nOps++
			assert.Contains(t, r["op"], " = ")
		case r["op_kind"] != nil:
			nKinds++
		}
	}
	assert.Equal(t, 10, nOps)
	assert.GreaterOrEqual(t, nKinds, 5, "matmul, attention, attention_grad, gelu, add, …")
	assert.Equal(t, len(recs)-2, nOps+nKinds)

	code, out, errOut = attnc(t, append([]string{"bench", "-top", "3"}, args[1:]...)...)
	require.Equal(t, exitOK, code, errOut)
	assert.Regexp(t, `the 3 most expensive ops of LossAndGrad`, out)
	assert.Len(t, regexp.MustCompile(`(?m)^ +\d+\.\d\d +\d+\.\d% +%\d+ = \w+`).FindAllString(out, -1), 3, out)
}

func TestBenchModelNeedsATrainSection(t *testing.T) {
	p := writeFile(t, "m.attn", "model m {\n  input x: f32[B, N]\n  loss sum(x)\n}\n")
	code, out, errOut := attnc(t, "bench", p)
	assert.Equal(t, exitError, code)
	assert.Empty(t, out)
	assert.Contains(t, errOut, "the model has no train section with a task")
	code, _, errOut = attnc(t, "bench", "-task", "nosuch=1", "../../stdlib/partial_lm.attn")
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, `task reverse has no parameter "nosuch"`)
}
