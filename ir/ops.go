package ir

import "fmt"

// An Op names an operation. Its row in opTable says everything the rest of
// the compiler needs to know about it.
type Op uint8

const (
	OpInvalid Op = iota

	// Sources.
	OpParam
	OpBuffer
	OpInput
	OpConst
	OpIota

	// Elementwise unary.
	OpNeg
	OpAbs
	OpExp
	OpLog
	OpSqrt
	OpRsqrt
	OpTanh
	OpSigmoid
	OpRelu
	OpGelu
	OpGeluDeriv
	OpSilu
	OpSin
	OpCos
	OpNot
	OpStopGradient
	OpCast

	// Elementwise binary, numpy broadcasting.
	OpAdd
	OpSub
	OpMul
	OpDiv
	OpMod
	OpMax
	OpMin
	OpPow
	OpEq
	OpNe
	OpLt
	OpLe
	OpGt
	OpGe
	OpAnd
	OpOr
	OpSelect

	// Reductions.
	OpReduceSum
	OpReduceMax
	OpReduceMean
	OpLogSumExp
	OpArgMax
	OpArgSort

	// Contractions.
	OpMatMul
	OpEinsum

	// Layout.
	OpReshape
	OpTranspose
	OpSlice
	OpConcat
	OpBroadcast
	OpGather
	OpScatterAdd

	// Composite ops that later passes lower or fuse as units.
	OpSoftmax
	OpLayerNorm
	OpRMSNorm
	OpCrossEntropy
	OpAttention
	OpScan
	OpRecur

	// Ops that autodiff introduces.
	OpDimSize
	OpPad
	OpAttentionGrad
	OpLayerNormGrad
	OpRMSNormGrad
	OpCrossEntropyGrad
	OpRecurGrad

	// Projection of a multi-result op.
	OpExtract

	numOps
)

// OpClass groups ops that share evaluation and differentiation structure.
type OpClass uint8

const (
	ClassSource OpClass = iota + 1
	ClassUnary
	ClassBinary
	ClassReduce
	ClassOther
)

// Variadic marks an op that takes MinArgs or more operands.
const Variadic = -1

// OpInfo is one row of the op table.
type OpInfo struct {
	Name    string
	Class   OpClass
	Args    int // operand count, or Variadic
	MinArgs int // for Variadic ops
	Attrs   []AttrSpec
	// Given means the result type is written by whoever creates the op
	// (and printed); Infer then only checks it. Otherwise Infer computes
	// the type from the operands and attributes.
	Given bool
	Infer func(c *InferCtx) (Type, error)
	Doc   string // the op's meaning, in one or two sentences
}

// AttrSpec declares one attribute of an op.
type AttrSpec struct {
	Name     string
	Kind     AttrKind
	Optional bool
	Words    []string // allowed values of an AttrWord
}

// InferCtx is what a type rule sees.
type InferCtx struct {
	Args  []Type
	Attrs Attrs
	Given Type            // the declared type, for Given ops
	Syms  map[string]bool // the module's symbols
}

func req(name string, k AttrKind) AttrSpec { return AttrSpec{Name: name, Kind: k} }
func opt(name string, k AttrKind) AttrSpec { return AttrSpec{Name: name, Kind: k, Optional: true} }

var (
	recurAttrs  = []AttrSpec{req("axis", AttrInt), opt("steps", AttrDim), req("body", AttrModule), opt("cell", AttrString)}
	axisAttr    = []AttrSpec{req("axis", AttrInt)}
	reduceAttrs = []AttrSpec{req("axes", AttrInts), opt("keepdims", AttrBool)}
	gatherAttrs = []AttrSpec{req("axis", AttrInt), opt("batch_dims", AttrInt)}
)

func unary(name, doc string, dts ...DType) OpInfo {
	return OpInfo{Name: name, Class: ClassUnary, Args: 1, Infer: inferUnary(dts...), Doc: doc}
}

func binary(name, doc string, result DType, dts ...DType) OpInfo {
	return OpInfo{Name: name, Class: ClassBinary, Args: 2, Infer: inferBinary(result, dts...), Doc: doc}
}

func reduce(name, doc string, dts ...DType) OpInfo {
	return OpInfo{Name: name, Class: ClassReduce, Args: 1, Attrs: reduceAttrs, Infer: inferReduce(dts...), Doc: doc}
}

// opTable is the op set. Every row has a printer and parser (generic, from
// the row), a verifier rule (Infer), a reference evaluation (ir/eval) and
// tests that keep it that way.
var opTable = [numOps]OpInfo{
	OpParam: {Name: "param", Class: ClassSource, Given: true, Infer: inferParam,
		Attrs: []AttrSpec{req("name", AttrString), {Name: "init", Kind: AttrWord, Words: []string{"normal", "uniform", "zeros", "ones"}}, opt("scale", AttrFloat)},
		Doc:   "a trainable f32 weight named name, initialised by init (normal: N(0, scale²); uniform: U(-scale, scale); zeros; ones)"},
	OpBuffer: {Name: "buffer", Class: ClassSource, Given: true, Infer: inferParam,
		Attrs: []AttrSpec{req("name", AttrString), {Name: "init", Kind: AttrWord, Words: []string{"normal", "uniform", "zeros", "ones"}}, opt("scale", AttrFloat)},
		Doc:   "an f32 tensor of the model's state named name, initialised as a param is, saved with the weights but not trained: an output update \"name\" = %v sets it to v after each training step"},
	OpInput: {Name: "input", Class: ClassSource, Given: true, Infer: inferInput, Attrs: []AttrSpec{req("name", AttrString)},
		Doc: "a model input named name, supplied by the caller with the declared type"},
	OpConst: {Name: "const", Class: ClassSource, Given: true, Infer: inferConst, Attrs: []AttrSpec{req("value", AttrFloat)},
		Doc: "the scalar value, of the declared dtype (rank 0); broadcasting spreads it"},
	OpIota: {Name: "iota", Class: ClassSource, Given: true, Infer: inferIota, Attrs: axisAttr,
		Doc: "an i32 tensor of the declared shape whose element is its index along axis"},

	OpNeg:          unary("neg", "-x", F32, I32),
	OpAbs:          unary("abs", "|x|", F32, I32),
	OpExp:          unary("exp", "e^x", F32),
	OpLog:          unary("log", "natural log of x", F32),
	OpSqrt:         unary("sqrt", "√x", F32),
	OpRsqrt:        unary("rsqrt", "1/√x", F32),
	OpTanh:         unary("tanh", "tanh x", F32),
	OpSigmoid:      unary("sigmoid", "1/(1+e^-x)", F32),
	OpRelu:         unary("relu", "max(x, 0)", F32),
	OpGelu:         unary("gelu", "x·Φ(x) with the tanh approximation: 0.5x(1+tanh(√(2/π)(x+0.044715x³)))", F32),
	OpGeluDeriv:    unary("gelu_deriv", "gelu's derivative at x (autodiff's rule for gelu: dy·gelu_deriv(x))", F32),
	OpSilu:         unary("silu", "x·sigmoid(x)", F32),
	OpSin:          unary("sin", "sin x", F32),
	OpCos:          unary("cos", "cos x", F32),
	OpNot:          unary("not", "logical not", Bool),
	OpStopGradient: unary("stop_gradient", "x, through which no gradient flows: autodiff treats it as a constant, and the nograd pass removes it once the gradients exist", F32, I32, Bool),
	OpCast: {Name: "cast", Class: ClassUnary, Args: 1, Attrs: []AttrSpec{req("to", AttrDType)}, Infer: inferCast,
		Doc: "x converted to dtype to (bool→0/1; f32→i32 truncates toward zero)"},

	OpAdd:    binary("add", "x + y", InvalidDType, F32, I32),
	OpSub:    binary("sub", "x - y", InvalidDType, F32, I32),
	OpMul:    binary("mul", "x · y", InvalidDType, F32, I32),
	OpDiv:    binary("div", "x / y; on i32 floor division (-7 / 2 = -4), an error where y = 0", InvalidDType, F32, I32),
	OpMod:    binary("mod", "x mod y rounding toward -∞, with y's sign (-7 mod 2 = 1); an error where y = 0", InvalidDType, I32),
	OpMax:    binary("max", "max(x, y)", InvalidDType, F32, I32),
	OpMin:    binary("min", "min(x, y)", InvalidDType, F32, I32),
	OpPow:    binary("pow", "x^y", InvalidDType, F32),
	OpEq:     binary("eq", "x == y", Bool, F32, I32, Bool),
	OpNe:     binary("ne", "x != y", Bool, F32, I32, Bool),
	OpLt:     binary("lt", "x < y", Bool, F32, I32),
	OpLe:     binary("le", "x <= y", Bool, F32, I32),
	OpGt:     binary("gt", "x > y", Bool, F32, I32),
	OpGe:     binary("ge", "x >= y", Bool, F32, I32),
	OpAnd:    binary("and", "x && y", Bool, Bool),
	OpOr:     binary("or", "x || y", Bool, Bool),
	OpSelect: {Name: "select", Class: ClassOther, Args: 3, Infer: inferSelect, Doc: "c ? x : y elementwise, all three broadcast"},

	OpReduceSum:  reduce("reduce_sum", "sum over axes", F32, I32),
	OpReduceMax:  reduce("reduce_max", "maximum over axes", F32, I32),
	OpReduceMean: reduce("reduce_mean", "mean over axes", F32),
	OpLogSumExp:  reduce("logsumexp", "log Σ e^x over axes, computed stably", F32),
	OpArgMax: {Name: "argmax", Class: ClassOther, Args: 1, Attrs: axisAttr, Infer: inferArgMax,
		Doc: "i32 index of the largest element along axis (the first on ties); axis is removed"},
	OpArgSort: {Name: "argsort", Class: ClassOther, Args: 1, Attrs: []AttrSpec{opt("descending", AttrBool)}, Infer: inferArgSort,
		Doc: "i32 positions along the last axis that put each row in increasing order (decreasing with descending = true), equal elements in their order; NaN counts as larger than every number"},

	OpMatMul: {Name: "matmul", Class: ClassOther, Args: 2, Infer: inferMatMul,
		Doc: "x[..., m, k] · y[..., k, n] → [..., m, n], batch dims broadcast; both operands rank ≥ 2"},
	OpEinsum: {Name: "einsum", Class: ClassOther, Args: Variadic, MinArgs: 1, Attrs: []AttrSpec{req("spec", AttrString), opt("bias", AttrBool)}, Infer: inferEinsum,
		Doc: `Σ over the letters missing from the output of the product of the operands, spec as in "bhnd,bhne->bhde"; with bias = true (set by the epilogue pass) one more operand, last, broadcast to the result as a row (its shape the result's last dims, after 1s) and added to it`},

	OpReshape: {Name: "reshape", Class: ClassOther, Args: 1, Given: true, Infer: inferReshape,
		Doc: "x's elements in row-major order, with the declared shape (same element count)"},
	OpTranspose: {Name: "transpose", Class: ClassOther, Args: 1, Attrs: []AttrSpec{req("perm", AttrInts)}, Infer: inferTranspose,
		Doc: "result dim i is x's dim perm[i]"},
	OpSlice: {Name: "slice", Class: ClassOther, Args: 1, Attrs: []AttrSpec{req("axis", AttrInt), req("start", AttrDim), req("end", AttrDim)}, Infer: inferSlice,
		Doc: "x restricted to start ≤ i < end along axis (start and end are dims, so N-1 stays symbolic)"},
	OpConcat: {Name: "concat", Class: ClassOther, Args: Variadic, MinArgs: 1, Attrs: axisAttr, Infer: inferConcat,
		Doc: "the operands joined along axis; other dims must agree"},
	OpBroadcast: {Name: "broadcast", Class: ClassOther, Args: 1, Given: true, Infer: inferBroadcast,
		Doc: "x broadcast (numpy rules) to the declared shape"},
	OpGather: {Name: "gather", Class: ClassOther, Args: 2, Attrs: gatherAttrs, Infer: inferGather,
		Doc: "table[..., idx, ...] at axis: shape table[:axis] + idx[batch_dims:] + table[axis+1:]; the first batch_dims dims of table and idx are shared (an embedding is axis 0, batch_dims 0)"},
	OpScatterAdd: {Name: "scatter_add", Class: ClassOther, Args: 2, Attrs: gatherAttrs, Given: true, Infer: inferScatterAdd,
		Doc: "zeros of the declared shape with updates added at the positions gather(·, idx) would read: gather's adjoint"},

	OpSoftmax: {Name: "softmax", Class: ClassOther, Args: 1, Attrs: axisAttr, Infer: inferSoftmax,
		Doc: "e^x / Σ e^x along axis, computed stably"},
	OpLayerNorm: {Name: "layer_norm", Class: ClassOther, Args: Variadic, MinArgs: 1, Attrs: []AttrSpec{req("eps", AttrFloat), opt("affine", AttrBool)}, Infer: inferNorm(false),
		Doc: "(x - mean) / √(var + eps) over the last axis (biased variance), no affine part; with affine = true (set by the normparams pass, after autodiff; no gradient rule) two more operands γ and β, vectors along the last axis, and the result y·γ + β, each product and sum rounded to f32 as mul and add would"},
	OpRMSNorm: {Name: "rms_norm", Class: ClassOther, Args: Variadic, MinArgs: 1, Attrs: []AttrSpec{req("eps", AttrFloat), opt("affine", AttrBool)}, Infer: inferNorm(true),
		Doc: "x / √(mean(x²) + eps) over the last axis, no affine part; with affine = true (set by the normparams pass; no gradient rule) one more operand γ, a vector along the last axis, and the result y·γ"},
	OpCrossEntropy: {Name: "cross_entropy", Class: ClassOther, Args: 2, Attrs: []AttrSpec{opt("ignore_index", AttrInt)}, Infer: inferCrossEntropy,
		Doc: "mean over positions of logsumexp(logits) - logits[target], logits [..., C], targets i32[...]; positions whose target is ignore_index are left out"},
	OpAttention: {Name: "attention", Class: ClassOther, Args: Variadic, MinArgs: 2, Infer: inferAttention,
		Attrs: []AttrSpec{opt("mask", AttrExpr), opt("score", AttrExpr), req("scale", AttrFloat),
			{Name: "returns", Kind: AttrWord, Optional: true, Words: []string{"out", "probs", "logprobs", "lse"}},
			{Name: "tiles", Kind: AttrWord, Optional: true, Words: []string{"interval"}},
			opt("with_lse", AttrBool), layoutAttr},
		Doc: "softmax over k of score(scale·q·k) where mask, applied to v: operands q[B,H,Nq,D], k[B,H,Nk,D], v[B,H,Nk,Dv] (absent unless returns is out), then captured tensors read by mask and score as $0, $1, …; returns out (default) gives [B,H,Nq,Dv], probs and logprobs the [B,H,Nq,Nk] distribution, lse the [B,H,Nq] log-sum-exp of the scores (the row statistic the backward pass recomputes from); a row with every key masked gives zeros (probs, out) and -inf (logprobs, lse); a key whose score is -inf counts as masked, a NaN score makes its row NaN (masked keys keep 0 and -inf), a +inf score gives lse +inf; with_lse = true (set by autodiff, not with returns lse) makes the result the pair (that result, lse) from the same pass; tiles = interval (set by the sparsity pass) says the mask may be classified per tile by interval analysis, so kernels skip empty tiles and skip the mask on full ones; layout = bnhd (set by the layout pass, with returns out or lse) makes q, k, v and the result [B,N,H,D] and lse [B,N,H], the same values with the axes of H and N exchanged, so that no transposes run around the op"},
	OpDimSize: {Name: "dim_size", Class: ClassSource, Attrs: []AttrSpec{req("dim", AttrDim)}, Infer: inferDimSize,
		Doc: "the run-time value of the dim (N, S+T, …) as an f32 scalar; mean over a symbolic axis needs it"},
	OpPad: {Name: "pad", Class: ClassOther, Args: 1, Attrs: []AttrSpec{req("axis", AttrInt), req("before", AttrDim), req("after", AttrDim)}, Infer: inferPad,
		Doc: "x with before zeros ahead of it and after zeros behind it along axis: slice's adjoint"},
	OpAttentionGrad: {Name: "attention_grad", Class: ClassOther, Args: Variadic, MinArgs: 5, Infer: inferAttentionGrad,
		Attrs: []AttrSpec{opt("mask", AttrExpr), opt("score", AttrExpr), req("scale", AttrFloat),
			{Name: "returns", Kind: AttrWord, Optional: true, Words: []string{"out", "probs", "logprobs"}},
			{Name: "tiles", Kind: AttrWord, Optional: true, Words: []string{"interval"}},
			req("wrt", AttrInts), layoutAttr},
		Doc: "the gradients of an attention op (same mask, score, scale, returns and operands q, k, [v], captures…) with respect to the operands numbered wrt (increasing positions in that operand list, each f32), as a tuple in wrt's order, given three more operands: lse, the forward's row log-sum-exp [B,H,Nq]; rs, the row sums [B,H,Nq] Σ_k P_k dP_k (rowsum(dy ∘ y) for out and probs, Σ of dy over the admitted keys for logprobs); and dy, the gradient of its result y; probabilities are recomputed from lse, never stored, and rs is computed once, outside, for every operand; with layout = bnhd (returns out only) q, k, v, dy and their gradients are [B,N,H,D] and lse and rs [B,N,H], as for attention"},
	OpLayerNormGrad: {Name: "layer_norm_grad", Class: ClassOther, Args: Variadic, MinArgs: 2, Attrs: []AttrSpec{req("eps", AttrFloat), opt("scale", AttrBool), opt("params", AttrBool), opt("accumulate", AttrBool)}, Infer: inferNormGrad(false),
		Doc: "the gradient of layer_norm (same eps) at x given dy, the gradient of its result: r·(dy - mean(dy) - y·mean(dy·y)) over the last axis, y = layer_norm(x), r = 1/√(var + eps); operands x and dy of one type; with scale = true (set by the normscale pass) a third operand γ, a vector along the last axis, and dy·γ in place of dy (the affine part's weight); with params = true as well (set by the normparams pass) the result is the tuple (dx, dγ, dβ) of the whole affine norm's gradients, dγ = Σ dy·y and dβ = Σ dy over every axis but the last, both f32[D] (D the last dim of x), from the same pass over the rows; with accumulate = true as well (set by the normparams pass) a fourth operand of x's type is added to dx as the row is written (the residual path's gradient: an add the step no longer runs)"},
	OpRMSNormGrad: {Name: "rms_norm_grad", Class: ClassOther, Args: Variadic, MinArgs: 2, Attrs: []AttrSpec{req("eps", AttrFloat), opt("scale", AttrBool), opt("params", AttrBool), opt("accumulate", AttrBool)}, Infer: inferNormGrad(true),
		Doc: "the gradient of rms_norm (same eps) at x given dy: r·(dy - y·mean(dy·y)) over the last axis, y = rms_norm(x), r = 1/√(mean(x²) + eps); operands x and dy of one type; scale as for layer_norm_grad; params too, with the pair (dx, dγ); accumulate too"},
	OpScan: {Name: "scan", Class: ClassOther, Args: 2, Attrs: []AttrSpec{req("axis", AttrInt), opt("reverse", AttrBool)}, Infer: inferScan,
		Doc: "h_t = a_t ⊙ h_{t-1} + x_t along axis from h_{-1} = 0 (from the end when reverse); a and x have the result's shape"},
	OpRecur: {Name: "recur", Class: ClassOther, Args: Variadic, MinArgs: 1, Attrs: recurAttrs, // Infer: set by init (the rule verifies the body, which reads the table)
		Doc: "s_t = body(s_{t-1}, x_t, c…) for t = 0 … T-1 from s_{-1} = init, the results stacked along axis: operands init (the state, f32), then xs unless steps is set (x_t is xs with axis removed, T its size there), then the tensors c… the body reads whole each step; the body is a module of inputs state, x (unless steps is set), c0, c1, … of those types and one output \"next\" of the state's type; with steps the loop runs that many times and the body has no x; the result is the state's type with T inserted at axis; cell names the block the body came from"},
	OpRecurGrad: {Name: "recur_grad", Class: ClassOther, Args: Variadic, MinArgs: 3, Attrs: append(recurAttrs[:len(recurAttrs):len(recurAttrs)], req("wrt", AttrInts)), // Infer: set by init
		Doc: "the gradients of a recur op (same axis and steps; operands init, [xs], c…) with respect to the operands numbered wrt, as a tuple in wrt's order, given two more operands: out, the recur's result, and dy, the gradient of it; the body is the cell's vector-Jacobian product, with inputs state, [x], c0, …, dy (the gradient of the next state) and outputs \"d0\", the gradient of the state, then \"dJ\" for each J of wrt other than 0; computed in reverse time: g = 0, then for t = T-1 … 0, g += dy_t and the body at (s_{t-1}, x_t, c…, g) gives the new g, dx_t, and terms summed into each dc"},
	OpExtract: {Name: "extract", Class: ClassOther, Args: 1, Attrs: []AttrSpec{req("index", AttrInt)}, Infer: inferExtract,
		Doc: "result number index of a multi-result op (operand of tuple type); the only op that takes a tuple"},
	OpCrossEntropyGrad: {Name: "cross_entropy_grad", Class: ClassOther, Args: 3, Attrs: []AttrSpec{opt("ignore_index", AttrInt)}, Infer: inferCrossEntropyGrad,
		Doc: "the gradient of cross_entropy (same ignore_index) with respect to its logits, given dy, the f32[] gradient of the loss: (softmax(logits) - onehot(target))·dy/max(n, 1) at each position, n the positions not ignored; ignored positions get 0; operands logits [..., C], targets i32[...], dy; autodiff writes it, one row kernel in place of softmax, a scatter of the one-hot, a count and the products"},
}

// Info returns op's row in the op table.
func (op Op) Info() *OpInfo {
	if op <= OpInvalid || op >= numOps {
		return &OpInfo{Name: fmt.Sprintf("op(%d)", uint8(op))}
	}
	return &opTable[op]
}

func (op Op) String() string { return op.Info().Name }

// AllOps returns every valid op, in table order.
func AllOps() []Op {
	ops := make([]Op, 0, numOps-1)
	for op := OpInvalid + 1; op < numOps; op++ {
		ops = append(ops, op)
	}
	return ops
}

// OpByName returns the op whose text name is name.
func OpByName(name string) (Op, bool) {
	for _, op := range AllOps() {
		if opTable[op].Name == name {
			return op, true
		}
	}
	return OpInvalid, false
}

// AttentionVars are the index variables of a mask expression. Score
// expressions may also read s, the raw scaled score.
var AttentionVars = []string{"q", "k", "h", "b"}

// AttentionGradOperands splits an attention_grad op's operands: those of
// the forward attention op (fwd, in its order, which wrt numbers), then
// lse, the row sums rs and dy.
func AttentionGradOperands[T any](args []T, attrs Attrs) (fwd []T, lse, rs, dy T) {
	n := len(args)
	return args[:n-3], args[n-3], args[n-2], args[n-1]
}

// AttentionOperands splits an attention op's operands into q, k, v (nil
// when returns is probs or logprobs) and the captured tensors.
// layoutAttr is attention's and attention_grad's layout: bhnd (the
// default) or bnhd, which the layout pass sets.
var layoutAttr = AttrSpec{Name: "layout", Kind: AttrWord, Optional: true, Words: []string{"bhnd", "bnhd"}}

// AttentionBNHD reports whether an attention or attention_grad has the
// layout bnhd: q, k, v (dy and the gradients) [B, N, H, D], its row
// statistics [B, N, H].
func AttentionBNHD(attrs Attrs) bool { return attrs.Str("layout") == "bnhd" }

func AttentionOperands[T any](args []T, attrs Attrs) (q, k T, v *T, caps []T) {
	q, k = args[0], args[1]
	rest := args[2:]
	if r := attrs.Str("returns"); r == "" || r == "out" {
		if len(rest) > 0 {
			v = &rest[0]
			rest = rest[1:]
		}
	}
	return q, k, v, rest
}
