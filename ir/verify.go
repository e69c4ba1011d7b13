package ir

import (
	"errors"
	"fmt"
	"slices"
)

// A VerifyError lists every problem the verifier found in a module.
type VerifyError struct {
	Module string
	Errs   []error
}

func (e *VerifyError) Error() string {
	msg := fmt.Sprintf("module %s does not verify:", e.Module)
	for _, err := range e.Errs {
		msg += "\n\t" + err.Error()
	}
	return msg
}

// Unwrap returns the individual problems.
func (e *VerifyError) Unwrap() []error { return e.Errs }

// Verify checks m: every value defined once before use, every op with the
// operand count and attributes of its row, every type equal to what the
// op's rule infers, symbols declared, param and input names unique,
// outputs present and the loss an f32 scalar. It returns a *VerifyError
// listing every problem, or nil.
func Verify(m *Module) error {
	var errs []error
	bad := func(in *Instr, format string, args ...any) {
		prefix := ""
		if in != nil {
			prefix = fmt.Sprintf("%%%d = %s: ", in.ID, in.Op)
		}
		// The prefix holds a '%' ("%3 = exp: "): it must not become part
		// of the format.
		errs = append(errs, fmt.Errorf("%s%w", prefix, fmt.Errorf(format, args...)))
	}
	syms := map[string]bool{}
	for _, s := range m.Syms {
		if syms[s] {
			bad(nil, "symbol %s declared twice", s)
		}
		// true, false, inf and nan are literals in index expressions, so a
		// symbol of that name could not be read back from the text form.
		if !isIdent(s) || slices.Contains(AttentionVars, s) || s == "s" || slices.Contains(exprLiteralNames, s) {
			bad(nil, "symbol %q is not a valid name", s)
		}
		syms[s] = true
	}
	defined := map[*Instr]bool{}
	ids := map[int]bool{}
	names := map[string]*Instr{}
	for _, in := range m.Instrs {
		if in == nil {
			bad(nil, "nil instruction")
			continue
		}
		if ids[in.ID] {
			bad(in, "value %%%d defined twice", in.ID)
		}
		ids[in.ID] = true
		if err := VerifyInstr(in, syms); err != nil {
			bad(in, "%v", err)
		}
		for i, a := range in.Args {
			if a != nil && !defined[a] {
				bad(in, "operand %d (%%%d) is used before it is defined", i, a.ID)
			}
		}
		if in.Op == OpParam || in.Op == OpInput || in.Op == OpBuffer {
			key := in.Op.String() + " " + in.Name()
			if in.Op == OpBuffer {
				key = "param " + in.Name() // one namespace with the weights: they are saved together
			}
			if prev, ok := names[key]; ok {
				bad(in, "%s %q already defined by %%%d", in.Op, in.Name(), prev.ID)
			}
			names[key] = in
		}
		defined[in] = true
	}
	losses := 0
	outNames := map[string]bool{}
	for _, o := range m.Outputs {
		if o.Value == nil || !defined[o.Value] {
			bad(nil, "output %s %q refers to a value not in the module", o.Kind, o.Name)
			continue
		}
		if outNames[o.Kind.String()+o.Name] {
			bad(nil, "output %s %q listed twice", o.Kind, o.Name)
		}
		outNames[o.Kind.String()+o.Name] = true
		if o.Value.Type.IsTuple() {
			bad(nil, "output %s %q is the tuple %s: extract its results", o.Kind, o.Name, o.Value.Type)
			continue
		}
		switch o.Kind {
		case OutLoss:
			losses++
			if o.Value.Type.DType != F32 || o.Value.Type.Rank() != 0 {
				bad(nil, "loss must be an f32 scalar, got %s", o.Value.Type)
			}
		case OutMetric:
			if o.Value.Type.Rank() != 0 || o.Value.Type.DType == Bool {
				bad(nil, "metric %q must be a numeric scalar, got %s", o.Name, o.Value.Type)
			}
		case OutValue:
		case OutGrad:
			p, ok := names["param "+o.Name]
			switch {
			case !ok || p.Op != OpParam:
				bad(nil, "grad %q names no param", o.Name)
			case !p.Type.Equal(o.Value.Type):
				bad(nil, "grad %q is %s but the param is %s", o.Name, o.Value.Type, p.Type)
			}
		case OutUpdate:
			b, ok := names["param "+o.Name]
			switch {
			case !ok || b.Op != OpBuffer:
				bad(nil, "update %q names no buffer", o.Name)
			case !b.Type.Equal(o.Value.Type):
				bad(nil, "update %q is %s but the buffer is %s", o.Name, o.Value.Type, b.Type)
			}
		default:
			bad(nil, "output %q has unknown kind %d", o.Name, o.Kind)
		}
	}
	if losses > 1 {
		bad(nil, "module has %d losses", losses)
	}
	if len(errs) == 0 {
		return nil
	}
	return &VerifyError{Module: m.Name, Errs: errs}
}

// VerifyInstr checks one instruction against its op's row: operand count,
// attributes and type. syms is the set of the module's symbols.
func VerifyInstr(in *Instr, syms map[string]bool) error {
	info := in.Op.Info()
	if info.Infer == nil {
		return fmt.Errorf("unknown op %s", in.Op)
	}
	if info.Args == Variadic {
		if len(in.Args) < info.MinArgs {
			return fmt.Errorf("takes at least %d operands, got %d", info.MinArgs, len(in.Args))
		}
	} else if len(in.Args) != info.Args {
		return fmt.Errorf("takes %d operands, got %d", info.Args, len(in.Args))
	}
	for i, a := range in.Args {
		if a == nil {
			return fmt.Errorf("operand %d is missing", i)
		}
	}
	if err := checkAttrs(info, in.Attrs); err != nil {
		return err
	}
	elems := []Type{in.Type}
	if in.Type.IsTuple() {
		elems = in.Type.Tuple
	}
	for _, et := range elems {
		for _, d := range et.Shape {
			for _, s := range d.Syms() {
				if !syms[s] {
					return fmt.Errorf("type %s mentions undeclared symbol %s", in.Type, s)
				}
			}
			if v, ok := d.IsConst(); ok && v < 0 {
				return fmt.Errorf("type %s has a negative dimension", in.Type)
			}
		}
		if et.DType == InvalidDType {
			return fmt.Errorf("result has no dtype")
		}
	}

	t, err := infer(in, syms)
	if err != nil {
		return err
	}
	if !t.Equal(in.Type) {
		return fmt.Errorf("result type is %s, but the operands give %s", in.Type, t)
	}
	return nil
}

func infer(in *Instr, syms map[string]bool) (t Type, err error) {
	info := in.Op.Info()
	if info.Given && in.Type.IsTuple() {
		return Type{}, fmt.Errorf("a declared type cannot be the tuple %s: only multi-result ops have one", in.Type)
	}
	args := make([]Type, len(in.Args))
	for i, a := range in.Args {
		if a.Type.IsTuple() && in.Op != OpExtract {
			return Type{}, fmt.Errorf("operand %d (%%%d) is the tuple %s: only extract takes one", i, a.ID, a.Type)
		}
		args[i] = a.Type
	}
	defer func() {
		// A type rule indexing past a malformed operand list is a bug in
		// the rule, but it must surface as a verifier error, not a crash.
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error in the type rule of %s: %v", in.Op, r)
		}
	}()
	return info.Infer(&InferCtx{Args: args, Attrs: in.Attrs, Given: in.Type, Syms: syms})
}

func checkAttrs(info *OpInfo, attrs Attrs) error {
	var errs []error
	known := map[string]bool{}
	for _, spec := range info.Attrs {
		known[spec.Name] = true
		a, ok := attrs[spec.Name]
		if !ok {
			if !spec.Optional {
				errs = append(errs, fmt.Errorf("missing attribute %s", spec.Name))
			}
			continue
		}
		if a.Kind != spec.Kind {
			errs = append(errs, fmt.Errorf("attribute %s is a %s, want a %s", spec.Name, a.Kind, spec.Kind))
			continue
		}
		if spec.Kind == AttrWord && !slices.Contains(spec.Words, a.Str) {
			errs = append(errs, fmt.Errorf("attribute %s = %s: want one of %v", spec.Name, a.Str, spec.Words))
		}
		if spec.Kind == AttrExpr && a.Expr == nil {
			errs = append(errs, fmt.Errorf("attribute %s has no expression", spec.Name))
		}
	}
	for _, name := range sortedKeys(attrs) {
		if !known[name] {
			errs = append(errs, fmt.Errorf("unknown attribute %s", name))
		}
	}
	return errors.Join(errs...)
}

// IsIdent reports whether s is an identifier of the text forms: an
// ASCII letter or underscore, then letters, digits and underscores.
func IsIdent(s string) bool { return isIdent(s) }

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		letter := r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		if !letter && (i == 0 || r < '0' || r > '9') {
			return false
		}
	}
	return true
}
