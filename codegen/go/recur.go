package gogen

import (
	"fmt"
	"strings"

	"github.com/attnc/attnc/ir"
)

// recur writes a recur or recur_grad op: its body as a closure (an
// rt.Cell) of the body's inputs, then the loop in the runtime. The body
// runs op by op, unfused, each value its own tensor; its names shadow
// the function's, which it does not read (a body is closed: what it
// reads comes in as inputs).
func (r *renderer) recur(in *ir.Instr) error {
	v := val(in)
	body := in.Body()
	cell := v + "Cell"
	r.pf("\t%s := func(args []*rt.Tensor) ([]*rt.Tensor, error) {\n", cell)
	views, errNils := r.views, r.errNils
	r.views, r.errNils = nil, "nil, "
	defer func() { r.views, r.errNils = views, errNils }()
	for i, bi := range body.Inputs() {
		r.pf("\t%s := args[%d]\n\t_ = %s\n", val(bi), i, val(bi))
	}
	for _, bi := range body.Instrs {
		if bi.Op == ir.OpInput {
			continue
		}
		if err := r.instr(bi); err != nil {
			return fmt.Errorf("body %%%d = %s: %w", bi.ID, bi.Op, err)
		}
		r.pf("\t_ = %s\n", val(bi))
	}
	outs := make([]string, len(body.Outputs))
	for i, o := range body.Outputs {
		outs[i] = val(o.Value)
	}
	r.pf("\treturn []*rt.Tensor{%s}, nil\n\t}\n", strings.Join(outs, ", "))
	r.views, r.errNils = views, errNils

	args := in.Args
	var out, dy string
	if in.Op == ir.OpRecurGrad {
		fwd, o, d := ir.RecurGradOperands(args)
		args, out, dy = fwd, val(o), val(d)
	}
	init, xs, hasXs, caps := ir.RecurOperands(args, in.Attrs)
	xsName := "nil"
	if hasXs {
		xsName = val(xs)
	}
	capNames := make([]string, len(caps))
	for i, c := range caps {
		capNames[i] = val(c)
	}
	capList := "[]*rt.Tensor{" + strings.Join(capNames, ", ") + "}"
	axis := in.Attrs.Int("axis")
	call := ""
	if in.Op == ir.OpRecur {
		steps := "0"
		if !hasXs {
			steps = dimGo(in.Attrs["steps"].Dim, "")
		}
		call = fmt.Sprintf("rt.Recur(%s, %s, %s, %d, %s, %s)", val(init), xsName, capList, axis, steps, cell)
	} else {
		call = fmt.Sprintf("rt.RecurGrad(%s, %s, %s, %s, %s, %d, %s, %s)", val(init), xsName, capList, out, dy, axis, intSlice(in.Attrs.Ints("wrt")), cell)
	}
	r.pf("\t%s, err := %s\n\tif err != nil {\n\t\treturn %sfmt.Errorf(\"%%s: %%w\", %q, err)\n\t}\n", v, call, r.errNils, fmt.Sprintf("%%%d = %s", in.ID, in.Op))
	return nil
}
