package runtime_test

import (
	"fmt"
	"testing"

	"github.com/attnc/attnc/ir"
	rt "github.com/attnc/attnc/runtime"
)

func TestReshape(t *testing.T) {
	x := randF32(newRand(20), 2, 3, 4)
	got := rt.Reshape(x, ints(4, 6))
	checkRel(t, "reshape", got, refGiven(t, ir.OpReshape, rt.F32, ints(4, 6), nil, x), 0)
	got.F[0] = 42 // a copy: x is untouched
	if x.F[0] == 42 {
		t.Error("Reshape shares data with its operand")
	}
	mustPanic(t, "cannot reshape", func() { rt.Reshape(x, ints(5, 5)) })
}

func TestTranspose(t *testing.T) {
	r := newRand(21)
	for _, c := range []struct {
		shape, perm []int
	}{
		{ints(3, 5), ints(1, 0)},
		{ints(2, 3, 4), ints(0, 2, 1)},
		{ints(2, 3, 4), ints(2, 0, 1)},
		{ints(2, 3, 4, 5), ints(0, 2, 1, 3)}, // split heads: rows stay contiguous
		{ints(2, 1, 4, 1), ints(3, 2, 1, 0)},
		{ints(300, 500), ints(1, 0)},
		{ints(4), ints(0)},
		{ints(), ints()},
	} {
		x := randF32(r, c.shape...)
		want := ref(t, ir.OpTranspose, ir.Attrs{"perm": ir.IntsAttr(int64s(c.perm)...)}, x)
		checkRel(t, fmt.Sprint(c), rt.Transpose(x, c.perm), want, 0)
		xi := randI32(r, -5, 5, c.shape...)
		checkRel(t, fmt.Sprint("i32", c), rt.Transpose(xi, c.perm), ref(t, ir.OpTranspose, ir.Attrs{"perm": ir.IntsAttr(int64s(c.perm)...)}, xi), 0)
	}
	mustPanic(t, "permutation", func() { rt.Transpose(rt.New(rt.F32, 2, 3), ints(0, 0)) })
}

func TestSliceAndPad(t *testing.T) {
	r := newRand(22)
	x := randF32(r, 3, 7, 4)
	for axis, bounds := range [][2]int{{1, 3}, {2, 7}, {0, 4}} {
		start, end := bounds[0], min(bounds[1], x.Shape[axis])
		attrs := ir.Attrs{"axis": ir.IntAttr(int64(axis)), "start": ir.DimAttr(ir.ConstDim(int64(start))), "end": ir.DimAttr(ir.ConstDim(int64(end)))}
		checkRel(t, fmt.Sprint("slice", axis), rt.Slice(x, axis, start, end), ref(t, ir.OpSlice, attrs, x), 0)
		pattrs := ir.Attrs{"axis": ir.IntAttr(int64(axis)), "before": ir.DimAttr(ir.ConstDim(2)), "after": ir.DimAttr(ir.ConstDim(3))}
		checkRel(t, fmt.Sprint("pad", axis), rt.Pad(x, axis, 2, 3), ref(t, ir.OpPad, pattrs, x), 0)
	}
	mustPanic(t, "outside", func() { rt.Slice(x, 1, 5, 9) })
}

func TestConcat(t *testing.T) {
	r := newRand(23)
	for axis := range 3 {
		var xs []*rt.Tensor
		for i := range 3 {
			shape := ints(2, 3, 4)
			shape[axis] = i + 1
			xs = append(xs, randF32(r, shape...))
		}
		checkRel(t, fmt.Sprint("axis ", axis), rt.Concat(axis, xs...), ref(t, ir.OpConcat, ir.Attrs{"axis": ir.IntAttr(int64(axis))}, xs...), 0)
	}
	mustPanic(t, "do not join", func() { rt.Concat(0, rt.New(rt.F32, 2, 3), rt.New(rt.F32, 2, 4)) })
}

func gatherAttrs(axis, batchDims int) ir.Attrs {
	return ir.Attrs{"axis": ir.IntAttr(int64(axis)), "batch_dims": ir.IntAttr(int64(batchDims))}
}

var gatherCases = []struct {
	table, idx      []int
	axis, batchDims int
}{
	{ints(10, 4), ints(3, 5), 0, 0},         // embedding
	{ints(10, 130), ints(2, 300), 0, 0},     // large embedding, parallel
	{ints(2, 6, 3), ints(2, 4), 1, 1},       // per-batch pointer gather
	{ints(2, 3, 6, 5), ints(2, 3, 4), 2, 2}, // two batch dims
	{ints(2, 6, 3), ints(5), 1, 0},          // middle axis, no batch
	{ints(4, 6), ints(4, 2, 3), 1, 1},       // last axis
	{ints(7), ints(), 0, 0},                 // scalar index
	{ints(3, 8, 2), ints(3, 1), 1, 1},       // one index per batch row
	{ints(2, 5, 3, 2), ints(2, 4, 2), 1, 1}, // trailing dims copied
	{ints(6, 40), ints(3000), 0, 0},         // scatter with many repeats
	{ints(4, 9, 600), ints(4, 30), 1, 1},    // scatter in parallel column blocks
	{ints(3, 4), ints(2, 2), 0, 0},
}

func TestGatherScatter(t *testing.T) {
	r := newRand(24)
	for _, c := range gatherCases {
		t.Run(fmt.Sprint(c), func(t *testing.T) {
			table := randF32(r, c.table...)
			idx := randI32(r, 0, c.table[c.axis], c.idx...)
			got, err := rt.Gather(table, idx, c.axis, c.batchDims)
			if err != nil {
				t.Fatal(err)
			}
			attrs := gatherAttrs(c.axis, c.batchDims)
			checkRel(t, "gather", got, ref(t, ir.OpGather, attrs, table, idx), 0)

			upd := randF32(r, got.Shape...)
			sc, err := rt.ScatterAdd(upd, idx, c.axis, c.batchDims, c.table)
			if err != nil {
				t.Fatal(err)
			}
			checkRel(t, "scatter_add", sc, refGiven(t, ir.OpScatterAdd, rt.F32, c.table, attrs, upd, idx), tol)

			ti := randI32(r, -50, 50, c.table...)
			gi, err := rt.Gather(ti, idx, c.axis, c.batchDims)
			if err != nil {
				t.Fatal(err)
			}
			checkRel(t, "gather i32", gi, ref(t, ir.OpGather, attrs, ti, idx), 0)
			si, err := rt.ScatterAdd(gi, idx, c.axis, c.batchDims, c.table)
			if err != nil {
				t.Fatal(err)
			}
			checkRel(t, "scatter_add i32", si, refGiven(t, ir.OpScatterAdd, rt.I32, c.table, attrs, gi, idx), 0)
			ub := randBool(r, got.Shape...)
			sb, err := rt.ScatterAdd(ub, idx, c.axis, c.batchDims, c.table)
			if err != nil {
				t.Fatal(err)
			}
			checkRel(t, "scatter_add bool", sb, refGiven(t, ir.OpScatterAdd, rt.Bool, c.table, attrs, ub, idx), 0)
		})
	}
}

func TestGatherOutOfRange(t *testing.T) {
	table := randF32(newRand(25), 5, 3)
	idx := rt.FromI32(ints(2, 2), []int32{0, 4, 5, 1})
	if _, err := rt.Gather(table, idx, 0, 0); err == nil || !contains(err.Error(), "index 5 at position [1 0]") {
		t.Errorf("gather: got error %v", err)
	}
	idx.I[2] = -1
	if _, err := rt.ScatterAdd(rt.New(rt.F32, 2, 2, 3), idx, 0, 0, ints(5, 3)); err == nil || !contains(err.Error(), "index -1") {
		t.Errorf("scatter_add: got error %v", err)
	}
}
