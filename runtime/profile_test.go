package runtime_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	rt "github.com/attnc/attnc/runtime"
)

// A nil profiler, the default of every generated model, records nothing
// and costs no clock reading.
func TestNilProfilerIsOff(t *testing.T) {
	var p *rt.Profiler
	assert.Zero(t, p.Start())
	p.Stop(0, "Forward", 1, "%1 = exp %0")
	var slot rt.ProfilerSlot
	assert.Nil(t, slot.Get())
}

func TestProfilerSumsPerInstruction(t *testing.T) {
	p := &rt.Profiler{}
	var slot rt.ProfilerSlot
	slot.Set(p)
	require.Same(t, p, slot.Get())
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pr := slot.Get()
			for range 3 {
				s := pr.Start()
				time.Sleep(time.Millisecond)
				pr.Stop(s, "LossAndGrad", 7, "%7 = matmul %5, %6")
				s = pr.Start()
				pr.Stop(s, "Forward", 2, "%2 = exp %1")
			}
		}()
	}
	wg.Wait()
	ops := p.Ops()
	require.Len(t, ops, 2)
	assert.Equal(t, "LossAndGrad", ops[0].Func, "the slow instruction comes first")
	assert.Equal(t, 7, ops[0].ID)
	assert.Equal(t, "%7 = matmul %5, %6", ops[0].Op)
	assert.Equal(t, 12, ops[0].Calls)
	assert.GreaterOrEqual(t, ops[0].Total, 12*time.Millisecond)
	assert.Equal(t, 12, ops[1].Calls)
	assert.Less(t, ops[1].Total, ops[0].Total)

	p.Reset()
	assert.Empty(t, p.Ops())
	slot.Set(nil)
	assert.Nil(t, slot.Get())
}

// MeasureMemory sees a buffer held across the call, and counts what the
// call allocated.
func TestMeasureMemory(t *testing.T) {
	var keep []float32
	use := rt.MeasureMemory(func() {
		keep = make([]float32, 16<<20) // 64 MiB
		for i := range keep {
			keep[i] = 1
		}
		time.Sleep(5 * time.Millisecond)
	})
	assert.GreaterOrEqual(t, use.Peak, uint64(60<<20))
	assert.GreaterOrEqual(t, use.Allocated, uint64(64<<20))
	assert.LessOrEqual(t, use.Peak, use.Allocated+(1<<20))
	keep = nil
	idle := rt.MeasureMemory(func() {})
	assert.Less(t, idle.Peak, uint64(1<<20))
}
