package plot

import (
	"bytes"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/attnc/attnc/runtime"
)

func TestLossPlot(t *testing.T) {
	dir := t.TempDir()
	metrics := filepath.Join(dir, "metrics.jsonl")
	require.NoError(t, os.WriteFile(metrics, []byte(`{"step":1,"loss":3.2}
{"step":2,"loss":2.5,"eval":{"loss":2.6,"exact":0.4}}
{"step":3,"loss":1.9,"eval":{"loss":2.1,"exact":0.7}}
`), 0o644))
	recs, err := ReadMetrics(metrics)
	require.NoError(t, err)
	require.Len(t, recs, 3)
	width := func(path string) int {
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		img, err := png.Decode(bytes.NewReader(b))
		require.NoError(t, err, "%s is a PNG", path)
		return img.Bounds().Dx()
	}
	out := filepath.Join(dir, "loss.png")
	require.NoError(t, Loss(out, "test", recs, ""))
	alone := width(out)
	assert.Greater(t, alone, 100)
	require.NoError(t, Loss(out, "test", recs, "exact"))
	assert.Greater(t, width(out), alone, "the main metric gets a panel beside the loss")
	require.NoError(t, Loss(out, "test", recs, "token_acc"))
	assert.Equal(t, alone, width(out), "a metric never evaluated gets none")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 2, "no temporary file is left")

	assert.Error(t, Loss(out, "empty", nil, ""))
	require.NoError(t, os.WriteFile(metrics, []byte("{not json\n"), 0o644))
	_, err = ReadMetrics(metrics)
	assert.ErrorContains(t, err, "metrics.jsonl:1")
}

func TestHeatMap(t *testing.T) {
	inf := float32(math.Inf(-1))
	logp := runtime.FromF32([]int{1, 2, 3}, []float32{-0.1, -2.4, inf, inf, -0.7, -0.7})
	logits := runtime.FromF32([]int{1, 2, 3}, []float32{1, 2, 3, 4, 5, 6})
	name := AttentionOutput(map[string]*runtime.Tensor{"logits": logits, "logp": logp})
	assert.Equal(t, "logp", name, "only non-positive outputs are log-probabilities")
	out := filepath.Join(t.TempDir(), "attention.png")
	require.NoError(t, HeatMap(out, "test", logp))
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	_, err = png.Decode(bytes.NewReader(b))
	require.NoError(t, err)
	assert.Error(t, HeatMap(out, "bad", runtime.FromF32([]int{2, 3}, make([]float32, 6))))
}

func TestAttentionMaps(t *testing.T) {
	probs := runtime.FromF32([]int{1, 2, 2, 3}, []float32{1, 0, 0, 0.5, 0.5, 0, 0.2, 0.3, 0.5, 0, 1, 0})
	dir := t.TempDir()
	one := filepath.Join(dir, "one.png")
	two := filepath.Join(dir, "two.png")
	require.NoError(t, AttentionMaps(one, "m", runtime.FromF32([]int{1, 1, 2, 3}, probs.F[:6])))
	require.NoError(t, AttentionMaps(two, "m", probs))
	width := func(path string) int {
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		img, err := png.Decode(bytes.NewReader(b))
		require.NoError(t, err)
		return img.Bounds().Dx()
	}
	assert.Greater(t, width(two), width(one), "a panel per head")
	sel := filepath.Join(dir, "sel.png")
	require.NoError(t, AttentionMaps(sel, "m", probs, 1))
	assert.Equal(t, width(one), width(sel), "one head selected, one panel")
	assert.ErrorContains(t, AttentionMaps(sel, "m", probs, 2), "no head 2")
	assert.Error(t, AttentionMaps(one, "m", runtime.FromF32([]int{2, 3}, make([]float32, 6))))
}
