package kir

import (
	"fmt"
	"slices"

	"github.com/attnc/attnc/ir"
)

// An Op names a kernel operation. Its row in opTable says everything the
// verifier, the printer and the parser need: arity, attributes, results,
// regions and the type rule.
type Op uint8

const (
	OpInvalid Op = iota

	// Indices.
	OpProgramID // this program's coordinate along a grid axis
	OpSym       // the run-time value of a symbol of the module
	OpIdiv      // floor division of indices
	OpIrem      // floor remainder of indices
	OpCdiv      // ceiling division of indices

	// Tiles.
	OpConst     // a constant index or tile (every element the value)
	OpArange    // 0, 1, …, n-1
	OpSplat     // a scalar (an index or a rank-0 tile) as a tile
	OpExpand    // a tile with an axis of size 1 inserted
	OpBroadcast // a tile stretched along its axes of size 1
	OpCast      // a tile converted to another dtype
	OpElem      // one of the graph IR's elementwise functions
	OpReduce    // sum, max or min along an axis
	OpDot       // a tile product added to an accumulator

	// Memory.
	OpLoad   // a tile of a buffer along chosen axes, from offsets
	OpGather // one element of a buffer per element of index tiles
	OpStore  // a tile written into a buffer

	// Control.
	OpFor   // a loop over an index range carrying values
	OpIf    // one of two regions
	OpYield // a region's results
	OpCall  // a hand-written runtime kernel

	numOps
)

// Variadic marks an op whose operand or result count varies.
const Variadic = -1

// OpInfo is one row of the op table.
type OpInfo struct {
	Name string
	// Args is the operand count or Variadic (at least MinArgs).
	Args, MinArgs int
	Attrs         []ir.AttrSpec
	// Results is the result count or Variadic (for, if, call).
	Results int
	// Regions is how many nested blocks the op has.
	Regions int
	// Given means the result types are written by whoever creates the op
	// (and printed); Infer then checks them. Otherwise Infer computes them.
	Given bool
	Infer func(c *inferCtx) ([]Type, error)
	Doc   string
}

// inferCtx is what a type rule sees of an instruction.
type inferCtx struct {
	in    *Instr
	args  []Type
	given []Type // the printed result types
}

func (c *inferCtx) attrs() ir.Attrs { return c.in.Attrs }

var reduceOps = []string{"sum", "max", "min"}

var opTable = [numOps]OpInfo{
	OpProgramID: {Name: "program_id", Args: 0, Results: 1, Attrs: []ir.AttrSpec{{Name: "axis", Kind: ir.AttrInt}}, Infer: inferProgramID,
		Doc: "this program's coordinate along grid axis axis, from 0"},
	OpSym: {Name: "sym", Args: 0, Results: 1, Attrs: []ir.AttrSpec{{Name: "name", Kind: ir.AttrWord}}, Infer: inferSym,
		Doc: "the value of the module's symbol name (N, B…) in this launch"},
	OpIdiv: {Name: "idiv", Args: 2, Results: 1, Infer: inferIndex2, Doc: "⌊x / y⌋ of indices"},
	OpIrem: {Name: "irem", Args: 2, Results: 1, Infer: inferIndex2, Doc: "x - y·⌊x / y⌋ of indices (the sign of y)"},
	OpCdiv: {Name: "cdiv", Args: 2, Results: 1, Infer: inferIndex2, Doc: "⌈x / y⌉ of indices: the number of tiles of y covering x"},

	OpConst: {Name: "const", Args: 0, Results: 1, Given: true, Attrs: []ir.AttrSpec{{Name: "value", Kind: ir.AttrFloat}}, Infer: inferConst,
		Doc: "value as an index (an integer) or as a tile of the given type with every element value"},
	OpArange: {Name: "arange", Args: 0, Results: 1, Given: true, Infer: inferArange,
		Doc: "the i32 tile [0, 1, …, n-1] of the given type i32[n]"},
	OpSplat: {Name: "splat", Args: 1, Results: 1, Given: true, Infer: inferSplat,
		Doc: "a tile of the given type with every element x: an index (as i32) or a rank-0 tile of its dtype"},
	OpExpand: {Name: "expand", Args: 1, Results: 1, Attrs: []ir.AttrSpec{{Name: "axis", Kind: ir.AttrInt}}, Infer: inferExpand,
		Doc: "x with an axis of size 1 inserted before axis (axis = rank appends one)"},
	OpBroadcast: {Name: "broadcast", Args: 1, Results: 1, Given: true, Infer: inferBroadcast,
		Doc: "x stretched to the given shape of its rank along its axes of size 1"},
	OpCast: {Name: "cast", Args: 1, Results: 1, Given: true, Infer: inferCast,
		Doc: "x converted to the given dtype, its shape kept (bool→0/1, f32→i32 truncates toward zero)"},
	OpElem: {Name: "elem", Args: Variadic, MinArgs: 1, Results: 1, Infer: inferElem,
		Doc: "one of the graph IR's elementwise functions (its unary and binary ops and select, printed by their names): on tiles, broadcasting as numpy does; on indices, add, sub, mul, min, max (an index) and the comparisons (a bool[])"},
	OpReduce: {Name: "reduce", Args: 1, Results: 1, Attrs: []ir.AttrSpec{{Name: "op", Kind: ir.AttrWord, Words: reduceOps}, {Name: "axis", Kind: ir.AttrInt}}, Infer: inferReduce,
		Doc: "the sum, max or min of x along axis, which is dropped (max of NaN is NaN; of nothing -inf)"},
	OpDot: {Name: "dot", Args: 3, Results: 1, Infer: inferDot,
		Doc: "acc + a·b for f32 tiles a [M, K], b [K, N], acc [M, N]"},

	OpLoad: {Name: "load", Args: Variadic, MinArgs: 1, Results: 1, Given: true,
		Attrs: []ir.AttrSpec{{Name: "dims", Kind: ir.AttrInts}, {Name: "pad", Kind: ir.AttrFloat, Optional: true}}, Infer: inferLoad,
		Doc: "operands: a buffer and an index offset per buffer axis; the tile's axis i runs along buffer axis dims[i] from its offset (dims in any order: a transposed tile is a load), the other axes stay at their offsets; elements past the buffer's end read pad (0 when absent)"},
	OpGather: {Name: "gather", Args: Variadic, MinArgs: 1, Results: 1, Given: true,
		Attrs: []ir.AttrSpec{{Name: "pad", Kind: ir.AttrFloat, Optional: true}}, Infer: inferGather,
		Doc: "operands: a buffer and, per buffer axis, an index or an i32 tile, the tiles broadcasting to the result's shape; each element reads the buffer at its indices, or pad (0 when absent) outside it"},
	OpStore: {Name: "store", Args: Variadic, MinArgs: 2, Results: 0, Attrs: []ir.AttrSpec{{Name: "dims", Kind: ir.AttrInts}}, Infer: inferStore,
		Doc: "operands: a buffer, a tile of its dtype and an index offset per buffer axis; writes the tile as load reads one, skipping elements past the buffer's end"},

	OpFor: {Name: "for", Args: Variadic, MinArgs: 3, Results: Variadic, Regions: 1, Infer: inferFor,
		Doc: "for i from lo while i < hi, by step (> 0): operands lo, hi, step and the initial carried values; the region's arguments are i and the carried values, its yield the next carried values; the results are the last"},
	OpIf: {Name: "if", Args: 1, Results: Variadic, Regions: 2, Given: true, Infer: inferIf,
		Doc: "the first region when the bool[] condition is true, else the second; both yield values of the result types"},
	OpYield: {Name: "yield", Args: Variadic, Results: 0, Infer: inferYield,
		Doc: "ends a region of for or if with its values"},
	OpCall: {Name: "call", Args: Variadic, Results: Variadic, Given: true, Attrs: []ir.AttrSpec{{Name: "fn", Kind: ir.AttrString}}, Infer: inferCall,
		Doc: "the runtime kernel fn on the operands, with the given results: what stays hand-written (the GEMM micro-kernel on packed tiles, say)"},
}

// Info returns op's row of the op table.
func (op Op) Info() *OpInfo {
	if op <= OpInvalid || op >= numOps {
		return &OpInfo{Name: fmt.Sprintf("op(%d)", uint8(op))}
	}
	return &opTable[op]
}

func (op Op) String() string { return op.Info().Name }

// AllOps returns every op, in table order.
func AllOps() []Op {
	ops := make([]Op, 0, numOps-1)
	for op := OpInvalid + 1; op < numOps; op++ {
		ops = append(ops, op)
	}
	return ops
}

// OpByName returns the op printed as name, with the graph IR's
// elementwise function for OpElem ("exp", "add", "select"…). The word
// "elem" itself names no instruction.
func OpByName(name string) (Op, ir.Op, bool) {
	for _, op := range AllOps() {
		if op != OpElem && opTable[op].Name == name {
			return op, ir.OpInvalid, true
		}
	}
	if e, ok := ir.OpByName(name); ok && IsElementwise(e) {
		return OpElem, e, true
	}
	return OpInvalid, ir.OpInvalid, false
}

// IsElementwise reports whether the graph IR's op e is an elementwise
// function kir runs on tiles: its unary and binary ops (cast aside,
// which is kir's own cast) and select.
func IsElementwise(e ir.Op) bool {
	switch e.Info().Class {
	case ir.ClassUnary:
		return e != ir.OpCast
	case ir.ClassBinary:
		return true
	}
	return e == ir.OpSelect
}

func errf(format string, a ...any) error { return fmt.Errorf(format, a...) }

func one(t Type) ([]Type, error) { return []Type{t}, nil }

func inferProgramID(c *inferCtx) ([]Type, error) {
	if a := c.attrs().Int("axis"); a < 0 || a > 2 {
		return nil, errf("axis %d is not 0, 1 or 2", a)
	}
	return one(Index)
}

func inferSym(c *inferCtx) ([]Type, error) { return one(Index) }

func inferIndex2(c *inferCtx) ([]Type, error) {
	if c.args[0].Kind != KIndex || c.args[1].Kind != KIndex {
		return nil, errf("operands are %s and %s, want indices", c.args[0], c.args[1])
	}
	return one(Index)
}

func inferConst(c *inferCtx) ([]Type, error) {
	t, v := c.given[0], c.attrs().Float("value")
	integral := v == float64(int64(v))
	switch {
	case t.Kind == KIndex && !integral:
		return nil, errf("index constant %v is not an integer", v)
	case t.Kind == KTile && t.DType == ir.I32 && !integral:
		return nil, errf("i32 constant %v is not an integer", v)
	case t.Kind == KTile && t.DType == ir.Bool && v != 0 && v != 1:
		return nil, errf("bool constant %v is not 0 or 1", v)
	case t.Kind == KBuffer:
		return nil, errf("a constant is an index or a tile, not a buffer")
	}
	return c.given, nil
}

func inferArange(c *inferCtx) ([]Type, error) {
	if t := c.given[0]; t.Kind != KTile || t.DType != ir.I32 || len(t.Shape) != 1 {
		return nil, errf("arange is an i32 tile of rank 1, not %s", t)
	}
	return c.given, nil
}

func inferSplat(c *inferCtx) ([]Type, error) {
	x, t := c.args[0], c.given[0]
	if t.Kind != KTile {
		return nil, errf("splat makes a tile, not %s", t)
	}
	switch {
	case x.Kind == KIndex && t.DType != ir.I32:
		return nil, errf("an index splats to an i32 tile, not %s", t)
	case x.Kind == KTile && (x.Rank() != 0 || x.DType != t.DType):
		return nil, errf("splat of %s: want an index or a rank-0 tile of %s", x, t.DType)
	case x.Kind == KBuffer:
		return nil, errf("splat of a buffer")
	}
	return c.given, nil
}

func inferExpand(c *inferCtx) ([]Type, error) {
	x, axis := c.args[0], c.attrs().Int("axis")
	if x.Kind != KTile || axis < 0 || axis > x.Rank() {
		return nil, errf("expand of %s at axis %d", x, axis)
	}
	return one(Tile(x.DType, slices.Insert(slices.Clone(x.Shape), axis, 1)...))
}

func inferBroadcast(c *inferCtx) ([]Type, error) {
	x, t := c.args[0], c.given[0]
	if x.Kind != KTile || t.Kind != KTile || t.DType != x.DType || t.Rank() != x.Rank() {
		return nil, errf("broadcast of %s to %s: want a tile of the same dtype and rank", x, t)
	}
	for i, d := range x.Shape {
		if d != 1 && d != t.Shape[i] {
			return nil, errf("broadcast of %s to %s: axis %d is neither 1 nor %d", x, t, i, t.Shape[i])
		}
	}
	return c.given, nil
}

func inferCast(c *inferCtx) ([]Type, error) {
	x, t := c.args[0], c.given[0]
	if x.Kind != KTile || t.Kind != KTile || !slices.Equal(x.Shape, t.Shape) {
		return nil, errf("cast of %s to %s: want tiles of one shape", x, t)
	}
	return c.given, nil
}

// irType is a tile as the graph IR sees it: constant dims.
func irType(t Type) ir.Type {
	sh := make(ir.Shape, len(t.Shape))
	for i, d := range t.Shape {
		sh[i] = ir.ConstDim(int64(d))
	}
	return ir.Type{DType: t.DType, Shape: sh}
}

// fromIR is the tile of a graph IR type with constant dims.
func fromIR(t ir.Type) (Type, error) {
	sh := make([]int, len(t.Shape))
	for i, d := range t.Shape {
		n, ok := d.IsConst()
		if !ok {
			return Type{}, errf("dim %s is not a constant", d)
		}
		sh[i] = int(n)
	}
	return Tile(t.DType, sh...), nil
}

// indexElem are the elementwise functions defined on indices, and their
// result: an index, or a bool[] for comparisons.
var indexElem = map[ir.Op]bool{
	ir.OpAdd: true, ir.OpSub: true, ir.OpMul: true, ir.OpMax: true, ir.OpMin: true,
	ir.OpLt: false, ir.OpLe: false, ir.OpGt: false, ir.OpGe: false, ir.OpEq: false, ir.OpNe: false,
}

func inferElem(c *inferCtx) ([]Type, error) {
	e := c.in.Elem
	if !IsElementwise(e) {
		return nil, errf("%s is not an elementwise function", e)
	}
	info := e.Info()
	if len(c.args) != info.Args {
		return nil, errf("%s takes %d operands, got %d", e, info.Args, len(c.args))
	}
	var nIndex int
	for _, a := range c.args {
		switch a.Kind {
		case KIndex:
			nIndex++
		case KBuffer:
			return nil, errf("%s of a buffer: load a tile first", e)
		}
	}
	if nIndex > 0 {
		res, ok := indexElem[e]
		if !ok || nIndex != len(c.args) {
			return nil, errf("%s on indices: only add, sub, mul, min, max and comparisons, with every operand an index", e)
		}
		if res {
			return one(Index)
		}
		return one(Tile(ir.Bool))
	}
	args := make([]ir.Type, len(c.args))
	for i, a := range c.args {
		args[i] = irType(a)
	}
	t, err := info.Infer(&ir.InferCtx{Args: args, Attrs: ir.Attrs{}})
	if err != nil {
		return nil, err
	}
	r, err := fromIR(t)
	if err != nil {
		return nil, err
	}
	return one(r)
}

func inferReduce(c *inferCtx) ([]Type, error) {
	x, axis := c.args[0], c.attrs().Int("axis")
	if x.Kind != KTile || axis < 0 || axis >= x.Rank() {
		return nil, errf("reduce of %s along axis %d", x, axis)
	}
	if x.DType == ir.Bool {
		return nil, errf("reduce of a bool tile")
	}
	return one(Tile(x.DType, slices.Delete(slices.Clone(x.Shape), axis, axis+1)...))
}

func inferDot(c *inferCtx) ([]Type, error) {
	a, b, acc := c.args[0], c.args[1], c.args[2]
	for _, t := range c.args {
		if t.Kind != KTile || t.DType != ir.F32 || t.Rank() != 2 {
			return nil, errf("dot takes f32 tiles of rank 2, got %s, %s, %s", a, b, acc)
		}
	}
	if a.Shape[1] != b.Shape[0] || acc.Shape[0] != a.Shape[0] || acc.Shape[1] != b.Shape[1] {
		return nil, errf("dot of %s and %s into %s: shapes do not fit", a, b, acc)
	}
	return one(acc)
}

// checkOffsets checks the buffer and index operands of load and store
// and the dims attribute against them and the tile's rank.
func checkOffsets(buf Type, offs []Type, dims []int, rank int) error {
	if buf.Kind != KBuffer {
		return errf("the first operand is %s, want a buffer", buf)
	}
	if len(offs) != buf.Rank() {
		return errf("%d offsets for a buffer of rank %d", len(offs), buf.Rank())
	}
	for i, o := range offs {
		if o.Kind != KIndex {
			return errf("offset %d is %s, want an index", i, o)
		}
	}
	if len(dims) != rank {
		return errf("dims %v for a tile of rank %d", dims, rank)
	}
	seen := map[int]bool{}
	for _, d := range dims {
		if d < 0 || d >= buf.Rank() || seen[d] {
			return errf("dims %v: want distinct axes of the buffer (rank %d)", dims, buf.Rank())
		}
		seen[d] = true
	}
	return nil
}

func inferLoad(c *inferCtx) ([]Type, error) {
	t := c.given[0]
	if t.Kind != KTile {
		return nil, errf("load makes a tile, not %s", t)
	}
	if err := checkOffsets(c.args[0], c.args[1:], c.attrs().Ints("dims"), t.Rank()); err != nil {
		return nil, err
	}
	if t.DType != c.args[0].DType {
		return nil, errf("load of %s as %s", c.args[0], t)
	}
	return c.given, nil
}

func inferGather(c *inferCtx) ([]Type, error) {
	buf, t := c.args[0], c.given[0]
	if buf.Kind != KBuffer || t.Kind != KTile || t.DType != buf.DType {
		return nil, errf("gather of %s as %s", buf, t)
	}
	if len(c.args)-1 != buf.Rank() {
		return nil, errf("%d indices for a buffer of rank %d", len(c.args)-1, buf.Rank())
	}
	var shape ir.Shape
	for i, a := range c.args[1:] {
		switch {
		case a.Kind == KIndex:
		case a.Kind == KTile && a.DType == ir.I32:
			sh, err := ir.Broadcast(shape, irType(a).Shape)
			if err != nil {
				return nil, errf("index %d: %v", i, err)
			}
			shape = sh
		default:
			return nil, errf("index %d is %s, want an index or an i32 tile", i, a)
		}
	}
	if got, err := fromIR(ir.Type{DType: t.DType, Shape: shape}); err != nil || !got.Equal(t) {
		return nil, errf("the indices broadcast to %s, not %s", shape, t)
	}
	return c.given, nil
}

func inferStore(c *inferCtx) ([]Type, error) {
	buf, t := c.args[0], c.args[1]
	if t.Kind != KTile || t.DType != buf.DType {
		return nil, errf("store of %s into %s", t, buf)
	}
	if err := checkOffsets(buf, c.args[2:], c.attrs().Ints("dims"), t.Rank()); err != nil {
		return nil, err
	}
	return nil, nil
}

func inferFor(c *inferCtx) ([]Type, error) {
	for i, name := range []string{"lo", "hi", "step"} {
		if c.args[i].Kind != KIndex {
			return nil, errf("%s is %s, want an index", name, c.args[i])
		}
	}
	carried := c.args[3:]
	body := c.in.Regions[0]
	if len(body.Args) != 1+len(carried) {
		return nil, errf("the body has %d arguments, want the counter and %d carried values", len(body.Args), len(carried))
	}
	if body.Args[0].Type.Kind != KIndex {
		return nil, errf("the counter is %s, want an index", body.Args[0].Type)
	}
	for i, t := range carried {
		if t.Kind == KBuffer {
			return nil, errf("carried value %d is a buffer", i)
		}
		if !body.Args[1+i].Type.Equal(t) {
			return nil, errf("carried value %d is %s, its argument %s", i, t, body.Args[1+i].Type)
		}
	}
	if err := checkYield(body, carried); err != nil {
		return nil, err
	}
	return slices.Clone(carried), nil
}

func inferIf(c *inferCtx) ([]Type, error) {
	if cond := c.args[0]; cond.Kind != KTile || cond.DType != ir.Bool || cond.Rank() != 0 {
		return nil, errf("the condition is %s, want bool[]", cond)
	}
	for i, r := range c.in.Regions {
		if len(r.Args) != 0 {
			return nil, errf("region %d of if has arguments", i)
		}
		if err := checkYield(r, c.given); err != nil {
			return nil, err
		}
	}
	return c.given, nil
}

// checkYield checks that region ends with a yield of values of types.
func checkYield(r *Block, types []Type) error {
	if len(r.Instrs) == 0 || r.Instrs[len(r.Instrs)-1].Op != OpYield {
		return errf("a region must end with yield")
	}
	y := r.Instrs[len(r.Instrs)-1]
	if len(y.Args) != len(types) {
		return errf("yield of %d values, want %d", len(y.Args), len(types))
	}
	for i, a := range y.Args {
		if !a.Type.Equal(types[i]) {
			return errf("yield value %d is %s, want %s", i, a.Type, types[i])
		}
	}
	return nil
}

func inferYield(c *inferCtx) ([]Type, error) { return nil, nil }

func inferCall(c *inferCtx) ([]Type, error) {
	if c.attrs().Str("fn") == "" {
		return nil, errf("call names no function")
	}
	for _, t := range c.given {
		if t.Kind == KBuffer {
			return nil, errf("a call returns indices and tiles, not buffers")
		}
	}
	return c.given, nil
}
