package passes

import (
	"fmt"

	"github.com/attnc/attnc/ir"
)

// Lower groups a differentiated module into the functions generated code
// exposes: Forward (loss, metrics and outputs) and LossAndGrad (loss,
// metrics and every param's gradient). Each function holds only the
// instructions its results need, in program order, with each value's last
// use recorded so a renderer can release buffers early.
//
// Requires: a verified module; LossAndGrad only when it has grad outputs.
//
// Guarantees: every operand of a function's instruction is defined
// earlier in that function; params and inputs appear as instructions.
// Lowering is one kernel per op: fusion and tiling passes that come later
// replace runs of instructions, not this structure.
//
// Why: the renderers must not decide what to compute; they print a
// Program.
func Lower(m *ir.Module) (*ir.Program, error) {
	if err := ir.Verify(m); err != nil {
		return nil, fmt.Errorf("lower: %w", err)
	}
	p := &ir.Program{Module: m}
	var fwd, grad []ir.Output
	for _, o := range m.Outputs {
		// Buffers are updated by training steps: with the gradients.
		if o.Kind == ir.OutGrad || o.Kind == ir.OutUpdate {
			grad = append(grad, o)
		} else {
			fwd = append(fwd, o)
		}
	}
	p.Funcs = append(p.Funcs, slice(m, "Forward", "runs the model and returns its loss, metrics and outputs", fwd))
	if len(grad) > 0 {
		var results []ir.Output
		for _, o := range fwd {
			if o.Kind != ir.OutValue {
				results = append(results, o)
			}
		}
		p.Funcs = append(p.Funcs, slice(m, "LossAndGrad", "runs the model forward and backward and returns the loss and metrics; the gradients are left in the model", append(results, grad...)))
	}
	return p, nil
}

// slice returns the function computing results: the instructions they
// depend on, in program order.
func slice(m *ir.Module, name, doc string, results []ir.Output) *ir.Func {
	roots := make([]*ir.Instr, len(results))
	for i, o := range results {
		roots[i] = o.Value
	}
	need := dependencies(roots)
	f := &ir.Func{Name: name, Doc: doc, Results: results}
	for _, in := range m.Instrs {
		if need[in] {
			f.Body = append(f.Body, in)
		}
	}
	isResult := map[*ir.Instr]bool{}
	for _, o := range results {
		isResult[o.Value] = true
	}
	last := map[*ir.Instr]int{}
	for i, in := range f.Body {
		for _, a := range in.Args {
			last[a] = i
		}
	}
	f.Last = make([][]*ir.Instr, len(f.Body))
	for _, in := range f.Body {
		if i, ok := last[in]; ok && !isResult[in] && in.Op != ir.OpParam && in.Op != ir.OpBuffer && in.Op != ir.OpInput {
			f.Last[i] = append(f.Last[i], in)
		}
	}
	return f
}

// dependencies returns the instructions the roots read, directly or
// not, the roots included.
func dependencies(roots []*ir.Instr) map[*ir.Instr]bool {
	need := map[*ir.Instr]bool{}
	var mark func(*ir.Instr)
	mark = func(in *ir.Instr) {
		if need[in] {
			return
		}
		need[in] = true
		for _, a := range in.Args {
			mark(a)
		}
	}
	for _, r := range roots {
		mark(r)
	}
	return need
}
