package runtime_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	rt "github.com/attnc/attnc/runtime"
)

// TestRunShardsRunsEachOnce: every shard runs once, at once or in turn,
// and ParallelFor inside a shard visits the same chunks, on the shard's
// goroutine, as it does outside (so results do not change).
func TestRunShardsRunsEachOnce(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	runtime.GOMAXPROCS(4)
	chunks := func() [][2]int {
		var mu sync.Mutex
		var got [][2]int
		rt.ParallelFor(1000, 10, func(lo, hi int) {
			mu.Lock()
			got = append(got, [2]int{lo, hi})
			mu.Unlock()
		})
		slices.SortFunc(got, func(a, b [2]int) int { return a[0] - b[0] })
		return got
	}
	want := chunks()
	require.Greater(t, len(want), 1)
	for _, serial := range []bool{false, true} {
		var runs [5]atomic.Int32
		var inShard [5][][2]int
		rt.RunShards(5, serial, func(s int) {
			runs[s].Add(1)
			inShard[s] = chunks()
		})
		for s := range runs {
			assert.EqualValues(t, 1, runs[s].Load(), "shard %d (serial %v)", s, serial)
			assert.Equal(t, want, inShard[s], "shard %d's ParallelFor chunks (serial %v)", s, serial)
		}
	}
}

// TestRunShardsPanic: a shard's panic reaches the caller, after every
// shard has returned, with its value.
func TestRunShardsPanic(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	runtime.GOMAXPROCS(2)
	boom := errors.New("boom")
	var done atomic.Int32
	func() {
		defer func() {
			r := recover()
			require.NotNil(t, r)
			err, ok := r.(error)
			require.True(t, ok, "the panic value is an error: %v", r)
			assert.ErrorIs(t, err, boom)
		}()
		rt.RunShards(3, false, func(s int) {
			defer done.Add(1)
			if s == 2 {
				panic(boom)
			}
		})
	}()
	assert.EqualValues(t, 3, done.Load())
}

func TestBatchShards(t *testing.T) {
	if os.Getenv("ATTNC_SHARDS") != "" {
		t.Skip("ATTNC_SHARDS is set")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	runtime.GOMAXPROCS(4)
	assert.Equal(t, 4, rt.BatchShards(32))
	assert.Equal(t, 3, rt.BatchShards(3))
	assert.Equal(t, 1, rt.BatchShards(1))
	assert.Equal(t, 1, rt.BatchShards(0))
	runtime.GOMAXPROCS(1)
	assert.Equal(t, 1, rt.BatchShards(32))
}

func TestRowsShareTheBuffer(t *testing.T) {
	x := rt.FromI32([]int{4, 2, 3}, make([]int32, 24))
	for i := range x.I {
		x.I[i] = int32(i)
	}
	r := rt.Rows(x, 1, 3)
	assert.Equal(t, []int{2, 2, 3}, r.Shape)
	assert.Equal(t, x.I[6:18], r.I)
	r.I[0] = -1
	assert.EqualValues(t, -1, x.I[6])
	assert.Equal(t, len(r.I), cap(r.I), "a row range may not reach past its last row")
	assert.Panics(t, func() { rt.Rows(x, 3, 5) })
	assert.Panics(t, func() { rt.Rows(rt.FromF32(nil, []float32{1}), 0, 1) })
}

// TestWeightedSum: sums in float64, in shard order, skipping nil tensors
// and zero weights (whose tensors may hold NaN), over more elements than
// one block of the sums.
func TestWeightedSum(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const n = 1300
	ts := make([]*rt.Tensor, 4)
	for s := range 3 {
		d := make([]float32, n)
		for i := range d {
			d[i] = float32(rng.NormFloat64())
		}
		ts[s] = rt.FromF32([]int{n}, d)
	}
	ts[2].F[7] = float32(math.NaN())
	w := []float64{0.25, 0.75, 0, 3}
	got := rt.WeightedSum(ts, w)
	for i := range n {
		want := float32(0.25*float64(ts[0].F[i]) + 0.75*float64(ts[1].F[i]))
		if got.F[i] != want {
			t.Fatalf("element %d: %v, want %v", i, got.F[i], want)
		}
	}
	assert.Panics(t, func() { rt.WeightedSum(ts[:2], w) })
	assert.Panics(t, func() { rt.WeightedSum([]*rt.Tensor{ts[0], rt.New(rt.F32, 3)}, w[:2]) })
}

func TestCountTargets(t *testing.T) {
	y := rt.FromI32([]int{2, 3}, []int32{-1, 4, -1, 0, 2, -1})
	assert.Equal(t, 3, rt.CountTargets(y, -1, true))
	assert.Equal(t, 6, rt.CountTargets(y, -1, false))
	assert.Equal(t, 5, rt.CountTargets(y, 4, true))
}

// TestCombineShards: the combined gradients are the weighted sums, and
// the weights' own buffers are kept (not handed back for reuse).
func TestCombineShards(t *testing.T) {
	w0 := rt.FromF32([]int{2}, []float32{1, 2})
	g := [][]*rt.Tensor{
		{rt.FromF32([]int{2}, []float32{1, 1}), w0, nil},
		{rt.FromF32([]int{2}, []float32{3, 5}), rt.FromF32([]int{2}, []float32{2, 2}), nil},
	}
	out := rt.CombineShards(g, []float64{0.5, 0.5}, []*rt.Tensor{w0})
	require.Len(t, out, 3)
	assert.Equal(t, []float32{2, 3}, out[0].F)
	assert.Equal(t, []float32{1.5, 2}, out[1].F)
	assert.Nil(t, out[2])
	assert.Equal(t, []float32{1, 2}, w0.F, "a kept buffer is left alone")
	assert.Nil(t, g[0][0].F, "a shard's buffer is handed back")
}
