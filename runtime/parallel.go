package runtime

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
)

// chunksPerWorker is how many chunks ParallelFor aims for per goroutine,
// so that uneven chunks (a causal mask's short rows) still balance.
const chunksPerWorker = 4

// ParallelFor calls fn on consecutive chunks [lo, hi) that together
// cover [0, n) exactly once. A chunk holds at least grain indices (grain
// < 1 counts as 1), so grain should be the number of indices worth a
// goroutine hand-off; when n ≤ grain or GOMAXPROCS is 1 the whole range
// runs inline as fn(0, n). Otherwise up to GOMAXPROCS goroutines take
// chunks from a shared counter; ParallelFor returns when all are done.
//
// The chunk boundaries depend only on n, grain and GOMAXPROCS, never on
// timing. fn must be safe to call concurrently on disjoint ranges. A
// panic in fn is re-raised in the caller's goroutine once every chunk has
// finished or been abandoned, as an error that carries the panic value
// (unwrapped when it is an error) and the stack of the goroutine that
// panicked.
func ParallelFor(n, grain int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	grain = max(grain, 1)
	procs := runtime.GOMAXPROCS(0)
	if n <= grain || procs == 1 {
		fn(0, n)
		return
	}
	size := max(grain, ceilDiv(n, procs*chunksPerWorker))
	chunks := ceilDiv(n, size)
	workers := min(procs, chunks)
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		panicked atomic.Pointer[workerPanic]
	)
	work := func() {
		defer wg.Done()
		defer func() {
			if p := recover(); p != nil {
				panicked.CompareAndSwap(nil, &workerPanic{p, debug.Stack()})
			}
		}()
		for panicked.Load() == nil {
			c := int(next.Add(1) - 1)
			if c >= chunks {
				return
			}
			lo := c * size
			fn(lo, min(lo+size, n))
		}
	}
	wg.Add(workers)
	for range workers - 1 {
		go work()
	}
	work() // the caller's goroutine is one of the workers
	wg.Wait()
	if p := panicked.Load(); p != nil {
		panic(p)
	}
}

// A workerPanic is a panic recovered in a ParallelFor chunk, with the
// stack where it happened (re-raising it elsewhere would lose that).
type workerPanic struct {
	value any
	stack []byte
}

func (p *workerPanic) Error() string {
	return fmt.Sprintf("%v\n\n[stack of the ParallelFor chunk that panicked]:\n%s", p.value, p.stack)
}

// Unwrap returns the panic value when it is an error.
func (p *workerPanic) Unwrap() error {
	err, _ := p.value.(error)
	return err
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }
