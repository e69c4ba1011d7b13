package runtime

import (
	"runtime"
	"runtime/metrics"
	"sync"
	"time"
)

// MemoryUse is what MeasureMemory saw of one call.
type MemoryUse struct {
	// Peak is the largest growth of the Go heap's object bytes over the
	// baseline taken after a garbage collection, sampled every
	// millisecond and at the end: memory the call held at once, its
	// garbage not yet collected included (a sample can miss a peak that
	// lasts under a millisecond).
	Peak uint64
	// Allocated is every byte the call allocated (the growth of
	// runtime.MemStats.TotalAlloc): an upper bound of Peak.
	Allocated uint64
}

// The runtime/metrics samples MeasureMemory reads.
const (
	heapObjects = "/memory/classes/heap/objects:bytes"
	heapAllocs  = "/gc/heap/allocs:bytes"
)

// MeasureMemory runs f once and reports its extra memory, for attnc
// bench. It collects garbage first so the baseline holds only live data,
// and samples from a goroutine of its own, so time f elsewhere: the
// sampler shares the CPU with it.
func MeasureMemory(f func()) MemoryUse {
	read := func(s []metrics.Sample) (objects, allocs uint64) {
		metrics.Read(s)
		return s[0].Value.Uint64(), s[1].Value.Uint64()
	}
	newSamples := func() []metrics.Sample {
		return []metrics.Sample{{Name: heapObjects}, {Name: heapAllocs}}
	}
	runtime.GC()
	base := newSamples()
	baseObjects, baseAllocs := read(base)
	peak := baseObjects
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s := newSamples()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				objects, _ := read(s)
				peak = max(peak, objects) // read by f's goroutine after wg.Wait
			}
		}
	}()
	f()
	close(stop)
	wg.Wait()
	objects, allocs := read(newSamples())
	peak = max(peak, objects)
	return MemoryUse{Peak: peak - baseObjects, Allocated: allocs - baseAllocs}
}
