package runtime

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
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
	size := max(grain, ceilDiv(n, procs*chunksPerWorker))
	if sharding.Load() > 0 {
		// RunShards keeps every core busy with a shard of its own: the
		// chunks run here, in order, the same chunks as below, so the
		// results are those of a parallel run bit for bit.
		for lo := 0; lo < n; lo += size {
			fn(lo, min(lo+size, n))
		}
		return
	}
	job := jobs.Get().(*parJob)
	job.fn, job.n = fn, n
	job.size = size
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

// sharding counts the RunShards calls in progress: while one runs,
// ParallelFor runs its chunks on the calling goroutine.
var sharding atomic.Int32

// RunShards calls fn(0), …, fn(n-1), each on a goroutine of its own (the
// caller's is one), and returns when all have returned; with serial set
// it calls them one after another on the caller's goroutine instead (a
// profiler then sees each op's time as wall time). It is for work split
// into as many independent shards as there are cores (a generated
// model's LossAndGrad on parts of its batch): while it runs, ParallelFor
// does not hand chunks to other goroutines, anywhere in the process, but
// runs them in order on its caller's, which keeps its results unchanged.
// A panic in a shard is re-raised in the caller once every shard has
// returned, as ParallelFor re-raises one.
func RunShards(n int, serial bool, fn func(shard int)) {
	if n <= 0 {
		return
	}
	sharding.Add(1)
	defer sharding.Add(-1)
	if serial || n == 1 {
		for s := range n {
			fn(s)
		}
		return
	}
	var (
		wg       sync.WaitGroup
		panicked atomic.Pointer[workerPanic]
	)
	run := func(s int) {
		defer wg.Done()
		defer func() {
			if p := recover(); p != nil {
				panicked.CompareAndSwap(nil, &workerPanic{p, debug.Stack()})
			}
		}()
		fn(s)
	}
	wg.Add(n)
	for s := 1; s < n; s++ {
		go run(s)
	}
	run(0)
	wg.Wait()
	if p := panicked.Load(); p != nil {
		panic(p)
	}
}

// BatchShards returns how many shards a batch of b examples is split
// into for RunShards: one per core (GOMAXPROCS), at most one per example;
// the environment variable ATTNC_SHARDS=n caps it at n (1 turns
// sharding off). The count decides how a step's gradient sums are
// grouped, so their rounding depends on it (and so on GOMAXPROCS and b),
// never on timing.
func BatchShards(b int) int {
	n := min(runtime.GOMAXPROCS(0), b)
	if shardCap > 0 {
		n = min(n, shardCap)
	}
	return max(n, 1)
}

// shardCap is ATTNC_SHARDS, or 0 when unset or not a positive number.
var shardCap = func() int {
	n, err := strconv.Atoi(os.Getenv("ATTNC_SHARDS"))
	if err != nil || n < 1 {
		return 0
	}
	return n
}()

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
