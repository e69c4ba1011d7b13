package passes

import "github.com/attnc/attnc/ir"

// NormScale folds the product by a norm's affine weight into the norm's
// gradient: layer_norm_grad (or rms_norm_grad) of x at dy·γ, where the
// product is read by nothing else and γ is a vector along the last axis,
// becomes the gradient with scale = true and γ as its third operand,
// which the runtime's kernel applies to each row as it reads it.
//
// Requires: a verified module after autodiff (which writes these
// gradients: the norm block's weight, layer_norm(x)·γ + β, sends dy·γ to
// layer_norm's rule).
//
// Guarantees: the same values (the product is Binary's, element for
// element); a product read elsewhere too stays as it is, and so does
// one whose other operand is not such a vector. The folded product stays
// in the module, unused (lowering drops it).
//
// Why: dy·γ on its own is a pass over memory as large as the activation,
// once for every norm of the model, that the gradient's kernel does for
// free while it holds the row.
//
//	%7 = mul %5, %2 : f32[B, N, 64]                       (%2: f32[64])
//	%8 = layer_norm_grad %1, %7 {eps = 1e-05} : f32[B, N, 64]
//	  ⟶ %8 = layer_norm_grad %1, %5, %2 {eps = 1e-05, scale = true} : f32[B, N, 64]
func NormScale(m *ir.Module) error {
	uses := map[*ir.Instr]int{}
	for _, in := range m.Instrs {
		for _, a := range in.Args {
			uses[a]++
		}
	}
	for _, o := range m.Outputs {
		uses[o.Value]++
	}
	for _, in := range m.Instrs {
		if in.Op != ir.OpLayerNormGrad && in.Op != ir.OpRMSNormGrad || in.Attrs.Bool("scale") {
			continue
		}
		x, p := in.Args[0], in.Args[1]
		if p.Op != ir.OpMul || uses[p] != 1 || x.Type.Rank() < 1 {
			continue
		}
		last := x.Type.Shape[x.Type.Rank()-1:]
		for side := range 2 {
			dy, g := p.Args[side], p.Args[1-side]
			if !dy.Type.Equal(x.Type) || g.Type.DType != ir.F32 || !ir.IsVectorAlong(g.Type.Shape, last[0]) {
				continue
			}
			in.Args = []*ir.Instr{x, dy, g}
			in.Attrs = ir.Attrs{"eps": in.Attrs["eps"], "scale": ir.BoolAttr(true)}
			break
		}
	}
	return nil
}
