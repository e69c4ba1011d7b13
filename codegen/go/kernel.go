package gogen

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/attnc/attnc/ir"
	"github.com/attnc/attnc/kir"
)

// kernelFunc is the Go name of the function that runs kir kernel k.
func kernelFunc(k *kir.Kernel) string { return "k" + k.Name }

// kernel writes the Go function that runs kir kernel k of group g: it
// allocates the result (the last param, which every program's store
// covers), then runs the grid with rt.Launch, each program's body the
// kernel's instructions in order: indices as Go ints, tiles as rt.Tile
// values whose elementwise ops run the runtime's vector kernels (the
// ones rt.Unary and rt.Binary use, so results are theirs bit for bit).
// Tiles computed by the kernel live in the worker's scratch memory, in
// slots reused after a tile's last use.
//
// It renders the kernels the fuse pass makes — straight-line programs of
// loads, elementwise ops, at most a reduction along a tile's rows
// (rt.ReduceTile, the runtime's row sum and maximum) and one store, over
// tiles of rank ≤ 2 — and says so for anything else.
func (r *renderer) kernel(k *kir.Kernel, g *kir.Group) error {
	syms := r.p.Module.Syms
	var params []string
	for _, s := range syms {
		params = append(params, symVar(s)+" int")
	}
	last := len(k.Params) - 1
	for _, p := range k.Params[:last] {
		params = append(params, fmt.Sprintf("%s *rt.Tensor", kirVar(p)))
	}
	out := k.Params[last]
	r.pf("\n// %s runs the kernel %s (attnc ir -dump=fuse prints it): %s.\n", kernelFunc(k), k.Name, comment(g.Label()))
	r.pf("func %s(%s) *rt.Tensor {\n", kernelFunc(k), strings.Join(params, ", "))
	for _, s := range syms {
		r.pf("\t_ = %s\n", symVar(s))
	}
	r.pf("\t%s := rt.Empty(rt.F32, %s...)\n", kirVar(out), shapeGo(out.Type.Dims))
	grid := []string{"1", "1", "1"}
	for i, g := range k.Grid {
		code, kind, err := (&exprWriter{r: r}).write(g)
		if err != nil {
			return fmt.Errorf("kernel %s: grid axis %d: %w", k.Name, i, err)
		}
		if kind != ir.KInt {
			return fmt.Errorf("kernel %s: grid axis %d is not an integer", k.Name, i)
		}
		grid[i] = code
	}

	// Scratch slots: a tile the kernel computes takes one from its
	// instruction until its last use.
	lastUse := map[*kir.Value]int{}
	for i, in := range k.Body.Instrs {
		if len(in.Regions) > 0 {
			return fmt.Errorf("kernel %s: the Go renderer does not render %s yet", k.Name, in.Op)
		}
		for _, a := range in.Args {
			lastUse[a] = i
		}
	}
	slotSize, nslots := 0, 0
	var free []int
	slot := map[*kir.Value]int{}
	for i, in := range k.Body.Instrs {
		if in.Op == kir.OpElem || in.Op == kir.OpReduce || in.Op == kir.OpConst || in.Op == kir.OpLoad && copiedLoad(in) {
			for _, res := range in.Results {
				if res.Type.Kind != kir.KTile {
					continue
				}
				slotSize = max(slotSize, res.Type.Elems())
				if len(free) > 0 {
					slot[res], free = free[len(free)-1], free[:len(free)-1]
				} else {
					slot[res] = nslots
					nslots++
				}
			}
		}
		for _, a := range in.Args {
			if s, ok := slot[a]; ok && lastUse[a] == i {
				free = append(free, s)
			}
		}
	}
	// The tile a store writes is computed in place in its buffer where
	// rt.Dest finds a contiguous window there.
	stored := map[*kir.Value]*kir.Instr{}
	for _, in := range k.Body.Instrs {
		if in.Op == kir.OpStore && in.Args[1].Def != nil && (in.Args[1].Def.Op == kir.OpElem || in.Args[1].Def.Op == kir.OpReduce) {
			stored[in.Args[1]] = in
		}
	}
	var ref func(v *kir.Value) string
	scratchOf := func(v *kir.Value) string {
		s := slot[v]
		scr := fmt.Sprintf("scr[%d:%d]", s*slotSize, (s+1)*slotSize)
		if st := stored[v]; st != nil {
			rowAxis, colAxis, rows, cols := tileAxes(v.Type, st.Attrs.Ints("dims"))
			return fmt.Sprintf("rt.Dest(%s, %s, %d, %d, %d, %d%s)", ref(st.Args[0]), scr, rowAxis, colAxis, rows, cols, offsetArgs(st.Args[2:], ref))
		}
		return scr
	}

	var body strings.Builder
	pf := func(format string, a ...any) { fmt.Fprintf(&body, format, a...) }
	used := map[string]bool{}
	ref = func(v *kir.Value) string {
		used[kirVar(v)] = true
		return kirVar(v)
	}
	for _, in := range k.Body.Instrs {
		a := in.Attrs
		var res string
		if len(in.Results) == 1 {
			res = kirVar(in.Results[0])
		}
		switch in.Op {
		case kir.OpProgramID:
			pf("\t\t%s := p%d\n", res, a.Int("axis"))
		case kir.OpSym:
			pf("\t\t%s := %s\n", res, symVar(a.Str("name")))
		case kir.OpConst:
			t, v := in.Results[0].Type, a.Float("value")
			switch {
			case t.Kind == kir.KIndex:
				pf("\t\t%s := %d\n", res, int64(v))
			case t.Kind == kir.KTile && t.DType == ir.F32 && t.Rank() == 0 && !math.IsInf(v, 0) && !math.IsNaN(v):
				pf("\t\t%s := rt.ScalarTile(%s, %s)\n", res, scratchOf(in.Results[0]), strconv.FormatFloat(float64(float32(v)), 'g', -1, 32))
			default:
				return fmt.Errorf("kernel %s: the Go renderer renders index constants and finite f32 scalars only, not %s", k.Name, t)
			}
		case kir.OpReduce:
			x := in.Args[0].Type
			fn, ok := map[string]string{"sum": "RowSum", "max": "RowMax", "min": "RowMin"}[a.Str("op")]
			if !ok || x.DType != ir.F32 || x.Rank() > 2 || a.Int("axis") != x.Rank()-1 {
				return fmt.Errorf("kernel %s: the Go renderer reduces f32 tiles of rank ≤ 2 along their last axis only", k.Name)
			}
			pf("\t\t%s := rt.ReduceTile(rt.%s, %s, %s)\n", res, fn, scratchOf(in.Results[0]), ref(in.Args[0]))
		case kir.OpIdiv, kir.OpIrem, kir.OpCdiv:
			fn := map[kir.Op]string{kir.OpIdiv: "FloorDiv", kir.OpIrem: "FloorMod", kir.OpCdiv: "CeilDiv"}[in.Op]
			pf("\t\t%s := rt.%s(%s, %s)\n", res, fn, ref(in.Args[0]), ref(in.Args[1]))
		case kir.OpLoad:
			buf := in.Args[0]
			rowAxis, colAxis, rows, cols := tileAxes(in.Results[0].Type, a.Ints("dims"))
			scratch := "nil"
			if copiedLoad(in) {
				scratch = scratchOf(in.Results[0])
			}
			pf("\t\t%s := rt.LoadTile(%s, %s, %d, %d, %d, %d%s)\n", res, ref(buf), scratch, rowAxis, colAxis, rows, cols, offsetArgs(in.Args[1:], ref))
		case kir.OpStore:
			rowAxis, colAxis, _, _ := tileAxes(in.Args[1].Type, a.Ints("dims"))
			pf("\t\trt.StoreTile(%s, %s, %d, %d%s)\n", ref(in.Args[0]), ref(in.Args[1]), rowAxis, colAxis, offsetArgs(in.Args[2:], ref))
		case kir.OpElem:
			if in.Args[0].Type.Kind == kir.KIndex {
				code, err := indexElem(in, ref)
				if err != nil {
					return fmt.Errorf("kernel %s: %w", k.Name, err)
				}
				pf("\t\t%s := %s\n", res, code)
				continue
			}
			if name, ok := unaryNames[in.Elem]; ok && len(in.Args) == 1 {
				pf("\t\t%s := rt.UnaryTile(rt.%s, %s, %s)\n", res, name, scratchOf(in.Results[0]), ref(in.Args[0]))
				continue
			}
			name, ok := binaryNames[in.Elem]
			if !ok || len(in.Args) != 2 {
				return fmt.Errorf("kernel %s: the Go renderer does not render %s on tiles", k.Name, in.Elem)
			}
			pf("\t\t%s := rt.BinaryTile(rt.%s, %s, %s, %s)\n", res, name, scratchOf(in.Results[0]), ref(in.Args[0]), ref(in.Args[1]))
		default:
			return fmt.Errorf("kernel %s: the Go renderer does not render %s yet", k.Name, in.Op)
		}
	}
	// Values no instruction reads (an index constant the pass left) are
	// discarded explicitly, as Go requires.
	for _, in := range k.Body.Instrs {
		for _, v := range in.Results {
			if !used[kirVar(v)] {
				pf("\t\t_ = %s\n", kirVar(v))
			}
		}
	}
	r.pf("\trt.Launch(%s, %s, %s, %d, func(p0, p1, p2 int, scr []float32) {\n", grid[0], grid[1], grid[2], max(1, nslots*slotSize))
	r.pf("\t\t_, _, _, _ = p0, p1, p2, scr\n")
	r.buf.WriteString(body.String())
	r.pf("\t})\n\treturn %s\n}\n", kirVar(out))
	return nil
}

// copiedLoad reports whether rt.LoadTile copies the tile of load in
// into scratch: when its rows are not contiguous in the buffer (the
// columns do not run along the buffer's last axis). Other tiles are
// windows of the buffer.
func copiedLoad(in *kir.Instr) bool {
	_, colAxis, _, cols := tileAxes(in.Results[0].Type, in.Attrs.Ints("dims"))
	return colAxis >= 0 && colAxis != in.Args[0].Type.Rank()-1 && cols > 1
}

// kirVar names a kernel's value in Go: its param name, or t<ID>.
func kirVar(v *kir.Value) string {
	if v.Name != "" {
		return "b_" + v.Name
	}
	return "t" + strconv.Itoa(v.ID)
}

// tileAxes gives rt.LoadTile's and rt.StoreTile's view of a tile of
// rank ≤ 2 along the buffer axes dims: the axes of its rows and columns
// (-1 for none) and its extents.
func tileAxes(t kir.Type, dims []int) (rowAxis, colAxis, rows, cols int) {
	switch len(t.Shape) {
	case 0:
		return -1, -1, 1, 1
	case 1:
		return -1, dims[0], 1, t.Shape[0]
	}
	return dims[0], dims[1], t.Shape[0], t.Shape[1]
}

func offsetArgs(vs []*kir.Value, ref func(*kir.Value) string) string {
	var sb strings.Builder
	for _, v := range vs {
		sb.WriteString(", ")
		sb.WriteString(ref(v))
	}
	return sb.String()
}

// indexElem is Go for index arithmetic: add, sub, mul, min and max.
func indexElem(in *kir.Instr, ref func(*kir.Value) string) (string, error) {
	x, y := ref(in.Args[0]), ref(in.Args[1])
	switch in.Elem {
	case ir.OpAdd:
		return x + " + " + y, nil
	case ir.OpSub:
		return x + " - " + y, nil
	case ir.OpMul:
		return x + " * " + y, nil
	case ir.OpMin:
		return "min(" + x + ", " + y + ")", nil
	case ir.OpMax:
		return "max(" + x + ", " + y + ")", nil
	}
	return "", fmt.Errorf("the Go renderer does not render %s on indices yet", in.Elem)
}
