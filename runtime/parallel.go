package runtime

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// chunksPerWorker is how many chunks ParallelFor aims for per goroutine,
// so that uneven chunks (a causal mask's short rows) still balance.
const chunksPerWorker = 4

// ParallelFor calls fn on consecutive chunks [lo, hi) that together
// cover [0, n) exactly once. A chunk holds at least grain indices (grain
// < 1 counts as 1), so grain should be the number of indices worth a
// goroutine hand-off; when n ≤ grain or GOMAXPROCS is 1 the whole range
// runs inline as fn(0, n). Otherwise up to GOMAXPROCS goroutines take
// chunks from a shared counter: the caller's, a spinning helper that
// takes the job at once where one is free, and new goroutines for the
// rest; ParallelFor returns when all are done.
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
	job := jobs.Get().(*parJob)
	job.fn, job.n = fn, n
	job.size = max(grain, ceilDiv(n, procs*chunksPerWorker))
	job.chunks = ceilDiv(n, job.size)
	workers := min(procs, job.chunks)
	job.wg.Add(workers)
	// The other workers: a spinning helper takes the job at once where
	// one is free (see helperLoop); a new goroutine otherwise, which
	// waits for the scheduler to wake an idle core (tens of µs on a VM,
	// as long as a small kernel's whole run).
	offered := false
	for range workers - 1 {
		if !offered && spinning.Load() > 0 && offer.CompareAndSwap(nil, job) {
			offered = true
			continue
		}
		go job.work()
	}
	startHelpers(procs)
	job.work() // the caller's goroutine is one of the workers
	if offered && offer.CompareAndSwap(job, nil) {
		job.wg.Done() // no helper took it in time: the caller did its part
	}
	job.wg.Wait()
	p := job.panicked.Load()
	job.fn = nil
	job.next.Store(0)
	job.panicked.Store(nil)
	jobs.Put(job)
	if p != nil {
		panic(p)
	}
}

// A parJob is one ParallelFor call's shared state: one object (from a
// pool) instead of a closure and the variables it captures, allocated on
// every call (a training step makes thousands of calls).
type parJob struct {
	fn       func(lo, hi int)
	n, size  int
	chunks   int
	next     atomic.Int64
	wg       sync.WaitGroup
	panicked atomic.Pointer[workerPanic]
}

var jobs = sync.Pool{New: func() any { return new(parJob) }}

// Helpers: GOMAXPROCS-1 goroutines that, after each job they run, spin
// for helperSpin waiting for the next offer before they block. A
// training step calls ParallelFor thousands of times with a little
// serial work between calls; a goroutine started per call waits for an
// idle core to be woken, which on a VM takes as long as a small
// product's whole run, so the second core joined late or not at all. A
// spinning helper picks the job up at once. The spin is short, so an
// idle program idles.
var (
	offer    atomic.Pointer[parJob] // a job for a helper to join
	spinning atomic.Int32           // helpers spinning now
	helpers  atomic.Int32           // helpers started
	wake     = make(chan struct{}, 64)
)

// helperSpin is how long a helper spins for an offer after its last
// job.
const helperSpin = 100 * time.Microsecond

// startHelpers starts helpers up to procs-1 and wakes a blocked one.
func startHelpers(procs int) {
	for n := helpers.Load(); n < int32(procs-1); n = helpers.Load() {
		if helpers.CompareAndSwap(n, n+1) {
			go helperLoop()
		}
	}
	if spinning.Load() == 0 {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
}

func helperLoop() {
	for {
		spinning.Add(1)
		deadline := time.Now().Add(helperSpin)
		for i := 0; ; i++ {
			if j := offer.Load(); j != nil && offer.CompareAndSwap(j, nil) {
				j.work()
				deadline = time.Now().Add(helperSpin)
				continue
			}
			if i%64 == 63 {
				if time.Now().After(deadline) {
					break
				}
				runtime.Gosched() // let this core's other goroutines run
			}
		}
		spinning.Add(-1)
		<-wake
	}
}

// work takes chunks from the shared counter until none is left or one
// has panicked.
func (j *parJob) work() {
	defer j.wg.Done()
	defer func() {
		if p := recover(); p != nil {
			j.panicked.CompareAndSwap(nil, &workerPanic{p, debug.Stack()})
		}
	}()
	for j.panicked.Load() == nil {
		c := int(j.next.Add(1) - 1)
		if c >= j.chunks {
			return
		}
		lo := c * j.size
		j.fn(lo, min(lo+j.size, j.n))
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
