package runtime

import (
	"fmt"
	"slices"
	"strings"
)

// Einsum returns Σ, over the letters missing from the output, of the
// product of the f32 operands, as spec says ("bhnd,bhne->bhde": one term
// per operand, one lowercase letter per dim, the output after "->"). A
// letter repeated within one term reads the diagonal.
//
// Two operands without repeated letters, the common case, run as one
// batched MatMul between transposes; one operand without repeated letters
// as a sum and a transpose. Anything else loops over every assignment of
// the letters, accumulating in float64. It panics if spec does not fit
// the operands.
func Einsum(spec string, xs ...*Tensor) *Tensor {
	terms, outTerm, size := parseEinsum(spec, xs)
	shape := make([]int, len(outTerm))
	for i, r := range outTerm {
		shape[i] = size[r]
	}
	simple := true
	for _, t := range terms {
		if hasRepeat(t) {
			simple = false
		}
	}
	switch {
	case simple && len(xs) == 1:
		x, t := sumAbsent(xs[0], terms[0], outTerm, "")
		return permuteTo(x, t, outTerm)
	case simple && len(xs) == 2:
		return einsumMatMul(xs[0], xs[1], terms[0], terms[1], outTerm, size)
	}
	return einsumLoop(xs, terms, outTerm, size, shape)
}

// parseEinsum splits spec into terms and checks it against the operands,
// returning the size of each letter.
func parseEinsum(spec string, xs []*Tensor) (terms []string, out string, size map[rune]int) {
	fail := func(format string, a ...any) {
		panic(fmt.Sprintf("runtime.Einsum: %q: %s", spec, fmt.Sprintf(format, a...)))
	}
	lhs, out, ok := strings.Cut(spec, "->")
	if !ok {
		fail("no ->")
	}
	terms = strings.Split(lhs, ",")
	if len(terms) != len(xs) {
		fail("%d terms for %d operands", len(terms), len(xs))
	}
	size = map[rune]int{}
	for i, t := range terms {
		x := xs[i]
		if x.DType != F32 {
			fail("operand %d is %s, want f32", i, x.DType)
		}
		if len(t) != len(x.Shape) {
			fail("term %q for operand %d of shape %v", t, i, x.Shape)
		}
		for j, r := range t {
			if r < 'a' || r > 'z' {
				fail("%q is not a lowercase letter", r)
			}
			if s, ok := size[r]; ok && s != x.Shape[j] {
				fail("letter %q has size %d and %d", r, s, x.Shape[j])
			}
			size[r] = x.Shape[j]
		}
	}
	for i, r := range out {
		if _, ok := size[r]; !ok || strings.ContainsRune(out[i+1:], r) {
			fail("output letter %q repeats or is in no operand", r)
		}
	}
	return terms, out, size
}

func hasRepeat(term string) bool {
	for i, r := range term {
		if strings.ContainsRune(term[i+1:], r) {
			return true
		}
	}
	return false
}

// sumAbsent sums x (with term) over its letters that are in neither keep
// nor other, returning the result and its term.
func sumAbsent(x *Tensor, term, keep, other string) (*Tensor, string) {
	var axes []int
	var rest []rune
	for i, r := range term {
		if !strings.ContainsRune(keep, r) && !strings.ContainsRune(other, r) {
			axes = append(axes, i)
		} else {
			rest = append(rest, r)
		}
	}
	if len(axes) == 0 {
		return x, term
	}
	return ReduceSum(x, axes, false), string(rest)
}

// permuteTo transposes x from term's letter order to want's (the same
// letters), returning x itself when the order already matches.
func permuteTo(x *Tensor, term, want string) *Tensor {
	if term == want {
		return x
	}
	perm := make([]int, len(want))
	for i, r := range want {
		perm[i] = strings.IndexRune(term, r)
	}
	return Transpose(x, perm)
}

// einsumMatMul computes a two-operand einsum as a batched matmul: x
// becomes [batch, m, k] and y [batch, k, n], where batch are the letters
// in both operands and the output, k those in both but not the output,
// and m and n those in the output from one operand only.
func einsumMatMul(x, y *Tensor, tx, ty, out string, size map[rune]int) *Tensor {
	x, tx = sumAbsent(x, tx, out, ty)
	y, ty = sumAbsent(y, ty, out, tx)
	var batch, contr, xfree, yfree string
	for _, r := range tx {
		inY, inOut := strings.ContainsRune(ty, r), strings.ContainsRune(out, r)
		switch {
		case inY && inOut:
			batch += string(r)
		case inY:
			contr += string(r)
		default:
			xfree += string(r)
		}
	}
	for _, r := range ty {
		if !strings.ContainsRune(tx, r) {
			yfree += string(r)
		}
	}
	prod := func(letters string) int {
		n := 1
		for _, r := range letters {
			n *= size[r]
		}
		return n
	}
	nb, m, k, n := prod(batch), prod(xfree), prod(contr), prod(yfree)
	xm := permuteTo(x, tx, batch+xfree+contr)
	ym := permuteTo(y, ty, batch+contr+yfree)
	res := New(F32, nb, m, n)
	idx := make([]int, nb)
	for i := range idx {
		idx[i] = i
	}
	gemm(res.F, xm.F, ym.F, idx, idx, m, k, n)
	got := batch + xfree + yfree
	var shape []int
	for _, r := range got {
		shape = append(shape, size[r])
	}
	res.Shape = cloneInts(shape)
	return permuteTo(res, got, out)
}

// einsumLoop evaluates an einsum by its definition: for every assignment
// of the letters it adds the product of the operands' elements to the
// output element the output letters select.
func einsumLoop(xs []*Tensor, terms []string, outTerm string, size map[rune]int, shape []int) *Tensor {
	var letters []rune
	for _, r := range outTerm + strings.Join(terms, "") {
		if !slices.Contains(letters, r) {
			letters = append(letters, r)
		}
	}
	pos := map[rune]int{}
	dims := make([]int, len(letters))
	for i, r := range letters {
		pos[r] = i
		dims[i] = size[r]
	}
	// strides[i][l]: how far operand i's offset moves per step of letter
	// l, summed over the letter's occurrences (which walks a diagonal).
	strides := make([][]int, len(xs)+1)
	for i, t := range append(slices.Clone(terms), outTerm) {
		strides[i] = make([]int, len(letters))
		var st []int
		if i < len(xs) {
			st = stridesOf(xs[i].Shape)
		} else {
			st = stridesOf(shape)
		}
		for j, r := range t {
			strides[i][pos[r]] += st[j]
		}
	}
	acc := make([]float64, numel(shape))
	total := numel(dims)
	idx := make([]int, len(letters))
	offs := make([]int, len(xs)+1)
	for range total {
		p := 1.0
		for i, x := range xs {
			p *= float64(x.F[offs[i]])
		}
		acc[offs[len(xs)]] += p
		for l := len(letters) - 1; l >= 0; l-- {
			idx[l]++
			for i := range offs {
				offs[i] += strides[i][l]
			}
			if idx[l] < dims[l] {
				break
			}
			for i := range offs {
				offs[i] -= idx[l] * strides[i][l]
			}
			idx[l] = 0
		}
	}
	out := New(F32, shape...)
	for i, v := range acc {
		out.F[i] = float32(v)
	}
	return out
}
