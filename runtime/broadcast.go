package runtime

import (
	"fmt"
	"slices"
)

// elemGrain is the number of elements per chunk worth running in
// parallel for cheap elementwise work.
const elemGrain = 1 << 15

// BroadcastShape returns the shape numpy broadcasting gives shapes, or an
// error naming them when they do not broadcast together.
func BroadcastShape(shapes ...[]int) ([]int, error) {
	rank := 0
	for _, s := range shapes {
		rank = max(rank, len(s))
	}
	out := make([]int, rank)
	for i := range out {
		out[i] = 1
	}
	for _, s := range shapes {
		lead := rank - len(s)
		for i, d := range s {
			switch o := out[lead+i]; {
			case o == d || d == 1:
			case o == 1:
				out[lead+i] = d
			default:
				return nil, fmt.Errorf("shapes %v do not broadcast together", shapes)
			}
		}
	}
	return out, nil
}

// resultShape returns shape, or when it is nil the broadcast of the
// operands' shapes; it panics, naming kernel, if they do not broadcast.
func resultShape(kernel string, shape []int, ops ...*Tensor) []int {
	if shape != nil {
		return shape
	}
	shapes := make([][]int, len(ops))
	for i, t := range ops {
		shapes[i] = t.Shape
	}
	s, err := BroadcastShape(shapes...)
	if err != nil {
		panic(fmt.Sprintf("runtime.%s: %v", kernel, err))
	}
	return s
}

// A bcastPlan walks a result shape row by row, with the offset of the
// row's first element in each broadcast operand. Dims that are contiguous
// for the result and every operand are merged first, so that rows are as
// long as possible; in a row, an operand either advances one element per
// result element (inner stride 1) or repeats one element (stride 0).
type bcastPlan struct {
	outer []int   // the result's dims above the row, merged
	n     int     // row length
	st    [][]int // per operand: stride per outer dim, 0 where broadcast
	inner []int   // per operand: 1, or 0 where the row repeats one element
}

// planBroadcast plans the walk of out for operands of shapes ins, panicking
// (naming kernel) if one of them does not broadcast to out.
func planBroadcast(kernel string, out []int, ins ...[]int) bcastPlan {
	rank := len(out)
	// bst[k][d]: operand k's stride along result dim d.
	bst := make([][]int, len(ins))
	for k, in := range ins {
		if len(in) > rank {
			panic(fmt.Sprintf("runtime.%s: cannot broadcast %v to %v", kernel, in, out))
		}
		lead := rank - len(in)
		st := stridesOf(in)
		bst[k] = make([]int, rank)
		for i, d := range in {
			switch {
			case d == out[lead+i]:
				if d != 1 {
					bst[k][lead+i] = st[i]
				}
			case d == 1:
			default:
				panic(fmt.Sprintf("runtime.%s: cannot broadcast %v to %v", kernel, in, out))
			}
		}
	}
	// Merge dim d into d+1 while every operand's stride over d is its
	// stride over d+1 times the size of d+1 (this includes both being 0).
	var dims []int
	strides := make([][]int, len(ins))
	for d := range rank {
		if out[d] == 1 {
			continue // a dim of size 1 never moves any offset
		}
		if len(dims) > 0 {
			last := len(dims) - 1
			merge := true
			for k := range ins {
				if strides[k][last] != bst[k][d]*out[d] {
					merge = false
					break
				}
			}
			if merge {
				dims[last] *= out[d]
				for k := range ins {
					strides[k][last] = bst[k][d]
				}
				continue
			}
		}
		dims = append(dims, out[d])
		for k := range ins {
			strides[k] = append(strides[k], bst[k][d])
		}
	}
	p := bcastPlan{n: 1, st: make([][]int, len(ins)), inner: make([]int, len(ins))}
	if len(dims) > 0 {
		last := len(dims) - 1
		p.n = dims[last]
		p.outer = dims[:last]
		for k := range ins {
			p.inner[k] = strides[k][last]
			p.st[k] = strides[k][:last]
		}
	}
	if slices.Contains(out, 0) {
		p.n, p.outer = 0, nil
	}
	return p
}

// rows returns the number of rows.
func (p *bcastPlan) rows() int {
	n := 1
	for _, d := range p.outer {
		n *= d
	}
	return n
}

// forRows calls fn for every row, in parallel chunks of rows, with the
// offset of the row in the result and of its first element in each
// operand (offs is reused between calls).
func (p *bcastPlan) forRows(fn func(out int, offs []int)) {
	if p.n == 0 {
		return
	}
	ParallelFor(p.rows(), max(1, elemGrain/p.n), func(lo, hi int) {
		idx := make([]int, len(p.outer))
		offs := make([]int, len(p.st))
		// Start the odometer at row lo.
		r := lo
		for d := len(p.outer) - 1; d >= 0; d-- {
			idx[d] = r % p.outer[d]
			r /= p.outer[d]
		}
		for k, st := range p.st {
			for d, i := range idx {
				offs[k] += i * st[d]
			}
		}
		for row := lo; row < hi; row++ {
			fn(row*p.n, offs)
			for d := len(p.outer) - 1; d >= 0; d-- {
				idx[d]++
				for k, st := range p.st {
					offs[k] += st[d]
				}
				if idx[d] < p.outer[d] {
					break
				}
				for k, st := range p.st {
					offs[k] -= idx[d] * st[d]
				}
				idx[d] = 0
			}
		}
	})
}

// Broadcast returns x spread to shape by numpy's rules (x aligned to the
// right of shape; its dims of size 1 repeat). It panics if x does not
// broadcast to shape.
func Broadcast(x *Tensor, shape []int) *Tensor {
	out := newUninit(x.DType, shape...) // forRows writes every row
	p := planBroadcast("Broadcast", shape, x.Shape)
	p.forRows(func(o int, offs []int) {
		switch x.DType {
		case F32:
			spread(out.F[o:o+p.n], x.F[offs[0]:], p.inner[0])
		case I32:
			spread(out.I[o:o+p.n], x.I[offs[0]:], p.inner[0])
		case Bool:
			spread(out.B[o:o+p.n], x.B[offs[0]:], p.inner[0])
		}
	})
	return out
}

// spread copies src into dst, or fills dst with src[0] when stride is 0.
func spread[T any](dst, src []T, stride int) {
	if stride == 0 {
		v := src[0]
		for i := range dst {
			dst[i] = v
		}
		return
	}
	copy(dst, src[:len(dst)])
}
