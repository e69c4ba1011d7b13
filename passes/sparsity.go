package passes

import "github.com/attnc/attnc/ir"

// Sparsity marks the attention ops whose masks kernels may classify per
// tile of (query, key) pairs by interval analysis (ir.Expr.Bounds): a
// tile where the mask is always false is skipped, one where it is always
// true runs without evaluating the mask. Causal, sliding-window and
// prefix-LM masks are all of this kind; the interval of q over a tile is
// its range of query indices, and likewise for k.
//
// Requires: a verified module.
//
// Guarantees: every attention and attention_grad op whose mask reads no
// captured tensor carries tiles = interval; nothing else changes. A mask
// that reads a tensor (a document mask) depends on data, which interval
// analysis does not see, so it is left to the per-pair mask (run-time
// block masks are a later pass).
//
// Why: the sizes of the tiles and of N are known only when the kernel
// runs, so the classification itself happens there; deciding that it is
// sound — the mask depends only on indices — is this pass's job, not the
// renderer's.
//
//	%7 = attention %4, %5, %6 {mask = (k <= q), scale = 0.25}
//	  ⟶ %7 = attention %4, %5, %6 {mask = (k <= q), scale = 0.25, tiles = interval}
func Sparsity(m *ir.Module) error {
	for _, in := range m.Instrs {
		if in.Op != ir.OpAttention && in.Op != ir.OpAttentionGrad {
			continue
		}
		mask := in.Attrs.Expr("mask")
		if mask == nil || len(mask.Captures()) > 0 {
			continue
		}
		in.Attrs["tiles"] = ir.WordAttr("interval")
	}
	return nil
}
