package tests

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/attnc/attnc/ir"
	"github.com/attnc/attnc/ir/eval"
	"github.com/attnc/attnc/passes"
)

// TestShardsWithIgnoredExamples: a batch whose shards hold different
// numbers of counted targets, one of them none (every target ignored),
// gives the whole batch's loss, metric, outputs and gradients: each
// shard's gradients weigh by its counted targets, and the shard with none
// adds nothing (its mean is 0/max(0, 1)). Runs whole and on 2, 3 and 5
// shards (uneven: batch 5).
func TestShardsWithIgnoredExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a Go program")
	}
	m, err := ir.Parse("ignored", `module ignored(B, N) {
  %0 = input {name = "x"} : i32[B, N]
  %1 = input {name = "y"} : i32[B, N]
  %2 = param {name = "emb", init = normal, scale = 1.0} : f32[6, 4]
  %3 = gather %2, %0 {axis = 0} : f32[B, N, 4]
  %4 = param {name = "w", init = normal, scale = 1.0} : f32[4, 5]
  %5 = einsum %3, %4 {spec = "abc,cd->abd"} : f32[B, N, 5]
  %6 = tanh %5 : f32[B, N, 5]
  %7 = cross_entropy %6, %1 {ignore_index = -1} : f32[]
  %8 = argmax %6 {axis = 2} : i32[B, N]
  %9 = eq %8, %1 : bool[B, N]
  %10 = cast %9 {to = f32} : f32[B, N]
  %11 = reduce_mean %10 {axes = [0, 1]} : f32[]
  %12 = const {value = 0.5} : f32[]
  %13 = mul %7, %12 : f32[]
  loss %13
  metric "acc" = %11
  output "logits" = %6
}
`)
	require.NoError(t, err)
	prog, err := passes.Run(m, passes.Options{VerifyEach: true})
	require.NoError(t, err)
	for _, fn := range []string{"Forward", "LossAndGrad"} {
		require.NotNil(t, prog.Shards[fn], "%s: %s", fn, prog.NoShard[fn])
	}
	params, err := eval.InitParams(m, 3)
	require.NoError(t, err)
	const b, n = 5, 4
	x, y := eval.NewTensor(ir.I32, b, n), eval.NewTensor(ir.I32, b, n)
	for i := range x.Data {
		x.Data[i] = float64((i * 7) % 6)
		y.Data[i] = float64((i * 3) % 5)
	}
	for j := range n {
		y.Data[1*n+j] = -1 // example 1: nothing counted (a shard of its own at 5 shards)
		if j > 0 {
			y.Data[3*n+j] = -1 // example 3: one target counted
		}
	}
	env := eval.Env{Inputs: map[string]*eval.Tensor{"x": x, "y": y}, Params: params}
	u := &unit{name: "ignored", prog: prog, envs: []eval.Env{env}}
	runs := [][]string{{"ATTNC_SHARDS=1"}, {"GOMAXPROCS=2", "ATTNC_SHARDS=2"}, {"GOMAXPROCS=3", "ATTNC_SHARDS=3"}, {"GOMAXPROCS=5", "ATTNC_SHARDS=5"}}
	results := runUnitsEnvs(t, []*unit{u}, runs)
	ref, err := eval.Run(m, env)
	require.NoError(t, err)
	for k, run := range runs {
		res := results[k]["ignored"]
		require.Len(t, res, 1)
		require.Empty(t, res[0].Err, "%v", run)
		for _, d := range compareOutputs(m, ref, res[0], 1e-5) {
			t.Errorf("%v: %s", run, d)
		}
	}
	assert.Len(t, results, len(runs))
}
