package gogen

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/attnc/attnc/ir"
)

// exprWriter renders an index expression (a mask or score) as a Go
// expression inside a closure whose parameters are b, h, q, k int and
// s float32. Ints are Go ints, floats float64, bools bool; symbols are the
// enclosing function's s_<name> variables; captured tensors are read with
// the bounds-checked helpers capF/capI/capB of the generated file.
type exprWriter struct {
	caps    []string // Go names of the captured tensors
	capType []ir.Type
	r       *renderer
	// subst gives the code of subexpressions already written elsewhere
	// (MaskRow's hoisted values and checked reads); nil for none.
	subst map[*ir.Expr]string
}

func (w *exprWriter) write(e *ir.Expr) (string, ir.ScalarKind, error) {
	k := e.ValueKind()
	if k == ir.KInvalid {
		return "", k, fmt.Errorf("expression %s was not type-checked", e)
	}
	if code, ok := w.subst[e]; ok {
		return code, k, nil
	}
	arg := func(i int) (string, ir.ScalarKind, error) { return w.write(e.Args[i]) }
	if k == ir.KFloat && e.Kind != ir.EFloat && constant(e) {
		// A float expression of literals is computed here, in float64 as
		// the reference does: Go would reject -1.0 / 0.0 written out (a
		// constant division by zero) and would lose the sign of -0.0.
		if v, err := e.Eval(nil, nil); err == nil {
			return w.float(v), k, nil
		}
	}
	switch e.Kind {
	case ir.EVar:
		switch e.Name {
		case "q", "k", "h", "b":
			return e.Name, k, nil
		case "s":
			return "float64(s)", k, nil
		}
		return symVar(e.Name), k, nil
	case ir.EInt:
		return "(" + strconv.FormatInt(e.Int, 10) + ")", k, nil
	case ir.EFloat:
		return w.float(e.Num), k, nil
	case ir.EBool:
		return strconv.FormatBool(e.Int != 0), k, nil
	case ir.ECapture:
		i := int(e.Int)
		var idx []string
		for j := range e.Args {
			s, _, err := arg(j)
			if err != nil {
				return "", k, err
			}
			idx = append(idx, s)
		}
		fn := map[ir.DType]string{ir.F32: "capF", ir.I32: "capI", ir.Bool: "capB"}[w.capType[i].DType]
		w.r.useHelper("cap")
		return fmt.Sprintf("%s(%s, %d, %s)", fn, w.caps[i], i, joinArgs(idx)), k, nil
	case ir.ENeg:
		a, ak, err := arg(0)
		return "(-" + convert(a, ak, k) + ")", k, err
	case ir.ENot:
		a, _, err := arg(0)
		return "(!" + a + ")", k, err
	case ir.ECall:
		var args []string
		var kinds []ir.ScalarKind
		for j := range e.Args {
			s, ak, err := arg(j)
			if err != nil {
				return "", k, err
			}
			args, kinds = append(args, s), append(kinds, ak)
		}
		sp, ok := goFuncs[e.Name]
		if !ok {
			return "", k, fmt.Errorf("no Go spelling for index function %s", e.Name)
		}
		tmpl := sp.float
		if k != ir.KFloat && sp.int != "" {
			tmpl = sp.int
		}
		for j := range args {
			args[j] = convert(args[j], kinds[j], k)
		}
		return w.spell(tmpl, sp.helper, args, k), k, nil
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
	a, b = convert(a, ak, join), convert(b, bk, join)
	switch e.Kind {
	case ir.EDiv:
		if k == ir.KInt {
			w.r.useHelper("floorDiv")
			return fmt.Sprintf("floorDiv(%s, %s)", a, b), k, nil
		}
		return "(" + a + " / " + b + ")", k, nil
	case ir.EMod:
		w.r.useHelper("floorMod")
		return fmt.Sprintf("floorMod(%s, %s)", a, b), k, nil
	}
	op, ok := goBinary[e.Kind]
	if !ok {
		return "", k, fmt.Errorf("cannot render %s", e)
	}
	return "(" + a + " " + op + " " + b + ")", k, nil
}

// A goFunc spells an index function (a row of ir.ExprFuncTable) in Go.
// The templates name the arguments $0, $1, … (each already converted to
// the call's kind where it is int and the call float, so min(q, 0.5)
// reads float64(q)) and the result's Go type $T.
type goFunc struct {
	float  string // the call when its kind is float (and bool, for where)
	int    string // the call when its kind is int; "" when float is right
	helper string // a helper of the generated file the int spelling calls
	iv     string // the runtime's interval function (rt.Iv…)
}

// goFuncs is the Go renderer's spelling of every index function.
var goFuncs = map[string]goFunc{
	"abs":     {float: "math.Abs($0)", int: "absInt($0)", helper: "absInt", iv: "IvAbs"},
	"clamp":   {float: "min(max($0, $1), $2)", iv: "IvClamp"},
	"cos":     {float: "math.Cos($0)", iv: "IvCos"},
	"exp":     {float: "math.Exp($0)", iv: "IvExp"},
	"floor":   {float: "math.Floor($0)", int: "$0", iv: "IvFloor"},
	"log":     {float: "math.Log($0)", iv: "IvLog"},
	"max":     {float: "max($0, $1)", iv: "IvMax"},
	"min":     {float: "min($0, $1)", iv: "IvMin"},
	"sigmoid": {float: "(1 / (1 + math.Exp(-$0)))", iv: "IvSigmoid"},
	"sin":     {float: "math.Sin($0)", iv: "IvSin"},
	"tanh":    {float: "math.Tanh($0)", iv: "IvTanh"},
	// Only the branch taken is evaluated: the other may read a capture
	// at an index that is valid only when it is taken.
	"where": {float: "func() $T { if $0 { return $1 }; return $2 }()", iv: "IvWhere"},
}

// spell fills a template of goFuncs with the arguments' code and the
// result's type, noting the imports and helpers it needs.
func (w *exprWriter) spell(tmpl, helper string, args []string, k ir.ScalarKind) string {
	var sb strings.Builder
	for i := 0; i < len(tmpl); i++ {
		c := tmpl[i]
		if c == '$' && i+1 < len(tmpl) {
			switch n := tmpl[i+1]; {
			case n == 'T':
				sb.WriteString(goType(k))
				i++
				continue
			case n >= '0' && n <= '9':
				sb.WriteString(args[n-'0'])
				i++
				continue
			}
		}
		sb.WriteByte(c)
	}
	if strings.Contains(tmpl, "math.") {
		w.r.useMath = true
	}
	if helper != "" && strings.Contains(tmpl, helper) {
		w.r.useHelper(helper)
	}
	return sb.String()
}

var goBinary = map[ir.ExprKind]string{
	ir.EAdd: "+", ir.ESub: "-", ir.EMul: "*",
	ir.ELt: "<", ir.ELe: "<=", ir.EGt: ">", ir.EGe: ">=", ir.EEq: "==", ir.ENe: "!=",
	ir.EAnd: "&&", ir.EOr: "||",
}

func (w *exprWriter) float(v float64) string {
	switch {
	case math.IsInf(v, 1):
		w.r.useMath = true
		return "math.Inf(1)"
	case math.IsInf(v, -1):
		w.r.useMath = true
		return "math.Inf(-1)"
	case math.IsNaN(v):
		w.r.useMath = true
		return "math.NaN()"
	case v == 0 && math.Signbit(v):
		w.r.useMath = true
		return "math.Copysign(0, -1)"
	}
	return "float64(" + strconv.FormatFloat(v, 'g', -1, 64) + ")"
}

// constant reports whether e reads no variable and no captured tensor.
func constant(e *ir.Expr) bool {
	ok := true
	e.Walk(func(x *ir.Expr) {
		if x.Kind == ir.EVar || x.Kind == ir.ECapture {
			ok = false
		}
	})
	return ok
}

// convert turns code of kind from into kind to (int → float only).
func convert(code string, from, to ir.ScalarKind) string {
	if from == ir.KInt && to == ir.KFloat {
		return "float64(" + code + ")"
	}
	return code
}

func goType(k ir.ScalarKind) string {
	switch k {
	case ir.KInt:
		return "int"
	case ir.KBool:
		return "bool"
	}
	return "float64"
}

func joinArgs(xs []string) string {
	s := ""
	for i, x := range xs {
		if i > 0 {
			s += ", "
		}
		s += x
	}
	return s
}

func symVar(name string) string { return "s_" + name }

// interval renders e as a Go expression of type rt.Iv: its interval over
// a tile whose query indices are the interval q and key indices k (b and
// h are points, symbols are points). Each operator maps to the runtime's
// interval function of the same rule as ir.Expr.Bounds. Only masks that
// read no captured tensor are rendered this way (the sparsity pass marks
// them).
func (w *exprWriter) interval(e *ir.Expr) (string, error) {
	args := make([]string, len(e.Args))
	for i, a := range e.Args {
		s, err := w.interval(a)
		if err != nil {
			return "", err
		}
		args[i] = s
	}
	call := func(fn string) string { return "rt." + fn + "(" + joinArgs(args) + ")" }
	switch e.Kind {
	case ir.EVar:
		switch e.Name {
		case "q", "k":
			return e.Name + "Iv", nil
		case "b", "h":
			return "rt.IvPoint(float64(" + e.Name + "))", nil
		}
		return "rt.IvPoint(float64(" + symVar(e.Name) + "))", nil
	case ir.EInt, ir.EBool:
		return fmt.Sprintf("rt.IvPoint(%d)", e.Int), nil
	case ir.EFloat:
		return "rt.IvPoint(" + w.float(e.Num) + ")", nil
	case ir.ENeg:
		return call("IvNeg"), nil
	case ir.ENot:
		return call("IvNot"), nil
	case ir.EDiv:
		return fmt.Sprintf("rt.IvDiv(%s, %s, %v)", args[0], args[1], e.ValueKind() == ir.KInt), nil
	case ir.ECapture:
		// The tensor's least and greatest element over the box of its
		// indices, read at run time (rt.IvCapture).
		if int(e.Int) >= len(w.caps) {
			return "", fmt.Errorf("capture $%d of %d", e.Int, len(w.caps))
		}
		return "rt.IvCapture(" + joinArgs(append([]string{w.caps[e.Int]}, args...)) + ")", nil
	case ir.ECall:
		sp, ok := goFuncs[e.Name]
		if !ok || sp.iv == "" {
			return "", fmt.Errorf("no interval rule for %s", e.Name)
		}
		return call(sp.iv), nil
	}
	fn, ok := map[ir.ExprKind]string{ir.EAdd: "IvAdd", ir.ESub: "IvSub", ir.EMul: "IvMul", ir.EMod: "IvMod",
		ir.ELt: "IvLt", ir.ELe: "IvLe", ir.EGt: "IvGt", ir.EGe: "IvGe", ir.EEq: "IvEq", ir.ENe: "IvNe",
		ir.EAnd: "IvAnd", ir.EOr: "IvOr"}[e.Kind]
	if !ok {
		return "", fmt.Errorf("no interval rule for %s", e)
	}
	return call(fn), nil
}
