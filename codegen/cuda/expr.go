package cuda

import (
	"fmt"
	"math"
	"strconv"

	"github.com/attnc/attnc/ir"
)

// cExpr renders index expressions as CUDA C inside a kernel: q, k, b and
// h are long long, the score s a float, a symbol the argument sym_NAME and
// a capture a read of Ci clamped into its dims (a capture is read only
// where a where() or the mask makes its index valid; the other positions'
// values are discarded). Integers are long long, floats float; integer /
// and % round toward -inf.
type cExpr struct {
	caps []ir.Type
	syms map[string]bool
}

func (w *cExpr) write(e *ir.Expr) (string, ir.ScalarKind, error) {
	k := e.ValueKind()
	// A constant subexpression is folded in IEEE arithmetic (-1.0 / 0.0
	// is -inf), which C compilers warn about when they fold it.
	if len(e.Args) > 0 && constantExpr(e) {
		if v, err := e.Eval(map[string]float64{}, nil); err == nil {
			return literal(v, k), k, nil
		}
	}
	arg := func(i int) (string, ir.ScalarKind, error) { return w.write(e.Args[i]) }
	toKind := func(s string, from, to ir.ScalarKind) string {
		if to == ir.KFloat && from != ir.KFloat {
			return "((float)(" + s + "))"
		}
		return s
	}
	switch e.Kind {
	case ir.EVar:
		switch e.Name {
		case "q", "k", "b", "h", "s":
			return e.Name, k, nil
		}
		w.syms[e.Name] = true
		return "sym_" + e.Name, k, nil
	case ir.EInt, ir.EFloat, ir.EBool:
		v := float64(e.Int)
		if e.Kind == ir.EFloat {
			v = e.Num
		}
		return literal(v, k), k, nil
	case ir.ECapture:
		ci := int(e.Int)
		if ci >= len(w.caps) {
			return "", k, fmt.Errorf("capture $%d of %d", ci, len(w.caps))
		}
		off := ""
		for d, x := range e.Args {
			s, _, err := w.write(x)
			if err != nil {
				return "", k, err
			}
			c := fmt.Sprintf("attnc_clamp(%s, C%d_n%d)", s, ci, d)
			if off == "" {
				off = c
			} else {
				off = fmt.Sprintf("(%s) * C%d_n%d + %s", off, ci, d, c)
			}
		}
		if off == "" {
			off = "0"
		}
		switch w.caps[ci].DType {
		case ir.Bool:
			return fmt.Sprintf("(C%d[%s] != 0)", ci, off), k, nil
		case ir.I32:
			return fmt.Sprintf("((long long)C%d[%s])", ci, off), k, nil
		}
		return fmt.Sprintf("C%d[%s]", ci, off), k, nil
	case ir.ENeg:
		s, sk, err := arg(0)
		return "(-" + toKind(s, sk, k) + ")", k, err
	case ir.ENot:
		s, _, err := arg(0)
		return "(!" + s + ")", k, err
	case ir.ECall:
		args := make([]string, len(e.Args))
		kinds := make([]ir.ScalarKind, len(e.Args))
		for i := range e.Args {
			s, sk, err := arg(i)
			if err != nil {
				return "", k, err
			}
			args[i], kinds[i] = s, sk
		}
		conv := func(i int) string { return toKind(args[i], kinds[i], k) }
		suffix := "f"
		if k != ir.KFloat {
			suffix = "i"
		}
		switch e.Name {
		case "where":
			// Only the branch taken is evaluated, as the language says.
			return fmt.Sprintf("(%s ? %s : %s)", args[0], conv(1), conv(2)), k, nil
		case "max", "min":
			return fmt.Sprintf("attnc_%s%s(%s, %s)", e.Name, suffix, conv(0), conv(1)), k, nil
		case "clamp":
			return fmt.Sprintf("attnc_min%s(attnc_max%s(%s, %s), %s)", suffix, suffix, conv(0), conv(1), conv(2)), k, nil
		case "abs":
			return fmt.Sprintf("attnc_abs%s(%s)", suffix, args[0]), k, nil
		case "floor":
			if k != ir.KFloat {
				return args[0], k, nil
			}
			return fmt.Sprintf("ATTNC_FLOOR(%s)", conv(0)), k, nil
		case "exp", "log", "sin", "cos", "tanh", "sigmoid":
			return fmt.Sprintf("attnc_%s(%s)", e.Name, conv(0)), k, nil
		}
		return "", k, fmt.Errorf("no CUDA spelling for the index function %s", e.Name)
	}
	a, ak, err := arg(0)
	if err != nil {
		return "", k, err
	}
	b, bk, err := arg(1)
	if err != nil {
		return "", k, err
	}
	join := ir.OperandKind(ak, bk)
	a, b = toKind(a, ak, join), toKind(b, bk, join)
	switch e.Kind {
	case ir.EDiv:
		if join == ir.KInt {
			return fmt.Sprintf("attnc_floordiv(%s, %s)", a, b), k, nil
		}
		return "(" + a + " / " + b + ")", k, nil
	case ir.EMod:
		if join == ir.KInt {
			return fmt.Sprintf("attnc_floormod(%s, %s)", a, b), k, nil
		}
		return fmt.Sprintf("attnc_ffloormod(%s, %s)", a, b), k, nil
	}
	op, ok := cBinary[e.Kind]
	if !ok {
		return "", k, fmt.Errorf("cannot render %s", e)
	}
	return "(" + a + " " + op + " " + b + ")", k, nil
}

var cBinary = map[ir.ExprKind]string{
	ir.EAdd: "+", ir.ESub: "-", ir.EMul: "*",
	ir.ELt: "<", ir.ELe: "<=", ir.EGt: ">", ir.EGe: ">=", ir.EEq: "==", ir.ENe: "!=",
	ir.EAnd: "&&", ir.EOr: "||",
}

// constantExpr reports whether e reads no variable, symbol or capture.
func constantExpr(e *ir.Expr) bool {
	c := true
	e.Walk(func(x *ir.Expr) {
		if x.Kind == ir.EVar || x.Kind == ir.ECapture {
			c = false
		}
	})
	return c
}

// literal writes v as a C constant of kind k.
func literal(v float64, k ir.ScalarKind) string {
	switch k {
	case ir.KInt:
		return strconv.FormatInt(int64(v), 10) + "LL"
	case ir.KBool:
		if v != 0 {
			return "true"
		}
		return "false"
	}
	switch {
	case math.IsInf(v, 1):
		return "ATTNC_INF"
	case math.IsInf(v, -1):
		return "(-ATTNC_INF)"
	case math.IsNaN(v):
		return "ATTNC_NAN"
	}
	s := strconv.FormatFloat(float64(float32(v)), 'g', -1, 32)
	if !containsAny(s, ".eE") {
		s += ".0"
	}
	return "(" + s + "f)"
}

func containsAny(s, chars string) bool {
	for _, c := range s {
		for _, d := range chars {
			if c == d {
				return true
			}
		}
	}
	return false
}
