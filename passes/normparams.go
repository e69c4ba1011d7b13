package passes

import (
	"fmt"
	"slices"

	"github.com/attnc/attnc/ir"
)

// NormParams folds a norm's affine part into the norm's ops, in both
// directions of a training step:
//
//   - backward: the sums that give the gradients of the weight and bias,
//     reduce_sum(mul(dy, norm(x))) and reduce_sum(dy) over every axis but
//     the last, become results of the norm's gradient: layer_norm_grad of
//     x at dy with scale = true (normscale's form) gets params = true and
//     returns the tuple (dx, dγ, dβ), rms_norm_grad the pair (dx, dγ);
//     the gradient and the sums turn into extracts of it, keeping their
//     identity for their users.
//   - forward: add(mul(norm(x), γ), β), γ and β vectors along the last
//     axis, either operand order, where the norm is read only by the
//     mul and the mul only by the add, becomes layer_norm(x, γ, β)
//     {affine = true}; for rms_norm the mul alone becomes rms_norm(x, γ)
//     {affine = true}.
//
// Requires: a verified module after autodiff (affine norms have no
// gradient rule) and after normscale (whose scaled gradients this pass
// extends); the backward fold runs first, since the product dy·norm(x)
// it removes is the norm's second reader.
//
// Guarantees: the same values up to the order of the float64 sums (the
// products and the affine part are rounded as mul and add round them);
// only exact matches fold: the norm read by the product must be of the
// gradient's x, kind and eps, the product read by nothing but its sum,
// the sums over exactly the leading axes with no kept dims; a gradient
// without a foldable weight sum is left as it is, and a layer norm's
// without a bias sum folds the weight's alone (dβ unused). Folded
// products and gradients stay in the module, unused (lowering drops
// them); uses are counted over live instructions, so the dead ones of
// the folds before do not block a fold.
//
// A norm gradient with params also takes in the add of the residual
// path's gradient to its dx (accumulate = true), where that add reads dx
// alone and the other addend is defined before the gradient.
//
// Why: each affine norm cost a training step six kernels of its own,
// each a pass over memory the size of the activation: the norm, the
// fused γ·y + β, and in the backward pass dy·y, its sum, the sum of dy
// and the gradient. The norm's row kernels hold each row already, so
// the affine part and the column sums cost them a few vector ops a row
// and the step two kernels.
//
//	%51 = layer_norm %48 {eps = 1e-05} : f32[B, N, 64]
//	%52 = mul %51, %49 : f32[B, N, 64]                     (%49, %50: f32[64])
//	%53 = add %52, %50 : f32[B, N, 64]
//	%469 = reduce_sum %465 {axes = [0, 1]} : f32[64]
//	%471 = mul %465, %51 : f32[B, N, 64]
//	%472 = reduce_sum %471 {axes = [0, 1]} : f32[64]
//	%473 = layer_norm_grad %48, %465, %49 {eps = 1e-05, scale = true} : f32[B, N, 64]
//	  ⟶ %53 = layer_norm %48, %49, %50 {affine = true, eps = 1e-05} : f32[B, N, 64]
//	  ⟶ %474 = layer_norm_grad %48, %465, %49 {eps = 1e-05, params = true, scale = true} : (f32[B, N, 64], f32[64], f32[64])
//	    %469 = extract %474 {index = 2} : f32[64]
//	    %472 = extract %474 {index = 1} : f32[64]
//	    %473 = extract %474 {index = 0} : f32[B, N, 64]
func NormParams(m *ir.Module) error {
	if err := foldNormGradParams(m); err != nil {
		return err
	}
	foldNormGradAccumulate(m)
	foldNormAffine(m)
	return nil
}

// foldNormGradAccumulate folds add(r, dx), dx the first result of a norm
// gradient with params read by that add alone and r of x's type defined
// before the gradient, into the gradient: accumulate = true with r as a
// fourth operand, the row kernel adding r's row as it writes dx's (the
// residual path's gradient, which a pre-norm block adds to the norm's).
// The add keeps its identity as an extract of dx.
func foldNormGradAccumulate(m *ir.Module) {
	live, uses, output := liveUses(m)
	for _, add := range m.Instrs {
		if add.Op != ir.OpAdd || !live[add] {
			continue
		}
		for side := range 2 {
			e, r := add.Args[side], add.Args[1-side]
			if e == r || e.Op != ir.OpExtract || e.Attrs.Int("index") != 0 || len(uses[e]) != 1 || output[e] {
				continue
			}
			g := e.Args[0]
			if g.Op != ir.OpLayerNormGrad && g.Op != ir.OpRMSNormGrad || !g.Attrs.Bool("params") || g.Attrs.Bool("accumulate") ||
				!r.Type.Equal(g.Args[0].Type) || !add.Type.Equal(r.Type) || slices.Index(m.Instrs, r) > slices.Index(m.Instrs, g) {
				continue
			}
			attrs := ir.Attrs{"accumulate": ir.BoolAttr(true)}
			for k, v := range g.Attrs {
				attrs[k] = v
			}
			g.Args, g.Attrs = append(slices.Clone(g.Args), r), attrs
			add.Op, add.Args, add.Attrs = ir.OpExtract, []*ir.Instr{g}, ir.Attrs{"index": ir.IntAttr(0)}
			break
		}
	}
}

// liveUses returns, for each live instruction of m (one an output
// depends on), the live instructions that read it, and which values are
// outputs.
func liveUses(m *ir.Module) (live map[*ir.Instr]bool, uses map[*ir.Instr][]*ir.Instr, output map[*ir.Instr]bool) {
	live, uses, output = map[*ir.Instr]bool{}, map[*ir.Instr][]*ir.Instr{}, map[*ir.Instr]bool{}
	for _, o := range m.Outputs {
		live[o.Value], output[o.Value] = true, true
	}
	for i := len(m.Instrs) - 1; i >= 0; i-- {
		in := m.Instrs[i]
		if !live[in] {
			continue
		}
		for _, a := range in.Args {
			live[a] = true
			uses[a] = append(uses[a], in)
		}
	}
	return live, uses, output
}

// sumsLeading reports whether r is reduce_sum of an f32 tensor over
// exactly its leading axes (every one but the last), without kept dims.
func sumsLeading(r *ir.Instr) bool {
	if r.Op != ir.OpReduceSum || r.Attrs.Bool("keepdims") || r.Type.DType != ir.F32 {
		return false
	}
	rank := r.Args[0].Type.Rank()
	axes := map[int]bool{}
	for _, a := range r.Attrs.Ints("axes") {
		if a < 0 {
			a += rank
		}
		axes[a] = true
	}
	if rank < 1 || len(axes) != rank-1 {
		return false
	}
	for a := range rank - 1 {
		if !axes[a] {
			return false
		}
	}
	return true
}

// normOf returns the norm op whose gradient op is g's.
func normOf(g ir.Op) ir.Op {
	if g == ir.OpRMSNormGrad {
		return ir.OpRMSNorm
	}
	return ir.OpLayerNorm
}

func foldNormGradParams(m *ir.Module) error {
	live, uses, output := liveUses(m)
	b := ir.Continue(m)
	for _, g := range slices.Clone(m.Instrs) {
		if g.Op != ir.OpLayerNormGrad && g.Op != ir.OpRMSNormGrad || !live[g] ||
			!g.Attrs.Bool("scale") || g.Attrs.Bool("params") {
			continue
		}
		x, dy, gamma := g.Args[0], g.Args[1], g.Args[2]
		eps := g.Attrs.Float("eps")
		var dg, db *ir.Instr
		for _, u := range uses[dy] {
			switch {
			case u.Op == ir.OpReduceSum && g.Op == ir.OpLayerNormGrad && db == nil && sumsLeading(u):
				db = u
			case u.Op == ir.OpMul && dg == nil && len(uses[u]) == 1 && !output[u] && u.Type.Equal(x.Type) &&
				sumsLeading(uses[u][0]):
				y := u.Args[0]
				if y == dy {
					y = u.Args[1]
				}
				if y.Op == normOf(g.Op) && y.Args[0] == x && !y.Attrs.Bool("affine") && y.Attrs.Float("eps") == eps {
					dg = uses[u][0]
				}
			}
		}
		if dg == nil {
			continue
		}
		// The tuple goes before the first of the values it replaces; its
		// operands must already be defined there.
		first := slices.Index(m.Instrs, g)
		for _, r := range []*ir.Instr{dg, db} {
			if r != nil {
				first = min(first, slices.Index(m.Instrs, r))
			}
		}
		at := m.Instrs[first]
		if slices.ContainsFunc(g.Args, func(a *ir.Instr) bool { return slices.Index(m.Instrs, a) > first }) {
			continue
		}
		attrs := ir.Attrs{"eps": g.Attrs["eps"], "scale": ir.BoolAttr(true), "params": ir.BoolAttr(true)}
		t := b.Before(at, g.Op, attrs, x, dy, gamma)
		if t == nil {
			return fmt.Errorf("normparams: %%%d: %w", g.ID, b.Err())
		}
		for i, r := range []*ir.Instr{g, dg, db} {
			if r != nil {
				r.Op, r.Args, r.Attrs = ir.OpExtract, []*ir.Instr{t}, ir.Attrs{"index": ir.IntAttr(int64(i))}
			}
		}
	}
	return nil
}

func foldNormAffine(m *ir.Module) {
	live, uses, output := liveUses(m)
	row := func(p *ir.Instr, x ir.Type) bool {
		return p.Type.DType == ir.F32 && ir.IsVectorAlong(p.Type.Shape, x.Shape[x.Rank()-1])
	}
	// other returns in's operand that is not v, if in reads v once.
	other := func(in, v *ir.Instr) *ir.Instr {
		switch {
		case in.Args[0] == v && in.Args[1] != v:
			return in.Args[1]
		case in.Args[1] == v && in.Args[0] != v:
			return in.Args[0]
		}
		return nil
	}
	for _, y := range m.Instrs {
		if y.Op != ir.OpLayerNorm && y.Op != ir.OpRMSNorm || !live[y] || y.Attrs.Bool("affine") ||
			len(uses[y]) != 1 || output[y] {
			continue
		}
		mul := uses[y][0]
		if mul.Op != ir.OpMul || !mul.Type.Equal(y.Type) {
			continue
		}
		gamma := other(mul, y)
		if gamma == nil || !row(gamma, y.Type) {
			continue
		}
		attrs := ir.Attrs{"eps": y.Attrs["eps"], "affine": ir.BoolAttr(true)}
		if y.Op == ir.OpRMSNorm {
			mul.Op, mul.Args, mul.Attrs = ir.OpRMSNorm, []*ir.Instr{y.Args[0], gamma}, attrs
			continue
		}
		if len(uses[mul]) != 1 || output[mul] {
			continue
		}
		add := uses[mul][0]
		if add.Op != ir.OpAdd || !add.Type.Equal(y.Type) {
			continue
		}
		beta := other(add, mul)
		if beta == nil || !row(beta, y.Type) {
			continue
		}
		add.Op, add.Args, add.Attrs = ir.OpLayerNorm, []*ir.Instr{y.Args[0], gamma, beta}, attrs
	}
}
