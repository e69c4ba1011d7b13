package passes

import (
	"fmt"

	"github.com/attnc/attnc/ir"
)

// A PointerDecode names what greedy decoding of a pointer network reads:
// the output Scores, f32[B, N, N], whose row t scores the N input
// positions as step t's choice; the input Target, i32[B, N], of the
// positions chosen at each step (teacher forcing: step t reads those
// chosen at steps < t, and which positions are still free); and Shape,
// another input whose first two dims are [B, N], that gives the batch and
// the length when Target is what is being decoded.
type PointerDecode struct {
	Scores, Target, Shape string
}

// Pointers finds m's pointer output: the first output f32[B, N, N]
// computed from exactly one i32[B, N] input (Target) and from another
// input with the dims [B, N, …] (Shape). A model without one gives why.
//
// Why: a pointer network's decoder reads its own earlier choices, so
// greedy decoding feeds them back step by step, which Forward alone does
// not. The choices are positions of the input, not tokens of a
// vocabulary, so passes.Decode's one-token step does not apply.
func Pointers(m *ir.Module) (*PointerDecode, error) {
	for _, o := range m.Outputs {
		t := o.Value.Type
		if o.Kind != ir.OutValue || t.DType != ir.F32 || t.Rank() != 3 || !t.Shape[1].Equal(t.Shape[2]) {
			continue
		}
		need := dependencies([]*ir.Instr{o.Value})
		var target, shape *ir.Instr
		ambiguous := false
		for _, in := range m.Instrs {
			if in.Op != ir.OpInput || !need[in] || in.Type.Rank() < 2 || !in.Type.Shape[0].Equal(t.Shape[0]) || !in.Type.Shape[1].Equal(t.Shape[1]) {
				continue
			}
			switch {
			case in.Type.DType == ir.I32 && in.Type.Rank() == 2 && target == nil:
				target = in
			case in.Type.DType == ir.I32 && in.Type.Rank() == 2:
				ambiguous = true
			case shape == nil:
				shape = in
			}
		}
		if target == nil || shape == nil || ambiguous {
			continue
		}
		return &PointerDecode{Scores: o.Name, Target: target.Name(), Shape: shape.Name()}, nil
	}
	return nil, fmt.Errorf("no output f32[B, N, N] is computed from one i32[B, N] input of the positions chosen and another input [B, N, …]")
}
