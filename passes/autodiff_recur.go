package passes

import (
	"fmt"
	"strconv"

	"github.com/attnc/attnc/ir"
)

// recurRule: the gradient of s_t = f(s_{t-1}, x_t, c) is a loop in
// reverse time whose body is f's vector-Jacobian product (vjpBody): one
// recur_grad for every operand that needs a gradient, which stores
// nothing but the states the forward returned.
func recurRule(a *adjoints, in, dy *ir.Instr, need []bool) ([]*ir.Instr, error) {
	var wrt []int64
	for j, x := range in.Args {
		if need[j] && x.Type.DType == ir.F32 {
			wrt = append(wrt, int64(j))
		}
	}
	out := make([]*ir.Instr, len(in.Args))
	if len(wrt) == 0 {
		return out, nil
	}
	body, err := vjpBody(in.Body(), wrt)
	if err != nil {
		return nil, fmt.Errorf("the cell's gradient: %w", err)
	}
	attrs := ir.Attrs{"axis": in.Attrs["axis"], "body": ir.ModuleAttr(body), "wrt": ir.IntsAttr(wrt...)}
	for _, k := range []string{"steps", "cell"} {
		if v, ok := in.Attrs[k]; ok {
			attrs[k] = v
		}
	}
	args := append(append([]*ir.Instr(nil), in.Args...), in, dy)
	grads := a.op(ir.OpRecurGrad, attrs, args...)
	for i, j := range wrt {
		out[j] = a.op(ir.OpExtract, ir.Attrs{"index": ir.IntAttr(int64(i))}, grads)
	}
	return out, nil
}

// vjpBody returns the vector-Jacobian product of a recur body: a module
// with the body's inputs (state, [x], c…) and one more, dy, the gradient
// of its output; its outputs are d0, the gradient of state, then dJ for
// each J of wrt other than 0 (zeros where the output does not depend on
// that input). The body's own instructions come first, so it recomputes
// the step from s_{t-1} rather than storing anything inside it.
func vjpBody(body *ir.Module, wrt []int64) (*ir.Module, error) {
	m := body.Clone()
	m.Outputs = nil
	ins := m.Inputs()
	var next *ir.Instr
	for i, o := range body.Outputs {
		if o.Name == "next" {
			next = m.Instrs[indexOf(body.Instrs, body.Outputs[i].Value)]
		}
	}
	if next == nil {
		return nil, fmt.Errorf("the body has no output \"next\"")
	}
	want := map[*ir.Instr]bool{ins[0]: true}
	for _, j := range wrt {
		want[ins[j]] = true
	}
	a := &adjoints{b: ir.Continue(m), adj: map[*ir.Instr]*ir.Instr{}}
	a.relevant = dependsOn(m, func(in *ir.Instr) bool { return want[in] })
	forward := append([]*ir.Instr(nil), m.Instrs...)
	dy := a.given(ir.OpInput, ins[0].Type, ir.Attrs{"name": ir.StringAttr("dy")})
	if a.relevant[next] {
		a.adj[next] = dy
	}
	if err := a.sweep(forward); err != nil {
		return nil, err
	}
	grad := func(x *ir.Instr) *ir.Instr {
		if g := a.adj[x]; g != nil {
			return g
		}
		return a.zerosLike(x)
	}
	a.b.Output(ir.OutValue, "d0", grad(ins[0]))
	for _, j := range wrt {
		if j > 0 {
			a.b.Output(ir.OutValue, "d"+strconv.FormatInt(j, 10), grad(ins[j]))
		}
	}
	if err := a.b.Err(); err != nil {
		return nil, err
	}
	if err := NoGrad(m); err != nil {
		return nil, err
	}
	pruneBody(m)
	return m, nil
}

func indexOf(list []*ir.Instr, x *ir.Instr) int {
	for i, in := range list {
		if in == x {
			return i
		}
	}
	return -1
}

// pruneBody removes the instructions of a body that no output reads,
// inputs excepted (they are the body's signature).
func pruneBody(m *ir.Module) {
	live := map[*ir.Instr]bool{}
	var mark func(in *ir.Instr)
	mark = func(in *ir.Instr) {
		if live[in] {
			return
		}
		live[in] = true
		for _, x := range in.Args {
			mark(x)
		}
	}
	for _, o := range m.Outputs {
		mark(o.Value)
	}
	keep := m.Instrs[:0]
	for _, in := range m.Instrs {
		if live[in] || in.Op == ir.OpInput {
			keep = append(keep, in)
		}
	}
	m.Instrs = keep
}
