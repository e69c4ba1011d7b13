package runtime_test

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	rt "github.com/attnc/attnc/runtime"
)

// TestParallelForCoversOnce checks that every index is visited exactly
// once, for sizes around the chunking boundaries and several GOMAXPROCS.
func TestParallelForCoversOnce(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, procs := range []int{1, 2, 3, 8} {
		runtime.GOMAXPROCS(procs)
		for _, n := range []int{0, 1, 2, 7, 31, 32, 33, 100, 1000, 4097} {
			for _, grain := range []int{-1, 0, 1, 3, 16, 5000} {
				counts := make([]atomic.Int32, n)
				var calls atomic.Int32
				rt.ParallelFor(n, grain, func(lo, hi int) {
					calls.Add(1)
					if lo >= hi || lo < 0 || hi > n {
						t.Errorf("n=%d grain=%d: bad chunk [%d, %d)", n, grain, lo, hi)
						return
					}
					if g := max(grain, 1); hi-lo < g && hi != n {
						t.Errorf("n=%d grain=%d: chunk [%d, %d) smaller than the grain", n, grain, lo, hi)
					}
					for i := lo; i < hi; i++ {
						counts[i].Add(1)
					}
				})
				for i := range counts {
					if c := counts[i].Load(); c != 1 {
						t.Fatalf("procs=%d n=%d grain=%d: index %d visited %d times", procs, n, grain, i, c)
					}
				}
				if n <= max(grain, 1) && calls.Load() > 1 {
					t.Errorf("n=%d grain=%d: %d calls for a loop under the grain, want 1", n, grain, calls.Load())
				}
			}
		}
	}
}

func TestParallelForPanic(t *testing.T) {
	sentinel := errors.New("boom")
	defer func() {
		p := recover()
		err, ok := p.(error)
		if !ok || !errors.Is(err, sentinel) || !contains(err.Error(), "parallel_test.go") {
			t.Fatalf("recovered %v, want an error wrapping %v with the stack", p, sentinel)
		}
	}()
	rt.ParallelFor(100, 1, func(lo, hi int) {
		if lo <= 50 && 50 < hi {
			panic(sentinel)
		}
	})
	t.Fatal("no panic")
}

// TestKernelsRaceFree runs the parallel kernels on sizes that split into
// several chunks; under -race this checks they share nothing by accident.
func TestKernelsRaceFree(t *testing.T) {
	r := newRand(40)
	x := randF32(r, 300, 400)
	rt.MatMul(x, randF32(r, 400, 70))
	rt.Softmax(x, 1)
	rt.Softmax(x, 0)
	rt.ReduceSum(x, []int{0}, false)
	rt.LayerNorm(x, 1e-5)
	rt.Binary(rt.Add, x, randF32(r, 400), nil)
	rt.Transpose(x, []int{1, 0})
	idx := randI32(r, 0, 300, 5000)
	g, _ := rt.Gather(x, idx, 0, 0)
	if _, err := rt.ScatterAdd(g, idx, 0, 0, x.Shape); err != nil {
		t.Fatal(err)
	}
	q, k, v := randF32(r, 2, 2, 100, 16), randF32(r, 2, 2, 100, 16), randF32(r, 2, 2, 100, 16)
	spec := &rt.AttnSpec{Scale: 0.25}
	_, lse := rt.AttentionWithLSE(q, k, v, spec)
	rs := rt.ReduceSum(v, []int{3}, false)
	rt.AttentionGrad(q, k, v, lse, rs, v, spec, rt.AttnGradWant{Q: true, K: true, V: true})
	bias := rt.New(rt.F32, 2, 100)
	capSpec := &rt.AttnSpec{
		Scale:   0.25,
		Score:   func(s float32, b, h, q, k int) float32 { return s + bias.F[h*100+max(q-k, 0)] },
		CapGrad: func(g []*rt.Tensor, dsp, s float32, b, h, q, k int) { g[0].F[h*100+max(q-k, 0)] += dsp },
	}
	lse = rt.Attention(q, k, nil, &rt.AttnSpec{Scale: 0.25, Returns: "lse", Score: capSpec.Score})
	for _, want := range []rt.AttnGradWant{{}, {K: true}} { // the capture gradient from the query pass, then the key pass
		grad := func() *rt.Tensor {
			want.Caps = []*rt.Tensor{rt.New(rt.F32, 2, 100)}
			return rt.AttentionGrad(q, k, v, lse, rs, v, capSpec, want).Caps[0]
		}
		checkSame(t, fmt.Sprint("capture gradient is deterministic"), grad(), grad())
	}
}

// TestParallelForConcurrentNested runs ParallelFor from many goroutines
// at once, each chunk running a ParallelFor of its own, while the
// spinning helpers take offered jobs: every index of every loop is
// visited exactly once, a panic in one loop reaches its own caller, and
// nothing is left waiting (run it with -race).
func TestParallelForConcurrentNested(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, procs := range []int{2, 4} {
		runtime.GOMAXPROCS(procs)
		const callers, n, inner = 8, 64, 33
		done := make(chan error, callers)
		for c := range callers {
			go func() {
				var counts [n * inner]atomic.Int32
				for range 20 {
					for i := range counts {
						counts[i].Store(0)
					}
					rt.ParallelFor(n, 1, func(lo, hi int) {
						for i := lo; i < hi; i++ {
							rt.ParallelFor(inner, 1, func(l, h int) {
								for j := l; j < h; j++ {
									counts[i*inner+j].Add(1)
								}
							})
						}
					})
					for i := range counts {
						if v := counts[i].Load(); v != 1 {
							done <- fmt.Errorf("caller %d: index %d visited %d times", c, i, v)
							return
						}
					}
				}
				err := func() (err error) {
					defer func() { err, _ = recover().(error) }()
					rt.ParallelFor(n, 1, func(lo, hi int) {
						if lo <= c && c < hi {
							panic(fmt.Errorf("caller %d", c))
						}
					})
					return nil
				}()
				if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("caller %d", c)) {
					done <- fmt.Errorf("caller %d: the panic came back as %v", c, err)
					return
				}
				done <- nil
			}()
		}
		for range callers {
			if err := <-done; err != nil {
				t.Error(err)
			}
		}
	}
}
