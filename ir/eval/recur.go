package eval

import (
	"fmt"

	"github.com/attnc/attnc/ir"
)

// runBody evaluates an op's body module on inputs (one per body input, in
// order) with the enclosing run's symbols, and returns its outputs in
// order.
func (r *runner) runBody(body *ir.Module, inputs []*Tensor) ([]*Tensor, error) {
	sub := &runner{syms: r.syms, values: map[*ir.Instr]*Tensor{}}
	for i, in := range body.Inputs() {
		sub.values[in] = inputs[i]
	}
	for _, in := range body.Instrs {
		if in.Op == ir.OpInput {
			continue
		}
		t, err := sub.exec(in, Env{})
		if err != nil {
			return nil, fmt.Errorf("body %%%d = %s: %w", in.ID, in.Op, err)
		}
		sub.values[in] = t
	}
	out := make([]*Tensor, len(body.Outputs))
	for i, o := range body.Outputs {
		out[i] = sub.values[o.Value]
	}
	return out, nil
}

// stepOf returns x's slice at index t of axis, with the axis removed.
func stepOf(x *Tensor, axis, t int) *Tensor {
	outer, n, inner := split3(x.Shape, axis)
	shape := append(append([]int{}, x.Shape[:axis]...), x.Shape[axis+1:]...)
	s := NewTensor(x.DType, shape...)
	for o := range outer {
		copy(s.Data[o*inner:(o+1)*inner], x.Data[(o*n+t)*inner:(o*n+t+1)*inner])
	}
	return s
}

// putStep writes s as index t of axis of x, whose shape is s's with that
// axis inserted.
func putStep(x *Tensor, axis, t int, s *Tensor) {
	outer, n, inner := split3(x.Shape, axis)
	for o := range outer {
		copy(x.Data[(o*n+t)*inner:(o*n+t+1)*inner], s.Data[o*inner:(o+1)*inner])
	}
}

// addInto adds s to acc elementwise.
func addInto(acc, s *Tensor) {
	for i, v := range s.Data {
		acc.Data[i] += v
	}
}

// recur runs s_t = body(s_{t-1}, x_t, c…) from s_{-1} = init and stacks
// the states along axis into a tensor of shape.
func (r *runner) recur(in *ir.Instr, args []*Tensor, shape []int) (*Tensor, error) {
	init, xs, hasXs, caps := ir.RecurOperands(args, in.Attrs)
	axis := in.Attrs.Int("axis")
	steps := shape[axis]
	out := NewTensor(ir.F32, shape...)
	s := init
	for t := range steps {
		ins := []*Tensor{s}
		if hasXs {
			ins = append(ins, stepOf(xs, axis, t))
		}
		res, err := r.runBody(in.Body(), append(ins, caps...))
		if err != nil {
			return nil, fmt.Errorf("step %d: %w", t, err)
		}
		s = res[0]
		putStep(out, axis, t, s)
	}
	return out, nil
}

// recurGrad runs a recur's adjoint in reverse time: g = 0; for t = T-1
// down to 0, g += dy_t, then the body (the cell's vector-Jacobian
// product) at (s_{t-1}, x_t, c…, g) gives the next g, dx_t and terms of
// each dc.
func (r *runner) recurGrad(in *ir.Instr, args []*Tensor) (*Tensor, error) {
	fwd, out, dy := ir.RecurGradOperands(args)
	init, xs, hasXs, caps := ir.RecurOperands(fwd, in.Attrs)
	axis := in.Attrs.Int("axis")
	steps := out.Shape[axis]
	wrt := in.Attrs.Ints("wrt")
	g := NewTensor(ir.F32, init.Shape...)
	// acc[j] accumulates the gradient of forward operand j (j > 0).
	acc := map[int]*Tensor{}
	for _, j := range wrt {
		if j > 0 {
			acc[j] = NewTensor(ir.F32, fwd[j].Shape...)
		}
	}
	for t := steps - 1; t >= 0; t-- {
		addInto(g, stepOf(dy, axis, t))
		prev := init
		if t > 0 {
			prev = stepOf(out, axis, t-1)
		}
		ins := []*Tensor{prev}
		if hasXs {
			ins = append(ins, stepOf(xs, axis, t))
		}
		ins = append(append(ins, caps...), g)
		res, err := r.runBody(in.Body(), ins)
		if err != nil {
			return nil, fmt.Errorf("step %d: %w", t, err)
		}
		g = res[0]
		k := 1
		for _, j := range wrt {
			if j == 0 {
				continue
			}
			if hasXs && j == 1 {
				putStep(acc[j], axis, t, res[k])
			} else {
				addInto(acc[j], res[k])
			}
			k++
		}
	}
	tuple := make([]*Tensor, len(wrt))
	for i, j := range wrt {
		if j == 0 {
			tuple[i] = g
		} else {
			tuple[i] = acc[j]
		}
	}
	return &Tensor{Tuple: tuple}, nil
}
