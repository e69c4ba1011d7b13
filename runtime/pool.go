package runtime

import (
	"fmt"
	"sync"
)

// Buffers that generated code hands back with Release are kept here, by
// dtype and length, for New to reuse. A training step allocates and
// drops the same activations every call; without reuse each one is fresh
// memory the collector must find dead, the allocator must zero and the
// kernel must fault in. sync.Pool lets the collector drop buffers that
// stay unused for two cycles, so an idle model gives its memory back.
var bufferPools sync.Map // poolKey → *sync.Pool

type poolKey struct {
	dt DType
	n  int
}

// minPooled is the smallest buffer, in elements, that Release keeps:
// smaller ones cost less to allocate than to pool.
const minPooled = 1 << 10

func poolFor(dt DType, n int) *sync.Pool {
	k := poolKey{dt, n}
	if p, ok := bufferPools.Load(k); ok {
		return p.(*sync.Pool)
	}
	p, _ := bufferPools.LoadOrStore(k, new(sync.Pool))
	return p.(*sync.Pool)
}

// pooled returns a recycled buffer of n elements of dt (its contents
// arbitrary), or nil when there is none.
func pooled[T any](dt DType, n int) []T {
	if n < minPooled {
		return nil
	}
	if b, ok := poolFor(dt, n).Get().(*[]T); ok {
		return (*b)[:n]
	}
	return nil
}

func recycle[T any](dt DType, s []T) {
	if len(s) < minPooled || cap(s) != len(s) {
		return
	}
	poolFor(dt, len(s)).Put(&s)
}

// Release hands the buffers of ts back for reuse by later allocations and
// empties the tensors, so that a read through one of them fails instead
// of seeing another tensor's data. The caller promises that nothing reads
// the buffers again: no other tensor shares them (a View, a tensor the
// caller returned or stored). Generated code releases each intermediate
// value after its last use; nil tensors are skipped.
func Release(ts ...*Tensor) {
	for _, t := range ts {
		if t == nil {
			continue
		}
		switch t.DType {
		case F32:
			recycle(F32, t.F)
		case I32:
			recycle(I32, t.I)
		case Bool:
			recycle(Bool, t.B)
		}
		t.F, t.I, t.B = nil, nil, nil
	}
}

// newUninit is New without the zeros, for kernels that write every
// element of their result: a recycled buffer holds old data.
func newUninit(dt DType, shape ...int) *Tensor { return alloc(dt, shape, false) }

// alloc returns a tensor of dt and shape, on a recycled buffer when one
// of its length is free; zero clears a recycled buffer (fresh memory is
// zero already).
func alloc(dt DType, shape []int, zero bool) *Tensor {
	n := numel(shape)
	t := &Tensor{DType: dt, Shape: cloneInts(shape)}
	switch dt {
	case F32:
		t.F = take[float32](dt, n, zero)
	case I32:
		t.I = take[int32](dt, n, zero)
	case Bool:
		t.B = take[bool](dt, n, zero)
	default:
		panic(fmt.Sprintf("runtime.New: invalid dtype %v", dt))
	}
	return t
}

func take[T any](dt DType, n int, zero bool) []T {
	s := pooled[T](dt, n)
	if s == nil {
		return make([]T, n)
	}
	if zero {
		clear(s)
	}
	return s
}

// View returns a tensor with x's elements in row-major order and the
// given shape that shares x's buffer: writing one changes the other.
// Generated code uses it for reshapes, whose operands it never writes
// again; Reshape copies. It panics if the element counts differ.
func View(x *Tensor, shape []int) *Tensor {
	if numel(shape) != x.Len() {
		panic(fmt.Sprintf("runtime.View: cannot reshape %s to %v", typeString(x.DType, x.Shape), shape))
	}
	return &Tensor{DType: x.DType, Shape: cloneInts(shape), F: x.F, I: x.I, B: x.B}
}
