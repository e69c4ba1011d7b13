package eval

import (
	"fmt"

	"github.com/attnc/attnc/ir"
)

// transpose returns x with result dim i taken from x's dim perm[i].
func transpose(x *Tensor, perm []int, shape []int) *Tensor {
	out := NewTensor(x.DType, shape...)
	xst := stridesOf(x.Shape)
	idx := make([]int, len(shape))
	for i := range out.Data {
		unravel(i, shape, idx)
		o := 0
		for d, v := range idx {
			o += v * xst[perm[d]]
		}
		out.Data[i] = x.Data[o]
	}
	return out
}

// slice keeps start ≤ i < end along axis, with start and end evaluated
// with the bound symbols and checked against x's actual size.
func slice(x *Tensor, axis int, startDim, endDim ir.Dim, syms map[string]int64) (*Tensor, error) {
	start, end, err := sliceBounds(x, axis, startDim, endDim, syms)
	if err != nil {
		return nil, err
	}
	outer, n, inner := split3(x.Shape, axis)
	shape := append([]int{}, x.Shape...)
	shape[axis] = int(end - start)
	out := NewTensor(x.DType, shape...)
	block := int(end-start) * inner
	for o := range outer {
		copy(out.Data[o*block:(o+1)*block], x.Data[(o*n+int(start))*inner:])
	}
	return out, nil
}

// sliceBounds evaluates a slice's bounds and checks them against x.
func sliceBounds(x *Tensor, axis int, startDim, endDim ir.Dim, syms map[string]int64) (start, end int64, err error) {
	if start, err = startDim.Eval(syms); err != nil {
		return 0, 0, err
	}
	if end, err = endDim.Eval(syms); err != nil {
		return 0, 0, err
	}
	if n := int64(x.Shape[axis]); start < 0 || end < start || end > n {
		return 0, 0, fmt.Errorf("[%s:%s] is [%d:%d], outside dim %d of size %d", startDim, endDim, start, end, axis, n)
	}
	return start, end, nil
}

// concat joins xs along axis.
func concat(xs []*Tensor, axis int, shape []int) *Tensor {
	out := NewTensor(xs[0].DType, shape...)
	outer, n, inner := split3(shape, axis)
	at := 0 // position along axis where the next operand goes
	for _, x := range xs {
		_, m, _ := split3(x.Shape, axis)
		for o := range outer {
			copy(out.Data[(o*n+at)*inner:(o*n+at+m)*inner], x.Data[o*m*inner:(o+1)*m*inner])
		}
		at += m
	}
	return out
}

// gatherMap calls fn for every element of the gather result of shape out
// (table[:axis] + idx[batchDims:] + table[axis+1:]) with the element's
// offset and the offset in table that it reads. It is the one place the
// index arithmetic of gather and scatter_add lives.
func gatherMap(table, idx []int, idxData []float64, axis, batchDims int, out []int, fn func(outOff, tableOff int)) error {
	tst := stridesOf(table)
	ist := stridesOf(idx)
	mid := len(idx) - batchDims // index dims in the result
	o := make([]int, len(out))
	for i := range numel(out) {
		unravel(i, out, o)
		ioff := 0
		for d := 0; d < batchDims; d++ {
			ioff += o[d] * ist[d]
		}
		for d := 0; d < mid; d++ {
			ioff += o[axis+d] * ist[batchDims+d]
		}
		v := idxData[ioff]
		if v < 0 || v >= float64(table[axis]) {
			return fmt.Errorf("index %v out of range [0, %d)", v, table[axis])
		}
		toff := int(v) * tst[axis]
		for d := 0; d < axis; d++ {
			toff += o[d] * tst[d]
		}
		for d := axis + 1; d < len(table); d++ {
			toff += o[d-1+mid] * tst[d]
		}
		fn(i, toff)
	}
	return nil
}

// gather reads table at idx along axis, sharing the first batchDims dims
// (TensorFlow's gather with batch_dims).
func gather(table, idx *Tensor, axis, batchDims int, shape []int) (*Tensor, error) {
	out := NewTensor(table.DType, shape...)
	err := gatherMap(table.Shape, idx.Shape, idx.Data, axis, batchDims, shape, func(o, t int) {
		out.Data[o] = table.Data[t]
	})
	return out, err
}

// scatterAdd is gather's adjoint: zeros of shape with each update added
// where gather would have read it (i32 sums wrap at 32 bits; bool sums
// are or).
func scatterAdd(upd, idx *Tensor, axis, batchDims int, shape []int) (*Tensor, error) {
	out := NewTensor(upd.DType, shape...)
	err := gatherMap(shape, idx.Shape, idx.Data, axis, batchDims, upd.Shape, func(o, t int) {
		out.Data[t] += upd.Data[o]
	})
	if err != nil {
		return nil, err
	}
	for i, v := range out.Data {
		switch out.DType {
		case ir.I32:
			out.Data[i] = wrap32(v)
		case ir.Bool: // adding bools is or-ing them
			out.Data[i] = b2f(v != 0)
		}
	}
	return out, nil
}
