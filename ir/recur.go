package ir

import "strconv"

// The recur ops' type rules verify their bodies, which reads the op
// table: they join it here, after it is built.
func init() {
	opTable[OpRecur].Infer = inferRecur
	opTable[OpRecurGrad].Infer = inferRecurGrad
}

// RecurOperands splits a recur op's operands (or the forward part of a
// recur_grad's) into the initial state, the sequence it runs over (nil
// when the op has steps) and the tensors the body reads whole.
func RecurOperands[T any](args []T, attrs Attrs) (init T, xs T, hasXs bool, caps []T) {
	init = args[0]
	if attrs.Has("steps") {
		return init, xs, false, args[1:]
	}
	if len(args) > 1 {
		return init, args[1], true, args[2:]
	}
	return init, xs, true, nil
}

// RecurGradOperands splits a recur_grad op's operands into those of the
// forward recur (which wrt numbers), out (the recur's result) and dy.
func RecurGradOperands[T any](args []T) (fwd []T, out, dy T) {
	n := len(args)
	return args[:n-2], args[n-2], args[n-1]
}

// RecurInputName is the name of a recur body's input for operand i of
// the recur op: state, x, then c0, c1, … (with steps, c0 is operand 1).
func RecurInputName(i int, hasXs bool) string {
	switch {
	case i == 0:
		return "state"
	case i == 1 && hasXs:
		return "x"
	case hasXs:
		return "c" + strconv.Itoa(i-2)
	}
	return "c" + strconv.Itoa(i-1)
}

// RecurStepType is the type of x_t: xs's with axis removed.
func RecurStepType(xs Type, axis int) Type {
	shape := append(append(Shape{}, xs.Shape[:axis]...), xs.Shape[axis+1:]...)
	return Type{DType: xs.DType, Shape: shape}
}

// RecurLength is the number of steps of a recur or recur_grad op: its
// steps, or xs's size along axis.
func RecurLength(in *Instr) Dim {
	if in.Attrs.Has("steps") {
		return in.Attrs["steps"].Dim
	}
	return in.Args[1].Type.Shape[in.Attrs.Int("axis")]
}

// checkBody verifies a body module and that its inputs are, in order,
// the names and types want lists, and its outputs the names and types
// outs lists (all OutValue).
func checkBody(c *InferCtx, want []Type, hasXs bool, outs []string, outTypes []Type) (*Module, error) {
	body := c.Attrs["body"].Module
	if body == nil {
		return nil, errf("has no body")
	}
	for _, s := range body.Syms {
		if !c.Syms[s] {
			return nil, errf("body uses the symbol %s, which the module does not declare", s)
		}
	}
	if err := Verify(body); err != nil {
		return nil, errf("body: %v", err)
	}
	ins := body.Inputs()
	if len(ins) != len(want) {
		return nil, errf("body has %d inputs, want %d (one per operand)", len(ins), len(want))
	}
	for i, in := range ins {
		name := RecurInputName(i, hasXs)
		if i == len(want)-1 && len(outs) > 0 && outs[0] == "d0" {
			name = "dy"
		}
		if in.Name() != name {
			return nil, errf("body input %d is %q, want %q", i, in.Name(), name)
		}
		if !in.Type.Equal(want[i]) {
			return nil, errf("body input %q is %s, want %s", name, in.Type, want[i])
		}
	}
	for _, in := range body.Instrs {
		switch in.Op {
		case OpParam:
			return nil, errf("body has a param (%%%d): a body reads weights as inputs", in.ID)
		case OpAttention, OpAttentionGrad:
			return nil, errf("body has an %s op (%%%d), which bodies cannot run", in.Op, in.ID)
		}
	}
	if len(body.Outputs) != len(outs) {
		return nil, errf("body has %d outputs, want %d", len(body.Outputs), len(outs))
	}
	for i, o := range body.Outputs {
		if o.Kind != OutValue || o.Name != outs[i] {
			return nil, errf("body output %d is %s %q, want output %q", i, o.Kind, o.Name, outs[i])
		}
		if !o.Value.Type.Equal(outTypes[i]) {
			return nil, errf("body output %q is %s, want %s", o.Name, o.Value.Type, outTypes[i])
		}
	}
	return body, nil
}

// recurForward checks a recur op's forward operands and returns the
// body's input types and the result type.
func recurForward(c *InferCtx, args []Type) ([]Type, Type, bool, error) {
	state, xs, hasXs, caps := RecurOperands(args, c.Attrs)
	if state.DType != F32 {
		return nil, Type{}, false, errf("the state must be f32, got %s", state)
	}
	axis := c.Attrs.Int("axis")
	if axis < 0 || axis > state.Rank() {
		return nil, Type{}, false, errf("axis %d out of range for a state of rank %d", axis, state.Rank())
	}
	want := []Type{state}
	var steps Dim
	if hasXs {
		if len(args) < 2 {
			return nil, Type{}, false, errf("needs a sequence operand (or steps)")
		}
		if axis >= xs.Rank() {
			return nil, Type{}, false, errf("axis %d out of range for the sequence %s", axis, xs)
		}
		steps = xs.Shape[axis]
		want = append(want, RecurStepType(xs, axis))
	} else {
		steps = c.Attrs["steps"].Dim
		if v, ok := steps.IsConst(); ok && v < 0 {
			return nil, Type{}, false, errf("steps %s is negative", steps)
		}
		for _, s := range steps.Syms() {
			if !c.Syms[s] {
				return nil, Type{}, false, errf("steps %s mentions undeclared symbol %s", steps, s)
			}
		}
	}
	want = append(want, caps...)
	shape := append(append(append(Shape{}, state.Shape[:axis]...), steps), state.Shape[axis:]...)
	return want, Type{DType: F32, Shape: shape}, hasXs, nil
}

func inferRecur(c *InferCtx) (Type, error) {
	want, res, hasXs, err := recurForward(c, c.Args)
	if err != nil {
		return Type{}, err
	}
	if _, err := checkBody(c, want, hasXs, []string{"next"}, []Type{want[0]}); err != nil {
		return Type{}, err
	}
	return res, nil
}

func inferRecurGrad(c *InferCtx) (Type, error) {
	fwd, out, dy := RecurGradOperands(c.Args)
	want, res, hasXs, err := recurForward(c, fwd)
	if err != nil {
		return Type{}, err
	}
	if !out.Equal(res) || !dy.Equal(res) {
		return Type{}, errf("out %s and dy %s must both be the recur's result %s", out, dy, res)
	}
	outs, outTypes := []string{"d0"}, []Type{want[0]}
	var tuple []Type
	last := -1
	for _, j := range c.Attrs.Ints("wrt") {
		if j <= last || j >= len(fwd) {
			return Type{}, errf("wrt %v must increase and number operands below %d", c.Attrs.Ints("wrt"), len(fwd))
		}
		last = j
		if fwd[j].DType != F32 {
			return Type{}, errf("wrt names operand %d, which is %s, not f32", j, fwd[j])
		}
		tuple = append(tuple, fwd[j])
		if j > 0 {
			outs = append(outs, "d"+strconv.Itoa(j))
			outTypes = append(outTypes, want[j])
		}
	}
	if len(tuple) == 0 {
		return Type{}, errf("wrt is empty")
	}
	if _, err := checkBody(c, append(want, want[0]), hasXs, outs, outTypes); err != nil {
		return Type{}, err
	}
	return TupleOf(tuple...), nil
}

// Body returns the body module of an op that has one, or nil.
func (in *Instr) Body() *Module { return in.Attrs["body"].Module }
