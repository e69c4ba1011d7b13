package runtime

import (
	"fmt"
	"slices"
)

// copyGrain is the number of elements per chunk worth a goroutine for
// layout copies.
const copyGrain = 1 << 16

// copyElems copies n elements of src from soff to dst at doff; both have
// one dtype.
func copyElems(dst *Tensor, doff int, src *Tensor, soff, n int) {
	switch src.DType {
	case F32:
		copy(dst.F[doff:doff+n], src.F[soff:soff+n])
	case I32:
		copy(dst.I[doff:doff+n], src.I[soff:soff+n])
	case Bool:
		copy(dst.B[doff:doff+n], src.B[soff:soff+n])
	}
}

// Reshape returns x's elements in row-major order with the given shape.
// The result is a copy: it shares no memory with x, so either may be
// modified afterwards. It panics if the element counts differ.
func Reshape(x *Tensor, shape []int) *Tensor {
	if numel(shape) != x.Len() {
		panic(fmt.Sprintf("runtime.Reshape: cannot reshape %s to %v", typeString(x.DType, x.Shape), shape))
	}
	out := x.Clone()
	out.Shape = cloneInts(shape)
	return out
}

// Transpose returns x with result dim i taken from x's dim perm[i]. It
// panics unless perm is a permutation of x's dims.
func Transpose(x *Tensor, perm []int) *Tensor {
	rank := len(x.Shape)
	if len(perm) != rank {
		panic(fmt.Sprintf("runtime.Transpose: perm %v for rank %d", perm, rank))
	}
	seen := make([]bool, rank)
	shape := make([]int, rank)
	st := stridesOf(x.Shape)
	src := make([]int, rank) // x's stride along each result dim
	for i, p := range perm {
		if p < 0 || p >= rank || seen[p] {
			panic(fmt.Sprintf("runtime.Transpose: perm %v is not a permutation of %d dims", perm, rank))
		}
		seen[p] = true
		shape[i], src[i] = x.Shape[p], st[p]
	}
	out := newUninit(x.DType, shape...) // stridedCopy writes every element
	switch x.DType {
	case F32:
		stridedCopy(out.F, x.F, shape, src)
	case I32:
		stridedCopy(out.I, x.I, shape, src)
	case Bool:
		stridedCopy(out.B, x.B, shape, src)
	}
	return out
}

// stridedCopy fills dst (row-major of shape) with the element of src at
// Σ idx[d]·strides[d] for each index idx. Adjacent dims that stay
// contiguous in src are merged first, so that a permutation keeping the
// last dim in place copies whole rows.
func stridedCopy[T any](dst, src []T, shape, strides []int) {
	if len(dst) == 0 {
		return
	}
	var dims, sts []int
	for d, n := range shape {
		if n == 1 {
			continue
		}
		if k := len(dims) - 1; k >= 0 && sts[k] == strides[d]*n {
			dims[k] *= n
			sts[k] = strides[d]
			continue
		}
		dims = append(dims, n)
		sts = append(sts, strides[d])
	}
	if len(dims) == 0 {
		dst[0] = src[0]
		return
	}
	last := len(dims) - 1
	n, s := dims[last], sts[last]
	outer, ost := dims[:last], sts[:last]
	rows := numel(outer)
	ParallelFor(rows, max(1, copyGrain/n), func(lo, hi int) {
		idx := unravel(lo, outer)
		off := 0
		for d, i := range idx {
			off += i * ost[d]
		}
		for r := lo; r < hi; r++ {
			row := dst[r*n : (r+1)*n]
			if s == 1 {
				copy(row, src[off:off+n])
			} else {
				for i := range row {
					row[i] = src[off+i*s]
				}
			}
			for d := last - 1; d >= 0; d-- {
				idx[d]++
				off += ost[d]
				if idx[d] < outer[d] {
					break
				}
				off -= idx[d] * ost[d]
				idx[d] = 0
			}
		}
	})
}

// Slice returns x restricted to start ≤ i < end along axis. It panics if
// the bounds are outside the dim.
func Slice(x *Tensor, axis, start, end int) *Tensor {
	checkAxis("Slice", axis, len(x.Shape))
	outer, n, inner := split3(x.Shape, axis)
	if start < 0 || end < start || end > n {
		panic(fmt.Sprintf("runtime.Slice: [%d:%d] outside dim %d of %v", start, end, axis, x.Shape))
	}
	shape := cloneInts(x.Shape)
	shape[axis] = end - start
	out := newUninit(x.DType, shape...) // the blocks tile the result
	block := (end - start) * inner
	for o := range outer {
		copyElems(out, o*block, x, (o*n+start)*inner, block)
	}
	return out
}

// Pad returns x with before zeros ahead of it and after zeros behind it
// along axis: Slice's adjoint. It panics on a negative count.
func Pad(x *Tensor, axis, before, after int) *Tensor {
	checkAxis("Pad", axis, len(x.Shape))
	if before < 0 || after < 0 {
		panic(fmt.Sprintf("runtime.Pad: negative padding %d, %d", before, after))
	}
	outer, n, inner := split3(x.Shape, axis)
	shape := cloneInts(x.Shape)
	m := n + before + after
	shape[axis] = m
	out := New(x.DType, shape...)
	for o := range outer {
		copyElems(out, (o*m+before)*inner, x, o*n*inner, n*inner)
	}
	return out
}

// Concat returns xs joined along axis. They must share dtype and rank,
// and agree on every other dim; it panics otherwise.
func Concat(axis int, xs ...*Tensor) *Tensor {
	if len(xs) == 0 {
		panic("runtime.Concat: no operands")
	}
	first := xs[0]
	checkAxis("Concat", axis, len(first.Shape))
	shape := cloneInts(first.Shape)
	shape[axis] = 0
	for _, x := range xs {
		ok := x.DType == first.DType && len(x.Shape) == len(first.Shape)
		for d := 0; ok && d < len(x.Shape); d++ {
			ok = d == axis || x.Shape[d] == first.Shape[d]
		}
		if !ok {
			panic(fmt.Sprintf("runtime.Concat: %s and %s do not join along axis %d",
				typeString(first.DType, first.Shape), typeString(x.DType, x.Shape), axis))
		}
		shape[axis] += x.Shape[axis]
	}
	out := New(first.DType, shape...)
	outer, n, inner := split3(shape, axis)
	at := 0
	for _, x := range xs {
		m := x.Shape[axis]
		for o := range outer {
			copyElems(out, (o*n+at)*inner, x, o*m*inner, m*inner)
		}
		at += m
	}
	return out
}

// A gatherPlan is the index arithmetic shared by Gather and ScatterAdd.
// The gather result is [pre..., mid..., post...] with pre = table[:axis],
// mid = idx[batchDims:] and post = table[axis+1:]; element (p, i, j) reads
// table[p, idx[b(p), i], j], where b(p) is p's first batchDims dims.
type gatherPlan struct {
	pre, mid, post int // element counts of the three parts
	n              int // table's size along axis
	preRest        int // element count of table[batchDims:axis]
	shape          []int
}

func planGather(kernel string, table, idx *Tensor, axis, batchDims int) gatherPlan {
	checkAxis(kernel, axis, len(table.Shape))
	if idx.DType != I32 || batchDims < 0 || batchDims > axis || batchDims > len(idx.Shape) ||
		!slices.Equal(table.Shape[:batchDims], idx.Shape[:batchDims]) {
		panic(fmt.Sprintf("runtime.%s: table %v and indices %s do not fit axis %d with %d batch dims",
			kernel, table.Shape, typeString(idx.DType, idx.Shape), axis, batchDims))
	}
	shape := cloneInts(table.Shape[:axis])
	shape = append(shape, idx.Shape[batchDims:]...)
	shape = append(shape, table.Shape[axis+1:]...)
	return gatherPlan{
		pre:     numel(table.Shape[:axis]),
		mid:     numel(idx.Shape[batchDims:]),
		post:    numel(table.Shape[axis+1:]),
		n:       table.Shape[axis],
		preRest: numel(table.Shape[batchDims:axis]),
		shape:   shape,
	}
}

// check returns an error for the first index outside [0, n).
func (g *gatherPlan) check(kernel string, idx *Tensor) error {
	for i, v := range idx.I {
		if v < 0 || int(v) >= g.n {
			return fmt.Errorf("%s: index %d at position %v of the indices out of range [0, %d)", kernel, v, unravel(i, idx.Shape), g.n)
		}
	}
	return nil
}

// Gather reads table at the i32 indices idx along axis, sharing the first
// batchDims dims of table and idx (TensorFlow's gather with batch_dims):
// the result has shape table[:axis] + idx[batchDims:] + table[axis+1:].
// An embedding lookup is axis 0, batchDims 0. An index outside
// [0, table.Shape[axis]) is an error naming it and its position.
func Gather(table, idx *Tensor, axis, batchDims int) (*Tensor, error) {
	g := planGather("Gather", table, idx, axis, batchDims)
	if err := g.check("gather", idx); err != nil {
		return nil, err
	}
	out := New(table.DType, g.shape...)
	if g.post == 0 {
		return out, nil
	}
	ParallelFor(g.pre*g.mid, max(1, copyGrain/g.post), func(lo, hi int) {
		for t := lo; t < hi; t++ {
			p, i := t/g.mid, t%g.mid
			v := int(idx.I[p/max(g.preRest, 1)*g.mid+i])
			copyElems(out, t*g.post, table, (p*g.n+v)*g.post, g.post)
		}
	})
	return out, nil
}

// ScatterAdd is Gather's adjoint: zeros of the given shape (the table's)
// with each element of upd added where Gather(·, idx, axis, batchDims)
// would have read it. i32 sums wrap at 32 bits; bool sums are or. upd has
// the shape such a Gather returns. An index outside [0, shape[axis]) is
// an error naming it and its position.
func ScatterAdd(upd, idx *Tensor, axis, batchDims int, shape []int) (*Tensor, error) {
	out := New(upd.DType, shape...)
	g := planGather("ScatterAdd", out, idx, axis, batchDims)
	if !slices.Equal(g.shape, upd.Shape) {
		panic(fmt.Sprintf("runtime.ScatterAdd: updates %v, want %v", upd.Shape, g.shape))
	}
	if err := g.check("scatter_add", idx); err != nil {
		return nil, err
	}
	if g.post == 0 {
		return out, nil
	}
	// Different pre indices write disjoint parts of out, and so do
	// different column blocks; only the mid loop must stay serial.
	blocks := ceilDiv(g.post, colBlock)
	ParallelFor(g.pre*blocks, max(1, copyGrain/max(g.mid*colBlock, 1)), func(lo, hi int) {
		for t := lo; t < hi; t++ {
			p, c0 := t/blocks, t%blocks*colBlock
			c1 := min(c0+colBlock, g.post)
			for i := range g.mid {
				v := int(idx.I[p/max(g.preRest, 1)*g.mid+i])
				src, dst := (p*g.mid+i)*g.post, (p*g.n+v)*g.post
				switch out.DType {
				case F32:
					addTo(out.F[dst+c0:dst+c1], upd.F[src+c0:src+c1])
				case I32:
					addTo(out.I[dst+c0:dst+c1], upd.I[src+c0:src+c1])
				case Bool:
					for j, b := range upd.B[src+c0 : src+c1] {
						out.B[dst+c0+j] = out.B[dst+c0+j] || b
					}
				}
			}
		}
	})
	return out, nil
}

// addTo adds src into dst elementwise.
func addTo[T float32 | int32](dst, src []T) {
	src = src[:len(dst)]
	for i, v := range src {
		dst[i] += v
	}
}
