package eval

import "github.com/attnc/attnc/ir"

// swapHeads returns x with its axes 1 and 2 exchanged: [B, N, H, …] ⇄
// [B, H, N, …].
func swapHeads(x *Tensor) *Tensor {
	perm := make([]int, len(x.Shape))
	for i := range perm {
		perm[i] = i
	}
	perm[1], perm[2] = 2, 1
	shape := append([]int{}, x.Shape...)
	shape[1], shape[2] = shape[2], shape[1]
	return transpose(x, perm, shape)
}

// inBHND evaluates an attention or attention_grad with layout = bnhd by
// its definition: the same op in the default layout on the operands with
// the axes of H and N exchanged (q, k, v, and for attention_grad lse, the
// row sums and dy; captured tensors are as they are), its results
// exchanged back (the output and lse; the gradients of q, k and v, not
// those of captures). run evaluates the op in the default layout.
func inBHND(in *ir.Instr, args []*Tensor, run func(*ir.Instr, []*Tensor) (*Tensor, error)) (*Tensor, error) {
	attrs := ir.Attrs{}
	for k, v := range in.Attrs {
		if k != "layout" {
			attrs[k] = v
		}
	}
	inner := &ir.Instr{ID: in.ID, Op: in.Op, Args: in.Args, Attrs: attrs}
	args = append([]*Tensor(nil), args...)
	nfwd := len(args) // the forward operands: all of attention's
	if in.Op == ir.OpAttentionGrad {
		nfwd -= 3
		for i := nfwd; i < len(args); i++ {
			args[i] = swapHeads(args[i]) // lse, rs, dy
		}
	}
	// q, k and v come first; captures follow.
	nqkv := 2
	if r := in.Attrs.Str("returns"); r == "" || r == "out" {
		nqkv = 3
	}
	for i := range min(nqkv, nfwd) {
		args[i] = swapHeads(args[i])
	}
	t, err := run(inner, args)
	if err != nil {
		return nil, err
	}
	if t.Tuple == nil {
		return swapHeads(t), nil
	}
	out := &Tensor{Tuple: append([]*Tensor(nil), t.Tuple...)}
	for i, e := range out.Tuple {
		swap := true // attention with_lse: the output and lse
		if in.Op == ir.OpAttentionGrad {
			swap = in.Attrs.Ints("wrt")[i] < nqkv
		}
		if swap {
			out.Tuple[i] = swapHeads(e)
		}
	}
	return out, nil
}
