package passes

import (
	"fmt"

	"github.com/attnc/attnc/ir"
)

// A Probe is one attention op of a model, as ProbeAttention outputs it.
type Probe struct {
	Output string // the probe module's output: f32[B, H, Nq, Nk], the attention probabilities
	Label  string // what the op is, for a picture's title: "%41 attention, mask (k <= q)"
}

// ProbeAttention derives from m (elaborated) a module whose outputs are
// the attention probabilities of each of m's attention ops on m's inputs,
// in program order: the instructions the ops' operands read, then each op
// again with returns = probs. It is what attnc draws attention maps from,
// without making Forward compute them: the probe is a module of its own,
// compiled like the model. A model without attention gives an error.
func ProbeAttention(m *ir.Module) (*ir.Module, []Probe, error) {
	var ops []*ir.Instr
	for _, in := range m.Instrs {
		if in.Op == ir.OpAttention {
			ops = append(ops, in)
		}
	}
	if len(ops) == 0 {
		return nil, nil, fmt.Errorf("model %s has no attention", m.Name)
	}
	var roots []*ir.Instr
	for _, op := range ops {
		roots = append(roots, op.Args...)
	}
	need := dependencies(roots)
	b := ir.NewBuilder(m.Name+"_probe", m.Syms...)
	at := map[*ir.Instr]*ir.Instr{}
	for _, in := range m.Instrs {
		if !need[in] {
			continue
		}
		args := make([]*ir.Instr, len(in.Args))
		for i, a := range in.Args {
			args[i] = at[a]
		}
		var out *ir.Instr
		var err error
		if in.Op.Info().Given {
			out, err = b.Given(in.Op, in.Type, in.Attrs, args...)
		} else {
			out, err = b.Op(in.Op, in.Attrs, args...)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("probing %%%d = %s: %w", in.ID, in.Op, err)
		}
		at[in] = out
	}
	var probes []Probe
	for i, op := range ops {
		q, k, _, caps := ir.AttentionOperands(op.Args, op.Attrs)
		attrs := ir.Attrs{"returns": ir.WordAttr("probs")}
		for key, v := range op.Attrs {
			if key != "returns" && key != "with_lse" && key != "layout" {
				attrs[key] = v
			}
		}
		args := []*ir.Instr{at[q], at[k]}
		for _, c := range caps {
			args = append(args, at[c])
		}
		probs, err := b.Op(ir.OpAttention, attrs, args...)
		if err != nil {
			return nil, nil, fmt.Errorf("probing %%%d = attention: %w", op.ID, err)
		}
		name := fmt.Sprintf("attn.%d", i)
		b.Output(ir.OutValue, name, probs)
		label := fmt.Sprintf("attention %d of %d", i+1, len(ops))
		if e := op.Attrs.Expr("mask"); e != nil {
			label += ", mask " + e.String()
		}
		probes = append(probes, Probe{Output: name, Label: label})
	}
	if err := b.Err(); err != nil {
		return nil, nil, err
	}
	if err := ir.Verify(b.M); err != nil {
		return nil, nil, fmt.Errorf("probing attention: %w", err)
	}
	return b.M, probes, nil
}
