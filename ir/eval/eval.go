package eval

import (
	"fmt"
	"math"
	"slices"

	"github.com/attnc/attnc/ir"
)

// Env is what a module runs on.
type Env struct {
	Inputs map[string]*Tensor // by input name
	Params map[string]*Tensor // by param name, and buffers by theirs
	// Syms optionally fixes symbol sizes; symbols are otherwise bound
	// from the shapes of the inputs (and params), see BindSyms.
	Syms map[string]int64
	// Frozen optionally gives, by instruction ID, values to use in
	// place of computing those instructions: finite-difference checks
	// hold each stop_gradient at its value at the unperturbed weights,
	// which is what the gradient autodiff writes assumes.
	Frozen map[int]*Tensor
}

// Result holds every value a run computed.
type Result struct {
	Syms   map[string]int64 // the size of each bound symbol
	Values map[int]*Tensor  // by instruction ID; inputs and params are the caller's tensors
	// Outputs maps each output's name to its value; the loss is also
	// under "loss". Where a metric and an output share a name the first
	// listed wins; Values[o.Value.ID] always gives a particular one.
	Outputs map[string]*Tensor
}

// Loss returns the loss value and whether the module has one.
func (r *Result) Loss() (float64, bool) {
	t, ok := r.Outputs["loss"]
	if !ok || len(t.Data) != 1 {
		return 0, false
	}
	return t.Data[0], true
}

// maxElements bounds the size of any tensor the interpreter creates, so
// that an absurd symbol size is an error rather than an allocation crash.
const maxElements = math.MaxInt32

// Run evaluates m on env in float64. It verifies m first, binds the
// symbols (see BindSyms; params take part too, after the inputs), checks
// the params against their declarations, then evaluates each instruction
// in order, straight from its op's definition in the op table.
//
// Bad data is reported, never a panic: an index out of range (gather,
// scatter_add, cross_entropy targets, captured tensors, slices sized by
// symbols) is an error naming the instruction, as in
// "%12 = gather: index 300 out of range [0, 256)". NaN and ±Inf propagate
// as IEEE arithmetic says; they are not errors, except where a value must
// become an integer (a cast to i32).
func Run(m *ir.Module, env Env) (*Result, error) {
	if m == nil {
		return nil, fmt.Errorf("eval: nil module")
	}
	if err := ir.Verify(m); err != nil {
		return nil, err
	}
	b, err := newBinder(m, env.Syms)
	if err != nil {
		return nil, err
	}
	ins, err := sources("input", m.Inputs(), env.Inputs)
	if err != nil {
		return nil, err
	}
	ps, err := sources("param", append(m.Params(), m.Buffers()...), env.Params)
	if err != nil {
		return nil, err
	}
	if err := b.bind(append(ins, ps...)); err != nil {
		return nil, err
	}
	r := &runner{syms: b.syms, values: map[*ir.Instr]*Tensor{}}
	for _, in := range m.Instrs {
		if t, ok := env.Frozen[in.ID]; ok {
			r.values[in] = t
			continue
		}
		t, err := r.exec(in, env)
		if err != nil {
			return nil, fmt.Errorf("%%%d = %s: %w", in.ID, in.Op, err)
		}
		r.values[in] = t
	}
	res := &Result{Syms: b.syms, Values: map[int]*Tensor{}, Outputs: map[string]*Tensor{}}
	for in, t := range r.values {
		res.Values[in.ID] = t
	}
	for _, o := range m.Outputs {
		if o.Kind == ir.OutLoss {
			res.Outputs["loss"] = r.values[o.Value]
		}
	}
	for _, o := range m.Outputs {
		if _, ok := res.Outputs[o.Name]; !ok && o.Name != "" {
			res.Outputs[o.Name] = r.values[o.Value]
		}
	}
	return res, nil
}

// A runner holds the state of one run.
type runner struct {
	syms   map[string]int64
	values map[*ir.Instr]*Tensor
}

// exec evaluates one instruction. An unexpected panic inside an op's
// evaluation is turned into an error (the caller names the instruction):
// every known bad-data case is checked explicitly, this is the backstop.
func (r *runner) exec(in *ir.Instr, env Env) (t *Tensor, err error) {
	defer func() {
		if p := recover(); p != nil {
			t, err = nil, fmt.Errorf("internal error in the reference interpreter: %v", p)
		}
	}()
	args := make([]*Tensor, len(in.Args))
	for i, a := range in.Args {
		args[i] = r.values[a]
		if args[i] == nil {
			return nil, fmt.Errorf("operand %d (%%%d) has no value", i, a.ID)
		}
	}
	if in.Op == ir.OpSlice {
		// Bad bounds would otherwise show only as a negative result dim.
		if _, _, err := sliceBounds(args[0], in.Attrs.Int("axis"), in.Attrs["start"].Dim, in.Attrs["end"].Dim, r.syms); err != nil {
			return nil, err
		}
	}
	if in.Type.IsTuple() {
		return r.tuple(in, args)
	}
	shape, err := r.shape(in.Type.Shape)
	if err != nil {
		return nil, err
	}
	switch in.Op {
	case ir.OpInput:
		t = env.Inputs[in.Name()]
	case ir.OpParam, ir.OpBuffer:
		t = env.Params[in.Name()]
	case ir.OpRecur:
		t, err = r.recur(in, args, shape)
		if err != nil {
			return nil, err
		}
	default:
		t, err = evalOp(in, args, shape, r.syms)
		if err != nil {
			return nil, err
		}
	}
	if t == nil || t.DType != in.Type.DType || !slices.Equal(t.Shape, shape) || len(t.Data) != numel(shape) {
		return nil, fmt.Errorf("internal error in the reference interpreter: result %v does not have type %s = %s%v", t, in.Type, in.Type.DType, shape)
	}
	return t, nil
}

// tuple evaluates a multi-result op and checks each result against its
// element of the tuple type.
func (r *runner) tuple(in *ir.Instr, args []*Tensor) (*Tensor, error) {
	var t *Tensor
	var err error
	switch {
	case (in.Op == ir.OpAttention || in.Op == ir.OpAttentionGrad) && ir.AttentionBNHD(in.Attrs):
		t, err = inBHND(in, args, func(in *ir.Instr, args []*Tensor) (*Tensor, error) {
			if in.Op == ir.OpAttention {
				return attentionWithLSE(in, args, r.syms)
			}
			return attentionGrad(in, args, r.syms)
		})
	case in.Op == ir.OpAttention:
		t, err = attentionWithLSE(in, args, r.syms)
	case in.Op == ir.OpAttentionGrad:
		t, err = attentionGrad(in, args, r.syms)
	case in.Op == ir.OpRecurGrad:
		t, err = r.recurGrad(in, args)
	case in.Op == ir.OpLayerNormGrad || in.Op == ir.OpRMSNormGrad:
		t, err = normGradParams(args, in.Attrs.Float("eps"), in.Op == ir.OpRMSNormGrad)
	default:
		return nil, fmt.Errorf("the reference interpreter has no evaluation for %s with several results", in.Op)
	}
	if err != nil {
		return nil, err
	}
	if len(t.Tuple) != len(in.Type.Tuple) {
		return nil, fmt.Errorf("internal error in the reference interpreter: %d results for %s", len(t.Tuple), in.Type)
	}
	for i, et := range in.Type.Tuple {
		shape, err := r.shape(et.Shape)
		if err != nil {
			return nil, err
		}
		if x := t.Tuple[i]; x == nil || x.DType != et.DType || !slices.Equal(x.Shape, shape) || len(x.Data) != numel(shape) {
			return nil, fmt.Errorf("internal error in the reference interpreter: result %d %v does not have type %s", i, x, et)
		}
	}
	return t, nil
}

// shape evaluates a symbolic shape with the bound symbols, refusing
// negative dims and tensors too large to allocate.
func (r *runner) shape(s ir.Shape) ([]int, error) {
	vals := make([]int64, len(s))
	for i, d := range s {
		v, err := d.Eval(r.syms)
		if err != nil {
			return nil, fmt.Errorf("%v (give it in Env.Syms or through an input's shape)", err)
		}
		if v < 0 {
			return nil, fmt.Errorf("result dim %d is %s = %d, which is negative", i, d, v)
		}
		vals[i] = v
	}
	if !sizeOK(vals) {
		return nil, fmt.Errorf("shape %v has too many elements for the reference interpreter", vals)
	}
	out := make([]int, len(s))
	for i, v := range vals {
		out[i] = int(v)
	}
	return out, nil
}

// Elementwise evaluates the graph IR's elementwise op — a unary op (cast
// included), a binary op or select — on args as Run evaluates an
// instruction of that op with result dtype dt and the broadcast shape:
// the one definition of each elementwise function, which the kernel
// IR's interpreter (kir/eval) calls too.
func Elementwise(op ir.Op, dt ir.DType, shape []int, args ...*Tensor) (*Tensor, error) {
	info := op.Info()
	want := info.Args
	if op == ir.OpSelect {
		want = 3
	}
	if len(args) != want {
		return nil, fmt.Errorf("%s takes %d operands, got %d", op, want, len(args))
	}
	switch {
	case info.Class == ir.ClassUnary:
		if !slicesEqual(args[0].Shape, shape) {
			return nil, fmt.Errorf("%s of shape %v to %v", op, args[0].Shape, shape)
		}
		return unary(&ir.Instr{Op: op, Type: ir.Type{DType: dt}}, args[0])
	case info.Class == ir.ClassBinary:
		return binary(op, args[0], args[1], dt, shape)
	case op == ir.OpSelect:
		return selectOp(args[0], args[1], args[2], shape)
	}
	return nil, fmt.Errorf("%s is not elementwise", op)
}

func slicesEqual(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// evalOp computes one non-source-of-data op; shape is its evaluated
// result shape.
func evalOp(in *ir.Instr, args []*Tensor, shape []int, syms map[string]int64) (*Tensor, error) {
	dt := in.Type.DType
	switch info := in.Op.Info(); {
	case in.Op == ir.OpConst:
		v, err := convert(in.Attrs.Float("value"), dt)
		if err != nil {
			return nil, err
		}
		return Scalar(dt, v), nil
	case in.Op == ir.OpIota:
		return iota(shape, in.Attrs.Int("axis")), nil
	case info.Class == ir.ClassUnary:
		return unary(in, args[0])
	case info.Class == ir.ClassBinary:
		return binary(in.Op, args[0], args[1], dt, shape)
	case info.Class == ir.ClassReduce:
		return reduce(in.Op, args[0], in.Attrs.Ints("axes"), shape)
	}
	a := in.Attrs
	switch in.Op {
	case ir.OpSelect:
		return selectOp(args[0], args[1], args[2], shape)
	case ir.OpArgMax:
		return argmax(args[0], a.Int("axis"), shape)
	case ir.OpArgSort:
		return argsort(args[0], a.Bool("descending")), nil
	case ir.OpMatMul:
		return matmul(args[0], args[1], shape)
	case ir.OpEinsum:
		if a.Bool("bias") {
			prod, err := einsum(a.Str("spec"), args[:len(args)-1], shape)
			if err != nil {
				return nil, err
			}
			return binary(ir.OpAdd, prod, args[len(args)-1], dt, shape)
		}
		return einsum(a.Str("spec"), args, shape)
	case ir.OpReshape:
		return &Tensor{DType: dt, Shape: shape, Data: append([]float64{}, args[0].Data...)}, nil
	case ir.OpTranspose:
		return transpose(args[0], a.Ints("perm"), shape), nil
	case ir.OpSlice:
		return slice(args[0], a.Int("axis"), a["start"].Dim, a["end"].Dim, syms)
	case ir.OpConcat:
		return concat(args, a.Int("axis"), shape), nil
	case ir.OpBroadcast:
		return broadcastTo(args[0], shape)
	case ir.OpGather:
		return gather(args[0], args[1], a.Int("axis"), a.Int("batch_dims"), shape)
	case ir.OpScatterAdd:
		return scatterAdd(args[0], args[1], a.Int("axis"), a.Int("batch_dims"), shape)
	case ir.OpSoftmax:
		return softmax(args[0], a.Int("axis")), nil
	case ir.OpLayerNorm, ir.OpRMSNorm:
		y := layerNorm(args[0], a.Float("eps"), in.Op == ir.OpRMSNorm)
		if a.Bool("affine") {
			return affine(y, args[1:])
		}
		return y, nil
	case ir.OpLayerNormGrad, ir.OpRMSNormGrad:
		dy := args[1]
		if a.Bool("scale") {
			var err error
			if dy, err = binary(ir.OpMul, dy, args[2], ir.F32, dy.Shape); err != nil {
				return nil, err
			}
		}
		return layerNormGrad(args[0], dy, a.Float("eps"), in.Op == ir.OpRMSNormGrad), nil
	case ir.OpCrossEntropy, ir.OpCrossEntropyGrad:
		ignore, hasIgnore := int64(0), a.Has("ignore_index")
		if hasIgnore {
			ignore = a["ignore_index"].Int
		}
		if in.Op == ir.OpCrossEntropyGrad {
			return crossEntropyGrad(args[0], args[1], args[2], ignore, hasIgnore)
		}
		return crossEntropy(args[0], args[1], ignore, hasIgnore)
	case ir.OpAttention:
		if ir.AttentionBNHD(in.Attrs) {
			return inBHND(in, args, func(in *ir.Instr, args []*Tensor) (*Tensor, error) { return attention(in, args, syms) })
		}
		return attention(in, args, syms)
	case ir.OpScan:
		return scan(args[0], args[1], a.Int("axis"), a.Bool("reverse")), nil

	case ir.OpDimSize:
		v, err := a["dim"].Dim.Eval(syms)
		if err != nil {
			return nil, err
		}
		return Scalar(ir.F32, float64(v)), nil
	case ir.OpPad:
		return pad(args[0], a.Int("axis"), shape, a["before"].Dim, syms)
	case ir.OpExtract:
		return args[0].Tuple[a.Int("index")], nil
	}
	return nil, fmt.Errorf("the reference interpreter has no evaluation for %s", in.Op)
}

// iota returns the i32 tensor whose element is its index along axis.
func iota(shape []int, axis int) *Tensor {
	t := NewTensor(ir.I32, shape...)
	_, n, inner := split3(shape, axis)
	for i := range t.Data {
		t.Data[i] = float64(i / inner % n)
	}
	return t
}

// convert turns v into a value of dtype dt with cast's rules: bool is
// v != 0, i32 truncates toward zero and must fit; f32 is v.
func convert(v float64, dt ir.DType) (float64, error) {
	switch dt {
	case ir.Bool:
		return b2f(v != 0), nil
	case ir.I32:
		x := math.Trunc(v)
		if math.IsNaN(x) || x < math.MinInt32 || x > math.MaxInt32 {
			return 0, fmt.Errorf("%v cannot be converted to i32", v)
		}
		return x, nil
	}
	return v, nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
