package ir

import "fmt"

// An ExprSpelling writes the parts of an index expression in a target
// language; RenderExpr walks the tree and applies the language's rules
// that every target shares, so a renderer says only how things are
// spelled. Operands arrive rendered and already converted to the kind
// the part computes in.
type ExprSpelling interface {
	// Var spells a variable: q, k, h, b, s, or a module symbol.
	Var(name string, k ScalarKind) string
	// Literal spells a constant of kind k (a literal, or a subexpression
	// RenderExpr folded).
	Literal(v float64, k ScalarKind) string
	// ToFloat converts an int or bool operand to float.
	ToFloat(s string) string
	// Capture spells captured tensor i read at the indices; t is its type.
	Capture(i int, idx []string, k ScalarKind) (string, error)
	// Neg and Not spell -a and !a.
	Neg(a string) string
	Not(a string) string
	// Binary spells a op b, both of kind operand (OperandKind of the
	// two): integer / and % round toward -∞.
	Binary(op ExprKind, a, b string, operand ScalarKind) (string, error)
	// Call spells function name of ExprFuncTable with result kind k; every
	// argument but where's condition is converted to k.
	Call(name string, args []string, k ScalarKind) (string, error)
}

// RenderExpr renders e (checked) with sp, and returns its kind. A
// subexpression that reads no variable, symbol or capture is evaluated
// here, in IEEE arithmetic (-1.0 / 0.0 is -inf, where a target's constant
// folding might raise), and spelled as a literal.
func RenderExpr(e *Expr, sp ExprSpelling) (string, ScalarKind, error) {
	k := e.ValueKind()
	if len(e.Args) > 0 && !e.readsVar() {
		if v, err := e.Eval(map[string]float64{}, nil); err == nil {
			return sp.Literal(v, k), k, nil
		}
	}
	args := make([]string, len(e.Args))
	kinds := make([]ScalarKind, len(e.Args))
	for i, a := range e.Args {
		s, ak, err := RenderExpr(a, sp)
		if err != nil {
			return "", k, err
		}
		args[i], kinds[i] = s, ak
	}
	to := func(i int, kind ScalarKind) string {
		if kind == KFloat && kinds[i] != KFloat {
			return sp.ToFloat(args[i])
		}
		return args[i]
	}
	switch e.Kind {
	case EVar:
		return sp.Var(e.Name, k), k, nil
	case EInt, EBool:
		return sp.Literal(float64(e.Int), k), k, nil
	case EFloat:
		return sp.Literal(e.Num, k), k, nil
	case ECapture:
		s, err := sp.Capture(int(e.Int), args, k)
		return s, k, err
	case ENeg:
		return sp.Neg(to(0, k)), k, nil
	case ENot:
		return sp.Not(args[0]), k, nil
	case ECall:
		conv := make([]string, len(args))
		for i := range args {
			conv[i] = args[i]
			if !(e.Name == "where" && i == 0) {
				conv[i] = to(i, k)
			}
		}
		s, err := sp.Call(e.Name, conv, k)
		return s, k, err
	}
	if len(args) != 2 {
		return "", k, fmt.Errorf("cannot render %s", e)
	}
	join := OperandKind(kinds[0], kinds[1])
	s, err := sp.Binary(e.Kind, to(0, join), to(1, join), join)
	return s, k, err
}

// readsVar reports whether e reads a variable, a symbol or a capture.
func (e *Expr) readsVar() bool {
	reads := false
	e.Walk(func(x *Expr) {
		if x.Kind == EVar || x.Kind == ECapture {
			reads = true
		}
	})
	return reads
}
