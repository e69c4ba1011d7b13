package runtime

import (
	"fmt"
	"math"
	goruntime "runtime"
	"slices"
	"sync"
)

// colBlock is how many columns one task of a strided reduction handles.
const colBlock = 256

// A reduceKind says what a reduction computes.
type reduceKind uint8

const (
	kindSum reduceKind = iota
	kindMean
	kindMax
	kindLSE
)

// reduceView arranges the reduction of x over axes as [outer, n, inner]
// with the reduced elements in the middle: directly when the axes are
// adjacent, otherwise on a transposed copy with the reduced axes last. It
// also returns the result shape. It panics on bad axes.
func reduceView(kernel string, x *Tensor, axes []int, keepdims bool) (src *Tensor, outer, n, inner int, shape []int) {
	rank := len(x.Shape)
	reduced := make([]bool, rank)
	for i, a := range axes {
		checkAxis(kernel, a, rank)
		if i > 0 && a <= axes[i-1] {
			panic(fmt.Sprintf("runtime.%s: axes %v are not sorted and distinct", kernel, axes))
		}
		reduced[a] = true
	}
	var kept []int
	for d := range rank {
		switch {
		case !reduced[d]:
			shape = append(shape, x.Shape[d])
			kept = append(kept, d)
		case keepdims:
			shape = append(shape, 1)
		}
	}
	if shape == nil {
		shape = []int{}
	}
	if len(axes) == 0 {
		return x, x.Len(), 1, 1, shape
	}
	if axes[len(axes)-1]-axes[0] == len(axes)-1 { // adjacent
		a0, a1 := axes[0], axes[len(axes)-1]
		return x, numel(x.Shape[:a0]), numel(x.Shape[a0 : a1+1]), numel(x.Shape[a1+1:]), shape
	}
	t := Transpose(x, append(kept, axes...))
	nk := 1
	for _, d := range kept {
		nk *= x.Shape[d]
	}
	return t, nk, t.Len() / max(nk, 1), 1, shape
}

// reduceF32 reduces x, viewed as [outer, n, inner], over n into out
// [outer, inner], accumulating in float64.
func reduceF32(kind reduceKind, x []float32, outer, n, inner int, out []float32) {
	if outer*inner == 0 {
		return
	}
	if inner == 1 {
		ParallelFor(outer, max(1, elemGrain/max(n, 1)), func(lo, hi int) {
			for o := lo; o < hi; o++ {
				out[o] = reduceRow(kind, x[o*n:(o+1)*n])
			}
		})
		return
	}
	blocks := ceilDiv(inner, colBlock)
	if (kind == kindSum || kind == kindMean) && outer*blocks < 2*goruntime.GOMAXPROCS(0) && n*inner >= 4*elemGrain {
		sumColsSplit(kind, x, outer, n, inner, out)
		return
	}
	ParallelFor(outer*blocks, max(1, elemGrain/max(n*colBlock, 1)), func(lo, hi int) {
		acc := make([]float64, colBlock)
		m := make([]float32, colBlock)
		for t := lo; t < hi; t++ {
			o, c0 := t/blocks, t%blocks*colBlock
			c1 := min(c0+colBlock, inner)
			reduceCols(kind, x[o*n*inner:], n, inner, c0, c1, acc[:c1-c0], m[:c1-c0], out[o*inner+c0:o*inner+c1])
		}
	})
}

// sumColsSplit is the column sum (or mean) of reduceF32 when there are
// too few column blocks to keep every core busy (a bias's gradient, summed
// over every row of a batch): the rows are split into chunks whose
// float64 partial sums are added in chunk order, so the result does not
// depend on the scheduling.
func sumColsSplit(kind reduceKind, x []float32, outer, n, inner int, out []float32) {
	chunks := min(ceilDiv(n*inner, 2*elemGrain), 4*goruntime.GOMAXPROCS(0), n)
	part := make([]float64, chunks*outer*inner)
	ParallelFor(chunks*outer, 1, func(lo, hi int) {
		for t := lo; t < hi; t++ {
			c, o := t%chunks, t/chunks
			acc := part[t*inner : (t+1)*inner]
			for i := c * n / chunks; i < (c+1)*n/chunks; i++ {
				widenAdd(acc, x[(o*n+i)*inner:][:inner])
			}
		}
	})
	for o := range outer {
		for j := range inner {
			s := 0.0
			for c := range chunks {
				s += part[(o*chunks+c)*inner+j]
			}
			if kind == kindMean {
				s /= float64(n)
			}
			out[o*inner+j] = float32(s)
		}
	}
}

// reduceRow reduces a contiguous slice.
func reduceRow(kind reduceKind, row []float32) float32 {
	switch kind {
	case kindMax:
		m := negInf32
		for _, v := range row {
			m = max(m, v)
		}
		return m
	case kindLSE:
		m := maxSlice(row) // the sign of a zero maximum does not matter here
		if math.IsInf(float64(m), 0) || m != m {
			return m
		}
		return m + float32(math.Log(sumExp(row, m)))
	}
	s := sum64(row) // float64 partial sums in vector lanes
	if kind == kindMean {
		s /= float64(len(row))
	}
	return float32(s)
}

// sumExp returns Σ e^(v-m) over row in float64, taking the
// exponentials a block at a time with expSlice.
var expBufs = sync.Pool{New: func() any { return new([256]float32) }}

func sumExp(row []float32, m float32) float64 {
	// The buffer comes from a pool: expSlice's vector kernels take it
	// through function values, so on the stack it would escape anyway.
	buf := expBufs.Get().(*[256]float32)
	defer expBufs.Put(buf)
	s := 0.0
	for len(row) > 0 {
		e := buf[:min(len(row), len(buf))]
		expSlice(e, row[:len(e)], m)
		s += sum64(e)
		row = row[len(e):]
	}
	return s
}

// reduceCols reduces columns [c0, c1) of the [n, inner] matrix x over its
// rows into out, with scratch acc and m of length c1-c0.
func reduceCols(kind reduceKind, x []float32, n, inner, c0, c1 int, acc []float64, m []float32, out []float32) {
	w := c1 - c0
	switch kind {
	case kindMax, kindLSE:
		for j := range m {
			m[j] = negInf32
		}
		for i := range n {
			row := x[i*inner+c0:][:w]
			for j, v := range row {
				m[j] = max(m[j], v)
			}
		}
		if kind == kindMax {
			copy(out, m)
			return
		}
		clear(acc)
		var buf [colBlock]float32
		e := buf[:w]
		for i := range n {
			row := x[i*inner+c0:][:w]
			for j, v := range row {
				e[j] = v - m[j]
			}
			expSlice(e, e, 0)
			for j, v := range e {
				acc[j] += float64(v)
			}
		}
		for j := range out {
			if math.IsInf(float64(m[j]), 0) || m[j] != m[j] {
				out[j] = m[j]
			} else {
				out[j] = m[j] + float32(math.Log(acc[j]))
			}
		}
		return
	}
	clear(acc)
	for i := range n {
		row := x[i*inner+c0:][:w]
		for j, v := range row {
			acc[j] += float64(v)
		}
	}
	for j := range out {
		if kind == kindMean {
			out[j] = float32(acc[j] / float64(n))
		} else {
			out[j] = float32(acc[j])
		}
	}
}

// reduceI32 reduces an i32 tensor viewed as [outer, n, inner]: a sum that
// wraps at 32 bits, or a maximum (MinInt32 when n is 0).
func reduceI32(kind reduceKind, x []int32, outer, n, inner int, out []int32) {
	for o := range outer {
		for j := range inner {
			var acc int32
			if kind == kindMax {
				acc = math.MinInt32
			}
			for i := range n {
				v := x[(o*n+i)*inner+j]
				if kind == kindMax {
					acc = max(acc, v)
				} else {
					acc += v
				}
			}
			out[o*inner+j] = acc
		}
	}
}

func reduce(kernel string, kind reduceKind, x *Tensor, axes []int, keepdims bool) *Tensor {
	src, outer, n, inner, shape := reduceView(kernel, x, axes, keepdims)
	out := New(x.DType, shape...)
	switch {
	case x.DType == F32:
		reduceF32(kind, src.F, outer, n, inner, out.F)
	case x.DType == I32 && (kind == kindSum || kind == kindMax):
		reduceI32(kind, src.I, outer, n, inner, out.I)
	default:
		panic(fmt.Sprintf("runtime.%s: does not apply to %s", kernel, x.DType))
	}
	return out
}

// ReduceSum sums x (f32 or i32; i32 wraps at 32 bits) over axes, which
// must be sorted and distinct. With keepdims the reduced axes stay, with
// size 1; otherwise they are removed. An empty reduction gives 0. f32
// sums accumulate in float64.
func ReduceSum(x *Tensor, axes []int, keepdims bool) *Tensor {
	return reduce("ReduceSum", kindSum, x, axes, keepdims)
}

// ReduceMax returns the maximum of x (f32 or i32) over axes, as
// ReduceSum arranges them. NaN propagates; an empty reduction gives -Inf
// (f32) or MinInt32 (i32).
func ReduceMax(x *Tensor, axes []int, keepdims bool) *Tensor {
	return reduce("ReduceMax", kindMax, x, axes, keepdims)
}

// ReduceMean returns the mean of f32 x over axes, as ReduceSum arranges
// them. An empty reduction gives NaN (0/0).
func ReduceMean(x *Tensor, axes []int, keepdims bool) *Tensor {
	return reduce("ReduceMean", kindMean, x, axes, keepdims)
}

// LogSumExp returns log Σ e^x of f32 x over axes, as ReduceSum arranges
// them, shifted by the maximum for stability. A maximum of ±Inf or NaN is
// the result as it stands: all -Inf (or an empty reduction) gives -Inf.
func LogSumExp(x *Tensor, axes []int, keepdims bool) *Tensor {
	return reduce("LogSumExp", kindLSE, x, axes, keepdims)
}

// ArgMax returns the i32 index of the largest element of x (f32 or i32)
// along axis, the first on ties; a NaN counts as the largest. The axis is
// removed. It panics if the axis is empty and the result is not.
func ArgMax(x *Tensor, axis int) *Tensor {
	checkAxis("ArgMax", axis, len(x.Shape))
	outer, n, inner := split3(x.Shape, axis)
	shape := append(cloneInts(x.Shape[:axis]), x.Shape[axis+1:]...)
	out := New(I32, shape...)
	if n == 0 && outer*inner > 0 {
		panic(fmt.Sprintf("runtime.ArgMax: empty axis %d of %v", axis, x.Shape))
	}
	for o := range outer {
		for j := range inner {
			bi := 0
			switch x.DType {
			case F32:
				best := x.F[o*n*inner+j]
				for i := range n {
					v := x.F[(o*n+i)*inner+j]
					if v != v {
						bi = i
						break
					}
					if v > best {
						best, bi = v, i
					}
				}
			case I32:
				best := x.I[o*n*inner+j]
				for i := 1; i < n; i++ {
					if v := x.I[(o*n+i)*inner+j]; v > best {
						best, bi = v, i
					}
				}
			default:
				panic(fmt.Sprintf("runtime.ArgMax: does not apply to %s", x.DType))
			}
			out.I[o*inner+j] = int32(bi)
		}
	}
	return out
}

// Softmax returns e^x / Σ e^x of f32 x along axis, shifted by the
// maximum. A slice whose maximum is ±Inf gives NaN, as the formula does.
func Softmax(x *Tensor, axis int) *Tensor {
	checkAxis("Softmax", axis, len(x.Shape))
	outer, n, inner := split3(x.Shape, axis)
	out := newUninit(F32, x.Shape...) // every slice is written (none when n is 0)
	if n == 0 {
		return out
	}
	ParallelFor(outer*inner, max(1, elemGrain/n), func(lo, hi int) {
		var buf []float32
		if inner > 1 {
			buf = make([]float32, n)
		}
		for t := lo; t < hi; t++ {
			o, j := t/inner, t%inner
			if inner == 1 {
				softmaxRow(out.F[o*n:(o+1)*n], x.F[o*n:(o+1)*n])
				continue
			}
			for i := range n {
				buf[i] = x.F[(o*n+i)*inner+j]
			}
			softmaxRow(buf, buf)
			for i := range n {
				out.F[(o*n+i)*inner+j] = buf[i]
			}
		}
	})
	return out
}

// softmaxRow writes the softmax of src into dst (which may be src).
func softmaxRow(dst, src []float32) {
	m := maxSlice(src)
	expSlice(dst, src, m)
	inv := [1]float32{float32(1 / sum64(dst))}
	arithRowF32(Mul, dst, dst, 1, inv[:], 0)
}

// LayerNorm returns (x - mean)/√(var + eps) of f32 x over its last axis,
// with the biased variance and no affine part. Statistics are computed in
// float64.
func LayerNorm(x *Tensor, eps float32) *Tensor { return norm("LayerNorm", x, nil, nil, eps, false) }

// RMSNorm returns x/√(mean(x²) + eps) of f32 x over its last axis, with
// no affine part. Statistics are computed in float64.
func RMSNorm(x *Tensor, eps float32) *Tensor { return norm("RMSNorm", x, nil, nil, eps, true) }

// norm is LayerNorm (RMSNorm with rms); with gamma, and beta if not nil,
// vectors along the last axis, each row is then multiplied by gamma and
// beta added, in f32 as Binary's mul and add would, while the row is
// still in cache (see LayerNormAffine).
func norm(kernel string, x, gamma, beta *Tensor, eps float32, rms bool) *Tensor {
	if x.DType != F32 || len(x.Shape) == 0 {
		panic(fmt.Sprintf("runtime.%s: needs an f32 tensor of rank ≥ 1, got %s", kernel, typeString(x.DType, x.Shape)))
	}
	out := newUninit(F32, x.Shape...) // every row is written (none when n is 0)
	n := x.Shape[len(x.Shape)-1]
	for _, p := range []*Tensor{gamma, beta} {
		if p != nil && (p.DType != F32 || len(p.F) != n) {
			panic(fmt.Sprintf("runtime.%s: %s is not an f32 vector along the last axis of %s", kernel, typeString(p.DType, p.Shape), typeString(x.DType, x.Shape)))
		}
	}
	if n == 0 {
		return out
	}
	rows := len(x.F) / n
	ParallelFor(rows, max(1, elemGrain/n), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			row, dst := x.F[r*n:(r+1)*n], out.F[r*n:(r+1)*n]
			mean := 0.0
			if !rms {
				mean = sum64(row) / float64(n)
			}
			inv := 1 / math.Sqrt(sumSq64(row, mean)/float64(n)+float64(eps))
			normApply(dst, row, mean, inv)
			if gamma != nil {
				arithRowF32(Mul, dst, dst, 1, gamma.F, 1)
			}
			if beta != nil {
				arithRowF32(Add, dst, dst, 1, beta.F, 1)
			}
		}
	})
	return out
}

// LayerNormGrad returns LayerNorm's gradient at x given dy, the gradient
// of its result (of x's shape): row by row over the last axis, with y
// and r = 1/√(var + eps) recomputed from x, r·(dy - mean(dy) -
// y·mean(dy·y)). The row statistics are computed in float64, and the
// result as r·dy + b·(x - mean) + c with b = -r³·mean(dy·(x - mean)) and
// c = -r·mean(dy).
func LayerNormGrad(x, dy *Tensor, eps float32) *Tensor {
	return normGradOp("LayerNormGrad", x, dy, nil, eps, false)
}

// LayerNormGradScaled is LayerNormGrad at dy·gamma, gamma a vector along
// the last axis (the norm's affine weight), without a pass of its own
// for the product: each row of dy is scaled as the kernel reads it.
func LayerNormGradScaled(x, dy, gamma *Tensor, eps float32) *Tensor {
	return normGradOp("LayerNormGradScaled", x, dy, gamma, eps, false)
}

// RMSNormGradScaled is RMSNormGrad at dy·gamma, as LayerNormGradScaled.
func RMSNormGradScaled(x, dy, gamma *Tensor, eps float32) *Tensor {
	return normGradOp("RMSNormGradScaled", x, dy, gamma, eps, true)
}

// RMSNormGrad returns RMSNorm's gradient at x given dy: r·(dy -
// y·mean(dy·y)), r = 1/√(mean(x²) + eps), computed as LayerNormGrad's
// with mean 0 and no mean(dy) term.
func RMSNormGrad(x, dy *Tensor, eps float32) *Tensor {
	return normGradOp("RMSNormGrad", x, dy, nil, eps, true)
}

func normGradOp(kernel string, x, dy, gamma *Tensor, eps float32, rms bool) *Tensor {
	if x.DType != F32 || len(x.Shape) == 0 || dy.DType != F32 || !slices.Equal(x.Shape, dy.Shape) {
		panic(fmt.Sprintf("runtime.%s: needs f32 x of rank ≥ 1 and dy of its shape, got %s and %s", kernel, typeString(x.DType, x.Shape), typeString(dy.DType, dy.Shape)))
	}
	if gamma != nil && (gamma.DType != F32 || len(gamma.F) != x.Shape[len(x.Shape)-1]) {
		panic(fmt.Sprintf("runtime.%s: gamma %s is not an f32 vector along the last axis of %s", kernel, typeString(gamma.DType, gamma.Shape), typeString(x.DType, x.Shape)))
	}
	out := newUninit(F32, x.Shape...) // every row is written
	n := x.Shape[len(x.Shape)-1]
	if n == 0 {
		return out
	}
	rows := len(x.F) / n
	fn := float64(n)
	ParallelFor(rows, max(1, elemGrain/n), func(lo, hi int) {
		var scaled *[]float32
		if gamma != nil {
			scaled = getBuffer(n)
			defer putBuffer(scaled)
		}
		for r := lo; r < hi; r++ {
			row, g, dst := x.F[r*n:(r+1)*n], dy.F[r*n:(r+1)*n], out.F[r*n:(r+1)*n]
			if scaled != nil {
				arithRowF32(Mul, *scaled, g, 1, gamma.F, 1) // Binary's product, element for element
				g = *scaled
			}
			mean, mg := 0.0, 0.0
			if !rms {
				mean = sum64(row) / fn
				mg = sum64(g) / fn
			}
			inv := 1 / math.Sqrt(sumSq64(row, mean)/fn+float64(eps))
			c := [3]float64{inv, -inv * inv * inv * dot64(row, g, mean) / fn, -inv * mg}
			normGradApply(dst, row, g, mean, &c)
		}
	})
	return out
}

// CrossEntropy returns, as an f32 scalar, the mean over positions of
// logsumexp(logits) - logits[target]: logits is f32[..., C], targets is
// i32[...] with the leading dims of logits. With hasIgnore, positions
// whose target is ignoreIndex are left out; if every position is left out
// the result is 0. A target outside [0, C) is an error naming its
// position.
func CrossEntropy(logits, targets *Tensor, ignoreIndex int32, hasIgnore bool) (*Tensor, error) {
	r := len(logits.Shape)
	if logits.DType != F32 || targets.DType != I32 || r == 0 || !slices.Equal(logits.Shape[:r-1], targets.Shape) {
		panic(fmt.Sprintf("runtime.CrossEntropy: logits %s and targets %s do not fit",
			typeString(logits.DType, logits.Shape), typeString(targets.DType, targets.Shape)))
	}
	c := logits.Shape[r-1]
	for p, t := range targets.I {
		if hasIgnore && t == ignoreIndex {
			continue
		}
		if t < 0 || int(t) >= c {
			return nil, fmt.Errorf("cross_entropy: target %d at position %v out of range [0, %d)", t, unravel(p, targets.Shape), c)
		}
	}
	losses := make([]float64, len(targets.I))
	ParallelFor(len(losses), max(1, elemGrain/max(c, 1)), func(lo, hi int) {
		for p := lo; p < hi; p++ {
			t := targets.I[p]
			if hasIgnore && t == ignoreIndex {
				continue
			}
			row := logits.F[p*c : (p+1)*c]
			losses[p] = float64(reduceRow(kindLSE, row)) - float64(row[t])
		}
	})
	total, count := 0.0, 0
	for p, t := range targets.I {
		if !hasIgnore || t != ignoreIndex {
			total += losses[p]
			count++
		}
	}
	if count == 0 {
		return Scalar(F32, 0), nil
	}
	return Scalar(F32, total/float64(count)), nil
}

// unravel returns the multi-index of the row-major offset off in shape.
func unravel(off int, shape []int) []int {
	idx := make([]int, len(shape))
	for i := len(shape) - 1; i >= 0; i-- {
		if shape[i] > 0 {
			idx[i] = off % shape[i]
			off /= shape[i]
		}
	}
	return idx
}

// ArgSort returns, for each row of x (f32 or i32) along its last axis,
// the positions that put it in increasing order (decreasing when
// descending), equal elements in their order and NaN larger than every
// number: the graph IR's argsort.
func ArgSort(x *Tensor, descending bool) *Tensor {
	if len(x.Shape) == 0 {
		panic("runtime.ArgSort: a scalar")
	}
	out := New(I32, x.Shape...)
	n := x.Shape[len(x.Shape)-1]
	if n == 0 {
		return out
	}
	rows := out.Len() / n
	idx := make([]int32, n)
	for r := range rows {
		for i := range idx {
			idx[i] = int32(i)
		}
		var less func(a, b int32) bool
		switch x.DType {
		case F32:
			row := x.F[r*n : (r+1)*n]
			less = func(a, b int32) bool {
				va, vb := row[a], row[b]
				if va != va {
					return false
				}
				return vb != vb || va < vb
			}
		case I32:
			row := x.I[r*n : (r+1)*n]
			less = func(a, b int32) bool { return row[a] < row[b] }
		default:
			panic(fmt.Sprintf("runtime.ArgSort: %s", x.DType))
		}
		if descending {
			asc := less
			less = func(a, b int32) bool { return asc(b, a) }
		}
		slices.SortStableFunc(idx, func(a, b int32) int {
			switch {
			case less(a, b):
				return -1
			case less(b, a):
				return 1
			}
			return 0
		})
		copy(out.I[r*n:(r+1)*n], idx)
	}
	return out
}
