package train

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/attnc/attnc/runtime"
)

// profiledStub is recallStub with two instructions a generated model
// would time: a slow %2 and a fast %1, in LossAndGrad only.
type profiledStub struct {
	*recallStub
	prof     *runtime.Profiler
	forwards int
}

func (m *profiledStub) SetProfiler(p *runtime.Profiler) { m.prof = p }

func (m *profiledStub) ForwardMap(in map[string]*runtime.Tensor) (map[string]*runtime.Tensor, error) {
	m.forwards++
	return m.recallStub.ForwardMap(in)
}

func (m *profiledStub) LossAndGradMap(in map[string]*runtime.Tensor) (map[string]*runtime.Tensor, error) {
	t := m.prof.Start()
	m.prof.Stop(t, "LossAndGrad", 1, "%1 = exp %0 : f32[B, N]")
	t = m.prof.Start()
	time.Sleep(2 * time.Millisecond)
	m.prof.Stop(t, "LossAndGrad", 2, "%2 = matmul %1, %1 : f32[B, N, N]")
	return m.recallStub.LossAndGradMap(in)
}

func benchTrainer(t *testing.T, model **profiledStub, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(args, &out, func(seed uint64) (Model, error) {
		s, _ := newRecallStub(seed)
		*model = &profiledStub{recallStub: s.(*recallStub)}
		return *model, nil
	})
	return out.String(), err
}

func TestBenchJSONLines(t *testing.T) {
	dir := t.TempDir()
	writeSpec(t, dir, stubSpec(10))
	var m *profiledStub
	out, err := benchTrainer(t, &m, "bench", dir, "-reps", "2", "-json")
	require.NoError(t, err)
	assert.Equal(t, 1+2+1, m.forwards, "a warm-up, the timed reps and the memory probe")
	assert.Equal(t, 1+2+1+2, m.calls, "and the profiled calls of LossAndGrad")
	assert.Nil(t, m.prof, "the profiler is removed afterwards")

	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 6, out)
	var recs []map[string]any
	for _, l := range lines {
		var r map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &r), l)
		for _, f := range []string{"case", "ms", "gflops", "peak_mib"} {
			assert.Contains(t, r, f, l)
		}
		recs = append(recs, r)
	}
	assert.Equal(t, "stub.Forward", recs[0]["case"])
	assert.Equal(t, "stub.LossAndGrad", recs[1]["case"])
	for _, r := range recs[:2] {
		assert.Equal(t, float64(4*8), r["tokens"], "batch 4 of recall len 8")
		assert.Equal(t, float64(2), r["reps"])
		assert.Greater(t, r["ms"], 0.0)
		assert.InDelta(t, r["tokens_per_s"], 32/(r["ms"].(float64)/1e3), 1e-6*r["tokens_per_s"].(float64))
		assert.Nil(t, r["gflops"], "a model's FLOPs are not counted")
	}
	assert.GreaterOrEqual(t, recs[1]["ms"], 2.0, "LossAndGrad sleeps 2 ms")
	assert.Equal(t, "stub.LossAndGrad %2", recs[2]["case"], "the slow op first")
	assert.Contains(t, recs[2]["op"], "matmul")
	assert.GreaterOrEqual(t, recs[2]["ms"], 2.0)
	assert.Greater(t, recs[2]["share"], 0.5)
	assert.Equal(t, "stub.LossAndGrad %1", recs[3]["case"])
	assert.Equal(t, "stub.LossAndGrad matmul", recs[4]["case"], "then the time by kind of op")
	assert.Equal(t, "matmul", recs[4]["op_kind"])
	assert.Equal(t, recs[2]["share"], recs[4]["share"])
	assert.Equal(t, "exp", recs[5]["op_kind"])
}

func TestBenchTable(t *testing.T) {
	dir := t.TempDir()
	writeSpec(t, dir, stubSpec(10))
	var m *profiledStub
	out, err := benchTrainer(t, &m, "bench", dir, "-min-time", "1ms")
	require.NoError(t, err)
	assert.Contains(t, out, "bench stub: batches of 4 examples of")
	assert.Regexp(t, `(?m)^Forward +\d+\.\d+ `, out)
	assert.Regexp(t, `(?m)^LossAndGrad +\d+\.\d+ `, out)
	assert.Regexp(t, `steps/s \d+\.\d+, tokens/s \d+`, out)
	assert.Regexp(t, `(?s)the 2 most expensive ops of LossAndGrad \(3 profiled calls.*%2 = matmul.*%1 = exp`, out)
	assert.Regexp(t, `by kind of op: matmul \d+\.\d% exp \d+\.\d%\n`, out)
	assert.GreaterOrEqual(t, m.forwards, 1+3+1, "at least 3 timed reps")
	assert.Equal(t, 1+3+1+3, m.calls, "LossAndGrad takes 2 ms: 3 reps pass 1 ms")

	// A model without SetProfiler is timed all the same.
	out, err = trainer(t, "bench", dir, "-reps", "1")
	require.NoError(t, err)
	assert.Contains(t, out, "no per-op profile")
}

func TestBenchFlagsGoWithBench(t *testing.T) {
	dir := t.TempDir()
	writeSpec(t, dir, stubSpec(10))
	_, err := trainer(t, "eval", dir, "-json")
	assert.ErrorContains(t, err, "go with bench")
	_, err = trainer(t, "bench", dir, "-reps", "-1")
	assert.ErrorContains(t, err, "must not be negative")
}

// TestBenchCPUProfile: -cpuprofile writes a pprof profile (gzip) of
// LossAndGrad calls, at least three of them, and goes with bench only; a
// file that cannot be written is an error that names the flag, and
// leaves nothing behind.
func TestBenchCPUProfile(t *testing.T) {
	dir := t.TempDir()
	writeSpec(t, dir, stubSpec(10))
	prof := filepath.Join(t.TempDir(), "cpu.prof")
	var m *profiledStub
	_, err := benchTrainer(t, &m, "bench", dir, "-reps", "1", "-min-time", "1ms", "-cpuprofile", prof)
	require.NoError(t, err)
	b, err := os.ReadFile(prof)
	require.NoError(t, err)
	require.Greater(t, len(b), 2)
	assert.Equal(t, []byte{0x1f, 0x8b}, b[:2], "a gzipped profile")
	assert.Equal(t, 1+1+1+3+1, m.calls, "warm-up, rep, memory probe, 3 profiled by pprof, 1 by the op profile")

	_, err = trainer(t, "eval", dir, "-cpuprofile", prof)
	assert.ErrorContains(t, err, "go with bench")
	mem := filepath.Join(t.TempDir(), "mem.prof")
	_, err = benchTrainer(t, &m, "bench", dir, "-reps", "1", "-min-time", "1ms", "-memprofile", mem)
	require.NoError(t, err)
	b, err = os.ReadFile(mem)
	require.NoError(t, err)
	require.Greater(t, len(b), 2)
	assert.Equal(t, []byte{0x1f, 0x8b}, b[:2], "a gzipped profile")
	missing := filepath.Join(t.TempDir(), "no", "such", "dir", "cpu.prof")
	_, err = benchTrainer(t, &m, "bench", dir, "-reps", "1", "-cpuprofile", missing)
	assert.ErrorContains(t, err, "-cpuprofile")
	assert.NoFileExists(t, missing)
}
