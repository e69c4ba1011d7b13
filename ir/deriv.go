package ir

// Deriv returns the derivative of e with respect to the leaf wrt (the
// variable s, or one ECapture node of e), as an expression. e must have
// been checked (Check records the kinds Deriv relies on: an int or bool
// subexpression is piecewise constant and has derivative 0). The result
// is a float expression, simplified only where that is free (0 + x, 1·x).
//
// Piecewise functions take the derivative of the piece in force: min, max
// and clamp choose by the same comparison they compute, abs uses +1 at 0.
func (e *Expr) Deriv(wrt *Expr) *Expr {
	if e == wrt {
		return one()
	}
	if e.kind != KFloat {
		return zero()
	}
	d := func(i int) *Expr { return e.Args[i].Deriv(wrt) }
	switch e.Kind {
	case ENeg:
		return fneg(d(0))
	case EAdd:
		return fadd(d(0), d(1))
	case ESub:
		return fadd(d(0), fneg(d(1)))
	case EMul:
		return fadd(fmul(d(0), e.Args[1]), fmul(e.Args[0], d(1)))
	case EDiv:
		a, b := e.Args[0], e.Args[1]
		num := fadd(fmul(d(0), b), fneg(fmul(a, d(1))))
		if isZeroLit(num) {
			return zero()
		}
		return fexpr(EDiv, num, fmul(b, b))
	case ECall:
		if f, ok := exprFuncs[e.Name]; ok && len(e.Args) == f.Arity {
			ds := make([]*Expr, len(e.Args))
			for i := range ds {
				ds[i] = d(i)
			}
			return f.Deriv(e, ds)
		}
	}
	// Variables, literals, captures other than wrt, and the piecewise
	// constant operators (%, comparisons, logic) have derivative 0.
	return zero()
}

func zero() *Expr { return &Expr{Kind: EFloat, Num: 0, kind: KFloat} }
func one() *Expr  { return &Expr{Kind: EFloat, Num: 1, kind: KFloat} }

func isZeroLit(e *Expr) bool { return e.Kind == EFloat && e.Num == 0 }
func isOneLit(e *Expr) bool  { return e.Kind == EFloat && e.Num == 1 }

func fexpr(k ExprKind, args ...*Expr) *Expr { return &Expr{Kind: k, Args: args, kind: KFloat} }

// asFloat makes an int operand usable in float arithmetic without
// changing its value: 1.0·x is float whatever x is.
func asFloat(x *Expr) *Expr {
	if x.kind == KFloat {
		return x
	}
	return fexpr(EMul, one(), x)
}

func fneg(a *Expr) *Expr {
	if isZeroLit(a) {
		return a
	}
	return fexpr(ENeg, a)
}

func fadd(a, b *Expr) *Expr {
	switch {
	case isZeroLit(a):
		return b
	case isZeroLit(b):
		return a
	}
	return fexpr(EAdd, a, b)
}

func fmul(a, b *Expr) *Expr {
	switch {
	case isZeroLit(a) || isZeroLit(b):
		return zero()
	case isOneLit(a):
		return asFloat(b)
	case isOneLit(b):
		return asFloat(a)
	}
	return fexpr(EMul, asFloat(a), asFloat(b))
}

func fdiv(a, b *Expr) *Expr {
	if isZeroLit(a) {
		return a
	}
	return fexpr(EDiv, a, asFloat(b))
}

func fwhere(c, a, b *Expr) *Expr {
	if isZeroLit(a) && isZeroLit(b) {
		return zero()
	}
	return &Expr{Kind: ECall, Name: "where", Args: []*Expr{c, asFloat(a), asFloat(b)}, kind: KFloat}
}

// fcall is a float call of the function name.
func fcall(name string, args ...*Expr) *Expr {
	for i, a := range args {
		args[i] = asFloat(a)
	}
	return &Expr{Kind: ECall, Name: name, Args: args, kind: KFloat}
}

func cmp(k ExprKind, a, b *Expr) *Expr { return &Expr{Kind: k, Args: []*Expr{a, b}, kind: KBool} }

// CaptureReads returns the ECapture nodes of e that read capture i, in
// tree order: a score that reads a bias twice gets a gradient from each.
func (e *Expr) CaptureReads(i int) []*Expr {
	var out []*Expr
	e.Walk(func(x *Expr) {
		if x.Kind == ECapture && int(x.Int) == i {
			out = append(out, x)
		}
	})
	return out
}

// DerivVar is ∂e/∂name for a variable (s in a score): the sum of the
// derivatives with respect to each of its occurrences.
func (e *Expr) DerivVar(name string) *Expr {
	sum := zero()
	e.Walk(func(x *Expr) {
		if x.Kind == EVar && x.Name == name {
			sum = fadd(sum, e.Deriv(x))
		}
	})
	return sum
}
