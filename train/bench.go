package train

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	goruntime "runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"time"

	"github.com/attnc/attnc/runtime"
)

// BenchOptions says how long the trainer's bench command measures.
type BenchOptions struct {
	// Reps, when positive, is the exact number of timed calls of each
	// function; otherwise calls are timed until there are at least
	// minBenchReps of them and MinTime has passed.
	Reps    int
	MinTime time.Duration
	// JSON prints one JSON object a line instead of tables.
	JSON bool
	// TopOps is how many of the most expensive instructions to list.
	TopOps int
	// CPUProfile, when set, names a file to write a CPU profile of
	// LossAndGrad calls to (runtime/pprof), taken after the timings for
	// MinTime (at least minBenchReps calls).
	CPUProfile string
	// MemProfile, when set, names a file to write the allocations of the
	// bench's calls to (runtime/pprof's allocs profile, every allocation
	// sampled: Forward's and LossAndGrad's, which the stacks tell apart),
	// after more LossAndGrad calls for MinTime.
	MemProfile string
}

const (
	minBenchReps = 3
	maxBenchReps = 1000
	// profileReps bounds the profiled calls: the profile wants shares,
	// not precision.
	profileReps = 3
)

// profilable is a model that can time its instructions: every model
// attnc generates.
type profilable interface {
	SetProfiler(*runtime.Profiler)
}

// benchRecord is one line of bench -json: the four fields every bench
// line has (case, ms, gflops, peak_mib; null where not measured) and the
// model's own.
type benchRecord struct {
	Case     string   `json:"case"`
	MS       float64  `json:"ms"`
	GFLOPS   *float64 `json:"gflops"`
	PeakMiB  *float64 `json:"peak_mib"`
	AllocMiB *float64 `json:"alloc_mib,omitempty"`
	Model    string   `json:"model"`
	Func     string   `json:"func"`
	Batch    int      `json:"batch,omitempty"`
	Tokens   int      `json:"tokens,omitempty"`
	Reps     int      `json:"reps,omitempty"`
	CallsPS  float64  `json:"calls_per_s,omitempty"`
	TokensPS float64  `json:"tokens_per_s,omitempty"`
	Op       string   `json:"op,omitempty"`
	Kind     string   `json:"op_kind,omitempty"`
	Share    float64  `json:"share,omitempty"`
	Threads  int      `json:"threads"`
}

// Bench times m's Forward and LossAndGrad on one batch of task at the
// run's batch size (the batch a training step takes), then profiles a few
// LossAndGrad calls and lists the most expensive instructions. A step is
// one LossAndGrad (forward and backward, without the optimizer's update);
// tokens are the batch times the longest sequence among the inputs.
func Bench(out io.Writer, spec *Spec, task Task, m Model, o BenchOptions) error {
	if o.MemProfile != "" {
		// Every allocation from here on is sampled: the profile is the
		// bench's calls, as early as the setting can come.
		goruntime.MemProfileRate = 1
	}
	batch := task.Batch(rand.New(rand.NewPCG(spec.Seed, 0xbe7c)), spec.Batch)
	seq := 1
	for _, t := range batch {
		if len(t.Shape) >= 2 {
			seq = max(seq, t.Shape[1])
		}
	}
	tokens := spec.Batch * seq
	threads := goruntime.GOMAXPROCS(0)
	fns := []struct {
		name string
		call func(map[string]*runtime.Tensor) (map[string]*runtime.Tensor, error)
	}{{"Forward", m.ForwardMap}, {"LossAndGrad", m.LossAndGradMap}}
	var recs []benchRecord
	for _, f := range fns {
		call := func() error {
			_, err := f.call(batch)
			if err != nil {
				return fmt.Errorf("%s: %w", f.name, err)
			}
			return nil
		}
		if err := call(); err != nil { // warm-up: first-touch costs
			return err
		}
		times, err := timeCalls(call, o)
		if err != nil {
			return err
		}
		var callErr error
		mem := runtime.MeasureMemory(func() { callErr = call() })
		if callErr != nil {
			return callErr
		}
		med := median(times)
		rec := benchRecord{Case: spec.Model + "." + f.name, MS: ms(med), Model: spec.Model, Func: f.name,
			Batch: spec.Batch, Tokens: tokens, Reps: len(times), Threads: threads,
			PeakMiB: mib(mem.Peak), AllocMiB: mib(mem.Allocated),
			CallsPS: 1 / med.Seconds(), TokensPS: float64(tokens) / med.Seconds()}
		recs = append(recs, rec)
	}

	lossAndGrad := func() error {
		_, err := m.LossAndGradMap(batch)
		return err
	}
	if o.CPUProfile != "" {
		if err := writeProfile(o.CPUProfile, "-cpuprofile", o, lossAndGrad, pprof.StartCPUProfile, func(io.Writer) error {
			pprof.StopCPUProfile()
			return nil
		}); err != nil {
			return err
		}
	}
	if o.MemProfile != "" {
		start := func(io.Writer) error { return nil }
		stop := func(w io.Writer) error {
			goruntime.GC() // publishes the last allocations
			return pprof.Lookup("allocs").WriteTo(w, 0)
		}
		if err := writeProfile(o.MemProfile, "-memprofile", o, lossAndGrad, start, stop); err != nil {
			return err
		}
	}
	var ops []runtime.OpProfile
	profiled := 0
	if p, ok := m.(profilable); ok {
		prof := &runtime.Profiler{}
		p.SetProfiler(prof)
		profiled = profileReps
		if o.Reps > 0 {
			profiled = min(o.Reps, profileReps)
		}
		for range profiled {
			if _, err := m.LossAndGradMap(batch); err != nil {
				p.SetProfiler(nil)
				return fmt.Errorf("LossAndGrad: %w", err)
			}
		}
		p.SetProfiler(nil)
		for _, op := range prof.Ops() {
			if op.Func == "LossAndGrad" {
				ops = append(ops, op)
			}
		}
	}
	var total time.Duration
	for _, op := range ops {
		total += op.Total
	}
	kinds := byKind(ops)
	if len(ops) > o.TopOps {
		ops = ops[:o.TopOps]
	}

	if o.JSON {
		enc := json.NewEncoder(out)
		for _, r := range recs {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		for _, op := range ops {
			share := float64(op.Total) / float64(max(total, 1))
			r := benchRecord{Case: fmt.Sprintf("%s.LossAndGrad %%%d", spec.Model, op.ID), MS: ms(op.Total / time.Duration(profiled)),
				Model: spec.Model, Func: op.Func, Op: op.Op, Share: share, Threads: threads}
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		for _, k := range kinds {
			r := benchRecord{Case: spec.Model + ".LossAndGrad " + k.kind, MS: ms(k.total / time.Duration(profiled)),
				Model: spec.Model, Func: "LossAndGrad", Kind: k.kind, Share: float64(k.total) / float64(max(total, 1)), Threads: threads}
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	fmt.Fprintf(out, "bench %s: batches of %d examples of %s, %d tokens a batch; GOMAXPROCS %d\n", spec.Model, spec.Batch, task.Describe(), tokens, threads)
	fmt.Fprintf(out, "%-12s %10s %9s %12s %9s %10s %5s\n", "function", "ms/call", "calls/s", "tokens/s", "peak MiB", "alloc MiB", "reps")
	for _, r := range recs {
		fmt.Fprintf(out, "%-12s %10.2f %9.3f %12.0f %9.1f %10.1f %5d\n", r.Func, r.MS, r.CallsPS, r.TokensPS, *r.PeakMiB, *r.AllocMiB, r.Reps)
	}
	step := recs[len(recs)-1]
	fmt.Fprintf(out, "steps/s %.3f, tokens/s %.0f (a step is one LossAndGrad: forward and backward, without the optimizer)\n", step.CallsPS, step.TokensPS)
	if len(ops) == 0 {
		fmt.Fprintln(out, "no per-op profile: the model has no SetProfiler")
		return nil
	}
	fmt.Fprintf(out, "\nthe %d most expensive ops of LossAndGrad (%d profiled calls; %.2f ms a call in all ops):\n", len(ops), profiled, ms(total/time.Duration(profiled)))
	fmt.Fprintf(out, "%10s %6s  %s\n", "ms/call", "share", "instruction")
	for _, op := range ops {
		fmt.Fprintf(out, "%10.2f %5.1f%%  %s\n", ms(op.Total/time.Duration(profiled)), 100*float64(op.Total)/float64(max(total, 1)), shorten(op.Op, 120))
	}
	fmt.Fprintf(out, "by kind of op:")
	for i, k := range kinds {
		if i == o.TopOps {
			fmt.Fprintf(out, " …")
			break
		}
		fmt.Fprintf(out, " %s %.1f%%", k.kind, 100*float64(k.total)/float64(max(total, 1)))
	}
	fmt.Fprintln(out)
	return nil
}

type kindTime struct {
	kind  string
	total time.Duration
}

// byKind sums the time of ops by the op of their instruction (matmul,
// attention_grad, …), the most expensive first.
func byKind(ops []runtime.OpProfile) []kindTime {
	sums := map[string]time.Duration{}
	for _, op := range ops {
		kind := op.Op
		if _, rest, ok := strings.Cut(kind, " = "); ok {
			kind = rest
		}
		kind, _, _ = strings.Cut(kind, " ")
		sums[kind] += op.Total
	}
	out := make([]kindTime, 0, len(sums))
	for k, t := range sums {
		out = append(out, kindTime{k, t})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].total != out[j].total {
			return out[i].total > out[j].total
		}
		return out[i].kind < out[j].kind
	})
	return out
}

// timeCalls times call until o is satisfied, returning each call's time.
func timeCalls(call func() error, o BenchOptions) ([]time.Duration, error) {
	var times []time.Duration
	start := time.Now()
	for {
		if o.Reps > 0 && len(times) >= o.Reps {
			break
		}
		if o.Reps <= 0 && len(times) >= minBenchReps && (time.Since(start) >= o.MinTime || len(times) >= maxBenchReps) {
			break
		}
		t0 := time.Now()
		if err := call(); err != nil {
			return nil, err
		}
		times = append(times, time.Since(t0))
	}
	return times, nil
}

func median(ts []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ts...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func mib(b uint64) *float64 {
	v := float64(b) / (1 << 20)
	return &v
}

// shorten cuts s to at most n runes, marking the cut.
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// writeProfile writes a profile of call, repeated for o.MinTime (at
// least minBenchReps times), to path: start begins it (given the file),
// stop ends it and writes what it has not streamed. The file is written
// through a temporary one, renamed into place when complete. flag names
// the option in errors.
func writeProfile(path, flag string, o BenchOptions, call func() error, start, stop func(io.Writer) error) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".profile-*")
	if err != nil {
		return fmt.Errorf("%s: %w", flag, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := start(tmp); err != nil {
		return fmt.Errorf("%s: %w", flag, err)
	}
	began := time.Now()
	for n := 0; n < minBenchReps || time.Since(began) < o.MinTime; n++ {
		if err := call(); err != nil {
			stop(io.Discard)
			return fmt.Errorf("LossAndGrad: %w", err)
		}
	}
	if err := stop(tmp); err != nil {
		return fmt.Errorf("%s: %w", flag, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("%s: %w", flag, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("%s: %w", flag, err)
	}
	return nil
}
