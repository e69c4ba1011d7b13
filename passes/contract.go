package passes

import (
	"strings"

	"github.com/attnc/attnc/ir"
)

// Contract rewrites the matmuls that autodiff and the layers produce
// around weights into einsums that say the whole contraction, so the
// runtime runs each as one GEMM reading its operands where they lie:
//
//   - a matmul reads through an operand that is a transpose (the
//     gradient x·wᵀ of a linear layer, and xᵀ·dy of its weight): the
//     einsum names the untransposed tensor with its letters permuted;
//   - a matmul of a batch of rows by a rank-2 weight becomes an einsum
//     too, so the batch and row letters merge into one tall product
//     instead of one small product per batch index;
//   - a reduce_sum over letters of an einsum it alone reads (the batch
//     axes autodiff sums a weight's gradient over) drops them from the
//     einsum's output: they become contracted letters.
//
// Requires: a verified module.
//
// Guarantees: the same values, up to float32 summation order; a matmul
// whose batch dims broadcast (one operand has 1 where the other has B) is
// left alone, as is every other op. Transposes and matmuls that become
// unused stay in the module; lowering drops them.
//
// Why: `transpose %x {perm = [0, 2, 1]}` then a batched matmul then a
// reduce_sum over the batch copies an activation, runs B small products
// and sums B weight-sized partials, where one product with k = B·N reads
// x in place (the GEMM packs strided operands); dims are linear in the
// IR's symbols, so B·N cannot be spelled as a reshape.
//
//	%5 = transpose %1 {perm = [0, 2, 1]} : f32[B, 8, N]
//	%6 = matmul %5, %4 : f32[B, 8, 16]
//	%7 = reduce_sum %6 {axes = [0]} : f32[8, 16]
//	  ⟶ %6 = einsum %1, %4 {spec = "acb,acd->abd"} : f32[B, 8, 16]
//	    %7 = einsum %1, %4 {spec = "acb,acd->bd"} : f32[8, 16]
//
// (%6 is then unused.)
func Contract(m *ir.Module) error {
	uses := map[*ir.Instr]int{}
	for _, in := range m.Instrs {
		for _, a := range in.Args {
			uses[a]++
		}
	}
	for _, o := range m.Outputs {
		uses[o.Value] += 2 // never folded into a reduction
	}
	for _, in := range m.Instrs {
		switch in.Op {
		case ir.OpMatMul:
			if spec, args, ok := matmulEinsum(in); ok {
				in.Op, in.Args, in.Attrs = ir.OpEinsum, args, ir.Attrs{"spec": ir.StringAttr(spec)}
			}
		case ir.OpReduceSum:
			e := in.Args[0]
			if e.Op != ir.OpEinsum || uses[e] != 1 || in.Attrs.Bool("keepdims") || e.Type.DType != ir.F32 {
				continue
			}
			lhs, out, ok := strings.Cut(e.Attrs.Str("spec"), "->")
			if !ok {
				continue
			}
			drop := map[int]bool{}
			for _, ax := range in.Attrs.Ints("axes") {
				drop[ax] = true
			}
			var kept []rune
			for i, r := range out {
				if !drop[i] {
					kept = append(kept, r)
				}
			}
			uses[e]--
			for _, a := range e.Args {
				uses[a]++
			}
			in.Op, in.Args = ir.OpEinsum, append([]*ir.Instr(nil), e.Args...)
			in.Attrs = ir.Attrs{"spec": ir.StringAttr(lhs + "->" + string(kept))}
		}
	}
	return nil
}

// matmulEinsum returns the einsum that computes the matmul in, reading
// through transposed operands, when that is worth it: an operand was a
// transpose, or a rank-2 weight multiplies a batch of matrices. Batch
// dims must match exactly (no broadcasting of 1s, which einsum letters
// cannot say).
func matmulEinsum(in *ir.Instr) (string, []*ir.Instr, bool) {
	x, y := in.Args[0], in.Args[1]
	rx, ry, ro := x.Type.Rank(), y.Type.Rank(), in.Type.Rank()
	nb := ro - 2
	if nb > 20 {
		return "", nil, false
	}
	for i, d := range x.Type.Shape[:rx-2] {
		if !d.Equal(in.Type.Shape[nb-(rx-2)+i]) {
			return "", nil, false
		}
	}
	for i, d := range y.Type.Shape[:ry-2] {
		if !d.Equal(in.Type.Shape[nb-(ry-2)+i]) {
			return "", nil, false
		}
	}
	// Letters: a… for the output's batch dims, then m, k, n.
	batch := make([]rune, nb)
	for i := range batch {
		batch[i] = rune('a' + i)
	}
	m, k, n := rune('a'+nb), rune('a'+nb+1), rune('a'+nb+2)
	termX := string(batch[nb-(rx-2):]) + string(m) + string(k)
	termY := string(batch[nb-(ry-2):]) + string(k) + string(n)
	out := string(batch) + string(m) + string(n)
	argX, tx, okX := throughTranspose(x, termX)
	argY, ty, okY := throughTranspose(y, termY)
	if !okX && !okY && !(ry == 2 && rx > 2) {
		return "", nil, false
	}
	return tx + "," + ty + "->" + out, []*ir.Instr{argX, argY}, true
}

// throughTranspose returns the operand to read for a value with einsum
// term: the transpose's operand with the letters permuted back when v
// is a transpose, else v itself (and false).
func throughTranspose(v *ir.Instr, term string) (*ir.Instr, string, bool) {
	if v.Op != ir.OpTranspose {
		return v, term, false
	}
	perm := v.Attrs.Ints("perm")
	letters := []rune(term)
	src := make([]rune, len(letters))
	for i, p := range perm {
		src[p] = letters[i]
	}
	return v.Args[0], string(src), true
}
