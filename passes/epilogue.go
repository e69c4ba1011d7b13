package passes

import "github.com/attnc/attnc/ir"

// Epilogue folds the bias add after a product into the product: an add
// of an einsum (of two or more operands, read by nothing else) and a row
// of the result (a bias: after leading 1s, the result's last dims)
// becomes the einsum with bias = true and the bias as its last operand,
// which the runtime runs as one GEMM adding into the bias rows.
//
// Requires: a verified module after autodiff and contract (an einsum
// with a bias has no gradient rule; contract makes the einsums).
//
// Guarantees: the same values, up to float32 rounding (the bias is added
// first); an add whose only user is an elementwise op the fuse pass
// would put in its chain (a GELU after the bias) is left to that chain,
// where the bias costs nothing extra; the folded einsum stays in the
// module, unused (lowering drops it).
//
// Why: a bias add on its own reads the product and writes a new tensor
// of its size, a pass over memory as large as the product's output (the
// q, k and v projections, whose results go to reshapes and transposes,
// and the output projections before a residual add); folded, the result
// is written once.
//
//	%5 = einsum %1, %2 {spec = "abc,cd->abd"} : f32[B, N, 64]
//	%6 = add %5, %3 : f32[B, N, 64]                        (%3: f32[64])
//	  ⟶ %6 = einsum %1, %2, %3 {spec = "abc,cd->abd", bias = true} : f32[B, N, 64]
func Epilogue(m *ir.Module) error {
	// A fold can turn an add's user from an elementwise op into a
	// product (dx = dq·Wqᵀ + (dk·Wkᵀ + dv·Wvᵀ): the outer add becomes an
	// einsum), which lets the inner add fold too: repeat until nothing
	// changes.
	for epilogueOnce(m) {
	}
	return nil
}

// epilogueOnce folds what it can in one walk and reports whether it
// folded anything.
func epilogueOnce(m *ir.Module) bool {
	uses := map[*ir.Instr][]*ir.Instr{}
	for _, in := range m.Instrs {
		for _, a := range in.Args {
			uses[a] = append(uses[a], in)
		}
	}
	output := map[*ir.Instr]bool{}
	for _, o := range m.Outputs {
		output[o.Value] = true
	}
	changed := false
	for _, in := range m.Instrs {
		if in.Op != ir.OpAdd || in.Type.DType != ir.F32 || joinsChain(in, uses[in]) {
			continue
		}
		for side := range 2 {
			e, b := in.Args[side], in.Args[1-side]
			if e.Op != ir.OpEinsum || e.Attrs.Bool("bias") || len(e.Args) < 2 || len(uses[e]) != 1 || output[e] ||
				e.Type.DType != ir.F32 || !e.Type.Shape.Equal(in.Type.Shape) ||
				b.Type.DType != ir.F32 || !ir.IsRowOf(b.Type.Shape, in.Type.Shape) {
				continue
			}
			in.Op = ir.OpEinsum
			in.Args = append(append([]*ir.Instr(nil), e.Args...), b)
			in.Attrs = ir.Attrs{"spec": e.Attrs["spec"], "bias": ir.BoolAttr(true)}
			// The folded einsum is dead now; its operands' uses move to
			// in, which the next walk recounts.
			changed = true
			break
		}
	}
	return changed
}

// joinsChain reports whether the fuse pass would put in, an elementwise
// instruction, in a chain with its user: it has one, a fusible
// instruction of its shape. With several users (a GELU in the forward
// pass and its derivative in the backward) it is a chain's root on its
// own, and folding it into the product saves that pass.
func joinsChain(in *ir.Instr, users []*ir.Instr) bool {
	return len(users) == 1 && fusible(users[0]) && users[0].Type.Shape.Equal(in.Type.Shape)
}
