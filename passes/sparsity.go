package passes

import "github.com/attnc/attnc/ir"

// Sparsity marks the attention ops whose masks kernels may classify per
// tile of (query, key) pairs by interval analysis: a tile where the mask
// is always false is skipped, one where it is always true runs without
// evaluating the mask. The interval of q over a tile is its range of
// query indices, and likewise for k; a captured tensor's over a box of
// its indices is the least and greatest element there, which the kernel
// reads from the data (rt.IvCapture), so a document mask (doc[b, q] ==
// doc[b, k]) skips the tiles between documents at run time.
//
// Requires: a verified module.
//
// Guarantees: every attention and attention_grad op with a mask carries
// tiles = interval; nothing else changes. Every function and operator of
// a mask has an interval rule (ir/exprfuncs.go, tested for soundness), a
// capture's interval is the data's, and a box that reaches outside its
// tensor or holds a NaN claims nothing, so the classification is sound.
//
// Why: the sizes of the tiles and of N (and a document mask's data) are
// known only when the kernel runs, so the classification itself happens
// there; deciding that it is sound is this pass's job, not the
// renderer's.
//
//	%7 = attention %4, %5, %6 {mask = (k <= q), scale = 0.25}
//	  ⟶ %7 = attention %4, %5, %6 {mask = (k <= q), scale = 0.25, tiles = interval}
func Sparsity(m *ir.Module) error {
	for _, in := range m.Instrs {
		if in.Op != ir.OpAttention && in.Op != ir.OpAttentionGrad {
			continue
		}
		if in.Attrs.Expr("mask") == nil {
			continue
		}
		in.Attrs["tiles"] = ir.WordAttr("interval")
	}
	return nil
}
