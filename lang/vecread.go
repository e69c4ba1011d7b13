package lang

import "github.com/attnc/attnc/ir"

// A score may read the query's or the key's vector: qdot(t[i, …]) is
// Σ_d q[b, h, q, d] · t[i, …, d], the query vector's dot product with a
// row of the tensor t picked by index expressions (Music Transformer's
// content term q · E[q − k] is qdot(e[clamp(q - k, 0, span - 1)])), and
// kdot(t[…]) the same with the key's vector.
//
// The kernels read scalars, not vectors, so attend computes what the
// score reads as one product before the attention, P = q · tᵀ of shape
// [B, H, Nq, rows of t …] (O(N · rows) memory, not the O(N² · D) of a
// tensor of pairs), and the score reads P[b, h, q, i, …]: a captured
// tensor, whose gradient every backend already gives back, through the
// product, to q and t.

// vecRead is one qdot or kdot of a score: which side and the tensor.
type vecRead struct {
	side  string // "q" or "k"
	table *ir.Instr
	name  string // the parameter's name, for messages
}

// vecRead converts qdot(t[…]) or kdot(t[…]) into a capture of a
// placeholder of t's type without its last axis, read at the given
// indices, and records it.
func (c *indexConv) vecRead(call *CallExpr, fn string) (*ir.Expr, bool) {
	side := fn[:1]
	if c.def.Kind != "score" {
		return c.fail(call, "%s reads the %s vector, which only a score can (a mask decides from positions)", fn, map[string]string{"q": "query", "k": "key"}[side])
	}
	if len(call.Args) != 1 || call.Args[0].Name != nil {
		return c.fail(call, "%s takes one argument, a row of a tensor parameter: %s(e[q - k])", fn, fn)
	}
	ix, ok := call.Args[0].Value.(*IndexExpr)
	var id *Ident
	if ok {
		id, ok = ix.X.(*Ident)
	}
	var t tensorVal
	if ok {
		t, ok = c.args[id.Name].(tensorVal)
	}
	if !ok {
		return c.fail(call.Args[0].Value, "%s's argument must be a tensor parameter indexed to a row: %s(e[q - k])", fn, fn)
	}
	r := t.in.Type.Rank()
	if t.in.Type.DType != ir.F32 || r == 0 || len(ix.Items) != r-1 {
		return c.fail(ix, "%s reads a row of an f32 tensor: %s is %s, so it needs %d indices (all but its last axis, which the %s vector meets), got %d", fn, id.Name, t.in.Type, max(r-1, 0), map[string]string{"q": "query", "k": "key"}[side], len(ix.Items))
	}
	var idx []*ir.Expr
	for _, it := range ix.Items {
		if it.Slice || it.Lo == nil {
			return c.fail(it, "slices are not allowed in a score; index with one position")
		}
		v, ok := c.conv(it.Lo)
		if !ok {
			return nil, false
		}
		idx = append(idx, v)
	}
	ph := &ir.Instr{ID: -1, Op: ir.OpInput, Type: ir.Type{DType: ir.F32, Shape: t.in.Type.Shape[:r-1]},
		Attrs: ir.Attrs{"name": ir.StringAttr(fn + "(" + id.Name + ")")}}
	if c.vecs == nil {
		c.vecs = map[*ir.Instr]vecRead{}
	}
	c.vecs[ph] = vecRead{side: side, table: t.in, name: id.Name}
	return ir.Capture(int(c.capture(ph)), idx...), true
}

// lowerVecReads replaces each vector read of the score s by the product
// it reads: P = einsum(q or k, t) of shape [B, H, N, rows …], read at
// [b, h, q or k, …]. q and k are attend's [B, H, N, D] operands.
func lowerVecReads(a *bargs, s exprVal, q, k *ir.Instr) (exprVal, bool) {
	if len(s.vecs) == 0 {
		return s, true
	}
	caps := append([]*ir.Instr(nil), s.caps...)
	lead := map[int64]string{}
	for i, c := range s.caps {
		vr, ok := s.vecs[c]
		if !ok {
			continue
		}
		x := q
		if vr.side == "k" {
			x = k
		}
		t := vr.table.Type
		if d, dt := x.Type.Shape[3], t.Shape[t.Rank()-1]; !d.Equal(dt) {
			name := vr.name // the score's parameter, or better the tensor passed
			if op := vr.table.Op; op == ir.OpParam || op == ir.OpInput || op == ir.OpBuffer {
				name = vr.table.Name()
			}
			a.fail("score", "attend: the score's %sdot reads rows of %s, %s, whose last dim %s is not the head dim %s of the %s vectors", vr.side, name, t, dt, d, map[string]string{"q": "query", "k": "key"}[vr.side])
			return s, false
		}
		letters := "ijlmnoprtuvwxyz"[:t.Rank()-1]
		p := a.op(ir.OpEinsum, ir.Attrs{"spec": ir.StringAttr("bhad," + letters + "d->bha" + letters)}, x, vr.table)
		if p == nil {
			return s, false
		}
		caps[i] = p
		lead[int64(i)] = vr.side
	}
	return exprVal{score: true, e: prependIndices(s.e, lead), caps: caps}, true
}

// prependIndices returns e with every read of capture i in lead indexed
// first by b, h and the variable lead[i] (q or k).
func prependIndices(e *ir.Expr, lead map[int64]string) *ir.Expr {
	return rewriteCaptures(e, func(c *ir.Expr) {
		if v, ok := lead[c.Int]; ok {
			c.Args = append([]*ir.Expr{ir.Var("b"), ir.Var("h"), ir.Var(v)}, c.Args...)
		}
	})
}
