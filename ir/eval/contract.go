package eval

import (
	"fmt"
	"math"

	"github.com/attnc/attnc/ir"
)

// matmul is x[..., m, k] · y[..., k, n] with the batch dims broadcast.
func matmul(x, y *Tensor, shape []int) (*Tensor, error) {
	rx, ry, ro := len(x.Shape), len(y.Shape), len(shape)
	m, k, n := x.Shape[rx-2], x.Shape[rx-1], y.Shape[ry-1]
	if y.Shape[ry-2] != k || shape[ro-2] != m || shape[ro-1] != n {
		return nil, fmt.Errorf("shapes %v · %v do not give %v", x.Shape, y.Shape, shape)
	}
	batch := shape[:ro-2]
	xb, err := bcastOffsets(x.Shape[:rx-2], batch)
	if err != nil {
		return nil, err
	}
	yb, err := bcastOffsets(y.Shape[:ry-2], batch)
	if err != nil {
		return nil, err
	}
	out := NewTensor(ir.F32, shape...)
	for bi := range xb {
		xm := x.Data[xb[bi]*m*k:]
		ym := y.Data[yb[bi]*k*n:]
		om := out.Data[bi*m*n:]
		for i := range m {
			for j := range n {
				s := 0.0
				for l := range k {
					s += xm[i*k+l] * ym[l*n+j]
				}
				om[i*n+j] = s
			}
		}
	}
	return out, nil
}

// maxEinsumSpace bounds the number of letter assignments einsum visits.
const maxEinsumSpace = min(1<<40, math.MaxInt)

// einsum evaluates spec by its definition: it loops over every
// assignment of every letter, adding the product of the operands'
// elements to the output element the output letters select. A letter
// repeated within one operand reads its diagonal.
func einsum(spec string, xs []*Tensor, shape []int) (*Tensor, error) {
	terms, outTerm, err := ir.ParseEinsum(spec, len(xs))
	if err != nil {
		return nil, err
	}
	var letters []rune
	pos := map[rune]int{} // letter → index in letters
	size := map[rune]int{}
	add := func(r rune) {
		if _, ok := pos[r]; !ok {
			pos[r] = len(letters)
			letters = append(letters, r)
		}
	}
	for _, r := range outTerm {
		add(r)
	}
	for i, term := range terms {
		rs := []rune(term)
		if len(rs) != len(xs[i].Shape) {
			return nil, fmt.Errorf("operand %d has shape %v but its term is %q", i, xs[i].Shape, term)
		}
		for j, r := range rs {
			add(r)
			if s, ok := size[r]; ok && s != xs[i].Shape[j] {
				return nil, fmt.Errorf("letter %q has size %d and %d", r, s, xs[i].Shape[j])
			}
			size[r] = xs[i].Shape[j]
		}
	}
	dims := make([]int, len(letters))
	space := int64(1)
	for r, p := range pos {
		dims[p] = size[r]
		if d := int64(size[r]); d > 0 && space > maxEinsumSpace/d {
			return nil, fmt.Errorf("%s loops over more than %d index assignments, too many for the reference interpreter", spec, int64(maxEinsumSpace))
		}
		space *= int64(size[r])
	}
	// strides[i][l]: how far operand i's offset moves per step of letter
	// l (summed over the letter's occurrences, which walks a diagonal).
	strides := make([][]int, len(xs))
	for i, term := range terms {
		strides[i] = make([]int, len(letters))
		st := stridesOf(xs[i].Shape)
		for j, r := range []rune(term) {
			strides[i][pos[r]] += st[j]
		}
	}
	outStrides := make([]int, len(letters))
	ost := stridesOf(shape)
	for j, r := range []rune(outTerm) {
		if shape[j] != size[r] {
			return nil, fmt.Errorf("output dim %d is %d but letter %q has size %d", j, shape[j], r, size[r])
		}
		outStrides[pos[r]] = ost[j]
	}
	out := NewTensor(ir.F32, shape...)
	idx := make([]int, len(letters))
	for it := range numel(dims) {
		unravel(it, dims, idx)
		p := 1.0
		for i, x := range xs {
			off := 0
			for l, v := range idx {
				off += v * strides[i][l]
			}
			p *= x.Data[off]
		}
		off := 0
		for l, v := range idx {
			off += v * outStrides[l]
		}
		out.Data[off] += p
	}
	return out, nil
}
