package passes

import "github.com/attnc/attnc/ir"

// NoGrad removes the stop_gradient ops of m: their readers read the
// operand instead. Once autodiff has written the gradients (which
// stop_gradient shaped by blocking them), the op is the identity, and
// no kernel pass or renderer needs to know it.
func NoGrad(m *ir.Module) error {
	var keep []*ir.Instr
	for _, in := range m.Instrs {
		if body := in.Body(); body != nil {
			// Bodies are shared with the module autodiff read: rewrite a
			// copy.
			c := body.Clone()
			if err := NoGrad(c); err != nil {
				return err
			}
			in.Attrs["body"] = ir.ModuleAttr(c)
		}
		if in.Op == ir.OpStopGradient {
			replaceUses(m, in, in.Args[0], nil)
			continue
		}
		keep = append(keep, in)
	}
	m.Instrs = keep
	return nil
}
