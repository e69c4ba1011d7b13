package ir

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// An Expr is an index expression: the mask or score modification of an
// attention op. It is a pure function of the index variables q (query
// position), k (key position), h (head), b (batch), the module's symbols,
// the raw score s (score expressions only) and captured tensors, which are
// extra operands of the attention op read at index expressions.
//
// Expressions stay symbolic so passes can analyse them: Bounds evaluates
// one over intervals of its variables, which is how the sparsity pass
// proves a (q-tile, k-tile) block empty or full.
//
// Integer / and % round toward negative infinity (Python's // and %), so
// (q - k) / 64 and (q - k) % w mean the same on both sides of the diagonal.
type Expr struct {
	Kind ExprKind
	Name string  // EVar: variable or symbol name; ECall: function name
	Int  int64   // EInt: value; ECapture: index among the captures
	Num  float64 // EFloat: value
	Args []*Expr // operands; ECapture: the index expressions

	kind ScalarKind // set by Check; Eval uses it for integer division
}

// ExprKind says what an Expr node is.
type ExprKind uint8

const (
	EInvalid ExprKind = iota
	EVar              // a variable: q, k, h, b, s, or a module symbol
	EInt              // an integer literal
	EFloat            // a float literal
	EBool             // true (Int=1) or false (Int=0)
	ECapture          // $i[args...]: captured tensor i read at the indices
	ENeg              // -a
	ENot              // !a
	EAdd              // a + b
	ESub              // a - b
	EMul              // a * b
	EDiv              // a / b (floor division on integers)
	EMod              // a % b (floor modulo on integers)
	ELt               // a < b
	ELe               // a <= b
	EGt               // a > b
	EGe               // a >= b
	EEq               // a == b
	ENe               // a != b
	EAnd              // a && b
	EOr               // a || b
	ECall             // Name(args...): a function of ExprFuncTable
)

var binaryExprOps = map[ExprKind]struct {
	sym  string
	prec int
}{
	EOr: {"||", 1}, EAnd: {"&&", 2},
	EEq: {"==", 3}, ENe: {"!=", 3}, ELt: {"<", 3}, ELe: {"<=", 3}, EGt: {">", 3}, EGe: {">=", 3},
	EAdd: {"+", 4}, ESub: {"-", 4},
	EMul: {"*", 5}, EDiv: {"/", 5}, EMod: {"%", 5},
}

// BinaryExprKind returns the kind of the binary operator sym ("+", "<=", …).
func BinaryExprKind(sym string) (ExprKind, bool) {
	for k, o := range binaryExprOps {
		if o.sym == sym {
			return k, true
		}
	}
	return EInvalid, false
}

// Expression constructors, for builders and tests.
func Var(name string) *Expr            { return &Expr{Kind: EVar, Name: name} }
func Int(v int64) *Expr                { return &Expr{Kind: EInt, Int: v} }
func Float(v float64) *Expr            { return &Expr{Kind: EFloat, Num: v} }
func Bin(k ExprKind, a, b *Expr) *Expr { return &Expr{Kind: k, Args: []*Expr{a, b}} }
func Call(name string, args ...*Expr) *Expr {
	return &Expr{Kind: ECall, Name: name, Args: args}
}
func Capture(i int, idx ...*Expr) *Expr { return &Expr{Kind: ECapture, Int: int64(i), Args: idx} }

// Equal reports whether e and f are the same tree.
func (e *Expr) Equal(f *Expr) bool {
	if e == nil || f == nil {
		return e == f
	}
	if e.Kind != f.Kind || e.Name != f.Name || e.Int != f.Int || len(e.Args) != len(f.Args) {
		return false
	}
	if e.Num != f.Num && !(math.IsNaN(e.Num) && math.IsNaN(f.Num)) {
		return false
	}
	for i := range e.Args {
		if !e.Args[i].Equal(f.Args[i]) {
			return false
		}
	}
	return true
}

// Walk calls fn on e and every node below it, parents first.
func (e *Expr) Walk(fn func(*Expr)) {
	if e == nil {
		return
	}
	fn(e)
	for _, a := range e.Args {
		a.Walk(fn)
	}
}

// String prints e with the fewest parentheses that keep its tree.
func (e *Expr) String() string {
	var sb strings.Builder
	e.write(&sb, 0)
	return sb.String()
}

func (e *Expr) write(sb *strings.Builder, outer int) {
	if e == nil {
		sb.WriteString("<nil>")
		return
	}
	switch e.Kind {
	case EVar:
		sb.WriteString(e.Name)
	case EInt:
		if e.Int < 0 && outer > 0 {
			fmt.Fprintf(sb, "(%d)", e.Int)
		} else {
			sb.WriteString(strconv.FormatInt(e.Int, 10))
		}
	case EFloat:
		s := FormatFloat(e.Num)
		if strings.HasPrefix(s, "-") && outer > 0 {
			s = "(" + s + ")"
		}
		sb.WriteString(s)
	case EBool:
		sb.WriteString(strconv.FormatBool(e.Int != 0))
	case ECapture:
		fmt.Fprintf(sb, "$%d[", e.Int)
		for i, a := range e.Args {
			if i > 0 {
				sb.WriteString(", ")
			}
			a.write(sb, 0)
		}
		sb.WriteString("]")
	case ENeg, ENot:
		op := "-"
		if e.Kind == ENot {
			op = "!"
		}
		if len(e.Args) != 1 {
			fmt.Fprintf(sb, "<bad expr %d>", e.Kind)
			return
		}
		sb.WriteString(op)
		// A negated number literal keeps parentheses: "-3" reads back as
		// the literal -3, so ENeg(3) prints as "-(3)".
		if a := e.Args[0]; e.Kind == ENeg && a != nil && (a.Kind == EInt || a.Kind == EFloat) {
			sb.WriteString("(")
			a.write(sb, 0)
			sb.WriteString(")")
		} else {
			a.write(sb, 6)
		}
	case ECall:
		sb.WriteString(e.Name + "(")
		for i, a := range e.Args {
			if i > 0 {
				sb.WriteString(", ")
			}
			a.write(sb, 0)
		}
		sb.WriteString(")")
	default:
		o, ok := binaryExprOps[e.Kind]
		if !ok || len(e.Args) != 2 {
			fmt.Fprintf(sb, "<bad expr %d>", e.Kind)
			return
		}
		if o.prec < outer {
			sb.WriteString("(")
		}
		e.Args[0].write(sb, o.prec)
		sb.WriteString(" " + o.sym + " ")
		// Binary operators are left-associative: the right operand needs
		// parentheses at equal precedence.
		e.Args[1].write(sb, o.prec+1)
		if o.prec < outer {
			sb.WriteString(")")
		}
	}
}

// FormatFloat prints v so that strconv.ParseFloat gives v back, always with
// a '.', 'e', "inf" or "nan" so it does not read as an integer.
func FormatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "inf"
	case math.IsInf(v, -1):
		return "-inf"
	case math.IsNaN(v):
		return "nan"
	}
	s := strconv.FormatFloat(v, 'g', -1, 64)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}

// ScalarKind is the type of an index expression: int, float or bool.
type ScalarKind uint8

const (
	KInvalid ScalarKind = iota
	KInt
	KFloat
	KBool
)

func (k ScalarKind) String() string {
	return [...]string{"invalid", "int", "float", "bool"}[k]
}

// ExprEnv describes what an expression may mention when it is checked.
type ExprEnv struct {
	Vars     map[string]ScalarKind // q, k, h, b, s and symbols
	Captures []Type                // types of the captured tensors
}

// Check returns the kind of e, or an error naming the first problem. It
// records each node's kind, which Eval needs to tell integer division
// from float division.
func (e *Expr) Check(env ExprEnv) (ScalarKind, error) {
	if e == nil {
		return KInvalid, fmt.Errorf("missing expression")
	}
	k, err := e.check(env)
	if err == nil {
		e.kind = k
	}
	return k, err
}

func (e *Expr) check(env ExprEnv) (ScalarKind, error) {
	arg := func(i int) (ScalarKind, error) { return e.Args[i].Check(env) }
	switch e.Kind {
	case EVar:
		k, ok := env.Vars[e.Name]
		if !ok {
			return KInvalid, fmt.Errorf("unknown variable %q in index expression", e.Name)
		}
		return k, nil
	case EInt:
		return KInt, nil
	case EFloat:
		return KFloat, nil
	case EBool:
		return KBool, nil
	case ECapture:
		if e.Int < 0 || int(e.Int) >= len(env.Captures) {
			return KInvalid, fmt.Errorf("capture $%d out of range (%d captured)", e.Int, len(env.Captures))
		}
		t := env.Captures[e.Int]
		if len(e.Args) != t.Rank() {
			return KInvalid, fmt.Errorf("captured tensor $%d has rank %d but is indexed with %d indices", e.Int, t.Rank(), len(e.Args))
		}
		for i, a := range e.Args {
			k, err := a.Check(env)
			if err != nil {
				return KInvalid, err
			}
			if k != KInt {
				return KInvalid, fmt.Errorf("index %d of $%d is %s, want int", i, e.Int, k)
			}
		}
		switch t.DType {
		case F32:
			return KFloat, nil
		case I32:
			return KInt, nil
		case Bool:
			return KBool, nil
		}
		return KInvalid, fmt.Errorf("captured tensor $%d has dtype %s", e.Int, t.DType)
	case ENeg:
		k, err := arg(0)
		if err == nil && k == KBool {
			err = fmt.Errorf("cannot negate a bool; use !")
		}
		return k, err
	case ENot:
		k, err := arg(0)
		if err == nil && k != KBool {
			err = fmt.Errorf("! needs a bool, got %s", k)
		}
		return KBool, err
	case ECall:
		f, ok := exprFuncs[e.Name]
		if !ok {
			return KInvalid, fmt.Errorf("unknown function %q in index expression", e.Name)
		}
		if len(e.Args) != f.Arity {
			return KInvalid, fmt.Errorf("%s takes %d arguments, got %d", e.Name, f.Arity, len(e.Args))
		}
		kinds := make([]ScalarKind, f.Arity)
		for i := range e.Args {
			k, err := arg(i)
			if err != nil {
				return KInvalid, err
			}
			kinds[i] = k
		}
		k, err := f.Kind(kinds)
		if err != nil {
			return KInvalid, fmt.Errorf("%s %v", e.Name, err)
		}
		return k, nil
	}
	o, ok := binaryExprOps[e.Kind]
	if !ok || len(e.Args) != 2 {
		return KInvalid, fmt.Errorf("malformed expression")
	}
	a, err := arg(0)
	if err != nil {
		return KInvalid, err
	}
	b, err := arg(1)
	if err != nil {
		return KInvalid, err
	}
	switch e.Kind {
	case EAnd, EOr:
		if a != KBool || b != KBool {
			return KInvalid, fmt.Errorf("%s needs bools, got %s and %s", o.sym, a, b)
		}
		return KBool, nil
	case EEq, ENe:
		if (a == KBool) != (b == KBool) {
			return KInvalid, fmt.Errorf("cannot compare %s with %s", a, b)
		}
		return KBool, nil
	case ELt, ELe, EGt, EGe:
		if _, err := numericJoin(o.sym, a, b); err != nil {
			return KInvalid, err
		}
		return KBool, nil
	case EMod:
		if a != KInt || b != KInt {
			return KInvalid, fmt.Errorf("%% needs ints, got %s and %s", a, b)
		}
		return KInt, nil
	}
	return numericJoin(o.sym, a, b)
}

func numericJoin(op string, a, b ScalarKind) (ScalarKind, error) {
	if a == KBool || b == KBool {
		return KInvalid, fmt.Errorf("%s needs numbers, got %s and %s", op, a, b)
	}
	if a == KFloat || b == KFloat {
		return KFloat, nil
	}
	return KInt, nil
}

func (e *Expr) readsCapture() bool {
	found := false
	e.Walk(func(x *Expr) { found = found || x.Kind == ECapture })
	return found
}

// Captures returns the indices of the captured tensors e reads.
func (e *Expr) Captures() []int {
	seen := map[int]bool{}
	var out []int
	e.Walk(func(x *Expr) {
		if x.Kind == ECapture && !seen[int(x.Int)] {
			seen[int(x.Int)] = true
			out = append(out, int(x.Int))
		}
	})
	return out
}

// Eval computes e at one point. vars binds variables (bools as 0/1);
// capture reads captured tensor i at integer indices. Integer results are
// exact in float64 up to 2^53.
func (e *Expr) Eval(vars map[string]float64, capture func(i int, idx []int) (float64, error)) (float64, error) {
	ev := func(i int) (float64, error) { return e.Args[i].Eval(vars, capture) }
	switch e.Kind {
	case EVar:
		v, ok := vars[e.Name]
		if !ok {
			return 0, fmt.Errorf("variable %s is not bound", e.Name)
		}
		return v, nil
	case EInt, EBool:
		return float64(e.Int), nil
	case EFloat:
		return e.Num, nil
	case ECapture:
		idx := make([]int, len(e.Args))
		for i := range e.Args {
			v, err := ev(i)
			if err != nil {
				return 0, err
			}
			idx[i] = int(v)
		}
		if capture == nil {
			return 0, fmt.Errorf("no captured tensors bound")
		}
		return capture(int(e.Int), idx)
	case EAnd, EOr:
		// && and || short-circuit and where evaluates only the branch it
		// takes, as in Go and C: the other side may read a captured
		// tensor at an index that is valid only when it is taken, as in
		// where(q >= k, $0[q - k], 0.0).
		if len(e.Args) == 2 {
			a, err := ev(0)
			if err != nil {
				return 0, err
			}
			if (a != 0) == (e.Kind == EOr) {
				return b2f(a != 0), nil
			}
			b, err := ev(1)
			return b2f(b != 0), err
		}
	case ECall:
		if f, ok := exprFuncs[e.Name]; ok && f.Chooses && len(e.Args) == 3 {
			c, err := ev(0)
			if err != nil {
				return 0, err
			}
			if c != 0 {
				return ev(1)
			}
			return ev(2)
		}
	}
	args := make([]float64, len(e.Args))
	for i := range e.Args {
		v, err := ev(i)
		if err != nil {
			return 0, err
		}
		args[i] = v
	}
	return applyExpr(e, args)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// applyExpr applies e's operator to evaluated operands. / floors when
// Check typed the node int.
func applyExpr(e *Expr, a []float64) (float64, error) {
	switch e.Kind {
	case ENeg:
		return -a[0], nil
	case ENot:
		return 1 - a[0], nil
	case EAdd:
		return a[0] + a[1], nil
	case ESub:
		return a[0] - a[1], nil
	case EMul:
		return a[0] * a[1], nil
	case EDiv:
		if e.kind == KInt {
			if a[1] == 0 {
				return 0, fmt.Errorf("integer division by zero in %s", e)
			}
			return math.Floor(a[0] / a[1]), nil
		}
		return a[0] / a[1], nil
	case EMod:
		if a[1] == 0 {
			return 0, fmt.Errorf("modulo by zero in %s", e)
		}
		m := math.Mod(a[0], a[1])
		if m != 0 && (m < 0) != (a[1] < 0) {
			m += a[1]
		}
		return m, nil
	case ELt:
		return b2f(a[0] < a[1]), nil
	case ELe:
		return b2f(a[0] <= a[1]), nil
	case EGt:
		return b2f(a[0] > a[1]), nil
	case EGe:
		return b2f(a[0] >= a[1]), nil
	case EEq:
		return b2f(a[0] == a[1]), nil
	case ENe:
		return b2f(a[0] != a[1]), nil
	case EAnd:
		return b2f(a[0] != 0 && a[1] != 0), nil
	case EOr:
		return b2f(a[0] != 0 || a[1] != 0), nil
	case ECall:
		if f, ok := exprFuncs[e.Name]; ok && len(a) == f.Arity {
			return f.Eval(a), nil
		}
	}
	return 0, fmt.Errorf("cannot evaluate %s", e)
}

// ValueKind returns the kind Check recorded for e (KInvalid if e was not
// checked): renderers need it to type the code they write.
func (e *Expr) ValueKind() ScalarKind { return e.kind }

// OperandKind is the kind a binary operator's operands meet at: float if
// either is float, bool if both are bool, else int. Renderers convert
// both operands to it before they apply the operator.
func OperandKind(a, b ScalarKind) ScalarKind {
	switch {
	case a == KFloat || b == KFloat:
		return KFloat
	case a == KBool && b == KBool:
		return KBool
	}
	return KInt
}
