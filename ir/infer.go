package ir

import (
	"fmt"
	"slices"
	"strings"
)

// Type rules, one per op (or family). Each returns the result type or an
// error phrased for a user reading the op's operands.

func errf(format string, args ...any) error { return fmt.Errorf(format, args...) }

func dtypeIn(dt DType, dts []DType) bool {
	for _, d := range dts {
		if d == dt {
			return true
		}
	}
	return false
}

func dtypeList(dts []DType) string {
	s := make([]string, len(dts))
	for i, d := range dts {
		s[i] = d.String()
	}
	return strings.Join(s, " or ")
}

// Broadcast returns the numpy broadcast of shapes, or an error naming the
// first pair of dims that disagree.
func Broadcast(shapes ...Shape) (Shape, error) {
	rank := 0
	for _, s := range shapes {
		rank = max(rank, len(s))
	}
	out := make(Shape, rank)
	for i := range out {
		out[i] = ConstDim(1)
	}
	for _, s := range shapes {
		off := rank - len(s)
		for i, d := range s {
			cur := out[off+i]
			switch {
			case isOne(d):
			case isOne(cur):
				out[off+i] = d
			case !cur.Equal(d):
				return nil, errf("shapes %s do not broadcast: dim %s vs %s", shapesString(shapes), cur, d)
			}
		}
	}
	return out, nil
}

func shapesString(shapes []Shape) string {
	s := make([]string, len(shapes))
	for i, sh := range shapes {
		s[i] = sh.String()
	}
	return strings.Join(s, " and ")
}

func isOne(d Dim) bool { v, ok := d.IsConst(); return ok && v == 1 }

func normAxis(axis, rank int) (int, error) {
	if axis < 0 || axis >= rank {
		return 0, errf("axis %d out of range for rank %d", axis, rank)
	}
	return axis, nil
}

func inferParam(c *InferCtx) (Type, error) {
	if c.Given.DType != F32 {
		return Type{}, errf("param must be f32, not %s", c.Given.DType)
	}
	return c.Given, nil
}

func inferInput(c *InferCtx) (Type, error) { return c.Given, nil }

func inferConst(c *InferCtx) (Type, error) {
	if c.Given.Rank() != 0 {
		return Type{}, errf("const must be a scalar, not %s", c.Given)
	}
	return c.Given, nil
}

func inferIota(c *InferCtx) (Type, error) {
	if c.Given.DType != I32 {
		return Type{}, errf("iota must be i32, not %s", c.Given.DType)
	}
	if _, err := normAxis(c.Attrs.Int("axis"), c.Given.Rank()); err != nil {
		return Type{}, err
	}
	return c.Given, nil
}

func inferUnary(dts ...DType) func(*InferCtx) (Type, error) {
	return func(c *InferCtx) (Type, error) {
		if !dtypeIn(c.Args[0].DType, dts) {
			return Type{}, errf("operand is %s, want %s", c.Args[0].DType, dtypeList(dts))
		}
		return c.Args[0], nil
	}
}

func inferCast(c *InferCtx) (Type, error) {
	to := c.Attrs["to"].DType
	if to == InvalidDType {
		return Type{}, errf("cast to an invalid dtype")
	}
	return Type{DType: to, Shape: c.Args[0].Shape}, nil
}

// inferBinary: both operands of one dtype from dts; result dtype is result,
// or the operands' dtype when result is InvalidDType.
func inferBinary(result DType, dts ...DType) func(*InferCtx) (Type, error) {
	return func(c *InferCtx) (Type, error) {
		x, y := c.Args[0], c.Args[1]
		if x.DType != y.DType {
			return Type{}, errf("operands have different dtypes: %s and %s", x.DType, y.DType)
		}
		if !dtypeIn(x.DType, dts) {
			return Type{}, errf("operands are %s, want %s", x.DType, dtypeList(dts))
		}
		sh, err := Broadcast(x.Shape, y.Shape)
		if err != nil {
			return Type{}, err
		}
		dt := result
		if dt == InvalidDType {
			dt = x.DType
		}
		return Type{DType: dt, Shape: sh}, nil
	}
}

func inferSelect(c *InferCtx) (Type, error) {
	if c.Args[0].DType != Bool {
		return Type{}, errf("condition is %s, want bool", c.Args[0].DType)
	}
	if c.Args[1].DType != c.Args[2].DType {
		return Type{}, errf("branches have different dtypes: %s and %s", c.Args[1].DType, c.Args[2].DType)
	}
	sh, err := Broadcast(c.Args[0].Shape, c.Args[1].Shape, c.Args[2].Shape)
	if err != nil {
		return Type{}, err
	}
	return Type{DType: c.Args[1].DType, Shape: sh}, nil
}

func inferReduce(dts ...DType) func(*InferCtx) (Type, error) {
	return func(c *InferCtx) (Type, error) {
		x := c.Args[0]
		if !dtypeIn(x.DType, dts) {
			return Type{}, errf("operand is %s, want %s", x.DType, dtypeList(dts))
		}
		axes := c.Attrs.Ints("axes")
		drop := map[int]bool{}
		for _, a := range axes {
			if _, err := normAxis(a, x.Rank()); err != nil {
				return Type{}, err
			}
			if drop[a] {
				return Type{}, errf("axis %d listed twice", a)
			}
			drop[a] = true
		}
		var sh Shape
		for i, d := range x.Shape {
			switch {
			case !drop[i]:
				sh = append(sh, d)
			case c.Attrs.Bool("keepdims"):
				sh = append(sh, ConstDim(1))
			}
		}
		return Type{DType: x.DType, Shape: sh}, nil
	}
}

func inferArgMax(c *InferCtx) (Type, error) {
	x := c.Args[0]
	if !dtypeIn(x.DType, []DType{F32, I32}) {
		return Type{}, errf("argmax of %s", x.DType)
	}
	axis, err := normAxis(c.Attrs.Int("axis"), x.Rank())
	if err != nil {
		return Type{}, err
	}
	sh := append(append(Shape{}, x.Shape[:axis]...), x.Shape[axis+1:]...)
	return Type{DType: I32, Shape: sh}, nil
}

func inferArgSort(c *InferCtx) (Type, error) {
	x := c.Args[0]
	if !dtypeIn(x.DType, []DType{F32, I32}) {
		return Type{}, errf("argsort of %s", x.DType)
	}
	if x.Rank() == 0 {
		return Type{}, errf("argsort of a scalar: it sorts along the last axis")
	}
	return Type{DType: I32, Shape: append(Shape{}, x.Shape...)}, nil
}

func inferMatMul(c *InferCtx) (Type, error) {
	x, y := c.Args[0], c.Args[1]
	if x.DType != F32 || y.DType != F32 {
		return Type{}, errf("matmul needs f32 operands, got %s and %s", x.DType, y.DType)
	}
	if x.Rank() < 2 || y.Rank() < 2 {
		return Type{}, errf("matmul needs operands of rank ≥ 2, got %s and %s", x, y)
	}
	m, k1 := x.Shape[x.Rank()-2], x.Shape[x.Rank()-1]
	k2, n := y.Shape[y.Rank()-2], y.Shape[y.Rank()-1]
	if !k1.Equal(k2) {
		return Type{}, errf("matmul inner dims differ: %s · %s (%s vs %s)", x.Shape, y.Shape, k1, k2)
	}
	batch, err := Broadcast(x.Shape[:x.Rank()-2], y.Shape[:y.Rank()-2])
	if err != nil {
		return Type{}, errf("matmul batch dims: %v", err)
	}
	return Type{DType: F32, Shape: append(batch, m, n)}, nil
}

// ParseEinsum splits an einsum spec "ab,bc->ac" into its operand terms and
// its output term, checking letters and arity.
func ParseEinsum(spec string, nargs int) (ins []string, out string, err error) {
	lhs, rhs, ok := strings.Cut(spec, "->")
	if !ok {
		return nil, "", errf("einsum spec %q has no ->", spec)
	}
	ins = strings.Split(lhs, ",")
	if len(ins) != nargs {
		return nil, "", errf("einsum spec %q names %d operands, got %d", spec, len(ins), nargs)
	}
	for _, t := range append(append([]string{}, ins...), rhs) {
		for _, r := range t {
			if r < 'a' || r > 'z' {
				return nil, "", errf("einsum spec %q: %q is not a lowercase letter", spec, r)
			}
		}
	}
	seen := map[rune]bool{}
	for _, r := range rhs {
		if seen[r] {
			return nil, "", errf("einsum spec %q: output letter %q repeats", spec, r)
		}
		seen[r] = true
		if !strings.ContainsRune(lhs, r) {
			return nil, "", errf("einsum spec %q: output letter %q is not in any operand", spec, r)
		}
	}
	return ins, rhs, nil
}

func inferEinsum(c *InferCtx) (Type, error) {
	args := c.Args
	var bias *Type
	if c.Attrs.Bool("bias") {
		if len(args) < 2 {
			return Type{}, errf("einsum with a bias needs an operand and the bias")
		}
		bias, args = &args[len(args)-1], args[:len(args)-1]
	}
	ins, out, err := ParseEinsum(c.Attrs.Str("spec"), len(args))
	if err != nil {
		return Type{}, err
	}
	dims := map[rune]Dim{}
	for i, term := range ins {
		a := args[i]
		if a.DType != F32 {
			return Type{}, errf("einsum operand %d is %s, want f32", i, a.DType)
		}
		if len(term) != a.Rank() {
			return Type{}, errf("einsum operand %d has rank %d but its term %q has %d letters", i, a.Rank(), term, len(term))
		}
		for j, r := range term {
			if d, ok := dims[r]; ok && !d.Equal(a.Shape[j]) {
				return Type{}, errf("einsum letter %q is %s in one place and %s in another", r, d, a.Shape[j])
			}
			dims[r] = a.Shape[j]
		}
	}
	var sh Shape
	for _, r := range out {
		sh = append(sh, dims[r])
	}
	if bias != nil && !IsRowOf(bias.Shape, sh) || bias != nil && bias.DType != F32 {
		return Type{}, errf("einsum bias %s is not an f32 row of the result %s (its last dims, after 1s)", *bias, sh)
	}
	return Type{DType: F32, Shape: sh}, nil
}

// IsRowOf reports whether shape x is a row of shape out: after leading
// 1s, x is a suffix of out (a bias of a layer's output).
func IsRowOf(x, out Shape) bool {
	lead := 0
	for lead < len(x) {
		if c, ok := x[lead].IsConst(); !ok || c != 1 {
			break
		}
		lead++
	}
	rest := x[lead:]
	return len(rest) <= len(out) && rest.Equal(out[len(out)-len(rest):])
}

// IsVectorAlong reports whether shape p is a vector of d elements, after
// any leading 1s: an affine norm's weight along an axis of size d. A
// scalar is not one (it broadcasts, but a norm's kernels read d values).
func IsVectorAlong(p Shape, d Dim) bool {
	if len(p) == 0 || !p[len(p)-1].Equal(d) {
		return false
	}
	for _, x := range p[:len(p)-1] {
		if c, ok := x.IsConst(); !ok || c != 1 {
			return false
		}
	}
	return true
}

func inferReshape(c *InferCtx) (Type, error) {
	x := c.Args[0]
	if x.DType != c.Given.DType {
		return Type{}, errf("reshape cannot change dtype (%s to %s)", x.DType, c.Given.DType)
	}
	nx, err := x.Shape.NumElementsChecked()
	if err != nil {
		return Type{}, err
	}
	ng, err := c.Given.Shape.NumElementsChecked()
	if err != nil {
		return Type{}, err
	}
	if !nx.Equal(ng) {
		return Type{}, errf("cannot reshape %s to %s: element counts differ", x.Shape, c.Given.Shape)
	}
	return c.Given, nil
}

func inferTranspose(c *InferCtx) (Type, error) {
	x := c.Args[0]
	perm := c.Attrs.Ints("perm")
	if len(perm) != x.Rank() {
		return Type{}, errf("perm %v has %d entries for rank %d", perm, len(perm), x.Rank())
	}
	seen := make([]bool, len(perm))
	sh := make(Shape, len(perm))
	for i, p := range perm {
		if p < 0 || p >= len(perm) || seen[p] {
			return Type{}, errf("perm %v is not a permutation", perm)
		}
		seen[p] = true
		sh[i] = x.Shape[p]
	}
	return Type{DType: x.DType, Shape: sh}, nil
}

func inferSlice(c *InferCtx) (Type, error) {
	x := c.Args[0]
	axis, err := normAxis(c.Attrs.Int("axis"), x.Rank())
	if err != nil {
		return Type{}, err
	}
	start, end := c.Attrs["start"].Dim, c.Attrs["end"].Dim
	if v, ok := start.IsConst(); ok && v < 0 {
		return Type{}, errf("slice start %d is negative", v)
	}
	n, err := end.SubChecked(start)
	if err != nil {
		return Type{}, err
	}
	if v, ok := n.IsConst(); ok && v < 0 {
		return Type{}, errf("slice [%s:%s] has negative length", start, end)
	}
	if v, ok := x.Shape[axis].Sub(end).IsConst(); ok && v < 0 {
		return Type{}, errf("slice end %s is past the end of dim %s", end, x.Shape[axis])
	}
	sh := append(Shape{}, x.Shape...)
	sh[axis] = n
	return Type{DType: x.DType, Shape: sh}, nil
}

func inferConcat(c *InferCtx) (Type, error) {
	first := c.Args[0]
	axis, err := normAxis(c.Attrs.Int("axis"), first.Rank())
	if err != nil {
		return Type{}, err
	}
	sh := append(Shape{}, first.Shape...)
	for i, a := range c.Args[1:] {
		if a.DType != first.DType {
			return Type{}, errf("concat operand %d is %s, operand 0 is %s", i+1, a.DType, first.DType)
		}
		if a.Rank() != first.Rank() {
			return Type{}, errf("concat operand %d has rank %d, operand 0 has rank %d", i+1, a.Rank(), first.Rank())
		}
		for j, d := range a.Shape {
			if j == axis {
				if sh[j], err = sh[j].AddChecked(d); err != nil {
					return Type{}, err
				}
			} else if !d.Equal(first.Shape[j]) {
				return Type{}, errf("concat along axis %d: dim %d is %s in operand %d but %s in operand 0", axis, j, d, i+1, first.Shape[j])
			}
		}
	}
	return Type{DType: first.DType, Shape: sh}, nil
}

func inferBroadcast(c *InferCtx) (Type, error) {
	x := c.Args[0]
	if x.DType != c.Given.DType {
		return Type{}, errf("broadcast cannot change dtype")
	}
	sh, err := Broadcast(x.Shape, c.Given.Shape)
	if err != nil || !sh.Equal(c.Given.Shape) {
		return Type{}, errf("cannot broadcast %s to %s", x.Shape, c.Given.Shape)
	}
	return c.Given, nil
}

// GatherShape is the result shape of gather(table, idx) at axis with
// batch_dims shared leading dims.
func GatherShape(table, idx Shape, axis, batchDims int) (Shape, error) {
	if batchDims < 0 || batchDims > len(idx) || batchDims > axis {
		return nil, errf("batch_dims %d must be ≤ axis %d and ≤ the index rank %d", batchDims, axis, len(idx))
	}
	if _, err := normAxis(axis, len(table)); err != nil {
		return nil, err
	}
	for i := 0; i < batchDims; i++ {
		if !table[i].Equal(idx[i]) {
			return nil, errf("batch dim %d differs: %s in the table, %s in the indices", i, table[i], idx[i])
		}
	}
	sh := append(Shape{}, table[:axis]...)
	sh = append(sh, idx[batchDims:]...)
	return append(sh, table[axis+1:]...), nil
}

func inferGather(c *InferCtx) (Type, error) {
	table, idx := c.Args[0], c.Args[1]
	if idx.DType != I32 {
		return Type{}, errf("gather indices are %s, want i32", idx.DType)
	}
	sh, err := GatherShape(table.Shape, idx.Shape, c.Attrs.Int("axis"), c.Attrs.Int("batch_dims"))
	if err != nil {
		return Type{}, err
	}
	return Type{DType: table.DType, Shape: sh}, nil
}

func inferScatterAdd(c *InferCtx) (Type, error) {
	upd, idx := c.Args[0], c.Args[1]
	if idx.DType != I32 {
		return Type{}, errf("scatter_add indices are %s, want i32", idx.DType)
	}
	if upd.DType != c.Given.DType {
		return Type{}, errf("scatter_add updates are %s but the result is %s", upd.DType, c.Given.DType)
	}
	sh, err := GatherShape(c.Given.Shape, idx.Shape, c.Attrs.Int("axis"), c.Attrs.Int("batch_dims"))
	if err != nil {
		return Type{}, err
	}
	if !sh.Equal(upd.Shape) {
		return Type{}, errf("scatter_add updates have shape %s, want %s", upd.Shape, sh)
	}
	return c.Given, nil
}

func inferSoftmax(c *InferCtx) (Type, error) {
	x := c.Args[0]
	if x.DType != F32 {
		return Type{}, errf("softmax of %s", x.DType)
	}
	if _, err := normAxis(c.Attrs.Int("axis"), x.Rank()); err != nil {
		return Type{}, err
	}
	return x, nil
}

// inferNorm is layer_norm's type rule (rms false) or rms_norm's: with
// affine, γ (and for layer_norm β) follow x.
func inferNorm(rms bool) func(*InferCtx) (Type, error) {
	name := map[bool]string{false: "layer_norm", true: "rms_norm"}[rms]
	return func(c *InferCtx) (Type, error) { return inferNormOf(c, name, rms) }
}

func inferNormOf(c *InferCtx, name string, rms bool) (Type, error) {
	x := c.Args[0]
	if x.DType != F32 || x.Rank() < 1 {
		return Type{}, errf("norm needs an f32 tensor of rank ≥ 1, got %s", x)
	}
	want, what := 1, "x"
	if c.Attrs.Bool("affine") {
		want, what = 3, "x, γ and β"
		if rms {
			want, what = 2, "x and γ"
		}
	}
	if len(c.Args) != want {
		return Type{}, errf("%s takes %d operands (%s), got %d", name, want, what, len(c.Args))
	}
	for i, p := range c.Args[1:] {
		if p.DType != F32 || !IsVectorAlong(p.Shape, x.Shape[x.Rank()-1]) {
			return Type{}, errf("%s affine operand %d (%s) is not an f32 vector along the last axis of %s", name, i+1, p, x)
		}
	}
	return x, nil
}

// inferNormGrad is layer_norm_grad's type rule (rms false) or
// rms_norm_grad's: with params, a tuple of dx and the weights' gradients.
func inferNormGrad(rms bool) func(*InferCtx) (Type, error) {
	return func(c *InferCtx) (Type, error) { return inferNormGradOf(c, rms) }
}

func inferNormGradOf(c *InferCtx, rms bool) (Type, error) {
	want := 2
	if c.Attrs.Bool("scale") {
		want = 3
	}
	if c.Attrs.Bool("accumulate") {
		if !c.Attrs.Bool("params") {
			return Type{}, errf("norm gradient with accumulate needs params = true")
		}
		if len(c.Args) != 4 {
			return Type{}, errf("norm gradient with accumulate takes 4 operands (x, dy, γ and the addend), got %d", len(c.Args))
		}
		if !c.Args[3].Equal(c.Args[0]) {
			return Type{}, errf("norm gradient: the addend is %s, want x's type %s", c.Args[3], c.Args[0])
		}
		c = &InferCtx{Args: c.Args[:3], Attrs: c.Attrs, Syms: c.Syms}
	}
	if len(c.Args) != want {
		return Type{}, errf("norm gradient takes %d operands (x, dy and, with scale, γ), got %d", want, len(c.Args))
	}
	x, dy := c.Args[0], c.Args[1]
	if want == 3 {
		g := c.Args[2]
		if x.Rank() < 1 || g.DType != F32 || !IsVectorAlong(g.Shape, x.Shape[x.Rank()-1]) {
			return Type{}, errf("norm gradient scale %s is not an f32 vector along the last axis of %s", g, x)
		}
	}
	if x.DType != F32 || x.Rank() < 1 {
		return Type{}, errf("norm gradient needs an f32 x of rank ≥ 1, got %s", x)
	}
	if !dy.Equal(x) {
		return Type{}, errf("norm gradient: dy is %s, want x's type %s", dy, x)
	}
	if c.Attrs.Bool("params") {
		if want != 3 {
			return Type{}, errf("norm gradient with params needs scale = true (the weight γ whose gradient it returns)")
		}
		row := Type{DType: F32, Shape: x.Shape[x.Rank()-1:]}
		if rms {
			return TupleOf(x, row), nil
		}
		return TupleOf(x, row, row), nil
	}
	return x, nil
}

func inferCrossEntropy(c *InferCtx) (Type, error) {
	logits, tgt := c.Args[0], c.Args[1]
	if logits.DType != F32 || logits.Rank() < 1 {
		return Type{}, errf("cross_entropy logits must be f32 of rank ≥ 1, got %s", logits)
	}
	if tgt.DType != I32 {
		return Type{}, errf("cross_entropy targets must be i32, got %s", tgt.DType)
	}
	if !logits.Shape[:logits.Rank()-1].Equal(tgt.Shape) {
		return Type{}, errf("cross_entropy: logits %s need targets of shape %s, got %s", logits.Shape, logits.Shape[:logits.Rank()-1], tgt.Shape)
	}
	return Type{DType: F32}, nil
}

func inferCrossEntropyGrad(c *InferCtx) (Type, error) {
	if _, err := inferCrossEntropy(c); err != nil {
		return Type{}, err
	}
	if dy := c.Args[2]; dy.DType != F32 || dy.Rank() != 0 {
		return Type{}, errf("cross_entropy_grad: dy must be f32[], got %s", dy)
	}
	return c.Args[0], nil
}

// swapHeads returns t with its axes 1 and 2 exchanged ([B, H, N, …] ⇄
// [B, N, H, …]), each element of a tuple so; lower ranks are as they are.
func swapHeads(t Type) Type {
	if t.IsTuple() {
		out := make([]Type, len(t.Tuple))
		for i, e := range t.Tuple {
			out[i] = swapHeads(e)
		}
		return TupleOf(out...)
	}
	if t.Rank() < 3 {
		return t
	}
	sh := append(Shape{}, t.Shape...)
	sh[1], sh[2] = sh[2], sh[1]
	return Type{DType: t.DType, Shape: sh}
}

func inferAttention(c *InferCtx) (Type, error) {
	if !AttentionBNHD(c.Attrs) {
		return inferAttentionBHND(c)
	}
	if r := c.Attrs.Str("returns"); r != "" && r != "out" && r != "lse" {
		return Type{}, errf("attention with layout bnhd returns out or lse, not %s", r)
	}
	// The same op on [B, H, N, D] operands, its result back in bnhd.
	inner := *c
	inner.Args = slices.Clone(c.Args)
	q, k, v, _ := AttentionOperands(inner.Args, c.Attrs)
	for _, t := range []*Type{&q, &k, v} {
		if t != nil && (t.DType != F32 || t.Rank() != 4) {
			return Type{}, errf("attention with layout bnhd needs f32[B, N, H, D] operands, got %s", *t)
		}
	}
	inner.Args[0], inner.Args[1] = swapHeads(q), swapHeads(k)
	if v != nil {
		inner.Args[2] = swapHeads(*v)
	}
	inner.Attrs = Attrs{}
	for key, val := range c.Attrs {
		if key != "layout" {
			inner.Attrs[key] = val
		}
	}
	t, err := inferAttentionBHND(&inner)
	if err != nil {
		return Type{}, err
	}
	return swapHeads(t), nil
}

func inferAttentionBHND(c *InferCtx) (Type, error) {
	q, k, v, caps := AttentionOperands(c.Args, c.Attrs)
	returns := c.Attrs.Str("returns")
	if (returns == "" || returns == "out") && v == nil {
		return Type{}, errf("attention returning out needs q, k and v")
	}
	for _, t := range []struct {
		name string
		t    Type
	}{{"q", q}, {"k", k}} {
		if t.t.DType != F32 || t.t.Rank() != 4 {
			return Type{}, errf("attention %s must be f32[B, H, N, D], got %s", t.name, t.t)
		}
	}
	if !q.Shape[0].Equal(k.Shape[0]) || !q.Shape[1].Equal(k.Shape[1]) {
		return Type{}, errf("attention q %s and k %s differ in batch or heads", q.Shape, k.Shape)
	}
	if !q.Shape[3].Equal(k.Shape[3]) {
		return Type{}, errf("attention q and k head dims differ: %s vs %s", q.Shape[3], k.Shape[3])
	}
	out := Shape{q.Shape[0], q.Shape[1], q.Shape[2], k.Shape[2]}
	if returns == "lse" {
		out = out[:3]
	}
	if v != nil {
		if v.DType != F32 || v.Rank() != 4 {
			return Type{}, errf("attention v must be f32[B, H, N, D], got %s", *v)
		}
		if !v.Shape[0].Equal(k.Shape[0]) || !v.Shape[1].Equal(k.Shape[1]) || !v.Shape[2].Equal(k.Shape[2]) {
			return Type{}, errf("attention v %s must match k %s in batch, heads and length", v.Shape, k.Shape)
		}
		out[3] = v.Shape[3]
	}
	env := ExprEnv{Vars: map[string]ScalarKind{}, Captures: caps}
	for _, n := range AttentionVars {
		env.Vars[n] = KInt
	}
	for s := range c.Syms {
		env.Vars[s] = KInt
	}
	used := map[int]bool{}
	if m := c.Attrs.Expr("mask"); m != nil {
		kind, err := m.Check(env)
		if err != nil {
			return Type{}, errf("mask %s: %v", m, err)
		}
		if kind != KBool {
			return Type{}, errf("mask %s is %s, want bool", m, kind)
		}
		for _, i := range m.Captures() {
			used[i] = true
		}
	}
	if s := c.Attrs.Expr("score"); s != nil {
		env.Vars["s"] = KFloat
		kind, err := s.Check(env)
		if err != nil {
			return Type{}, errf("score %s: %v", s, err)
		}
		if kind == KBool {
			return Type{}, errf("score %s is bool, want a number", s)
		}
		for _, i := range s.Captures() {
			used[i] = true
		}
	}
	for i := range caps {
		if !used[i] {
			return Type{}, errf("captured operand $%d is not read by mask or score", i)
		}
	}
	res := Type{DType: F32, Shape: out}
	if c.Attrs.Bool("with_lse") {
		if returns == "lse" {
			return Type{}, errf("attention with_lse cannot return lse")
		}
		return TupleOf(res, Type{DType: F32, Shape: out[:3]}), nil
	}
	return res, nil
}

func inferDimSize(c *InferCtx) (Type, error) {
	for _, s := range c.Attrs["dim"].Dim.Syms() {
		if !c.Syms[s] {
			return Type{}, errf("dim %s mentions undeclared symbol %s", c.Attrs["dim"].Dim, s)
		}
	}
	return Type{DType: F32}, nil
}

func inferPad(c *InferCtx) (Type, error) {
	x := c.Args[0]
	axis, err := normAxis(c.Attrs.Int("axis"), x.Rank())
	if err != nil {
		return Type{}, err
	}
	for _, name := range []string{"before", "after"} {
		if v, ok := c.Attrs[name].Dim.IsConst(); ok && v < 0 {
			return Type{}, errf("pad %s %d is negative", name, v)
		}
	}
	sh := append(Shape{}, x.Shape...)
	if sh[axis], err = sh[axis].AddChecked(c.Attrs["before"].Dim); err != nil {
		return Type{}, err
	}
	if sh[axis], err = sh[axis].AddChecked(c.Attrs["after"].Dim); err != nil {
		return Type{}, err
	}
	return Type{DType: x.DType, Shape: sh}, nil
}

func inferAttentionGrad(c *InferCtx) (Type, error) {
	fwdArgs, lse, rs, dy := AttentionGradOperands(c.Args, c.Attrs)
	fwd := &InferCtx{Args: fwdArgs, Attrs: Attrs{}, Syms: c.Syms}
	for k, v := range c.Attrs {
		if k != "wrt" {
			fwd.Attrs[k] = v
		}
	}
	y, err := inferAttention(fwd)
	if err != nil {
		return Type{}, err
	}
	row := Type{DType: F32, Shape: y.Shape[:3]}
	if !lse.Equal(row) {
		return Type{}, errf("attention_grad: lse is %s, want %s", lse, row)
	}
	if !rs.Equal(row) {
		return Type{}, errf("attention_grad: the row sums are %s, want %s", rs, row)
	}
	if !dy.Equal(y) {
		return Type{}, errf("attention_grad: dy is %s, want %s (the forward result)", dy, y)
	}
	wrt := c.Attrs.Ints("wrt")
	if len(wrt) == 0 {
		return Type{}, errf("attention_grad: wrt is empty")
	}
	var res []Type
	for i, w := range wrt {
		if w < 0 || w >= len(fwdArgs) || i > 0 && w <= wrt[i-1] {
			return Type{}, errf("attention_grad: wrt %v must be increasing operand numbers in [0, %d)", wrt, len(fwdArgs))
		}
		if fwdArgs[w].DType != F32 {
			return Type{}, errf("attention_grad: operand %d is %s, which has no gradient", w, fwdArgs[w])
		}
		res = append(res, fwdArgs[w])
	}
	return TupleOf(res...), nil
}

func inferExtract(c *InferCtx) (Type, error) {
	t := c.Args[0]
	if !t.IsTuple() {
		return Type{}, errf("extract needs a tuple operand, got %s", t)
	}
	i := c.Attrs.Int("index")
	if i < 0 || i >= len(t.Tuple) {
		return Type{}, errf("extract index %d is outside the tuple %s", i, t)
	}
	return t.Tuple[i], nil
}

func inferScan(c *InferCtx) (Type, error) {
	a, x := c.Args[0], c.Args[1]
	if a.DType != F32 || x.DType != F32 {
		return Type{}, errf("scan needs f32 operands")
	}
	if !a.Shape.Equal(x.Shape) {
		return Type{}, errf("scan coefficients %s and inputs %s differ in shape", a.Shape, x.Shape)
	}
	if _, err := normAxis(c.Attrs.Int("axis"), x.Rank()); err != nil {
		return Type{}, err
	}
	return x, nil
}
