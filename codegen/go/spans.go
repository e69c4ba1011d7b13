package gogen

import (
	"fmt"
	"strings"

	"github.com/attnc/attnc/ir"
)

// spans renders a mask as the body of AttnSpec.Rows: the keys it admits
// for one query as a union of at most two spans, built from the
// runtime's SpanBelow, SpanFrom, SpanAt, SpanNot, SpanIf, SpansAnd and
// SpansOr. It reports false, and the renderer writes MaskRow instead (see
// maskRow), unless the mask is provably such a union: comparisons of
// ±k + r with an expression, where r and every other operand reads only
// b, h, q, integer literals and symbols with +, -, * and the index
// functions that neither fail nor choose (min, max, clamp, abs, floor:
// nothing that can panic, so Rows may evaluate what the mask's && and ||
// would skip), joined by &&, || and ! into at most two spans.
func (w *exprWriter) spans(e *ir.Expr) (string, bool, error) {
	code, n, ok, err := w.spanSet(e, false)
	if err != nil || !ok || n > 2 {
		return "", false, err
	}
	return code, true, nil
}

// spanSet renders e (or !e when neg) as a KeySpans expression and
// returns how many spans it can need at most.
func (w *exprWriter) spanSet(e *ir.Expr, neg bool) (code string, n int, ok bool, err error) {
	if !spanSafe(e) {
		return "", 0, false, nil
	}
	if !readsK(e) {
		if e.ValueKind() != ir.KBool {
			return "", 0, false, nil
		}
		c, _, err := w.write(e)
		if neg {
			c = "!" + c
		}
		return "rt.SpanIf(" + c + ")", 1, err == nil, err
	}
	switch e.Kind {
	case ir.ENot:
		return w.spanSet(e.Args[0], !neg)
	case ir.EAnd, ir.EOr:
		a, na, ok, err := w.spanSet(e.Args[0], neg)
		if !ok || err != nil {
			return "", 0, ok, err
		}
		b, nb, ok, err := w.spanSet(e.Args[1], neg)
		if !ok || err != nil {
			return "", 0, ok, err
		}
		if (e.Kind == ir.EAnd) != neg { // ¬(a ∨ b) = ¬a ∧ ¬b
			// Intersecting unions of na and nb disjoint spans leaves at
			// most na + nb - 1: each span ends inside at most one gap.
			n = na + nb - 1
			code = fmt.Sprintf("rt.SpansAnd(%s, %s)", a, b)
		} else {
			n = na + nb
			code = fmt.Sprintf("rt.SpansOr(%s, %s)", a, b)
		}
		return code, n, n <= 2, nil
	case ir.ELt, ir.ELe, ir.EGt, ir.EGe, ir.EEq, ir.ENe:
		l, r := e.Args[0], e.Args[1]
		if l.ValueKind() != ir.KInt || r.ValueKind() != ir.KInt {
			return "", 0, false, nil
		}
		op := e.Kind
		if neg {
			op = negated[op]
		}
		if isAbsK(r) && !readsK(l) {
			l, r, op = r, l, mirrored[op]
		}
		if isAbsK(l) && !readsK(r) {
			return w.absSpans(l.Args[0], r, op)
		}
		// L op R is c·k + x op 0 with x = xl - xr.
		cl, xl, ok1, err := w.linearK(l)
		if err != nil {
			return "", 0, false, err
		}
		cr, xr, ok2, err := w.linearK(r)
		if err != nil || !ok1 || !ok2 {
			return "", 0, false, err
		}
		code, n, ok = spanAtom(cl-cr, linSub(xl, xr), op)
		return code, n, ok, nil
	}
	return "", 0, false, nil
}

// negated and mirrored map a comparison to its negation (a op b is
// !(a negated[op] b)) and to the one with its operands swapped (a op b is
// b mirrored[op] a).
var (
	negated  = map[ir.ExprKind]ir.ExprKind{ir.ELt: ir.EGe, ir.ELe: ir.EGt, ir.EGt: ir.ELe, ir.EGe: ir.ELt, ir.EEq: ir.ENe, ir.ENe: ir.EEq}
	mirrored = map[ir.ExprKind]ir.ExprKind{ir.ELt: ir.EGt, ir.ELe: ir.EGe, ir.EGt: ir.ELt, ir.EGe: ir.ELe, ir.EEq: ir.EEq, ir.ENe: ir.ENe}
)

// isAbsK reports whether e is abs of an expression that reads k.
func isAbsK(e *ir.Expr) bool {
	return e.Kind == ir.ECall && e.Name == "abs" && len(e.Args) == 1 && readsK(e.Args[0])
}

// absSpans renders abs(a) op r, r not reading k, as a op r and -a op r
// joined: both must hold for < and <=, either for >, >= and ==.
func (w *exprWriter) absSpans(a, r *ir.Expr, op ir.ExprKind) (string, int, bool, error) {
	c, xa, ok, err := w.linearK(a)
	if err != nil || !ok || op == ir.ENe {
		return "", 0, false, err
	}
	xr, _, err := w.write(r)
	if err != nil {
		return "", 0, false, err
	}
	pos, _, ok1 := spanAtom(c, linSub(xa, xr), op)          // a - r op 0
	neg, _, ok2 := spanAtom(-c, linSub(linNeg(xa), xr), op) // -a - r op 0
	if !ok1 || !ok2 {
		return "", 0, false, nil
	}
	if op == ir.ELt || op == ir.ELe {
		return fmt.Sprintf("rt.SpansAnd(%s, %s)", pos, neg), 1, true, nil
	}
	return fmt.Sprintf("rt.SpansOr(%s, %s)", pos, neg), 2, true, nil
}

// spanAtom renders c·k + x op 0 (x's code from linearK, "" for 0) as
// KeySpans, for c = ±1, and returns how many spans it has.
func spanAtom(c int, x string, op ir.ExprKind) (string, int, bool) {
	switch c {
	case 1: // k op -x
		x = linNeg(x)
	case -1: // -k + x op 0 is k op' x, the comparison mirrored
		op = mirrored[op]
	default:
		return "", 0, false
	}
	if x == "" {
		x = "0"
	}
	switch op {
	case ir.ELt:
		return "rt.SpanBelow(" + x + ")", 1, true
	case ir.ELe:
		return "rt.SpanBelow(" + x + " + 1)", 1, true
	case ir.EGt:
		return "rt.SpanFrom(" + x + " + 1)", 1, true
	case ir.EGe:
		return "rt.SpanFrom(" + x + ")", 1, true
	case ir.EEq:
		return "rt.SpanAt(" + x + ")", 1, true
	}
	return "rt.SpanNot(" + x + ")", 2, true
}

// linearK writes the integer expression e as c·k + r, r not reading k,
// and returns c and r's code; it reports false for other forms.
func (w *exprWriter) linearK(e *ir.Expr) (c int, r string, ok bool, err error) {
	if !readsK(e) {
		r, _, err = w.write(e)
		return 0, r, err == nil, err
	}
	switch e.Kind {
	case ir.EVar:
		return 1, "", true, nil // k
	case ir.ENeg:
		c, r, ok, err = w.linearK(e.Args[0])
		return -c, linSub("", r), ok, err
	case ir.EAdd, ir.ESub:
		ca, ra, ok1, err := w.linearK(e.Args[0])
		if err != nil {
			return 0, "", false, err
		}
		cb, rb, ok2, err := w.linearK(e.Args[1])
		if e.Kind == ir.ESub {
			return ca - cb, linSub(ra, rb), ok1 && ok2, err
		}
		return ca + cb, linAdd(ra, rb), ok1 && ok2, err
	}
	return 0, "", false, nil
}

// linAdd and linSub add and subtract the codes of integer expressions
// of linearK, where "" is 0.
func linAdd(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return "(" + a + " + " + b + ")"
}

func linSub(a, b string) string {
	switch {
	case b == "":
		return a
	case a == "":
		return linNeg(b)
	}
	return "(" + a + " - " + b + ")"
}

// linNeg negates the code of an integer expression: (-x) becomes x, the
// form in which linSub and the expression writer negate an operand
// (never (-x op y)).
func linNeg(x string) string {
	if x == "" {
		return ""
	}
	if strings.HasPrefix(x, "(-") && closingParen(x) == len(x)-1 {
		return x[2 : len(x)-1]
	}
	return "(-" + x + ")"
}

// closingParen returns the index of the parenthesis that closes x[0].
func closingParen(x string) int {
	depth := 0
	for i, c := range x {
		switch c {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// readsK reports whether e reads the key index k.
func readsK(e *ir.Expr) bool {
	found := false
	e.Walk(func(x *ir.Expr) { found = found || x.Kind == ir.EVar && x.Name == "k" })
	return found
}

// spanSafe reports whether e is an index-only expression that Rows may
// evaluate where the mask would not: integers and bools of b, h, q, k
// and symbols, with no capture, float, division, modulo or function that
// may fail or chooses (which could panic or differ from the mask's own
// short-circuited evaluation).
func spanSafe(e *ir.Expr) bool {
	safe := true
	e.Walk(func(x *ir.Expr) {
		switch x.Kind {
		case ir.ECapture, ir.EFloat, ir.EDiv, ir.EMod:
			safe = false
		case ir.EVar:
			safe = safe && x.Name != "s"
		case ir.ECall:
			f, ok := ir.LookupExprFunc(x.Name)
			safe = safe && ok && !f.Chooses && !f.MayFail
		}
		if k := x.ValueKind(); k != ir.KInt && k != ir.KBool {
			safe = false
		}
	})
	return safe
}
