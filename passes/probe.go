package passes

import (
	"fmt"
	"strings"

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
		if scope := weightScope(q, k); scope != "" {
			label += " (" + scope + ")"
		}
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

// weightScope names where in the source an attention op with operands q
// and k is: the common prefix, by dotted components, of the names of the
// weights nearest to q and to k ("dec_layers.0.decoder_layer.cross" from
// its q.weight and k.weight), or, when they share none, q's without its
// last two components. An op whose q reads no weight gives "".
func weightScope(q, k *ir.Instr) string {
	qn, kn := strings.Split(nearestParam(q), "."), strings.Split(nearestParam(k), ".")
	n := 0
	for n < len(qn) && n < len(kn) && qn[n] == kn[n] && qn[n] != "" {
		n++
	}
	// A weight's own name and its kind (q.weight) are not its scope.
	n = min(n, len(qn)-2, len(kn)-2)
	if n <= 0 {
		if len(qn) < 3 {
			return ""
		}
		n = len(qn) - 2
	}
	return strings.Join(qn[:n], ".")
}

// nearestParam returns the name of the weight closest to in among what it
// reads (breadth first), or "".
func nearestParam(in *ir.Instr) string {
	seen := map[*ir.Instr]bool{in: true}
	for queue := []*ir.Instr{in}; len(queue) > 0; queue = queue[1:] {
		x := queue[0]
		if x.Op == ir.OpParam {
			return x.Name()
		}
		for _, a := range x.Args {
			if !seen[a] {
				seen[a] = true
				queue = append(queue, a)
			}
		}
	}
	return ""
}
