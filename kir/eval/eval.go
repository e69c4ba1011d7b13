// Package eval interprets the kernel IR (kir) in float64: the reference
// that lowerings to kir and the renderers of kir are tested against, as
// ir/eval is for the graph IR. The elementwise functions are ir/eval's
// (eval.Elementwise), so each is defined once.
//
// Programs run one after another, the grid's axes in row-major order (the
// last fastest); a program's instructions run in order. Kernels that are
// correct in parallel (each program writes its own elements) give the
// same buffers; a kernel whose programs race gives the result of this one
// order, so tests of parallel renderers compare with it.
package eval

import (
	"fmt"
	"math"
	"slices"

	"github.com/attnc/attnc/ir"
	"github.com/attnc/attnc/ir/eval"
	"github.com/attnc/attnc/kir"
)

// A Call implements a runtime kernel that kir's call names, on the
// operands' values (an int64 for an index, an *eval.Tensor for a tile),
// returning the results.
type Call func(args []any) ([]any, error)

// Env is what a launch needs: the symbols' values, the buffers by param
// name (written in place by stores) and the implementations of calls.
type Env struct {
	Syms    map[string]int64
	Buffers map[string]*eval.Tensor
	Calls   map[string]Call
}

// Run verifies m and runs its kernel named kernel over its whole grid.
func Run(m *kir.Module, kernel string, env Env) error {
	if err := kir.Verify(m); err != nil {
		return err
	}
	k := m.Kernel(kernel)
	if k == nil {
		return fmt.Errorf("kir/eval: no kernel %s", kernel)
	}
	for _, s := range m.Syms {
		if _, ok := env.Syms[s]; !ok {
			return fmt.Errorf("kir/eval: symbol %s has no value", s)
		}
	}
	for _, p := range k.Params {
		b := env.Buffers[p.Name]
		if b == nil {
			return fmt.Errorf("kir/eval: kernel %s: no buffer %s", k.Name, p.Name)
		}
		if b.DType != p.Type.DType || len(b.Shape) != len(p.Type.Dims) {
			return fmt.Errorf("kir/eval: kernel %s: buffer %s is %s%v, want %s", k.Name, p.Name, b.DType, b.Shape, p.Type)
		}
		for i, d := range p.Type.Dims {
			n, err := d.Eval(env.Syms)
			if err != nil {
				return fmt.Errorf("kir/eval: kernel %s: buffer %s: %w", k.Name, p.Name, err)
			}
			if int64(b.Shape[i]) != n {
				return fmt.Errorf("kir/eval: kernel %s: buffer %s has shape %v, want %s = %d at axis %d", k.Name, p.Name, b.Shape, d, n, i)
			}
		}
	}
	vars := map[string]float64{}
	for s, v := range env.Syms {
		vars[s] = float64(v)
	}
	grid := make([]int64, len(k.Grid))
	for i, g := range k.Grid {
		v, err := g.Eval(vars, nil)
		if err != nil {
			return fmt.Errorf("kir/eval: kernel %s: grid axis %d: %w", k.Name, i, err)
		}
		if v < 0 || v != math.Trunc(v) {
			return fmt.Errorf("kir/eval: kernel %s: grid axis %d is %v", k.Name, i, v)
		}
		grid[i] = int64(v)
	}
	pid := make([]int64, len(grid))
	for {
		for _, n := range grid {
			if n == 0 {
				return nil
			}
		}
		r := &runner{env: env, k: k, pid: pid, vals: map[*kir.Value]any{}}
		for _, p := range k.Params {
			r.vals[p] = env.Buffers[p.Name]
		}
		if _, err := r.block(k.Body, nil); err != nil {
			return fmt.Errorf("kir/eval: kernel %s, program %v: %w", k.Name, pid, err)
		}
		i := len(pid) - 1
		for ; i >= 0; i-- {
			pid[i]++
			if pid[i] < grid[i] {
				break
			}
			pid[i] = 0
		}
		if i < 0 {
			return nil
		}
	}
}

type runner struct {
	env  Env
	k    *kir.Kernel
	pid  []int64
	vals map[*kir.Value]any // int64 (index), *eval.Tensor (tile, buffer)
}

// block runs b with its arguments bound to args and returns the values
// of its yield (nil when it has none).
func (r *runner) block(b *kir.Block, args []any) ([]any, error) {
	for i, a := range b.Args {
		r.vals[a] = args[i]
	}
	for _, in := range b.Instrs {
		if in.Op == kir.OpYield {
			return r.args(in), nil
		}
		res, err := r.exec(in)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", in, err)
		}
		for i, v := range in.Results {
			r.vals[v] = res[i]
		}
	}
	return nil, nil
}

func (r *runner) args(in *kir.Instr) []any {
	out := make([]any, len(in.Args))
	for i, a := range in.Args {
		out[i] = r.vals[a]
	}
	return out
}

func (r *runner) index(v *kir.Value) int64 { return r.vals[v].(int64) }

func (r *runner) tile(v *kir.Value) *eval.Tensor { return r.vals[v].(*eval.Tensor) }

func one(v any) ([]any, error) { return []any{v}, nil }

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func (r *runner) exec(in *kir.Instr) (res []any, err error) {
	defer func() {
		if p := recover(); p != nil {
			res, err = nil, fmt.Errorf("internal error in the kernel interpreter: %v", p)
		}
	}()
	a := in.Attrs
	var out kir.Type
	if len(in.Results) == 1 {
		out = in.Results[0].Type
	}
	switch in.Op {
	case kir.OpProgramID:
		return one(r.pid[a.Int("axis")])
	case kir.OpSym:
		return one(r.env.Syms[a.Str("name")])
	case kir.OpIdiv, kir.OpIrem, kir.OpCdiv:
		x, y := r.index(in.Args[0]), r.index(in.Args[1])
		if y == 0 {
			return nil, fmt.Errorf("%s by zero", in.Op)
		}
		switch in.Op {
		case kir.OpIdiv:
			return one(floorDiv(x, y))
		case kir.OpIrem:
			return one(x - y*floorDiv(x, y))
		}
		return one(-floorDiv(-x, y))
	case kir.OpConst:
		v := a.Float("value")
		if out.Kind == kir.KIndex {
			return one(int64(v))
		}
		t := eval.NewTensor(out.DType, out.Shape...)
		for i := range t.Data {
			t.Data[i] = v
		}
		return one(t)
	case kir.OpArange:
		t := eval.NewTensor(ir.I32, out.Shape...)
		for i := range t.Data {
			t.Data[i] = float64(i)
		}
		return one(t)
	case kir.OpSplat:
		var v float64
		if x, ok := r.vals[in.Args[0]].(int64); ok {
			if x < math.MinInt32 || x > math.MaxInt32 {
				return nil, fmt.Errorf("index %d does not fit in i32", x)
			}
			v = float64(x)
		} else {
			v = r.tile(in.Args[0]).Data[0]
		}
		t := eval.NewTensor(out.DType, out.Shape...)
		for i := range t.Data {
			t.Data[i] = v
		}
		return one(t)
	case kir.OpExpand:
		x := r.tile(in.Args[0])
		return one(eval.FromData(x.DType, out.Shape, slices.Clone(x.Data)))
	case kir.OpBroadcast:
		return one(broadcast(r.tile(in.Args[0]), out.Shape))
	case kir.OpCast:
		return r.elem(ir.OpCast, out, []*eval.Tensor{r.tile(in.Args[0])})
	case kir.OpElem:
		if _, ok := r.vals[in.Args[0]].(int64); ok {
			return r.indexElem(in)
		}
		ts := make([]*eval.Tensor, len(in.Args))
		for i, x := range in.Args {
			ts[i] = r.tile(x)
		}
		return r.elem(in.Elem, out, ts)
	case kir.OpReduce:
		return one(reduce(r.tile(in.Args[0]), a.Str("op"), a.Int("axis"), out))
	case kir.OpDot:
		return one(dot(r.tile(in.Args[0]), r.tile(in.Args[1]), r.tile(in.Args[2])))
	case kir.OpLoad:
		return r.load(in, out)
	case kir.OpGather:
		return r.gather(in, out)
	case kir.OpStore:
		return nil, r.store(in)
	case kir.OpFor:
		lo, hi, step := r.index(in.Args[0]), r.index(in.Args[1]), r.index(in.Args[2])
		if step <= 0 {
			return nil, fmt.Errorf("a loop step of %d", step)
		}
		carried := r.args(in)[3:]
		for i := lo; i < hi; i += step {
			next, err := r.block(in.Regions[0], append([]any{i}, carried...))
			if err != nil {
				return nil, err
			}
			carried = next
		}
		return carried, nil
	case kir.OpIf:
		region := in.Regions[1]
		if r.tile(in.Args[0]).Data[0] != 0 {
			region = in.Regions[0]
		}
		return r.block(region, nil)
	case kir.OpCall:
		fn := r.env.Calls[a.Str("fn")]
		if fn == nil {
			return nil, fmt.Errorf("no implementation of %s", a.Str("fn"))
		}
		res, err := fn(r.args(in))
		if err != nil {
			return nil, err
		}
		if len(res) != len(in.Results) {
			return nil, fmt.Errorf("%s returned %d values, want %d", a.Str("fn"), len(res), len(in.Results))
		}
		return res, nil
	}
	return nil, fmt.Errorf("the interpreter does not know %s", in.Op)
}

func (r *runner) elem(op ir.Op, out kir.Type, args []*eval.Tensor) ([]any, error) {
	t, err := eval.Elementwise(op, out.DType, out.Shape, args...)
	if err != nil {
		return nil, err
	}
	return one(t)
}

// indexElem is add, sub, mul, min, max or a comparison of indices.
func (r *runner) indexElem(in *kir.Instr) ([]any, error) {
	x, y := r.index(in.Args[0]), r.index(in.Args[1])
	b := func(c bool) ([]any, error) {
		t := eval.NewTensor(ir.Bool)
		if c {
			t.Data[0] = 1
		}
		return one(t)
	}
	switch in.Elem {
	case ir.OpAdd:
		return one(x + y)
	case ir.OpSub:
		return one(x - y)
	case ir.OpMul:
		return one(x * y)
	case ir.OpMin:
		return one(min(x, y))
	case ir.OpMax:
		return one(max(x, y))
	case ir.OpLt:
		return b(x < y)
	case ir.OpLe:
		return b(x <= y)
	case ir.OpGt:
		return b(x > y)
	case ir.OpGe:
		return b(x >= y)
	case ir.OpEq:
		return b(x == y)
	case ir.OpNe:
		return b(x != y)
	}
	return nil, fmt.Errorf("%s on indices", in.Elem)
}

// broadcast stretches x's axes of size 1 to shape (of x's rank).
func broadcast(x *eval.Tensor, shape []int) *eval.Tensor {
	out := eval.NewTensor(x.DType, shape...)
	idx := make([]int, len(shape))
	src := make([]int, len(shape))
	for i := range out.Data {
		unravel(i, shape, idx)
		for j, n := range x.Shape {
			src[j] = idx[j]
			if n == 1 {
				src[j] = 0
			}
		}
		out.Data[i] = x.At(src...)
	}
	return out
}

func unravel(i int, shape, idx []int) {
	for j := len(shape) - 1; j >= 0; j-- {
		idx[j] = i % shape[j]
		i /= shape[j]
	}
}

// reduce is the sum, max or min of x along axis; max and min propagate
// NaN, and over no elements are -inf and +inf.
func reduce(x *eval.Tensor, op string, axis int, out kir.Type) *eval.Tensor {
	t := eval.NewTensor(x.DType, out.Shape...)
	init := 0.0
	switch op {
	case "max":
		init = math.Inf(-1)
	case "min":
		init = math.Inf(1)
	}
	for i := range t.Data {
		t.Data[i] = init
	}
	idx := make([]int, len(x.Shape))
	dst := make([]int, 0, len(x.Shape))
	for i, v := range x.Data {
		unravel(i, x.Shape, idx)
		dst = append(append(dst[:0], idx[:axis]...), idx[axis+1:]...)
		o := offset(dst, out.Shape)
		switch c := t.Data[o]; {
		case op == "sum":
			t.Data[o] = c + v
		case math.IsNaN(c) || math.IsNaN(v):
			t.Data[o] = math.NaN()
		case op == "max":
			t.Data[o] = max(c, v)
		default:
			t.Data[o] = min(c, v)
		}
	}
	return t
}

func offset(idx, shape []int) int {
	o := 0
	for j, n := range shape {
		o = o*n + idx[j]
	}
	return o
}

// dot is acc + a·b in float64.
func dot(a, b, acc *eval.Tensor) *eval.Tensor {
	m, k, n := a.Shape[0], a.Shape[1], b.Shape[1]
	out := acc.Clone()
	for i := range m {
		for j := range n {
			s := out.Data[i*n+j]
			for p := range k {
				s += a.Data[i*k+p] * b.Data[p*n+j]
			}
			out.Data[i*n+j] = s
		}
	}
	return out
}

// element returns the buffer index of element idx of a tile whose axes
// run along the buffer's axes dims from offs, and whether it is inside.
func element(buf *eval.Tensor, offs []int64, dims []int, idx []int) ([]int, bool) {
	at := make([]int, len(offs))
	for i, o := range offs {
		at[i] = int(o)
	}
	for i, d := range dims {
		at[d] += idx[i]
	}
	for i, v := range at {
		if v < 0 || v >= buf.Shape[i] {
			return nil, false
		}
	}
	return at, true
}

func (r *runner) offsets(vs []*kir.Value) []int64 {
	out := make([]int64, len(vs))
	for i, v := range vs {
		out[i] = r.index(v)
	}
	return out
}

func (r *runner) load(in *kir.Instr, out kir.Type) ([]any, error) {
	buf := r.tile(in.Args[0])
	offs, dims := r.offsets(in.Args[1:]), in.Attrs.Ints("dims")
	pad := in.Attrs.Float("pad")
	t := eval.NewTensor(out.DType, out.Shape...)
	idx := make([]int, len(out.Shape))
	for i := range t.Data {
		unravel(i, out.Shape, idx)
		if at, ok := element(buf, offs, dims, idx); ok {
			t.Data[i] = buf.At(at...)
		} else {
			t.Data[i] = pad
		}
	}
	return one(t)
}

func (r *runner) gather(in *kir.Instr, out kir.Type) ([]any, error) {
	buf := r.tile(in.Args[0])
	pad := in.Attrs.Float("pad")
	t := eval.NewTensor(out.DType, out.Shape...)
	idx := make([]int, len(out.Shape))
	at := make([]int, buf.Rank())
	for i := range t.Data {
		unravel(i, out.Shape, idx)
		inside := true
		for j, a := range in.Args[1:] {
			var v int64
			switch x := r.vals[a].(type) {
			case int64:
				v = x
			case *eval.Tensor:
				v = int64(x.At(bcastIndex(idx, x.Shape)...))
			}
			if v < 0 || v >= int64(buf.Shape[j]) {
				inside = false
				break
			}
			at[j] = int(v)
		}
		t.Data[i] = pad
		if inside {
			t.Data[i] = buf.At(at...)
		}
	}
	return one(t)
}

// bcastIndex maps an index of a broadcast result to the element of an
// operand of shape (numpy rules: leading axes dropped, axes of 1 fixed).
func bcastIndex(idx, shape []int) []int {
	lead := len(idx) - len(shape)
	out := make([]int, len(shape))
	for i, n := range shape {
		if n != 1 {
			out[i] = idx[lead+i]
		}
	}
	return out
}

func (r *runner) store(in *kir.Instr) error {
	buf, t := r.tile(in.Args[0]), r.tile(in.Args[1])
	offs, dims := r.offsets(in.Args[2:]), in.Attrs.Ints("dims")
	idx := make([]int, len(t.Shape))
	for i, v := range t.Data {
		unravel(i, t.Shape, idx)
		if at, ok := element(buf, offs, dims, idx); ok {
			buf.Set(v, at...)
		}
	}
	return nil
}
