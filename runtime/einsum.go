package runtime

import (
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Einsum returns Σ, over the letters missing from the output, of the
// product of the f32 operands, as spec says ("bhnd,bhne->bhde": one term
// per operand, one lowercase letter per dim, the output after "->"). A
// letter repeated within one term reads the diagonal.
//
// Two operands without repeated letters, the common case, run as one
// batched GEMM that reads the operands in place when each group of
// letters (batch, rows, contracted, columns) is one stride of memory, as
// for "blk,bln->kn" (a weight's gradient summed over a batch) and
// "bln,kn->blk" (a product with a transposed weight), and between
// transposes otherwise; one operand without repeated letters
// as a sum and a transpose. Anything else loops over every assignment of
// the letters, accumulating in float64. It panics if spec does not fit
// the operands.
func Einsum(spec string, xs ...*Tensor) *Tensor { return einsum(spec, nil, xs) }

// EinsumBias returns Einsum(spec, xs...) + bias, bias an f32 row of the
// result (its shape the result's last dims, after 1s): the epilogue pass's
// einsum {bias = true}. Where the product runs as one GEMM (the usual
// case) the result starts as the bias rows and the product is added into
// it: no pass over the result of its own.
func EinsumBias(spec string, bias *Tensor, xs ...*Tensor) *Tensor {
	if bias == nil || bias.DType != F32 {
		panic(fmt.Sprintf("runtime.EinsumBias: %q: the bias must be an f32 tensor", spec))
	}
	return einsum(spec, bias, xs)
}

func einsum(spec string, bias *Tensor, xs []*Tensor) *Tensor {
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
	var res *Tensor
	switch {
	case simple && len(xs) == 1:
		x, t := sumAbsent(xs[0], terms[0], outTerm, "")
		res = permuteTo(x, t, outTerm)
	case simple && len(xs) == 2:
		rowBias := bias
		if bias != nil && !isRow(bias.Shape, shape) {
			rowBias = nil // Binary below broadcasts it, or says why not
		}
		var added bool
		if res, added = einsumMatMul(xs[0], xs[1], terms[0], terms[1], outTerm, size, rowBias); added {
			return res
		}
	default:
		res = einsumLoop(xs, terms, outTerm, size, shape)
	}
	if bias != nil {
		return Binary(Add, res, bias, res.Shape)
	}
	return res
}

// einsumSpecs caches the terms of the specs seen (a training step calls
// the same few specs thousands of times): spec → einsumSpec. Callers
// only read the terms.
var einsumSpecs sync.Map

type einsumSpec struct {
	terms []string
	out   string
}

// parseEinsum splits spec into terms and checks it against the operands,
// returning the size of each letter.
func parseEinsum(spec string, xs []*Tensor) (terms []string, out string, size map[rune]int) {
	fail := func(format string, a ...any) {
		panic(fmt.Sprintf("runtime.Einsum: %q: %s", spec, fmt.Sprintf(format, a...)))
	}
	parsed, ok := einsumSpecs.Load(spec)
	if !ok {
		lhs, out, ok := strings.Cut(spec, "->")
		if !ok {
			fail("no ->")
		}
		parsed, _ = einsumSpecs.LoadOrStore(spec, einsumSpec{strings.Split(lhs, ","), out})
	}
	terms, out = parsed.(einsumSpec).terms, parsed.(einsumSpec).out
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
// and m and n those in the output from one operand only. A bias (a row
// of the result) is added when the product runs as one GEMM whose result
// needs no permuting, which added reports.
func einsumMatMul(x, y *Tensor, tx, ty, out string, size map[rune]int, bias *Tensor) (res *Tensor, added bool) {
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
	got := batch + xfree + yfree
	if got != out {
		bias = nil
	}
	if res := einsumStrided(x, y, tx, ty, batch, contr, xfree, yfree, size, nb, m, k, n, bias); res != nil {
		return permuteTo(res, got, out), bias != nil
	}
	xm := permuteTo(x, tx, batch+xfree+contr)
	ym := permuteTo(y, ty, batch+contr+yfree)
	res = New(F32, nb, m, n)
	idx := make([]int, nb)
	for i := range idx {
		idx[i] = i
	}
	gemm(res.F, xm.F, ym.F, idx, idx, m, k, n)
	var shape []int
	for _, r := range got {
		shape = append(shape, size[r])
	}
	res.Shape = cloneInts(shape)
	return permuteTo(res, got, out), false
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

// einsumStrided runs a two-operand einsum, classified as in einsumMatMul,
// as one packed GEMM over strided views of x and y, without copying
// them: it needs the SIMD GEMM, a product big enough to pack, and each of
// the letter groups xfree and contr of x, and contr and yfree of y, to
// walk memory with one stride (letters of size 1 aside). It returns the
// result with the letters batch+xfree+yfree, or nil when it does not
// apply.
func einsumStrided(x, y *Tensor, tx, ty, batch, contr, xfree, yfree string, size map[rune]int, nb, m, k, n int, bias *Tensor) *Tensor {
	kern := activeGemm
	if kern == nil || m*n*k < matAddPacked {
		return nil
	}
	sx, sy := letterStrides(x.Shape, tx), letterStrides(y.Shape, ty)
	xrs, ok1 := mergedStride(xfree, sx, size)
	xcs, ok2 := mergedStride(contr, sx, size)
	yrs, ok3 := mergedStride(contr, sy, size)
	ycs, ok4 := mergedStride(yfree, sy, size)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return nil
	}
	var shape []int
	for _, r := range batch + xfree + yfree {
		shape = append(shape, size[r])
	}
	res := newUninit(F32, shape...) // the product is stored, not added, or added to the bias rows
	if bias != nil {
		fillRows(res.F, bias.F)
	}
	co, xo, yo := make([]int, nb), make([]int, nb), make([]int, nb)
	bdims := make([]int, len(batch))
	for i, r := range batch {
		bdims[i] = size[r]
	}
	idx := make([]int, len(batch))
	for b := range nb {
		co[b] = b * m * n
		for i, r := range batch {
			xo[b] += idx[i] * sx[r]
			yo[b] += idx[i] * sy[r]
		}
		for i := len(idx) - 1; i >= 0; i-- {
			idx[i]++
			if idx[i] < bdims[i] {
				break
			}
			idx[i] = 0
		}
	}
	packedGemm(kern, &gemmOperand{res.F, co, n, 1}, &gemmOperand{x.F, xo, xrs, xcs}, &gemmOperand{y.F, yo, yrs, ycs}, m, k, n, bias == nil)
	return res
}

// isRow reports whether x is a row of shape: after leading 1s, a suffix
// of it.
func isRow(x, shape []int) bool {
	lead := 0
	for lead < len(x) && x[lead] == 1 {
		lead++
	}
	rest := x[lead:]
	return len(rest) <= len(shape) && slices.Equal(rest, shape[len(shape)-len(rest):])
}

// fillRows fills dst with copies of row, one after another (len(dst) a
// multiple of len(row), which is not empty).
func fillRows(dst, row []float32) {
	if len(row) == 0 {
		return
	}
	ParallelFor(len(dst)/len(row), max(1, elemGrain/len(row)), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			copy(dst[i*len(row):(i+1)*len(row)], row)
		}
	})
}

// letterStrides maps each letter of term to the row-major stride of its
// dim in a tensor of shape.
func letterStrides(shape []int, term string) map[rune]int {
	st := stridesOf(shape)
	out := make(map[rune]int, len(term))
	for i, r := range []rune(term) {
		out[r] = st[i]
	}
	return out
}

// mergedStride returns the stride of the index that runs over letters
// row-major (the first letter outermost) when those letters walk memory
// as one stride: each letter's stride is the next one's times its size.
// Letters of size 1 never move and are skipped; no letters at all (or
// only 1s) give stride 0, which nothing multiplies.
func mergedStride(letters string, st map[rune]int, size map[rune]int) (int, bool) {
	stride, first := 0, true
	for _, r := range letters {
		if size[r] == 1 {
			continue
		}
		if !first && st[r]*size[r] != stride {
			return 0, false
		}
		stride, first = st[r], false
	}
	return stride, true
}
