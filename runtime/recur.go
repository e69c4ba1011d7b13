package runtime

import (
	"fmt"
	"slices"
)

// A Cell is one step of a recurrence as generated code writes it: a
// function of the body's inputs, in order, returning its outputs in order.
type Cell func(in []*Tensor) ([]*Tensor, error)

// Recur runs s_t = cell(s_{t-1}, x_t, caps…) for t = 0 … steps-1 from
// s_{-1} = init and returns the states stacked along axis. xs, when not
// nil, is the sequence: x_t is its index t along axis, with the axis
// removed, and steps its size there.
func Recur(init, xs *Tensor, caps []*Tensor, axis, steps int, cell Cell) (*Tensor, error) {
	if init.DType != F32 || axis < 0 || axis > len(init.Shape) {
		panic(fmt.Sprintf("runtime.Recur: state %s, axis %d", typeString(init.DType, init.Shape), axis))
	}
	if xs != nil {
		checkAxis("Recur", axis, len(xs.Shape))
		steps = xs.Shape[axis]
	}
	shape := slices.Insert(slices.Clone(init.Shape), axis, steps)
	out := New(F32, shape...)
	s := init
	for t := range steps {
		in := []*Tensor{s}
		if xs != nil {
			in = append(in, StepOf(xs, axis, t))
		}
		res, err := cell(append(in, caps...))
		if err != nil {
			return nil, fmt.Errorf("step %d: %w", t, err)
		}
		s = res[0]
		if !slices.Equal(s.Shape, init.Shape) || s.DType != F32 {
			panic(fmt.Sprintf("runtime.Recur: the cell returned %s for the state %s", typeString(s.DType, s.Shape), typeString(init.DType, init.Shape)))
		}
		putStep(out, axis, t, s)
	}
	return out, nil
}

// RecurGrad is a Recur's adjoint: the gradients with respect to the
// operands numbered wrt (0 init, then xs when not nil, then caps), given
// out, the Recur's result, and dy, the gradient of it. cell is the step's
// vector-Jacobian product: from (s_{t-1}, x_t, caps…, g) it returns the
// gradient of s_{t-1}, then one for each operand of wrt other than 0.
// It runs in reverse time from g = 0, adding dy_t to g before each step.
func RecurGrad(init, xs *Tensor, caps []*Tensor, out, dy *Tensor, axis int, wrt []int, cell Cell) ([]*Tensor, error) {
	steps := out.Shape[axis]
	fwd := append([]*Tensor{init}, caps...)
	if xs != nil {
		fwd = append([]*Tensor{init, xs}, caps...)
	}
	acc := make(map[int]*Tensor, len(wrt))
	for _, j := range wrt {
		if j > 0 {
			acc[j] = New(F32, fwd[j].Shape...)
		}
	}
	g := New(F32, init.Shape...)
	for t := steps - 1; t >= 0; t-- {
		d := StepOf(dy, axis, t)
		g = Binary(Add, g, d, g.Shape)
		prev := init
		if t > 0 {
			prev = StepOf(out, axis, t-1)
		}
		in := []*Tensor{prev}
		if xs != nil {
			in = append(in, StepOf(xs, axis, t))
		}
		in = append(append(in, caps...), g)
		res, err := cell(in)
		if err != nil {
			return nil, fmt.Errorf("step %d: %w", t, err)
		}
		g = res[0]
		k := 1
		for _, j := range wrt {
			if j == 0 {
				continue
			}
			if xs != nil && j == 1 {
				putStep(acc[j], axis, t, res[k])
			} else {
				a := acc[j]
				for i, v := range res[k].F {
					a.F[i] += v
				}
			}
			k++
		}
	}
	grads := make([]*Tensor, len(wrt))
	for i, j := range wrt {
		if j == 0 {
			grads[i] = g
		} else {
			grads[i] = acc[j]
		}
	}
	return grads, nil
}

// StepOf returns index t of x along axis, with the axis removed (a copy).
func StepOf(x *Tensor, axis, t int) *Tensor {
	outer, n, inner := split3(x.Shape, axis)
	shape := slices.Delete(slices.Clone(x.Shape), axis, axis+1)
	s := newUninit(x.DType, shape...)
	for o := range outer {
		src := (o*n + t) * inner
		switch x.DType {
		case F32:
			copy(s.F[o*inner:(o+1)*inner], x.F[src:src+inner])
		case I32:
			copy(s.I[o*inner:(o+1)*inner], x.I[src:src+inner])
		case Bool:
			copy(s.B[o*inner:(o+1)*inner], x.B[src:src+inner])
		}
	}
	return s
}

// putStep writes the f32 s as index t of axis of x.
func putStep(x *Tensor, axis, t int, s *Tensor) {
	outer, n, inner := split3(x.Shape, axis)
	for o := range outer {
		copy(x.F[(o*n+t)*inner:(o*n+t+1)*inner], s.F[o*inner:(o+1)*inner])
	}
}
