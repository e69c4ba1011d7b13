package passes

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/attnc/attnc/ir"
	"github.com/attnc/attnc/kir"
)

// shardModule compiles an IR text module whose body src is and returns
// the shard pass's verdict on its training step.
func shardModule(t *testing.T, src string) (*kir.ShardPlan, string) {
	t.Helper()
	m, err := ir.Parse("shard", "module shard(B, N) {\n"+src+"}\n")
	require.NoError(t, err)
	kp, err := Run(m, Options{VerifyEach: true})
	require.NoError(t, err)
	return kp.Shards["LossAndGrad"], kp.NoShard["LossAndGrad"]
}

// A step of row-wise ops feeding a cross-entropy and an accuracy-like
// metric runs on shards: its parts are the cross-entropy and the two
// sums, its tail the metric's max and division, its loss the
// cross-entropy.
func TestShardRowWiseStep(t *testing.T) {
	plan, why := shardModule(t, `  %0 = input {name = "x"} : i32[B, N]
  %1 = input {name = "y"} : i32[B, N]
  %2 = param {name = "emb", init = normal, scale = 1.0} : f32[8, 4]
  %3 = gather %2, %0 {axis = 0} : f32[B, N, 4]
  %4 = param {name = "w", init = normal, scale = 1.0} : f32[4, 8]
  %5 = einsum %3, %4 {spec = "abc,cd->abd"} : f32[B, N, 8]
  %6 = layer_norm %5 {eps = 1e-05} : f32[B, N, 8]
  %7 = cross_entropy %6, %1 {ignore_index = -1} : f32[]
  %8 = argmax %6 {axis = 2} : i32[B, N]
  %9 = eq %8, %1 : bool[B, N]
  %10 = cast %9 {to = f32} : f32[B, N]
  %11 = reduce_sum %10 {axes = [0, 1]} : f32[]
  %12 = const {value = 1.0} : f32[]
  %13 = iota {axis = 1} : i32[B, N]
  %14 = cast %13 {to = f32} : f32[B, N]
  %15 = reduce_sum %14 {axes = [0, 1]} : f32[]
  %16 = max %15, %12 : f32[]
  %17 = div %11, %16 : f32[]
  %18 = const {value = 2.0} : f32[]
  %19 = mul %18, %7 : f32[]
  loss %19
  metric "acc" = %17
`)
	require.NotNil(t, plan, why)
	assert.Equal(t, "B", plan.Batch)
	var parts []string
	for _, p := range plan.Parts {
		parts = append(parts, p.Kind.String())
	}
	assert.Equal(t, []string{"cross_entropy", "sum", "sum"}, parts)
	assert.Equal(t, 0, plan.Loss)
	var tail []string
	for _, in := range plan.Tail {
		tail = append(tail, in.Op.String())
	}
	assert.Equal(t, []string{"max", "div", "mul"}, tail)
}

// Steps whose examples are not independent, or whose loss is not a
// multiple of one batch mean, keep the batch whole, and say why.
func TestShardRefusals(t *testing.T) {
	const head = `  %0 = input {name = "x"} : f32[B, N, 4]
  %1 = param {name = "w", init = normal, scale = 1.0} : f32[4, 4]
  %2 = einsum %0, %1 {spec = "abc,cd->abd"} : f32[B, N, 4]
`
	cases := []struct{ name, body, why string }{
		{"batch statistic", `  %3 = reduce_mean %2 {axes = [0]} : f32[N, 4]
  %4 = sub %2, %3 : f32[B, N, 4]
  %5 = mul %4, %4 : f32[B, N, 4]
  %6 = reduce_mean %5 {axes = [0, 1, 2]} : f32[]
  loss %6
`, "combines the rows of the batch"},
		{"softmax over the batch", `  %3 = softmax %2 {axis = 0} : f32[B, N, 4]
  %6 = reduce_mean %3 {axes = [0, 1, 2]} : f32[]
  loss %6
`, "acts along the batch"},
		{"row numbers", `  %3 = iota {axis = 0} : i32[B, N, 4]
  %4 = cast %3 {to = f32} : f32[B, N, 4]
  %5 = mul %2, %4 : f32[B, N, 4]
  %6 = reduce_mean %5 {axes = [0, 1, 2]} : f32[]
  loss %6
`, "numbers the rows"},
		{"batch moved", `  %3 = transpose %2 {perm = [1, 0, 2]} : f32[N, B, 4]
  %6 = reduce_mean %3 {axes = [0, 1, 2]} : f32[]
  loss %6
`, "dim 1"},
		{"product over the batch", `  %3 = einsum %2, %0 {spec = "abc,abd->cd"} : f32[4, 4]
  %6 = reduce_mean %3 {axes = [0, 1]} : f32[]
  loss %6
`, "combines the rows"},
		{"ratio of sums", `  %3 = reduce_sum %2 {axes = [0, 1, 2]} : f32[]
  %4 = mul %2, %2 : f32[B, N, 4]
  %5 = reduce_sum %4 {axes = [0, 1, 2]} : f32[]
  %6 = div %3, %5 : f32[]
  loss %6
`, "is not a multiple of one sum"},
		{"batch sum read by rows", `  %3 = reduce_sum %2 {axes = [0, 1, 2]} : f32[]
  %4 = mul %2, %3 : f32[B, N, 4]
  %6 = reduce_mean %4 {axes = [0, 1, 2]} : f32[]
  loss %6
`, "not scalar arithmetic"},
		{"mask reads b", `  %3 = reshape %2 : f32[B, 1, N, 4]
  %4 = attention %3, %3, %3 {mask = (k <= q + b), scale = 0.5} : f32[B, 1, N, 4]
  %6 = reduce_mean %4 {axes = [0, 1, 2, 3]} : f32[]
  loss %6
`, "reads b as a number"},
		{"mean and sum", `  %3 = reduce_mean %2 {axes = [0, 1, 2]} : f32[]
  %4 = mul %2, %2 : f32[B, N, 4]
  %5 = reduce_sum %4 {axes = [0, 1, 2]} : f32[]
  %6 = add %3, %5 : f32[]
  loss %6
`, "a sum of means"},
		{"mean and a cross-entropy that ignores positions", `  %3 = reduce_mean %2 {axes = [0, 1, 2]} : f32[]
  %4 = input {name = "t"} : i32[B, N]
  %5 = cross_entropy %2, %4 {ignore_index = -1} : f32[]
  %6 = add %3, %5 : f32[]
  loss %6
`, "a sum of means"},
		{"max over the batch", `  %3 = reduce_max %2 {axes = [0, 1, 2]} : f32[]
  loss %3
`, "combines the rows"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			plan, why := shardModule(t, head+c.body)
			assert.Nil(t, plan)
			assert.Contains(t, why, c.why)
		})
	}
}

// A mask may read a batched captured tensor at row b; at another row
// it keeps the batch whole.
func TestShardCapturedRows(t *testing.T) {
	src := func(mask string) string {
		return `  %0 = input {name = "x"} : f32[B, 1, N, 4]
  %1 = input {name = "doc"} : i32[B, N]
  %2 = param {name = "w", init = normal, scale = 1.0} : f32[4, 4]
  %3 = einsum %0, %2 {spec = "abcd,de->abce"} : f32[B, 1, N, 4]
  %4 = attention %3, %3, %3, %1 {mask = (` + mask + `), scale = 0.5} : f32[B, 1, N, 4]
  %6 = reduce_mean %4 {axes = [0, 1, 2, 3]} : f32[]
  loss %6
`
	}
	plan, why := shardModule(t, src("$0[b, q] == $0[b, k]"))
	assert.NotNil(t, plan, why)
	plan, why = shardModule(t, src("$0[0, q] == $0[b, k]"))
	assert.Nil(t, plan)
	assert.True(t, strings.Contains(why, "another row than b"), why)
}

// A loss that adds means over every axis and a cross-entropy that counts
// every position (each shard's gradients weigh its share of the rows, the
// same for each) runs on shards.
func TestShardSumOfMeans(t *testing.T) {
	plan, why := shardModule(t, `  %0 = input {name = "x"} : f32[B, N, 4]
  %1 = param {name = "w", init = normal, scale = 1.0} : f32[4, 4]
  %2 = einsum %0, %1 {spec = "abc,cd->abd"} : f32[B, N, 4]
  %3 = reduce_mean %2 {axes = [0, 1, 2]} : f32[]
  %4 = mul %2, %2 : f32[B, N, 4]
  %5 = reduce_mean %4 {axes = [0, 1, 2]} : f32[]
  %6 = input {name = "t"} : i32[B, N]
  %7 = cross_entropy %2, %6 : f32[]
  %8 = add %3, %5 : f32[]
  %9 = add %8, %7 : f32[]
  loss %9
`)
	require.NotNil(t, plan, why)
	assert.Len(t, plan.Parts, 3)
}

// A loss that adds sums over the batch (each shard's gradients weigh 1)
// runs on shards.
func TestShardSumOfSums(t *testing.T) {
	plan, why := shardModule(t, `  %0 = input {name = "x"} : f32[B, N, 4]
  %1 = param {name = "w", init = normal, scale = 1.0} : f32[4, 4]
  %2 = einsum %0, %1 {spec = "abc,cd->abd"} : f32[B, N, 4]
  %3 = reduce_sum %2 {axes = [0, 1, 2]} : f32[]
  %4 = mul %2, %2 : f32[B, N, 4]
  %5 = reduce_sum %4 {axes = [0, 1, 2]} : f32[]
  %6 = const {value = 2.0} : f32[]
  %7 = mul %5, %6 : f32[]
  %8 = sub %3, %7 : f32[]
  loss %8
`)
	require.NotNil(t, plan, why)
	assert.Len(t, plan.Parts, 2)
}
