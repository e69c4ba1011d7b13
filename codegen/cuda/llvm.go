package cuda

import (
	"fmt"
	"math"
	"strconv"

	llir "github.com/llir/llvm/ir"
	"github.com/llir/llvm/ir/constant"
	"github.com/llir/llvm/ir/enum"
	"github.com/llir/llvm/ir/metadata"
	"github.com/llir/llvm/ir/types"
	"github.com/llir/llvm/ir/value"

	"github.com/attnc/attnc/ir"
	"github.com/attnc/attnc/kir"
)

// A Target is what LLVM lowers kernels for.
type Target int

const (
	// NVPTX is the nvptx64 target: a kernel reads its block and thread
	// from the PTX special registers and is annotated as a kernel; llc
	// -march=nvptx64 -mcpu=sm_80 compiles the module to PTX.
	NVPTX Target = iota
	// CPU is the machine llc runs on: a kernel takes its block (three
	// i64) and its thread and thread count (two i64) as its first
	// arguments, so a driver can run a grid in order.
	CPU
)

// An LLVMKernel is a kir kernel LLVM lowered: its parameters are the
// kir kernel's buffers, in order (float*, i32*, or i8* for bool), then
// each symbol of Syms as an i64.
type LLVMKernel struct {
	Name string
	Syms []string
}

// LLVM lowers the kernels of km to an LLVM IR module for target, as text
// (LLVM 14's syntax, typed pointers). A program of the kir grid is a
// block of threads; the threads share the elements of each stored tile
// (element e goes to thread e mod the block's size), and each computes
// an element from the loads it reads, so no shared memory or barrier is
// needed: loads, stores (out-of-bounds elements read the pad value and
// are not written), elementwise functions, constants, splats, aranges,
// expands, broadcasts, casts and reductions (a loop per element) are
// lowered. A kernel with for, if, dot, gather or call is not: skipped
// says why, by kernel name.
//
// Why: the kernel IR is what the passes decided (fusion, tiling); this
// path gives PTX from it with no CUDA compiler, through LLVM's own NVPTX
// backend, and the same lowering for the host runs the kernels here to
// check their semantics against kir/eval.
func LLVM(km *kir.Module, target Target) (string, []LLVMKernel, map[string]string, error) {
	m := llir.NewModule()
	l := &lowering{t: target, m: m, syms: km.Syms}
	l.declare()
	var out []LLVMKernel
	skipped := map[string]string{}
	var annotations []metadata.Node
	for _, k := range km.Kernels {
		fn, err := l.kernel(k)
		if err != nil {
			skipped[k.Name] = err.Error()
			// Drop the half-built function.
			m.Funcs = m.Funcs[:len(m.Funcs)-1]
			continue
		}
		out = append(out, LLVMKernel{Name: k.Name, Syms: km.Syms})
		if target == NVPTX {
			t := &metadata.Tuple{MetadataID: metadata.MetadataID(len(m.MetadataDefs)),
				Fields: []metadata.Field{typedRef{fn}, &metadata.String{Value: "kernel"}, constant.NewInt(types.I32, 1)}}
			m.MetadataDefs = append(m.MetadataDefs, t)
			annotations = append(annotations, t)
		}
	}
	if target == NVPTX {
		m.TargetTriple = "nvptx64-nvidia-cuda"
		m.DataLayout = "e-i64:64-i128:128-v16:16-v32:32-n16:32:64"
		if len(annotations) > 0 {
			m.NamedMetadataDefs["nvvm.annotations"] = &metadata.NamedDef{Name: "nvvm.annotations", Nodes: annotations}
		}
	}
	return m.String(), out, skipped, nil
}

// typedRef prints a function as a metadata field: its type and name.
type typedRef struct{ f *llir.Func }

func (r typedRef) String() string { return r.f.Type().String() + " " + r.f.Ident() }

type lowering struct {
	t    Target
	m    *llir.Module
	syms []string
	math map[string]*llir.Func

	// Per kernel.
	f     *llir.Func
	cur   *llir.Block
	nblk  int
	index map[*kir.Value]value.Value // index values (i64) and index comparisons (i1)
	bufs  map[*kir.Value]value.Value
	sym   map[string]value.Value
	block [3]value.Value
	tid   value.Value
	ntid  value.Value
	memo  []map[string]value.Value
}

var (
	f32 = types.Float
	i64 = types.I64
	i32 = types.I32
	i8  = types.I8
	i1  = types.I1
)

func ci64(v int64) value.Value   { return constant.NewInt(i64, v) }
func cf32(v float64) value.Value { return constant.NewFloat(f32, float64(float32(v))) }

// declare adds the math functions the kernels call, defined for the
// target: NVVM's approximate exp2, log2, sin and cos on the GPU, LLVM's
// intrinsics (libm) on the host.
func (l *lowering) declare() {
	l.math = map[string]*llir.Func{}
	unary := func(name string) *llir.Func {
		return l.m.NewFunc(name, f32, llir.NewParam("x", f32))
	}
	intrinsic := func(name string) *llir.Func { return l.m.NewFunc(name, f32, llir.NewParam("", f32)) }
	sqrt, fabs := intrinsic("llvm.sqrt.f32"), intrinsic("llvm.fabs.f32")
	l.math["sqrt"], l.math["fabs"] = sqrt, fabs
	def := func(name string, body func(b *llir.Block, x value.Value) value.Value) {
		f := unary("attnc_" + name)
		f.Linkage = enum.LinkageInternal
		b := f.NewBlock("entry")
		b.NewRet(body(b, f.Params[0]))
		l.math[name] = f
	}
	if l.t == NVPTX {
		ex2, lg2 := intrinsic("llvm.nvvm.ex2.approx.f"), intrinsic("llvm.nvvm.lg2.approx.f")
		sin, cos := intrinsic("llvm.nvvm.sin.approx.f"), intrinsic("llvm.nvvm.cos.approx.f")
		def("exp", func(b *llir.Block, x value.Value) value.Value {
			return b.NewCall(ex2, b.NewFMul(x, cf32(math.Log2E)))
		})
		def("log", func(b *llir.Block, x value.Value) value.Value {
			return b.NewFMul(b.NewCall(lg2, x), cf32(math.Ln2))
		})
		def("sin", func(b *llir.Block, x value.Value) value.Value { return b.NewCall(sin, x) })
		def("cos", func(b *llir.Block, x value.Value) value.Value { return b.NewCall(cos, x) })
		for i, r := range []string{"ctaid.x", "ctaid.y", "ctaid.z", "tid.x", "ntid.x"} {
			f := l.m.NewFunc("llvm.nvvm.read.ptx.sreg."+r, i32)
			l.math["sreg"+strconv.Itoa(i)] = f
		}
		return
	}
	for _, name := range []string{"exp", "log", "sin", "cos"} {
		in := intrinsic("llvm." + name + ".f32")
		def(name, func(b *llir.Block, x value.Value) value.Value { return b.NewCall(in, x) })
	}
	pow := l.m.NewFunc("llvm.pow.f32", f32, llir.NewParam("", f32), llir.NewParam("", f32))
	l.math["pow"] = pow
}

func (l *lowering) newBlock(what string) *llir.Block {
	l.nblk++
	return l.f.NewBlock(what + strconv.Itoa(l.nblk))
}

// kernel lowers one kernel into a new function of l.m.
func (l *lowering) kernel(k *kir.Kernel) (*llir.Func, error) {
	var params []*llir.Param
	if l.t == CPU {
		for _, n := range []string{"block.x", "block.y", "block.z", "thread", "threads"} {
			params = append(params, llir.NewParam(n, i64))
		}
	}
	l.bufs = map[*kir.Value]value.Value{}
	for _, p := range k.Params {
		et, err := elemType(p.Type.DType)
		if err != nil {
			l.f = l.m.NewFunc(k.Name, types.Void)
			return nil, err
		}
		params = append(params, llir.NewParam(p.Name, types.NewPointer(et)))
	}
	for _, s := range l.syms {
		params = append(params, llir.NewParam("sym."+s, i64))
	}
	l.f = l.m.NewFunc(k.Name, types.Void, params...)
	l.nblk = 0
	l.cur = l.f.NewBlock("entry")
	l.index = map[*kir.Value]value.Value{}
	l.sym = map[string]value.Value{}
	l.memo = []map[string]value.Value{{}}
	n := 0
	if l.t == CPU {
		for i := range 3 {
			l.block[i] = l.f.Params[i]
		}
		l.tid, l.ntid = l.f.Params[3], l.f.Params[4]
		n = 5
	} else {
		read := func(i int) value.Value { return l.cur.NewSExt(l.cur.NewCall(l.math["sreg"+strconv.Itoa(i)]), i64) }
		for i := range 3 {
			l.block[i] = read(i)
		}
		l.tid, l.ntid = read(3), read(4)
	}
	for i, p := range k.Params {
		l.bufs[p] = l.f.Params[n+i]
	}
	for i, s := range l.syms {
		l.sym[s] = l.f.Params[n+len(k.Params)+i]
	}
	for _, in := range k.Body.Instrs {
		if err := l.instr(in); err != nil {
			return nil, err
		}
	}
	l.cur.NewRet(nil)
	return l.f, nil
}

func elemType(dt ir.DType) (types.Type, error) {
	switch dt {
	case ir.F32:
		return f32, nil
	case ir.I32:
		return i32, nil
	case ir.Bool:
		return i8, nil
	}
	return nil, fmt.Errorf("a buffer of %s", dt)
}

// instr lowers a top-level instruction: index values now, stores as
// element loops; tiles are lowered where a store reads them.
func (l *lowering) instr(in *kir.Instr) error {
	if len(in.Results) == 1 && in.Results[0].Type.Kind == kir.KIndex {
		v, err := l.indexValue(in)
		if err != nil {
			return err
		}
		l.index[in.Results[0]] = v
		return nil
	}
	switch in.Op {
	case kir.OpStore:
		return l.store(in)
	case kir.OpElem:
		if len(in.Args) > 0 && in.Args[0].Type.Kind == kir.KIndex {
			// A comparison of indices: an i1 the tiles may read.
			v, err := l.indexValue(in)
			if err != nil {
				return err
			}
			l.index[in.Results[0]] = v
		}
		return nil
	case kir.OpConst, kir.OpLoad, kir.OpArange, kir.OpSplat, kir.OpExpand, kir.OpBroadcast, kir.OpCast, kir.OpReduce:
		return nil
	}
	return fmt.Errorf("the LLVM lowering has no %s", in.Name())
}

func (l *lowering) indexOf(v *kir.Value) (value.Value, error) {
	x, ok := l.index[v]
	if !ok {
		return nil, fmt.Errorf("index %s is not lowered", v.Ref())
	}
	return x, nil
}

func (l *lowering) indexValue(in *kir.Instr) (value.Value, error) {
	b := l.cur
	arg := func(i int) (value.Value, error) { return l.indexOf(in.Args[i]) }
	switch in.Op {
	case kir.OpProgramID:
		return l.block[in.Attrs.Int("axis")], nil
	case kir.OpSym:
		s, ok := l.sym[in.Attrs.Str("name")]
		if !ok {
			return nil, fmt.Errorf("no symbol %s", in.Attrs.Str("name"))
		}
		return s, nil
	case kir.OpConst:
		return ci64(int64(in.Attrs.Float("value"))), nil
	case kir.OpIdiv, kir.OpIrem, kir.OpCdiv, kir.OpElem:
		x, err := arg(0)
		if err != nil {
			return nil, err
		}
		y, err := arg(1)
		if err != nil {
			return nil, err
		}
		switch in.Op {
		case kir.OpIdiv:
			return l.floorDiv(x, y), nil
		case kir.OpIrem:
			return l.floorMod(x, y), nil
		case kir.OpCdiv:
			return b.NewSub(ci64(0), l.floorDiv(b.NewSub(ci64(0), x), y)), nil
		}
		switch in.Elem {
		case ir.OpAdd:
			return b.NewAdd(x, y), nil
		case ir.OpSub:
			return b.NewSub(x, y), nil
		case ir.OpMul:
			return b.NewMul(x, y), nil
		case ir.OpMin:
			return b.NewSelect(b.NewICmp(enum.IPredSLT, x, y), x, y), nil
		case ir.OpMax:
			return b.NewSelect(b.NewICmp(enum.IPredSGT, x, y), x, y), nil
		}
		if p, ok := intPreds[in.Elem]; ok {
			return b.NewICmp(p, x, y), nil
		}
		return nil, fmt.Errorf("%s on indices", in.Elem)
	}
	return nil, fmt.Errorf("the LLVM lowering has no index op %s", in.Name())
}

var intPreds = map[ir.Op]enum.IPred{
	ir.OpLt: enum.IPredSLT, ir.OpLe: enum.IPredSLE, ir.OpGt: enum.IPredSGT, ir.OpGe: enum.IPredSGE,
	ir.OpEq: enum.IPredEQ, ir.OpNe: enum.IPredNE,
}

var floatPreds = map[ir.Op]enum.FPred{
	ir.OpLt: enum.FPredOLT, ir.OpLe: enum.FPredOLE, ir.OpGt: enum.FPredOGT, ir.OpGe: enum.FPredOGE,
	ir.OpEq: enum.FPredOEQ, ir.OpNe: enum.FPredUNE,
}

// floorDiv is ⌊x / y⌋ on signed integers (of one type).
func (l *lowering) floorDiv(x, y value.Value) value.Value {
	b := l.cur
	q := b.NewSDiv(x, y)
	r := b.NewSRem(x, y)
	zero := constant.NewInt(x.Type().(*types.IntType), 0)
	one := constant.NewInt(x.Type().(*types.IntType), 1)
	fix := b.NewAnd(b.NewICmp(enum.IPredNE, r, zero), b.NewICmp(enum.IPredNE, b.NewICmp(enum.IPredSLT, r, zero), b.NewICmp(enum.IPredSLT, y, zero)))
	return b.NewSub(q, b.NewSelect(fix, one, zero))
}

// floorMod is x - y·⌊x / y⌋: the remainder with the divisor's sign.
func (l *lowering) floorMod(x, y value.Value) value.Value {
	return l.cur.NewSub(x, l.cur.NewMul(y, l.floorDiv(x, y)))
}

// dim is a buffer's dim as an i64.
func (l *lowering) dim(d ir.Dim) value.Value {
	var v value.Value = ci64(d.Const)
	for _, t := range d.Terms {
		v = l.cur.NewAdd(v, l.cur.NewMul(ci64(t.Coef), l.sym[t.Sym]))
	}
	return v
}

// position returns, for a load or store of buffer buf at the offsets
// with the tile's axes along dims, the linear index of the element at
// coords and whether it lies inside the buffer.
func (l *lowering) position(buf *kir.Value, offs []*kir.Value, dims []int, coords []value.Value) (value.Value, value.Value, error) {
	b := l.cur
	at := make([]value.Value, len(offs))
	for i, o := range offs {
		v, err := l.indexOf(o)
		if err != nil {
			return nil, nil, err
		}
		at[i] = v
	}
	for i, d := range dims {
		at[d] = b.NewAdd(at[d], coords[i])
	}
	var lin value.Value = ci64(0)
	var inside value.Value = constant.NewBool(true)
	for d, x := range at {
		n := l.dim(buf.Type.Dims[d])
		lin = b.NewAdd(b.NewMul(lin, n), x)
		ok := b.NewAnd(b.NewICmp(enum.IPredSGE, x, ci64(0)), b.NewICmp(enum.IPredSLT, x, n))
		inside = b.NewAnd(inside, ok)
	}
	return lin, inside, nil
}

// store lowers a store: a loop over the tile's elements, thread t taking
// elements t, t + threads, ….
func (l *lowering) store(in *kir.Instr) error {
	tile := in.Args[1]
	shape := tile.Type.Shape
	n := int64(tile.Type.Elems())
	pre := l.cur
	head, body, exit := l.newBlock("store.head"), l.newBlock("store.body"), l.newBlock("store.exit")
	pre.NewBr(head)
	e := head.NewPhi(llir.NewIncoming(l.tid, pre))
	head.NewCondBr(head.NewICmp(enum.IPredSLT, e, ci64(n)), body, exit)
	l.cur = body
	coords := l.unravel(e, shape)
	l.memo = append(l.memo, map[string]value.Value{})
	v, err := l.elemAt(tile, coords)
	if err != nil {
		return err
	}
	lin, inside, err := l.position(in.Args[0], in.Args[2:], in.Attrs.Ints("dims"), coords)
	if err != nil {
		return err
	}
	l.memo = l.memo[:len(l.memo)-1]
	write, latch := l.newBlock("store.write"), l.newBlock("store.next")
	l.cur.NewCondBr(inside, write, latch)
	buf := l.bufs[in.Args[0]]
	et := buf.Type().(*types.PointerType).ElemType
	if tile.Type.DType == ir.Bool {
		v = write.NewZExt(v, i8)
	}
	write.NewStore(v, write.NewGetElementPtr(et, buf, lin))
	write.NewBr(latch)
	next := latch.NewAdd(e, l.ntid)
	latch.NewBr(head)
	e.Incs = append(e.Incs, llir.NewIncoming(next, latch))
	l.cur = exit
	return nil
}

// unravel splits a linear element number into coordinates of shape.
func (l *lowering) unravel(e value.Value, shape []int) []value.Value {
	coords := make([]value.Value, len(shape))
	for j := len(shape) - 1; j >= 0; j-- {
		n := ci64(int64(shape[j]))
		coords[j] = l.cur.NewURem(e, n)
		e = l.cur.NewUDiv(e, n)
	}
	return coords
}

func key(v *kir.Value, coords []value.Value) string {
	k := strconv.Itoa(v.ID) + ":"
	for _, c := range coords {
		k += fmt.Sprintf("%p,", c)
	}
	return k
}

// elemAt lowers the element of tile v at coords, in l.cur.
func (l *lowering) elemAt(v *kir.Value, coords []value.Value) (value.Value, error) {
	k := key(v, coords)
	for i := len(l.memo) - 1; i >= 0; i-- {
		if x, ok := l.memo[i][k]; ok {
			return x, nil
		}
	}
	x, err := l.elemOf(v, coords)
	if err != nil {
		return nil, err
	}
	l.memo[len(l.memo)-1][k] = x
	return x, nil
}

// zero is the coordinate 0, one value so that memo keys match.
var zero = ci64(0)

// bcast maps coords of a result to those of an operand of shape, numpy's
// rule: trailing axes line up, an axis of 1 reads element 0.
func bcast(coords []value.Value, shape []int) []value.Value {
	lead := len(coords) - len(shape)
	out := make([]value.Value, len(shape))
	for i, n := range shape {
		if n == 1 {
			out[i] = zero
		} else {
			out[i] = coords[lead+i]
		}
	}
	return out
}

func (l *lowering) elemOf(v *kir.Value, coords []value.Value) (value.Value, error) {
	in := v.Def
	if in == nil {
		return nil, fmt.Errorf("%s is not an instruction's result", v.Ref())
	}
	if x, ok := l.index[v]; ok && len(coords) == 0 {
		return x, nil
	}
	dt := v.Type.DType
	switch in.Op {
	case kir.OpConst:
		return l.constant(dt, in.Attrs.Float("value")), nil
	case kir.OpArange:
		return l.cur.NewTrunc(coords[0], i32), nil
	case kir.OpSplat:
		x := in.Args[0]
		if x.Type.Kind == kir.KIndex {
			iv, err := l.indexOf(x)
			if err != nil {
				return nil, err
			}
			switch dt {
			case ir.F32:
				return l.cur.NewSIToFP(iv, f32), nil
			case ir.I32:
				return l.cur.NewTrunc(iv, i32), nil
			}
			return l.cur.NewICmp(enum.IPredNE, iv, ci64(0)), nil
		}
		return l.elemAt(x, make([]value.Value, x.Type.Rank()))
	case kir.OpExpand:
		axis := in.Attrs.Int("axis")
		inner := append(append([]value.Value{}, coords[:axis]...), coords[axis+1:]...)
		return l.elemAt(in.Args[0], inner)
	case kir.OpBroadcast:
		return l.elemAt(in.Args[0], bcast(coords, in.Args[0].Type.Shape))
	case kir.OpCast:
		x, err := l.elemAt(in.Args[0], bcast(coords, in.Args[0].Type.Shape))
		if err != nil {
			return nil, err
		}
		return l.cast(x, in.Args[0].Type.DType, dt), nil
	case kir.OpLoad:
		lin, inside, err := l.position(in.Args[0], in.Args[1:], in.Attrs.Ints("dims"), coords)
		if err != nil {
			return nil, err
		}
		b := l.cur
		buf := l.bufs[in.Args[0]]
		et := buf.Type().(*types.PointerType).ElemType
		safe := b.NewSelect(inside, lin, ci64(0))
		x := value.Value(b.NewLoad(et, b.NewGetElementPtr(et, buf, safe)))
		if dt == ir.Bool {
			x = b.NewICmp(enum.IPredNE, x, constant.NewInt(i8, 0))
		}
		return b.NewSelect(inside, x, l.constant(dt, in.Attrs.Float("pad"))), nil
	case kir.OpElem:
		args := make([]value.Value, len(in.Args))
		for i, a := range in.Args {
			if a.Type.Kind == kir.KIndex {
				iv, err := l.indexOf(a)
				if err != nil {
					return nil, err
				}
				args[i] = iv
				continue
			}
			x, err := l.elemAt(a, bcast(coords, a.Type.Shape))
			if err != nil {
				return nil, err
			}
			args[i] = x
		}
		return l.elem(in.Elem, in.Args[0].Type.DType, args)
	case kir.OpReduce:
		return l.reduce(in, coords)
	}
	return nil, fmt.Errorf("the LLVM lowering has no %s", in.Name())
}

func (l *lowering) constant(dt ir.DType, v float64) value.Value {
	switch dt {
	case ir.I32:
		return constant.NewInt(i32, int64(v))
	case ir.Bool:
		return constant.NewBool(v != 0)
	}
	return cf32(v)
}

func (l *lowering) cast(x value.Value, from, to ir.DType) value.Value {
	b := l.cur
	switch {
	case from == to:
		return x
	case to == ir.Bool && from == ir.F32:
		return b.NewFCmp(enum.FPredUNE, x, cf32(0))
	case to == ir.Bool:
		return b.NewICmp(enum.IPredNE, x, constant.NewInt(i32, 0))
	case to == ir.F32 && from == ir.I32:
		return b.NewSIToFP(x, f32)
	case to == ir.F32:
		return b.NewUIToFP(x, f32)
	case to == ir.I32 && from == ir.F32:
		return b.NewFPToSI(x, i32)
	}
	return b.NewZExt(x, i32)
}

// reduce lowers the element at coords of a reduction: a loop over the
// reduced axis.
func (l *lowering) reduce(in *kir.Instr, coords []value.Value) (value.Value, error) {
	x := in.Args[0]
	axis, op := in.Attrs.Int("axis"), in.Attrs.Str("op")
	n := ci64(int64(x.Type.Shape[axis]))
	init := 0.0
	switch op {
	case "max":
		init = math.Inf(-1)
	case "min":
		init = math.Inf(1)
	}
	dt := x.Type.DType
	pre := l.cur
	head, body, exit := l.newBlock("reduce.head"), l.newBlock("reduce.body"), l.newBlock("reduce.exit")
	pre.NewBr(head)
	k := head.NewPhi(llir.NewIncoming(ci64(0), pre))
	acc := head.NewPhi(llir.NewIncoming(l.constant(dt, init), pre))
	head.NewCondBr(head.NewICmp(enum.IPredSLT, k, n), body, exit)
	l.cur = body
	l.memo = append(l.memo, map[string]value.Value{})
	inner := append(append(append([]value.Value{}, coords[:axis]...), k), coords[axis:]...)
	v, err := l.elemAt(x, inner)
	if err != nil {
		return nil, err
	}
	l.memo = l.memo[:len(l.memo)-1]
	var next value.Value
	switch op {
	case "sum":
		next, err = l.elem(ir.OpAdd, dt, []value.Value{acc, v})
	case "max":
		next, err = l.elem(ir.OpMax, dt, []value.Value{acc, v})
	case "min":
		next, err = l.elem(ir.OpMin, dt, []value.Value{acc, v})
	default:
		err = fmt.Errorf("a reduction %s", op)
	}
	if err != nil {
		return nil, err
	}
	k1 := l.cur.NewAdd(k, ci64(1))
	l.cur.NewBr(head)
	k.Incs = append(k.Incs, llir.NewIncoming(k1, l.cur))
	acc.Incs = append(acc.Incs, llir.NewIncoming(next, l.cur))
	l.cur = exit
	return acc, nil
}

// elem lowers an elementwise function of the graph IR on scalars of the
// operands' dtype dt.
func (l *lowering) elem(op ir.Op, dt ir.DType, a []value.Value) (value.Value, error) {
	b := l.cur
	call := func(name string, x value.Value) value.Value { return b.NewCall(l.math[name], x) }
	if dt == ir.Bool {
		switch op {
		case ir.OpAnd:
			return b.NewAnd(a[0], a[1]), nil
		case ir.OpOr:
			return b.NewOr(a[0], a[1]), nil
		case ir.OpNot:
			return b.NewXor(a[0], constant.NewBool(true)), nil
		case ir.OpEq:
			return b.NewICmp(enum.IPredEQ, a[0], a[1]), nil
		case ir.OpNe:
			return b.NewICmp(enum.IPredNE, a[0], a[1]), nil
		case ir.OpSelect:
			return b.NewSelect(a[0], a[1], a[2]), nil
		}
		return nil, fmt.Errorf("%s on bool", op)
	}
	if op == ir.OpSelect {
		return b.NewSelect(a[0], a[1], a[2]), nil
	}
	if dt == ir.I32 {
		switch op {
		case ir.OpAdd:
			return b.NewAdd(a[0], a[1]), nil
		case ir.OpSub:
			return b.NewSub(a[0], a[1]), nil
		case ir.OpMul:
			return b.NewMul(a[0], a[1]), nil
		case ir.OpDiv:
			return l.floorDiv(a[0], a[1]), nil
		case ir.OpMod:
			return l.floorMod(a[0], a[1]), nil
		case ir.OpMax:
			return b.NewSelect(b.NewICmp(enum.IPredSGT, a[0], a[1]), a[0], a[1]), nil
		case ir.OpMin:
			return b.NewSelect(b.NewICmp(enum.IPredSLT, a[0], a[1]), a[0], a[1]), nil
		case ir.OpNeg:
			return b.NewSub(constant.NewInt(i32, 0), a[0]), nil
		case ir.OpAbs:
			return b.NewSelect(b.NewICmp(enum.IPredSLT, a[0], constant.NewInt(i32, 0)), b.NewSub(constant.NewInt(i32, 0), a[0]), a[0]), nil
		}
		if p, ok := intPreds[op]; ok {
			return b.NewICmp(p, a[0], a[1]), nil
		}
		return nil, fmt.Errorf("%s on i32", op)
	}
	nanOr := func(x, y, v value.Value) value.Value {
		return b.NewSelect(b.NewFCmp(enum.FPredUNO, x, y), cf32(math.NaN()), v)
	}
	sigmoid := func(x value.Value) value.Value {
		return b.NewFDiv(cf32(1), b.NewFAdd(cf32(1), call("exp", b.NewFNeg(x))))
	}
	tanh := func(x value.Value) value.Value {
		e := call("exp", b.NewFMul(cf32(-2), x))
		return b.NewFSub(b.NewFDiv(cf32(2), b.NewFAdd(cf32(1), e)), cf32(1))
	}
	switch op {
	case ir.OpAdd:
		return b.NewFAdd(a[0], a[1]), nil
	case ir.OpSub:
		return b.NewFSub(a[0], a[1]), nil
	case ir.OpMul:
		return b.NewFMul(a[0], a[1]), nil
	case ir.OpDiv:
		return b.NewFDiv(a[0], a[1]), nil
	case ir.OpMax:
		return nanOr(a[0], a[1], b.NewSelect(b.NewFCmp(enum.FPredOGT, a[0], a[1]), a[0], a[1])), nil
	case ir.OpMin:
		return nanOr(a[0], a[1], b.NewSelect(b.NewFCmp(enum.FPredOLT, a[0], a[1]), a[0], a[1])), nil
	case ir.OpPow:
		if l.t == CPU {
			return b.NewCall(l.math["pow"], a[0], a[1]), nil
		}
		return call("exp", b.NewFMul(a[1], call("log", a[0]))), nil
	case ir.OpNeg:
		return b.NewFNeg(a[0]), nil
	case ir.OpAbs:
		return call("fabs", a[0]), nil
	case ir.OpExp, ir.OpLog, ir.OpSin, ir.OpCos, ir.OpSqrt:
		return call(op.String(), a[0]), nil
	case ir.OpRsqrt:
		return b.NewFDiv(cf32(1), call("sqrt", a[0])), nil
	case ir.OpTanh:
		return tanh(a[0]), nil
	case ir.OpSigmoid:
		return sigmoid(a[0]), nil
	case ir.OpSilu:
		return b.NewFMul(a[0], sigmoid(a[0])), nil
	case ir.OpRelu:
		return nanOr(a[0], a[0], b.NewSelect(b.NewFCmp(enum.FPredOGT, a[0], cf32(0)), a[0], cf32(0))), nil
	case ir.OpGelu:
		x := a[0]
		u := b.NewFMul(cf32(math.Sqrt(2/math.Pi)), b.NewFAdd(x, b.NewFMul(cf32(0.044715), b.NewFMul(x, b.NewFMul(x, x)))))
		return b.NewFMul(b.NewFMul(cf32(0.5), x), b.NewFAdd(cf32(1), tanh(u))), nil
	case ir.OpGeluDeriv:
		// s·(1 + 2x·s·e·du/dx), e = exp(-2u), s = 1/(1 + e), as the
		// reference has it; past ±20, 1 and 0.
		x := a[0]
		c := cf32(math.Sqrt(2 / math.Pi))
		x2 := b.NewFMul(x, x)
		u := b.NewFMul(c, b.NewFAdd(x, b.NewFMul(cf32(0.044715), b.NewFMul(x, x2))))
		e := call("exp", b.NewFMul(cf32(-2), u))
		s := b.NewFDiv(cf32(1), b.NewFAdd(cf32(1), e))
		du := b.NewFMul(c, b.NewFAdd(cf32(1), b.NewFMul(cf32(3*0.044715), x2)))
		inner := b.NewFMul(b.NewFMul(b.NewFMul(b.NewFMul(cf32(2), x), s), e), du)
		d := b.NewFMul(s, b.NewFAdd(cf32(1), inner))
		big := b.NewSelect(b.NewFCmp(enum.FPredOGT, x, cf32(20)), cf32(1), d)
		return b.NewSelect(b.NewFCmp(enum.FPredOLT, x, cf32(-20)), cf32(0), big), nil
	}
	if p, ok := floatPreds[op]; ok {
		return b.NewFCmp(p, a[0], a[1]), nil
	}
	return nil, fmt.Errorf("%s on f32", op)
}
