package passes

import (
	"fmt"
	"math"
	"slices"

	"github.com/attnc/attnc/ir"
	"github.com/attnc/attnc/kir"
)

// Fuse groups each function's runs of f32 elementwise instructions, and
// a reduction over the last axis that ends such a run, into kernels of
// the kernel IR, one a group, tiled for the target.
//
// Requires: a lowered program (Lower), whose functions list their
// instructions in execution order.
//
// Guarantees: every group has at least two members; only the root is
// read outside the group and no member but the root is a result of the
// function. Every member but the root has the group's chain shape: the
// root's, or, when the root is a reduction (a reduce group), its
// operand's. The group's kernel takes the values the group reads from
// outside (Group.Inputs, in order) and the result buffer, last; it
// computes exactly what the members do, element by element, the root's
// reduction a row at a time (kir/eval checks this against ir/eval for
// every group of every stdlib model). Members are unary elementwise ops
// (cast and not aside) of an operand of their own shape, and add, sub,
// mul, div, max and min whose operands broadcast to it as numpy does; a
// root may also be an f32 reduce_sum, reduce_max or reduce_mean over
// the last axis alone (keepdims or not) when that axis is a constant
// from 1 to maxTileRow, so that one tile row covers it. A reduction is
// never a member below the root: a group has at most one, at its end.
//
// Why: a chain of elementwise ops (a GELU's or a layer norm's backward,
// bias adds, scales) written one op at a time makes a round trip to
// memory per op; as one kernel its values stay in a tile. A row sum of a
// product (attention backward's rowsum(dy·out)) is such a chain whose
// last value is only summed: fused, the product never reaches memory and
// the kernel writes one value a row. The decision of what to fuse is the
// compiler's: the renderers print the groups they get. The tiles cover
// the last axis (when it is a constant of at most maxTileRow, else
// chunks of tileChunk) and as many rows of the axis before it as make
// about Target.L1/32 elements; axes before those are one grid axis, each
// program one index of them. A reduce group's tiles always hold whole
// rows, and it reduces them along the tile's last axis: the sum (kir's
// reduce, a mean then divided by the row's length), the maximum. Where
// the target pads tiles to a power of two, the padding columns are
// replaced by the reduction's identity (0, -inf) first, since the chain
// maps a padded 0 to anything.
//
//	%5 = mul %3, %4 : f32[B, N, 128]
//	%6 = add %5, %2 : f32[B, N, 128]      (%2: f32[128])
//	  ⟶ kernel LossAndGrad_fused6(in0: f32[B, N, 128], in1: f32[B, N, 128], in2: f32[128], out: f32[B, N, 128])
//	      grid [(N + 11) / 12, B] { … %x = mul …; %y = add …; store %out, %y, … }
//
//	%7 = mul %3, %4 : f32[B, N, 64]
//	%8 = reduce_sum %7 {axes = [2]} : f32[B, N]
//	  ⟶ kernel LossAndGrad_fused8(in0: f32[B, N, 64], in1: f32[B, N, 64], out: f32[B, N])
//	      grid [(N + 23) / 24, B] { … %x = mul …; %s = reduce %x {op = "sum", axis = 1}; store %out, %s, … }
func Fuse(p *ir.Program, t kir.Target) (*kir.Program, error) {
	if err := t.Check(); err != nil {
		return nil, err
	}
	kp := &kir.Program{IR: p, Target: t, Kernels: &kir.Module{Name: p.Module.Name, Syms: p.Module.Syms},
		Funcs: map[string]*kir.FuncKernels{}}
	if !ir.IsIdent(kp.Kernels.Name) {
		kp.Kernels.Name = "model"
	}
	for _, f := range p.Funcs {
		fk := &kir.FuncKernels{Of: map[*ir.Instr]*kir.Group{}}
		for _, g := range planGroups(f) {
			k, err := fusedKernel(fmt.Sprintf("%s_fused%d", f.Name, g.Root.ID), g, t)
			if err != nil {
				return nil, fmt.Errorf("fuse: %s %%%d: %w", f.Name, g.Root.ID, err)
			}
			g.Kernel = k
			kp.Kernels.Kernels = append(kp.Kernels.Kernels, k)
			fk.Groups = append(fk.Groups, g)
			for _, m := range g.Members {
				fk.Of[m] = g
			}
		}
		kp.Funcs[f.Name] = fk
	}
	if err := kir.Verify(kp.Kernels); err != nil {
		return nil, fmt.Errorf("fuse: %w", err)
	}
	return kp, nil
}

// planGroups groups a function's fusible instructions. Walking the body
// backwards, an elementwise instruction joins the group of its users
// when all of them are in one group whose chain shape is its shape, and
// it is not a result of the function; a row reduction only ever starts a
// group. A group of one is no group.
func planGroups(f *ir.Func) []*kir.Group {
	uses := map[*ir.Instr][]*ir.Instr{}
	for _, in := range f.Body {
		for _, a := range in.Args {
			uses[a] = append(uses[a], in)
		}
	}
	result := map[*ir.Instr]bool{}
	for _, o := range f.Results {
		result[o.Value] = true
	}
	group := map[*ir.Instr]*ir.Instr{}
	for i := len(f.Body) - 1; i >= 0; i-- {
		in := f.Body[i]
		if rowReduction(in) {
			group[in] = in
			continue
		}
		if !fusible(in) {
			continue
		}
		root := in
		if us := uses[in]; !result[in] && len(us) > 0 {
			r0 := group[us[0]]
			same := r0 != nil && in.Type.Shape.Equal(chainShape(r0))
			for _, u := range us {
				same = same && group[u] == r0
			}
			if same {
				root = r0
			}
		}
		group[in] = root
	}
	members := map[*ir.Instr][]*ir.Instr{}
	var roots []*ir.Instr
	for _, in := range f.Body {
		if root := group[in]; root != nil {
			if members[root] == nil {
				roots = append(roots, root)
			}
			members[root] = append(members[root], in)
		}
	}
	var out []*kir.Group
	for _, root := range roots {
		ms := members[root]
		if len(ms) < 2 {
			continue
		}
		member := map[*ir.Instr]bool{}
		for _, m := range ms {
			member[m] = true
		}
		g := &kir.Group{Root: root, Members: ms}
		for _, m := range ms {
			for _, a := range m.Args {
				if !member[a] && !slices.Contains(g.Inputs, a) {
					g.Inputs = append(g.Inputs, a)
				}
			}
		}
		out = append(out, g)
	}
	// Kernels in the order of their roots.
	slices.SortStableFunc(out, func(a, b *kir.Group) int {
		return slices.Index(f.Body, a.Root) - slices.Index(f.Body, b.Root)
	})
	return out
}

// fusible reports whether in may join a group: an f32 unary elementwise
// op (not cast or not) of an operand of its shape, or an f32 add, sub,
// mul, div, max or min whose operands broadcast to it.
func fusible(in *ir.Instr) bool {
	if in.Type.DType != ir.F32 || in.Type.IsTuple() {
		return false
	}
	switch in.Op.Info().Class {
	case ir.ClassUnary:
		return in.Op != ir.OpCast && in.Op != ir.OpNot && in.Args[0].Type.DType == ir.F32 && in.Args[0].Type.Shape.Equal(in.Type.Shape)
	}
	switch in.Op {
	case ir.OpAdd, ir.OpSub, ir.OpMul, ir.OpDiv, ir.OpMax, ir.OpMin:
	default:
		return false
	}
	for _, a := range in.Args {
		if a.Type.DType != ir.F32 || a.Type.IsTuple() || !broadcastsTo(a.Type.Shape, in.Type.Shape) {
			return false
		}
	}
	return true
}

// rowReduction reports whether in may end a group: an f32 reduce_sum,
// reduce_max or reduce_mean of an f32 operand over its last axis alone,
// a constant of 1 to maxTileRow (a tile row holds it whole).
func rowReduction(in *ir.Instr) bool {
	switch in.Op {
	case ir.OpReduceSum, ir.OpReduceMax, ir.OpReduceMean:
	default:
		return false
	}
	x := in.Args[0].Type
	if in.Type.DType != ir.F32 || x.DType != ir.F32 || x.IsTuple() || x.Rank() == 0 {
		return false
	}
	if axes := in.Attrs.Ints("axes"); len(axes) != 1 || axes[0] != x.Rank()-1 {
		return false
	}
	c, ok := x.Shape[x.Rank()-1].IsConst()
	return ok && c >= 1 && c <= maxTileRow
}

// chainShape is the shape of a group's elementwise members: its root's,
// or a reduction's operand's.
func chainShape(root *ir.Instr) ir.Shape {
	if rowReduction(root) {
		return root.Args[0].Type.Shape
	}
	return root.Type.Shape
}

// broadcastsTo reports whether x broadcasts to out by numpy's rules: x's
// dims, aligned to out's last, are 1 or out's.
func broadcastsTo(x, out ir.Shape) bool {
	if len(x) > len(out) {
		return false
	}
	lead := len(out) - len(x)
	for i, d := range x {
		if c, ok := d.IsConst(); !(ok && c == 1) && !d.Equal(out[lead+i]) {
			return false
		}
	}
	return true
}

const (
	// maxTileRow is the longest constant last axis a tile covers whole.
	maxTileRow = 4096
	// tileChunk is the tile's extent along a longer or symbolic last axis.
	tileChunk = 512
)

// fusedKernel lowers a group to a kernel: each program loads its tile of
// every input (broadcast axes as size 1), runs the members, stores the
// root's tile; a reduce group's root reduces the chain's tile along its
// last axis and stores a value a row.
func fusedKernel(name string, g *kir.Group, t kir.Target) (*kir.Kernel, error) {
	shape := chainShape(g.Root)
	r := len(shape)
	reduced := rowReduction(g.Root)
	// The tiled axes: the last two (or fewer).
	var axes []int
	for a := max(0, r-2); a < r; a++ {
		axes = append(axes, a)
	}
	ext := map[int]int{} // tiled axis → tile extent
	chunked := false     // the last axis is cut into chunks (a grid axis)
	if r >= 1 {
		last := r - 1
		if c, ok := shape[last].IsConst(); ok && c <= maxTileRow {
			ext[last] = max(1, int(c))
		} else {
			ext[last], chunked = tileChunk, true
		}
		if r >= 2 {
			rows := max(1, t.L1/32/ext[last])
			if c, ok := shape[r-2].IsConst(); ok {
				rows = min(rows, max(1, int(c)))
			}
			ext[r-2] = rows
		}
	}
	if t.PowerOfTwoTiles {
		for a, e := range ext {
			ext[a] = nextPow2(e)
		}
	}
	cdiv := func(d ir.Dim, n int) *ir.Expr {
		return mustExpr(fmt.Sprintf("(%s + %d) / %d", d, n-1, n))
	}
	var grid []*ir.Expr
	gridOf := map[string]int{} // "rows", "chunks", "lead" → grid axis
	if r >= 2 {
		gridOf["rows"] = len(grid)
		grid = append(grid, cdiv(shape[r-2], ext[r-2]))
	}
	if chunked {
		gridOf["chunks"] = len(grid)
		grid = append(grid, cdiv(shape[r-1], ext[r-1]))
	}
	if r >= 3 {
		prod := ""
		for i, d := range shape[:r-2] {
			if i > 0 {
				prod += " * "
			}
			prod += "(" + d.String() + ")"
		}
		gridOf["lead"] = len(grid)
		grid = append(grid, mustExpr(prod))
	}
	if len(grid) == 0 {
		grid = append(grid, mustExpr("1"))
	}
	b := kir.NewKernel(name, grid...)
	params := make([]*kir.Value, len(g.Inputs))
	for i, x := range g.Inputs {
		params[i] = b.Param(fmt.Sprintf("in%d", i), ir.F32, x.Type.Shape)
	}
	out := b.Param("out", ir.F32, g.Root.Type.Shape)

	// The program's offset along each axis of the result.
	off := make([]*kir.Value, r)
	zero := b.Index(0)
	for a := range off {
		off[a] = zero
	}
	pid := func(axis int) *kir.Value {
		return b.Op(kir.OpProgramID, ir.Attrs{"axis": ir.IntAttr(int64(axis))}, kir.Index)
	}
	if r >= 2 {
		off[r-2] = b.Elem(ir.OpMul, pid(gridOf["rows"]), b.Index(int64(ext[r-2])))
	}
	if chunked {
		off[r-1] = b.Elem(ir.OpMul, pid(gridOf["chunks"]), b.Index(int64(ext[r-1])))
	}
	if r >= 3 {
		rest := pid(gridOf["lead"])
		for a := r - 3; a >= 0; a-- {
			if a == 0 {
				off[a] = rest
				break
			}
			d := b.Dim(shape[a])
			off[a] = b.Op(kir.OpIrem, nil, kir.Type{}, rest, d)
			rest = b.Op(kir.OpIdiv, nil, kir.Type{}, rest, d)
		}
	}

	vals := map[*ir.Instr]*kir.Value{}
	for i, x := range g.Inputs {
		vals[x] = loadOperand(b, params[i], x.Type.Shape, r, off, axes, ext)
	}
	for _, m := range g.Members {
		args := make([]*kir.Value, len(m.Args))
		for i, a := range m.Args {
			args[i] = vals[a]
			if args[i] == nil {
				return nil, fmt.Errorf("operand %%%d of %%%d has no tile", a.ID, m.ID)
			}
		}
		if m == g.Root && reduced {
			c, _ := shape[r-1].IsConst()
			vals[m] = rowReduce(b, m.Op, args[0], int(c))
			continue
		}
		vals[m] = b.Elem(m.Op, args...)
	}
	dims := make([]int64, len(axes))
	for i, a := range axes {
		dims[i] = int64(a)
	}
	if reduced {
		// The tile lost its last axis; the result its last axis too, or
		// keeps it as 1 (keepdims), at offset 0.
		dims = dims[:len(dims)-1]
		off = off[:r-1]
		if g.Root.Type.Rank() == r {
			off = append(off, zero)
		}
	}
	b.Effect(kir.OpStore, ir.Attrs{"dims": ir.IntsAttr(dims...)}, append([]*kir.Value{out, vals[g.Root]}, off...)...)
	return b.K, nil
}

// rowReduce reduces tile x along its last axis, the rows of a
// reduction's operand of n columns, by op (reduce_sum, reduce_max or
// reduce_mean: a sum divided by n). Columns past n (a tile padded to a
// power of two) are replaced by the reduction's identity first.
func rowReduce(b *kir.Builder, op ir.Op, x *kir.Value, n int) *kir.Value {
	rank, ext := x.Type.Rank(), x.Type.Shape[x.Type.Rank()-1]
	kind, identity := "sum", 0.0
	if op == ir.OpReduceMax {
		kind, identity = "max", math.Inf(-1)
	}
	if ext > n {
		cols := b.Op(kir.OpArange, nil, kir.Tile(ir.I32, ext))
		limit := b.Op(kir.OpSplat, nil, kir.Tile(ir.I32, ext), b.Index(int64(n)))
		inside := b.Elem(ir.OpLt, cols, limit)
		for range rank - 1 {
			inside = b.Op(kir.OpExpand, ir.Attrs{"axis": ir.IntAttr(0)}, kir.Type{}, inside)
		}
		id := b.Op(kir.OpConst, ir.Attrs{"value": ir.FloatAttr(identity)}, kir.Tile(ir.F32))
		x = b.Elem(ir.OpSelect, inside, x, id)
	}
	v := b.Op(kir.OpReduce, ir.Attrs{"op": ir.WordAttr(kind), "axis": ir.IntAttr(int64(rank - 1))}, kir.Type{}, x)
	if op == ir.OpReduceMean {
		v = b.Elem(ir.OpDiv, v, b.Op(kir.OpConst, ir.Attrs{"value": ir.FloatAttr(float64(n))}, kir.Tile(ir.F32)))
	}
	return v
}

// loadOperand loads a program's tile of an input of shape xs (rank ≤
// r, aligned to the result's last axis): along each tiled axis of the
// result the input has, a tile extent of ext (or 1 where its dim is 1);
// the result's offsets where its dims are not 1, else 0.
func loadOperand(b *kir.Builder, buf *kir.Value, xs ir.Shape, r int, off []*kir.Value, axes []int, ext map[int]int) *kir.Value {
	lead := r - len(xs)
	isOne := func(d ir.Dim) bool { c, ok := d.IsConst(); return ok && c == 1 }
	offs := make([]*kir.Value, len(xs))
	var zero *kir.Value
	for j, d := range xs {
		if isOne(d) {
			if zero == nil {
				zero = b.Index(0)
			}
			offs[j] = zero
			continue
		}
		offs[j] = off[lead+j]
	}
	var dims []int64
	var shape []int
	for _, a := range axes {
		j := a - lead
		if j < 0 {
			continue // the input lacks the axis: it broadcasts
		}
		dims = append(dims, int64(j))
		if isOne(xs[j]) {
			shape = append(shape, 1)
		} else {
			shape = append(shape, ext[a])
		}
	}
	return b.Op(kir.OpLoad, ir.Attrs{"dims": ir.IntsAttr(dims...)}, kir.Tile(ir.F32, shape...), append([]*kir.Value{buf}, offs...)...)
}

func nextPow2(n int) int {
	p := 1
	for p < n {
		p <<= 1
	}
	return p
}

func mustExpr(src string) *ir.Expr {
	e, err := ir.ParseExpr(src)
	if err != nil {
		panic(fmt.Sprintf("fuse: %q: %v", src, err))
	}
	return e
}
