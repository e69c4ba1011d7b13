package cuda

import (
	"fmt"
	"math"
	"strconv"
	"strings"

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

func (w *cExpr) write(e *ir.Expr) (string, ir.ScalarKind, error) { return ir.RenderExpr(e, w) }

func (w *cExpr) Var(name string, k ir.ScalarKind) string {
	switch name {
	case "q", "k", "b", "h", "s":
		return name
	}
	w.syms[name] = true
	return "sym_" + name
}

func (w *cExpr) Literal(v float64, k ir.ScalarKind) string { return literal(v, k) }

func (w *cExpr) ToFloat(s string) string { return "((float)(" + s + "))" }

// Capture reads Ci at the indices, each clamped into its dims (Ci_n0, …).
func (w *cExpr) Capture(ci int, idx []string, k ir.ScalarKind) (string, error) {
	if ci >= len(w.caps) {
		return "", fmt.Errorf("capture $%d of %d", ci, len(w.caps))
	}
	off := "0"
	for d, s := range idx {
		c := fmt.Sprintf("attnc_clamp(%s, C%d_n%d)", s, ci, d)
		if d == 0 {
			off = c
		} else {
			off = fmt.Sprintf("(%s) * C%d_n%d + %s", off, ci, d, c)
		}
	}
	switch w.caps[ci].DType {
	case ir.Bool:
		return fmt.Sprintf("(C%d[%s] != 0)", ci, off), nil
	case ir.I32:
		return fmt.Sprintf("((long long)C%d[%s])", ci, off), nil
	}
	return fmt.Sprintf("C%d[%s]", ci, off), nil
}

func (w *cExpr) Neg(a string) string { return "(-" + a + ")" }
func (w *cExpr) Not(a string) string { return "(!" + a + ")" }

func (w *cExpr) Binary(op ir.ExprKind, a, b string, kind ir.ScalarKind) (string, error) {
	switch op {
	case ir.EDiv:
		if kind == ir.KInt {
			return fmt.Sprintf("attnc_floordiv(%s, %s)", a, b), nil
		}
		return "(" + a + " / " + b + ")", nil
	case ir.EMod:
		if kind == ir.KInt {
			return fmt.Sprintf("attnc_floormod(%s, %s)", a, b), nil
		}
		return fmt.Sprintf("attnc_ffloormod(%s, %s)", a, b), nil
	}
	sym, ok := cBinary[op]
	if !ok {
		return "", fmt.Errorf("no C operator for %v", op)
	}
	return "(" + a + " " + sym + " " + b + ")", nil
}

func (w *cExpr) Call(name string, a []string, k ir.ScalarKind) (string, error) {
	suffix := "f"
	if k != ir.KFloat {
		suffix = "i"
	}
	switch name {
	case "where":
		// Only the branch taken is evaluated, as the language says.
		return fmt.Sprintf("(%s ? %s : %s)", a[0], a[1], a[2]), nil
	case "max", "min":
		return fmt.Sprintf("attnc_%s%s(%s, %s)", name, suffix, a[0], a[1]), nil
	case "clamp":
		return fmt.Sprintf("attnc_min%s(attnc_max%s(%s, %s), %s)", suffix, suffix, a[0], a[1], a[2]), nil
	case "abs":
		return fmt.Sprintf("attnc_abs%s(%s)", suffix, a[0]), nil
	case "floor":
		if k != ir.KFloat {
			return a[0], nil
		}
		return fmt.Sprintf("ATTNC_FLOOR(%s)", a[0]), nil
	case "exp", "log", "sin", "cos", "tanh", "sigmoid":
		return fmt.Sprintf("attnc_%s(%s)", name, a[0]), nil
	}
	return "", fmt.Errorf("no CUDA spelling for the index function %s", name)
}

var cBinary = map[ir.ExprKind]string{
	ir.EAdd: "+", ir.ESub: "-", ir.EMul: "*",
	ir.ELt: "<", ir.ELe: "<=", ir.EGt: ">", ir.EGe: ">=", ir.EEq: "==", ir.ENe: "!=",
	ir.EAnd: "&&", ir.EOr: "||",
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
	if !strings.ContainsAny(s, ".eE") {
		s += ".0"
	}
	return "(" + s + "f)"
}
