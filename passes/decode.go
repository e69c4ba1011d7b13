package passes

import (
	"fmt"
	"slices"

	"github.com/attnc/attnc/ir"
)

// A StepState is one piece of what a decode step carries to the next: a
// key or value cache of an attention op (it grows by a row along Axis
// each step) or the state of a scan (Axis -1: the same shape each step,
// zeros before the first).
type StepState struct {
	Input  string  // the step module's input of the state before the step
	Output string  // its output of the state after it
	Type   ir.Type // the input's type; a cache's Axis dim is the symbol Len
	Axis   int
}

// A DecodeStep is the one-token step of a causal model: a module whose
// input Tokens is i32[B, 1], the token at position Len (Len tokens came
// before it; "" when no state is a cache, and nothing reads it), and whose
// States carry the keys and values of the tokens
// before it (caches) and the scans' last rows, so that its output Logits,
// f32[B, 1, V], is the model's Forward output at that position, computed
// in time that grows with Len only through attention over the cache.
type DecodeStep struct {
	Module *ir.Module
	Tokens string
	Len    string
	Logits string
	States []StepState
}

// Decode derives the decode step of m, a model whose output logits is
// computed from one i32 input of type [B, N] along which the model is
// causal: position t of the output reads positions ≤ t of the input
// only. The derivation rewrites the instructions the output reads with
// the sequence dim N as 1:
//
//   - an op along another axis (elementwise, norms over features,
//     products over features, embeddings) is the same op on the one row;
//
//   - positions (iota along N) count from Len;
//
//   - attention appends the row's keys and values to caches (inputs
//     holding the keys and values of the Len tokens before) and attends
//     from the one query, at position Len, over all of them: its mask and
//     score read q + Len where they read q;
//
//   - a scan along N continues from its last row, a state input.
//
//   - shift(x) by one position (a pad of one zero row, read only by the
//     slice of its first N rows) is the row before, a state that starts
//     at zeros.
//
// What it cannot derive is an error naming the instruction: an op along
// N that mixes positions otherwise (a longer shift, a softmax or sum over N, a
// product that contracts N, a reverse scan), attention whose mask admits
// a key after its query, or one that reads a captured tensor.
//
// Why: a language model generates one token at a time; rerunning Forward
// over the whole prefix for each costs a full pass per token, so
// generating n tokens costs n² rows. With the caches a token costs one
// row and attention over the cache.
func Decode(m *ir.Module, logits string) (*DecodeStep, error) {
	var root *ir.Instr
	for _, o := range m.Outputs {
		if o.Kind == ir.OutValue && o.Name == logits {
			root = o.Value
		}
	}
	if root == nil {
		return nil, fmt.Errorf("the model has no output %s", logits)
	}
	need := dependencies([]*ir.Instr{root})
	// The decoded input: the i32[B, N] input whose N is the output's
	// second dim (a language model's tokens, a decoder's target). The
	// others (an encoder's source) are given whole at every step.
	var tokens *ir.Instr
	if root.Type.Rank() >= 2 {
		for _, in := range m.Instrs {
			if need[in] && in.Op == ir.OpInput && in.Type.DType == ir.I32 && in.Type.Rank() == 2 && in.Type.Shape[1].Equal(root.Type.Shape[1]) {
				if tokens != nil {
					return nil, fmt.Errorf("output %s has the length of two inputs, %s and %s; decoding feeds one", logits, tokens.Name(), in.Name())
				}
				tokens = in
			}
		}
	}
	if tokens == nil {
		return nil, fmt.Errorf("output %s must be computed from an i32[B, N] input of tokens with its length N", logits)
	}
	bdim, ndim := tokens.Type.Shape[0], tokens.Type.Shape[1]
	batch, seq := plainSym(bdim), plainSym(ndim)
	if batch == "" || seq == "" || batch == seq {
		return nil, fmt.Errorf("input %s must be [B, N] with two sizes of its own, got %s", tokens.Name(), tokens.Type)
	}
	lenSym := "Len"
	for slices.Contains(m.Syms, lenSym) {
		lenSym += "_"
	}
	d := &decoder{seq: seq, b: ir.NewBuilder(m.Name+"_step", batch, lenSym), lenSym: lenSym, at: map[*ir.Instr]*ir.Instr{},
		users: map[*ir.Instr][]*ir.Instr{}, shifted: map[*ir.Instr]bool{}}
	for _, in := range m.Instrs {
		if need[in] {
			for _, a := range in.Args {
				d.users[a] = append(d.users[a], in)
			}
		}
	}
	step := &DecodeStep{Module: d.b.M, Tokens: tokens.Name(), Len: lenSym, Logits: logits}
	for _, in := range m.Instrs {
		if !need[in] {
			continue
		}
		out, err := d.instr(in, step)
		if err != nil {
			return nil, fmt.Errorf("decoding one token at a time: %%%d = %s %w", in.ID, in.Op, err)
		}
		if err := d.b.Err(); err != nil {
			return nil, fmt.Errorf("decoding one token at a time: %%%d = %s: %w", in.ID, in.Op, err)
		}
		if d.shifted[in] {
			d.at[in] = out // [B, N+1, …] in the model, the previous row here
			continue
		}
		if want, err := d.typ(in.Type); err != nil || !out.Type.Equal(want) {
			return nil, fmt.Errorf("decoding one token at a time: %%%d = %s gives %s for one position, want %s", in.ID, in.Op, out.Type, want)
		}
		d.at[in] = out
	}
	d.b.Output(ir.OutValue, logits, d.at[root])
	for _, s := range step.States {
		d.b.Output(ir.OutValue, s.Output, d.next[s.Output])
	}
	// Len is bound by the caches' length; without a cache nothing gives
	// it, so a step without one must not read it.
	cached := false
	for _, s := range step.States {
		cached = cached || s.Axis >= 0
	}
	if !cached {
		for _, in := range d.b.M.Instrs {
			if in.Op == ir.OpDimSize {
				return nil, fmt.Errorf("decoding one token at a time: the model reads positions but has no attention whose cache would carry them")
			}
		}
		d.b.M.Syms = slices.DeleteFunc(d.b.M.Syms, func(s string) bool { return s == lenSym })
		step.Len = ""
	}
	if err := d.b.Err(); err != nil {
		return nil, err
	}
	if err := ir.Verify(d.b.M); err != nil {
		return nil, fmt.Errorf("decoding one token at a time: %w", err)
	}
	return step, nil
}

// decoder carries Decode's rewriting.
type decoder struct {
	seq, lenSym string
	b           *ir.Builder
	at          map[*ir.Instr]*ir.Instr // original → its one-position form
	next        map[string]*ir.Instr    // state output → its value
	nstate      int
	users       map[*ir.Instr][]*ir.Instr
	// shifted marks a pad of one zero row ahead along the sequence, read
	// only by slices of its first N rows (the language's shift): its
	// one-position form is the previous position's row, a state.
	shifted map[*ir.Instr]bool
}

func plainSym(d ir.Dim) string {
	if len(d.Terms) == 1 && d.Terms[0].Coef == 1 && d.Const == 0 {
		return d.Terms[0].Sym
	}
	return ""
}

// typ is t with the sequence dim as 1, or an error where a dim mixes it
// with others (N-1, S+N).
func (d *decoder) typ(t ir.Type) (ir.Type, error) {
	if t.IsTuple() {
		out := make([]ir.Type, len(t.Tuple))
		for i, e := range t.Tuple {
			var err error
			if out[i], err = d.typ(e); err != nil {
				return ir.Type{}, err
			}
		}
		return ir.TupleOf(out...), nil
	}
	shape := make(ir.Shape, len(t.Shape))
	for i, dim := range t.Shape {
		switch {
		case plainSym(dim) == d.seq:
			shape[i] = ir.ConstDim(1)
		case slices.Contains(dim.Syms(), d.seq):
			return ir.Type{}, fmt.Errorf("has the dim %s, which mixes the sequence length %s with others", dim, d.seq)
		default:
			shape[i] = dim
		}
	}
	return ir.Type{DType: t.DType, Shape: shape}, nil
}

// seqAxis is the axis of t that is the sequence dim, or -1.
func (d *decoder) seqAxis(t ir.Type) int {
	for i, dim := range t.Shape {
		if plainSym(dim) == d.seq {
			return i
		}
	}
	return -1
}

func (d *decoder) args(in *ir.Instr) []*ir.Instr {
	out := make([]*ir.Instr, len(in.Args))
	for i, a := range in.Args {
		out[i] = d.at[a]
	}
	return out
}

// state adds the input of a new state of type t (a cache growing along
// axis, or -1) to the step, and returns it; setNext gives its value after
// the step.
func (d *decoder) state(step *DecodeStep, kind string, t ir.Type, axis int) *ir.Instr {
	name := fmt.Sprintf("state.%d.%s", d.nstate, kind)
	in := d.b.MustGiven(ir.OpInput, t, ir.Attrs{"name": ir.StringAttr(name)})
	step.States = append(step.States, StepState{Input: name, Output: "next." + name, Type: t, Axis: axis})
	return in
}

func (d *decoder) instr(in *ir.Instr, step *DecodeStep) (*ir.Instr, error) {
	t, err := d.typ(in.Type)
	if err != nil && in.Op != ir.OpPad { // a pad along the sequence has N+1 rows: its case says what it is
		return nil, err
	}
	args := d.args(in)
	axisOf := func(i int) int { return d.seqAxis(in.Args[i].Type) }
	attrAxis := func(i int) bool {
		ax := in.Attrs.Int("axis")
		r := in.Args[i].Type.Rank()
		return (ax+r)%max(r, 1) == axisOf(i) && axisOf(i) >= 0
	}
	switch in.Op {
	case ir.OpInput, ir.OpParam, ir.OpBuffer, ir.OpConst:
		if in.Op == ir.OpInput {
			for _, dim := range t.Shape {
				for _, sym := range dim.Syms() {
					d.b.AddSym(sym) // an encoder's input brings its own sizes
				}
			}
		}
		return d.b.Given(in.Op, t, in.Attrs)
	case ir.OpIota:
		iota, err := d.b.Given(ir.OpIota, t, in.Attrs)
		if err != nil || in.Attrs.Int("axis") != d.seqAxis(in.Type) {
			return iota, err
		}
		// Positions count from the tokens before this one.
		n := d.b.Must(ir.OpDimSize, ir.Attrs{"dim": ir.DimAttr(ir.SymDim(d.lenSym))})
		return d.b.Op(ir.OpAdd, nil, iota, d.b.Must(ir.OpCast, ir.Attrs{"to": ir.DTypeAttr(ir.I32)}, n))
	case ir.OpReshape, ir.OpBroadcast:
		return d.b.Given(in.Op, t, in.Attrs, args...)
	case ir.OpPad:
		if attrAxis(0) && d.isShift(in) {
			// A shift by one: the row before this one, carried as a state
			// that starts at zeros, the pad's row.
			prev := d.state(step, "shift", args[0].Type, -1)
			d.setNext(step, args[0])
			d.shifted[in] = true
			return prev, nil
		}
		if attrAxis(0) {
			return nil, fmt.Errorf("acts along the sequence (%s): a step sees one position", d.seq)
		}
		if err != nil {
			return nil, err
		}
	case ir.OpSlice:
		if d.shifted[in.Args[0]] {
			return args[0], nil // isShift checked the slice
		}
		if attrAxis(0) {
			return nil, fmt.Errorf("acts along the sequence (%s): a step sees one position", d.seq)
		}
	case ir.OpSoftmax, ir.OpArgMax, ir.OpConcat, ir.OpGather, ir.OpScatterAdd:
		if attrAxis(0) {
			return nil, fmt.Errorf("acts along the sequence (%s): a step sees one position", d.seq)
		}
	case ir.OpReduceSum, ir.OpReduceMax, ir.OpReduceMean, ir.OpLogSumExp:
		r := in.Args[0].Type.Rank()
		for _, ax := range in.Attrs.Ints("axes") {
			if (ax+r)%max(r, 1) == axisOf(0) {
				return nil, fmt.Errorf("reduces over the sequence (%s): a step sees one position", d.seq)
			}
		}
	case ir.OpEinsum, ir.OpMatMul:
		if d.seqAxis(in.Type) < 0 {
			for i := range in.Args {
				if axisOf(i) >= 0 {
					return nil, fmt.Errorf("sums over the sequence (%s): a step sees one position", d.seq)
				}
			}
		}
	case ir.OpScan:
		if !attrAxis(0) {
			break
		}
		if in.Attrs.Bool("reverse") {
			return nil, fmt.Errorf("scans the sequence backwards: no step can run it forwards")
		}
		// h = a ⊙ h_prev + x, from the last row before.
		prev := d.state(step, "h", t, -1)
		h := d.b.Must(ir.OpAdd, nil, d.b.Must(ir.OpMul, nil, args[0], prev), args[1])
		d.setNext(step, h)
		return h, nil
	case ir.OpAttention:
		return d.attention(in, t, args, step)
	case ir.OpRecur:
		// A step could run the cell once from the last state, but the
		// first step's state is init, which the step's inputs do not
		// carry: refused, so generation reruns the model.
		if d.seqAxis(in.Type) >= 0 {
			return nil, fmt.Errorf("runs a recurrence along the sequence (recur of %s): a decode step does not carry its state", in.Attrs.Str("cell"))
		}
		for _, a := range in.Args {
			if d.seqAxis(a.Type) >= 0 {
				return nil, fmt.Errorf("runs a recurrence that reads the sequence (recur of %s): a decode step does not carry its state", in.Attrs.Str("cell"))
			}
		}
	}
	if in.Op.Info().Given {
		return d.b.Given(in.Op, t, in.Attrs, args...)
	}
	return d.b.Op(in.Op, in.Attrs, args...)
}

// isShift reports whether pad puts one zero row ahead along the sequence
// and is read only by slices of its first N rows: shift(x) of the
// language, x moved one position later.
func (d *decoder) isShift(pad *ir.Instr) bool {
	a := pad.Attrs
	if b, ok := a["before"].Dim.IsConst(); !ok || b != 1 {
		return false
	}
	if e, ok := a["after"].Dim.IsConst(); !ok || e != 0 {
		return false
	}
	for _, u := range d.users[pad] {
		if u.Op != ir.OpSlice || u.Attrs.Int("axis") != a.Int("axis") || plainSym(u.Attrs["end"].Dim) != d.seq {
			return false
		}
		if s, ok := u.Attrs["start"].Dim.IsConst(); !ok || s != 0 {
			return false
		}
	}
	return len(d.users[pad]) > 0
}

func (d *decoder) setNext(step *DecodeStep, v *ir.Instr) {
	if d.next == nil {
		d.next = map[string]*ir.Instr{}
	}
	d.next[step.States[len(step.States)-1].Output] = v
	d.nstate++
}

// attention attends from the one query over the keys and values of every
// token so far: the caches, with this token's row appended.
func (d *decoder) attention(in *ir.Instr, t ir.Type, args []*ir.Instr, step *DecodeStep) (*ir.Instr, error) {
	q, k, v, caps := ir.AttentionOperands(args, in.Attrs)
	// The model's captures, not the step's (whose sequence axis is 1).
	_, _, _, modelCaps := ir.AttentionOperands(in.Args, in.Attrs)
	for i, c := range modelCaps {
		if d.seqAxis(c.Type) >= 0 {
			return nil, fmt.Errorf("reads the captured $%d along the decoded sequence; a step has the current position's only", i)
		}
	}
	if r := in.Attrs.Str("returns"); r != "" && r != "out" {
		return nil, fmt.Errorf("returns %s; a step returns the output row only", r)
	}
	if ir.AttentionBNHD(in.Attrs) {
		return nil, fmt.Errorf("has the layout bnhd; decode from the elaborated model")
	}
	if v == nil {
		return nil, fmt.Errorf("has no values")
	}
	if d.seqAxis(in.Args[0].Type) != 2 {
		if d.seqAxis(in.Args[1].Type) < 0 {
			return d.b.Op(ir.OpAttention, in.Attrs, args...) // an encoder's: the same every step
		}
		return nil, fmt.Errorf("has queries that are not the decoded sequence's over keys that are")
	}
	attrs := ir.Attrs{}
	for key, val := range in.Attrs {
		attrs[key] = val
	}
	for _, name := range []string{"mask", "score"} {
		if e := in.Attrs.Expr(name); e != nil {
			attrs[name] = ir.ExprAttr(shiftQuery(e, d.lenSym))
		}
	}
	if d.seqAxis(in.Args[1].Type) != 2 {
		// Cross-attention: the keys and values are an encoder's, whole
		// at every step; no cache, and any mask.
		return d.b.Op(ir.OpAttention, attrs, append([]*ir.Instr{q, k, *v}, caps...)...)
	}
	if err := causal(in.Attrs.Expr("mask"), in.Args[0].Type); err != nil {
		return nil, err
	}
	grow := func(kind string, x *ir.Instr) *ir.Instr {
		ct := x.Type
		ct.Shape = slices.Clone(ct.Shape)
		ct.Shape[2] = ir.SymDim(d.lenSym)
		cache := d.state(step, kind, ct, 2)
		full := d.b.Must(ir.OpConcat, ir.Attrs{"axis": ir.IntAttr(2)}, cache, x)
		d.setNext(step, full)
		return full
	}
	kf := grow("k", k)
	vf := grow("v", *v)
	return d.b.Op(ir.OpAttention, attrs, append([]*ir.Instr{q, kf, vf}, caps...)...)
}

// shiftQuery returns e with the query index q read as q + len: the one
// query of a step is at position len.
func shiftQuery(e *ir.Expr, lenSym string) *ir.Expr {
	if e == nil {
		return nil
	}
	if e.Kind == ir.EVar && e.Name == "q" {
		return ir.Bin(ir.EAdd, ir.Var("q"), ir.Var(lenSym))
	}
	out := *e
	out.Args = make([]*ir.Expr, len(e.Args))
	for i, a := range e.Args {
		out.Args[i] = shiftQuery(a, lenSym)
	}
	return &out
}

// causal reports a mask that admits a key after its query, checked over
// 64 positions and every head (a model with no mask attends to every
// key, the future ones too).
func causal(mask *ir.Expr, q ir.Type) error {
	if mask == nil {
		return fmt.Errorf("has no mask, so each position attends to later ones: the model is not causal")
	}
	heads := int64(1)
	if h, ok := q.Shape[1].IsConst(); ok {
		heads = h
	}
	vars := map[string]float64{"b": 0}
	for h := range heads {
		vars["h"] = float64(h)
		for qi := range 64 {
			for ki := qi + 1; ki < 64; ki++ {
				vars["q"], vars["k"] = float64(qi), float64(ki)
				v, err := mask.Eval(vars, func(int, []int) (float64, error) {
					return 0, fmt.Errorf("a captured tensor")
				})
				if err != nil {
					return fmt.Errorf("has a mask %s that decoding cannot evaluate alone: %v", mask, err)
				}
				if v != 0 {
					return fmt.Errorf("has a mask %s that admits key %d for query %d: the model is not causal", mask, ki, qi)
				}
			}
		}
	}
	return nil
}
