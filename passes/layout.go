package passes

import (
	"slices"

	"github.com/attnc/attnc/ir"
)

// Layout runs attention in the layout its operands come in: an attention
// op whose q, k and v are each a transpose [B, N, H, D] → [B, H, N, D]
// (split_heads: a projection reshaped into heads, then moved in front of
// the positions) reads the untransposed values in place, as attention
// {layout = bnhd}, and gives its output in [B, N, H, Dv], which
// merge_heads' transpose back and reshape then read as they are. Its
// attention_grad ops get the same layout: dy, the row sums and lse in the
// bnhd layout, the gradients of q, k and v in [B, N, H, D], where the
// backward of split_heads wanted them.
//
// Requires: a verified module after autodiff (which writes the
// attention_grad ops, and the row sums rowsum(dy ∘ out) that this pass
// recomputes in the new layout).
//
// Guarantees: the same values, exactly: the kernels read and write the
// same rows, H rows apart (runtime TestAttentionLayoutBNHD, and
// tests/layout_test.go through the reference for every stdlib model).
// Each rewritten op's old form stays in the module, unused (lowering
// drops it); where a user of an old value is not a transpose that the
// new layout makes an identity, it reads a transpose of the new value, so
// the rewrite is always sound, and saves the most when every transpose
// around the op cancels (the stdlib models: all of them). A transpose of
// a transpose that composes to the identity is replaced by the value
// under both.
//
// Why: a transpose is a copy of the whole tensor; self-attention pays
// eight of them per layer per training step (q, k, v and the output
// forward; dy and the three gradients backward), and they are as many
// steps of the program. The attention kernels pack their tiles anyway, so
// reading rows H·D apart costs nothing. FlashAttention's own layout is
// bnhd; the CUDA and Triton targets read strides the same way.
//
//	%4 = transpose %1 {perm = [0, 2, 1, 3]} : f32[B, 4, N, 16]      (and %5, %6 of %2, %3)
//	%7 = attention %4, %5, %6 {scale = 0.25} : f32[B, 4, N, 16]
//	%8 = transpose %7 {perm = [0, 2, 1, 3]} : f32[B, N, 4, 16]
//	  ⟶ %9 = attention %1, %2, %3 {layout = bnhd, scale = 0.25} : f32[B, N, 4, 16]
//	    (users of %8 read %9)
func Layout(m *ir.Module) error {
	b := ir.Continue(m)
	l := &layoutPass{m: m, b: b}
	for _, in := range slices.Clone(m.Instrs) {
		if in.Op == ir.OpAttention {
			l.attention(in)
		}
	}
	if err := b.Err(); err != nil {
		return err
	}
	removeDead(m, append(l.replaced, cancelTransposes(m)...))
	return nil
}

// removeDead deletes from m each instruction of cands that nothing reads
// (no instruction, no output), and then, the same way, the operands that
// only it read; sources (params, inputs) stay, whether read or not: they
// are the model's interface.
func removeDead(m *ir.Module, cands []*ir.Instr) {
	uses := map[*ir.Instr]int{}
	for _, in := range m.Instrs {
		for _, a := range in.Args {
			uses[a]++
		}
	}
	for _, o := range m.Outputs {
		uses[o.Value]++
	}
	dead := map[*ir.Instr]bool{}
	for len(cands) > 0 {
		in := cands[len(cands)-1]
		cands = cands[:len(cands)-1]
		if dead[in] || uses[in] > 0 || in.Op.Info().Class == ir.ClassSource {
			continue
		}
		dead[in] = true
		for _, a := range in.Args {
			uses[a]--
			cands = append(cands, a)
		}
	}
	m.Instrs = slices.DeleteFunc(m.Instrs, func(in *ir.Instr) bool { return dead[in] })
}

var (
	headsPerm = []int{0, 2, 1, 3} // [B, H, N, D] ⇄ [B, N, H, D]
	rowsPerm  = []int{0, 2, 1}    // [B, H, N] ⇄ [B, N, H]
)

func transposeAttrs(perm []int) ir.Attrs {
	p := make([]int64, len(perm))
	for i, v := range perm {
		p[i] = int64(v)
	}
	return ir.Attrs{"perm": ir.IntsAttr(p...)}
}

type layoutPass struct {
	m *ir.Module
	b *ir.Builder
	// replaced are the instructions whose readers now read new ones:
	// removeDead deletes those nothing reads any more.
	replaced []*ir.Instr
}

// headsOf returns x's value in the other layout if x is a transpose
// exchanging H and N, else nil.
func headsOf(x *ir.Instr) *ir.Instr {
	if x.Op == ir.OpTranspose && slices.Equal(x.Attrs.Ints("perm"), headsPerm) {
		return x.Args[0]
	}
	return nil
}

// attention rewrites one attention op (and its gradients) when its q, k
// and v are transposes exchanging H and N.
func (l *layoutPass) attention(f *ir.Instr) {
	returns := f.Attrs.Str("returns")
	if ir.AttentionBNHD(f.Attrs) || returns != "" && returns != "out" {
		return
	}
	q, k, v, caps := ir.AttentionOperands(f.Args, f.Attrs)
	if v == nil {
		return
	}
	nq, nk, nv := headsOf(q), headsOf(k), headsOf(*v)
	if nq == nil || nk == nil || nv == nil {
		return
	}
	fwd := append([]*ir.Instr{nq, nk, nv}, caps...)
	b := l.b
	f2 := b.Before(f, ir.OpAttention, withLayout(f.Attrs), fwd...)
	if f2 == nil {
		return
	}
	// The old output (and lse), and the new.
	oldOut, oldLSE, out, lse := f, (*ir.Instr)(nil), f2, (*ir.Instr)(nil)
	if f.Attrs.Bool("with_lse") {
		oldOut, oldLSE = l.extract(f, 0), l.extract(f, 1)
		out = b.Before(f, ir.OpExtract, ir.Attrs{"index": ir.IntAttr(0)}, f2)
		lse = b.Before(f, ir.OpExtract, ir.Attrs{"index": ir.IntAttr(1)}, f2)
	}
	// The old output's users read the new one transposed back; the
	// transposes that merge_heads applies to it then cancel.
	var outBack *ir.Instr
	if oldOut != nil {
		outBack = b.Before(f, ir.OpTranspose, transposeAttrs(headsPerm), out)
		l.replaceUses(oldOut, outBack, outBack)
	}
	if oldLSE == nil {
		return
	}
	for _, g := range slices.Clone(l.m.Instrs) {
		if g.Op != ir.OpAttentionGrad || ir.AttentionBNHD(g.Attrs) {
			continue
		}
		gf, glse, _, _ := ir.AttentionGradOperands(g.Args, g.Attrs)
		if glse != oldLSE || !slices.Equal(gf, f.Args) {
			continue
		}
		l.gradient(g, fwd, lse, out, outBack)
	}
	// Anything else reading the old lse reads the new one transposed.
	// (Its readers rewritten, the old op and its gradients are dead.)
	l.replaced = append(l.replaced, f)
	removeDead(l.m, l.replaced)
	l.replaced = l.replaced[:0]
	if l.used(oldLSE) {
		back := b.Before(f, ir.OpTranspose, transposeAttrs(rowsPerm), lse)
		l.replaceUses(oldLSE, back, back)
	}
}

// gradient rewrites g, an attention_grad of the rewritten forward op, to
// read fwd (the bnhd operands), lse and the row sums in the new layout.
// out is the new forward output; outBack its transpose back, which the
// old row sums read.
func (l *layoutPass) gradient(g *ir.Instr, fwd []*ir.Instr, lse, out, outBack *ir.Instr) {
	b := l.b
	_, _, rs, dy := ir.AttentionGradOperands(g.Args, g.Attrs)
	dy2 := headsOf(dy)
	if dy2 == nil {
		dy2 = b.Before(g, ir.OpTranspose, transposeAttrs(headsPerm), dy)
	}
	// The row sums rowsum(dy ∘ out) that autodiff wrote, recomputed from
	// the new layout's dy and out; any others transposed.
	var rs2 *ir.Instr
	if p := rs.Args[0]; rs.Op == ir.OpReduceSum && slices.Equal(rs.Attrs.Ints("axes"), []int{3}) && !rs.Attrs.Bool("keepdims") &&
		p.Op == ir.OpMul && (p.Args[0] == dy && p.Args[1] == outBack || p.Args[1] == dy && p.Args[0] == outBack) {
		rs2 = b.Before(g, ir.OpReduceSum, ir.Attrs{"axes": ir.IntsAttr(3)}, b.Before(g, ir.OpMul, nil, dy2, out))
	} else {
		rs2 = b.Before(g, ir.OpTranspose, transposeAttrs(rowsPerm), rs)
	}
	g2 := b.Before(g, ir.OpAttentionGrad, withLayout(g.Attrs), append(append([]*ir.Instr(nil), fwd...), lse, rs2, dy2)...)
	if g2 == nil {
		return
	}
	// Each old result's users read the new one: transposed back for q, k
	// and v (operands 0, 1 and 2), as it is for a capture.
	for i, w := range g.Attrs.Ints("wrt") {
		old := l.extract(g, i)
		if old == nil {
			continue
		}
		e := b.Before(g, ir.OpExtract, ir.Attrs{"index": ir.IntAttr(int64(i))}, g2)
		if w < 3 {
			e = b.Before(g, ir.OpTranspose, transposeAttrs(headsPerm), e)
		}
		l.replaceUses(old, e, e)
	}
}

// withLayout returns attrs with layout = bnhd.
func withLayout(attrs ir.Attrs) ir.Attrs {
	out := ir.Attrs{"layout": ir.WordAttr("bnhd")}
	for k, v := range attrs {
		out[k] = v
	}
	return out
}

// extract returns the instruction extracting result i of tuple, nil if
// there is none. Autodiff writes at most one per result.
func (l *layoutPass) extract(tuple *ir.Instr, i int) *ir.Instr {
	for _, in := range l.m.Instrs {
		if in.Op == ir.OpExtract && in.Args[0] == tuple && in.Attrs.Int("index") == i {
			return in
		}
	}
	return nil
}

// used reports whether any instruction or output reads x.
func (l *layoutPass) used(x *ir.Instr) bool {
	for _, in := range l.m.Instrs {
		if slices.Contains(in.Args, x) {
			return true
		}
	}
	for _, o := range l.m.Outputs {
		if o.Value == x {
			return true
		}
	}
	return false
}

// replaceUses makes every reader of old but skip (the new value's own
// definition) read new.
func (l *layoutPass) replaceUses(old, new, skip *ir.Instr) {
	replaceUses(l.m, old, new, skip)
	l.replaced = append(l.replaced, old)
}

func replaceUses(m *ir.Module, old, new, skip *ir.Instr) {
	for _, in := range m.Instrs {
		if in == skip {
			continue
		}
		for i, a := range in.Args {
			if a == old {
				in.Args[i] = new
			}
		}
	}
	for i, o := range m.Outputs {
		if o.Value == old {
			m.Outputs[i].Value = new
		}
	}
}

// cancelTransposes makes the readers of a transpose of a transpose whose
// permutations compose to the identity read the value under both, and
// returns the transposes it bypassed.
func cancelTransposes(m *ir.Module) []*ir.Instr {
	var out []*ir.Instr
	for _, t2 := range m.Instrs {
		if t2.Op != ir.OpTranspose || t2.Args[0].Op != ir.OpTranspose {
			continue
		}
		t1 := t2.Args[0]
		p1, p2 := t1.Attrs.Ints("perm"), t2.Attrs.Ints("perm")
		identity := len(p1) == len(p2)
		for i := range p2 {
			identity = identity && p1[p2[i]] == i
		}
		if identity {
			replaceUses(m, t2, t1.Args[0], nil)
			out = append(out, t2)
		}
	}
	return out
}
