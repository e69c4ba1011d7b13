package runtime

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// A Profiler collects the wall time of every instruction a generated
// model runs, for attnc bench's table of the most expensive ops. A model
// profiles only while one is set (SetProfiler); with none, the cost of
// the hook is a nil check before and after each instruction, since Start
// and Stop on a nil *Profiler return at once. A Profiler may be shared by
// calls running at once.
type Profiler struct {
	mu  sync.Mutex
	ops map[profileKey]*OpProfile
}

type profileKey struct {
	fn string
	id int
}

// OpProfile is the time one instruction of a generated function took,
// summed over its calls.
type OpProfile struct {
	Func  string        // Forward or LossAndGrad
	ID    int           // the instruction's number in the IR (%ID)
	Op    string        // the instruction as the IR writes it, shortened: "%12 = matmul : f32[B, N, 64]"
	Calls int           // how many times it ran
	Total time.Duration // wall time over all calls
}

// profileEpoch is the origin of Start's clock: a monotonic reading.
var profileEpoch = time.Now()

// Start returns the time an instruction starts, for Stop; 0 when p is
// nil (profiling is off).
func (p *Profiler) Start() int64 {
	if p == nil {
		return 0
	}
	return int64(time.Since(profileEpoch))
}

// Stop records that the instruction id of function fn, described by op,
// ran from start (a Start reading) until now. It does nothing when p is
// nil.
func (p *Profiler) Stop(start int64, fn string, id int, op string) {
	if p == nil {
		return
	}
	p.record(fn, id, op, time.Duration(int64(time.Since(profileEpoch))-start))
}

func (p *Profiler) record(fn string, id int, op string, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ops == nil {
		p.ops = map[profileKey]*OpProfile{}
	}
	key := profileKey{fn, id}
	o := p.ops[key]
	if o == nil {
		o = &OpProfile{Func: fn, ID: id, Op: op}
		p.ops[key] = o
	}
	o.Calls++
	o.Total += d
}

// Ops returns what p recorded, the most expensive instruction first
// (ties in the order of the functions and instruction numbers).
func (p *Profiler) Ops() []OpProfile {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]OpProfile, 0, len(p.ops))
	for _, o := range p.ops {
		out = append(out, *o)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Total != b.Total {
			return a.Total > b.Total
		}
		if a.Func != b.Func {
			return a.Func < b.Func
		}
		return a.ID < b.ID
	})
	return out
}

// Reset forgets everything p recorded.
func (p *Profiler) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ops = nil
}

// ProfilerSlot holds the profiler of a generated model: set and read
// from any goroutine, nil when profiling is off.
type ProfilerSlot struct{ p atomic.Pointer[Profiler] }

// Set makes p the profiler (nil turns profiling off).
func (s *ProfilerSlot) Set(p *Profiler) { s.p.Store(p) }

// Get returns the profiler, or nil.
func (s *ProfilerSlot) Get() *Profiler { return s.p.Load() }
