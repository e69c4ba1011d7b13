package runtime

import (
	"fmt"
	"slices"
)

// Rows returns rows [lo, hi) of t along its first axis: a tensor that
// shares t's buffer (writing one writes the other). Generated models pass
// shards of a batch to LossAndGrad this way. It panics if t is a scalar
// or the range is not within its first dim.
func Rows(t *Tensor, lo, hi int) *Tensor {
	if len(t.Shape) == 0 || lo < 0 || hi < lo || hi > t.Shape[0] {
		panic(fmt.Sprintf("runtime.Rows: rows [%d, %d) of %s", lo, hi, typeString(t.DType, t.Shape)))
	}
	row := 1
	for _, d := range t.Shape[1:] {
		row *= d
	}
	shape := slices.Clone(t.Shape)
	shape[0] = hi - lo
	out := &Tensor{DType: t.DType, Shape: shape}
	switch t.DType {
	case F32:
		out.F = t.F[lo*row : hi*row : hi*row]
	case I32:
		out.I = t.I[lo*row : hi*row : hi*row]
	case Bool:
		out.B = t.B[lo*row : hi*row : hi*row]
	}
	return out
}

// WeightedSum returns Σ_s w[s]·ts[s], the sums taken in float64 in the
// order of s and rounded once; a nil tensor, or a zero weight, adds
// nothing (a shard whose loss weighs nothing may have NaN gradients). The
// tensors must be f32 of one shape; it panics otherwise. It combines the
// gradients of a batch's shards.
func WeightedSum(ts []*Tensor, w []float64) *Tensor {
	if len(ts) != len(w) {
		panic(fmt.Sprintf("runtime.WeightedSum: %d tensors, %d weights", len(ts), len(w)))
	}
	var shape []int
	for _, t := range ts {
		if t == nil {
			continue
		}
		if t.DType != F32 || (shape != nil && !slices.Equal(shape, t.Shape)) {
			panic(fmt.Sprintf("runtime.WeightedSum: %s among tensors of shape %v", typeString(t.DType, t.Shape), shape))
		}
		shape = t.Shape
	}
	if shape == nil {
		panic("runtime.WeightedSum: no tensor")
	}
	out := newUninit(F32, shape...)
	var acc [512]float64 // a block of the sums, on the stack
	for lo := 0; lo < len(out.F); lo += len(acc) {
		hi := min(lo+len(acc), len(out.F))
		a := acc[:hi-lo]
		clear(a)
		for s, t := range ts {
			if t == nil || w[s] == 0 {
				continue
			}
			ws := w[s]
			for i, x := range t.F[lo:hi] {
				a[i] += ws * float64(x)
			}
		}
		for i, x := range a {
			out.F[lo+i] = float32(x)
		}
	}
	return out
}

// CountTargets returns how many of the i32 targets are not ignoreIndex
// (all of them when hasIgnore is false): the denominator of
// CrossEntropy's mean, before the max with 1.
func CountTargets(targets *Tensor, ignoreIndex int32, hasIgnore bool) int {
	if targets.DType != I32 {
		panic(fmt.Sprintf("runtime.CountTargets: targets %s", typeString(targets.DType, targets.Shape)))
	}
	if !hasIgnore {
		return len(targets.I)
	}
	n := 0
	for _, t := range targets.I {
		if t != ignoreIndex {
			n++
		}
	}
	return n
}

// CombineShards returns, for each i, the sum over shards s of
// w[s]·grads[s][i] (WeightedSum), and hands the shards' buffers back for
// reuse, each once, except those that keep holds (a model's weights).
func CombineShards(grads [][]*Tensor, w []float64, keep []*Tensor) []*Tensor {
	if len(grads) == 0 {
		return nil
	}
	out := make([]*Tensor, len(grads[0]))
	col := make([]*Tensor, len(grads))
	for i := range out {
		any := false
		for s := range grads {
			col[s] = grads[s][i]
			any = any || col[s] != nil
		}
		if any {
			out[i] = WeightedSum(col, w)
		}
	}
	held := map[*float32]bool{}
	for _, t := range keep {
		if t != nil && len(t.F) > 0 {
			held[&t.F[0]] = true
		}
	}
	for _, gs := range grads {
		for _, t := range gs {
			if t == nil || t.DType != F32 || len(t.F) == 0 || held[&t.F[0]] {
				continue
			}
			held[&t.F[0]] = true
			Release(t)
		}
	}
	return out
}

// ConcatRows returns the tensors joined along their first axis, in
// order: the outputs of a batch's shards. They must have one dtype and
// the same dims after the first; it panics otherwise.
func ConcatRows(ts []*Tensor) *Tensor {
	if len(ts) == 0 || ts[0] == nil || len(ts[0].Shape) == 0 {
		panic("runtime.ConcatRows: no tensor with a first axis")
	}
	first := ts[0]
	rows := 0
	for _, t := range ts {
		if t == nil || t.DType != first.DType || len(t.Shape) != len(first.Shape) || !slices.Equal(t.Shape[1:], first.Shape[1:]) {
			panic(fmt.Sprintf("runtime.ConcatRows: %v among tensors like %s", t, typeString(first.DType, first.Shape)))
		}
		rows += t.Shape[0]
	}
	shape := slices.Clone(first.Shape)
	shape[0] = rows
	out := newUninit(first.DType, shape...)
	at := 0
	for _, t := range ts {
		switch t.DType {
		case F32:
			at += copy(out.F[at:], t.F)
		case I32:
			at += copy(out.I[at:], t.I)
		case Bool:
			at += copy(out.B[at:], t.B)
		}
	}
	return out
}
