package ir

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// An ExprFunc is one function of the index-expression language, a row of
// ExprFuncTable: everything the compiler knows about it. Type checking
// (Check), the reference evaluation (Eval), the interval analysis
// (Bounds, Overflow) and the symbolic derivative (Deriv) read the row;
// each renderer keeps only a spelling per function name (codegen/go:
// goFuncs) and decides nothing. Adding a function is adding a row here,
// a spelling to each renderer and, where a renderer classifies tiles at
// run time, the runtime's interval function; the coverage tests fail until
// all of them exist.
type ExprFunc struct {
	Name  string
	Arity int
	Doc   string // what it computes, one line (docs, diagnostics)

	// Kind types a call from its arguments' kinds, or says why it
	// cannot.
	Kind func(args []ScalarKind) (ScalarKind, error)
	// Eval computes a call at one point. Ints and bools come as exact
	// float64 values (Overflow keeps ints within 2^53), so one rule
	// serves ints and floats; a function whose int result differs from
	// its float one would take the result kind here.
	Eval func(a []float64) float64
	// Bounds is the interval rule: an interval holding Eval(a) for every
	// a with each a[i] in iv[i] (NaN aside: NaN is in no interval). It
	// must be sound, need not be tight, and gets no NaN ends (Bounds
	// widens them first).
	Bounds func(iv []Interval) Interval
	// Deriv is the derivative of the float call c given d[i], the
	// derivatives of its arguments (float expressions, zero for int and
	// bool ones), built with the simplifying constructors of deriv.go.
	Deriv func(c *Expr, d []*Expr) *Expr

	// Chooses marks where: it evaluates argument 0, then argument 1
	// where that holds and argument 2 where not, never both, so an
	// argument may read a capture at an index valid only when chosen.
	// Evaluators and renderers must not compute all arguments first.
	Chooses bool
	// NewInt marks a function that computes a new integer from integer
	// arguments (abs) rather than choosing one of them (min, where):
	// Overflow checks it like + and -.
	NewInt bool
	// MayFail marks a function whose evaluation can fail (an error in
	// the reference, a panic in a kernel). None can today: log of a
	// negative number is NaN, not an error. A span renderer (Rows)
	// evaluates operands a mask's && might skip, so it only takes
	// functions that neither fail nor choose.
	MayFail bool
}

// ExprFuncTable is the one list of index-expression functions, sorted by
// name.
var ExprFuncTable = []*ExprFunc{
	{
		Name: "abs", Arity: 1, Doc: "absolute value; int stays int",
		Kind:   sameKind,
		Eval:   func(a []float64) float64 { return math.Abs(a[0]) },
		Bounds: func(iv []Interval) Interval { return IvAbs(iv[0]) },
		Deriv: func(c *Expr, d []*Expr) *Expr {
			// +1 at 0: the piece x >= 0.
			return fmul(d[0], fwhere(cmp(EGe, c.Args[0], zero()), one(), Float(-1)))
		},
		NewInt: true,
	},
	{
		Name: "clamp", Arity: 3, Doc: "clamp(x, lo, hi) is min(max(x, lo), hi)",
		Kind:   sameKind,
		Eval:   func(a []float64) float64 { return math.Min(math.Max(a[0], a[1]), a[2]) },
		Bounds: func(iv []Interval) Interval { return IvClamp(iv[0], iv[1], iv[2]) },
		// The piece min(max(x, lo), hi) takes, as max and min choose
		// (the first argument at a tie); hi wins where lo > hi.
		Deriv: func(c *Expr, d []*Expr) *Expr {
			x, lo, hi := c.Args[0], c.Args[1], c.Args[2]
			m := &Expr{Kind: ECall, Name: "max", Args: []*Expr{x, lo}, kind: joinKind(x.kind, lo.kind)}
			return fwhere(cmp(ELe, m, hi), fwhere(cmp(EGe, x, lo), d[0], d[1]), d[2])
		},
	},
	{
		Name: "cos", Arity: 1, Doc: "cosine (radians); float result",
		Kind:   toFloat,
		Eval:   func(a []float64) float64 { return math.Cos(a[0]) },
		Bounds: func(iv []Interval) Interval { return IvCos(iv[0]) },
		Deriv: func(c *Expr, d []*Expr) *Expr {
			return fmul(d[0], fneg(fcall("sin", c.Args[0])))
		},
	},
	{
		Name: "exp", Arity: 1, Doc: "e^x; float result",
		Kind:   toFloat,
		Eval:   func(a []float64) float64 { return math.Exp(a[0]) },
		Bounds: func(iv []Interval) Interval { return IvExp(iv[0]) },
		Deriv:  func(c *Expr, d []*Expr) *Expr { return fmul(d[0], c) },
	},
	{
		Name: "floor", Arity: 1, Doc: "the largest integer ≤ x; int stays int, float stays float",
		Kind:   sameKind,
		Eval:   func(a []float64) float64 { return math.Floor(a[0]) },
		Bounds: func(iv []Interval) Interval { return IvFloor(iv[0]) },
		// Piecewise constant: 0, as for % and comparisons.
		Deriv: func(c *Expr, d []*Expr) *Expr { return zero() },
	},
	{
		Name: "log", Arity: 1, Doc: "natural logarithm; float result (-inf at 0, NaN below)",
		Kind:   toFloat,
		Eval:   func(a []float64) float64 { return math.Log(a[0]) },
		Bounds: func(iv []Interval) Interval { return IvLog(iv[0]) },
		Deriv:  func(c *Expr, d []*Expr) *Expr { return fdiv(d[0], c.Args[0]) },
	},
	{
		Name: "max", Arity: 2, Doc: "the larger of two numbers",
		Kind:   sameKind,
		Eval:   func(a []float64) float64 { return math.Max(a[0], a[1]) },
		Bounds: func(iv []Interval) Interval { return IvMax(iv[0], iv[1]) },
		Deriv:  func(c *Expr, d []*Expr) *Expr { return fwhere(cmp(EGe, c.Args[0], c.Args[1]), d[0], d[1]) },
	},
	{
		Name: "min", Arity: 2, Doc: "the smaller of two numbers",
		Kind:   sameKind,
		Eval:   func(a []float64) float64 { return math.Min(a[0], a[1]) },
		Bounds: func(iv []Interval) Interval { return IvMin(iv[0], iv[1]) },
		Deriv:  func(c *Expr, d []*Expr) *Expr { return fwhere(cmp(ELe, c.Args[0], c.Args[1]), d[0], d[1]) },
	},
	{
		Name: "sigmoid", Arity: 1, Doc: "1 / (1 + e^-x); float result",
		Kind:   toFloat,
		Eval:   func(a []float64) float64 { return sigmoid(a[0]) },
		Bounds: func(iv []Interval) Interval { return IvSigmoid(iv[0]) },
		Deriv: func(c *Expr, d []*Expr) *Expr {
			return fmul(d[0], fmul(c, fadd(one(), fneg(c))))
		},
	},
	{
		Name: "sin", Arity: 1, Doc: "sine (radians); float result",
		Kind:   toFloat,
		Eval:   func(a []float64) float64 { return math.Sin(a[0]) },
		Bounds: func(iv []Interval) Interval { return IvSin(iv[0]) },
		Deriv:  func(c *Expr, d []*Expr) *Expr { return fmul(d[0], fcall("cos", c.Args[0])) },
	},
	{
		Name: "tanh", Arity: 1, Doc: "hyperbolic tangent; float result",
		Kind:   toFloat,
		Eval:   func(a []float64) float64 { return math.Tanh(a[0]) },
		Bounds: func(iv []Interval) Interval { return IvTanh(iv[0]) },
		Deriv: func(c *Expr, d []*Expr) *Expr {
			return fmul(d[0], fadd(one(), fneg(fmul(c, c))))
		},
	},
	{
		Name: "where", Arity: 3, Doc: "where(c, a, b) is a where c holds, else b; only the chosen side is evaluated",
		Kind: whereKind,
		Eval: func(a []float64) float64 {
			if a[0] != 0 {
				return a[1]
			}
			return a[2]
		},
		Bounds:  func(iv []Interval) Interval { return IvWhere(iv[0], iv[1], iv[2]) },
		Deriv:   func(c *Expr, d []*Expr) *Expr { return fwhere(c.Args[0], d[1], d[2]) },
		Chooses: true,
	},
}

// exprFuncs indexes ExprFuncTable by name.
var exprFuncs = func() map[string]*ExprFunc {
	m := map[string]*ExprFunc{}
	for _, f := range ExprFuncTable {
		m[f.Name] = f
	}
	return m
}()

// ExprFuncs maps each index-expression function to its arity: what a
// parser needs.
var ExprFuncs = func() map[string]int {
	m := map[string]int{}
	for _, f := range ExprFuncTable {
		m[f.Name] = f.Arity
	}
	return m
}()

// LookupExprFunc returns the row of the function called name.
func LookupExprFunc(name string) (*ExprFunc, bool) {
	f, ok := exprFuncs[name]
	return f, ok
}

// ExprFuncNames returns the functions' names, sorted.
func ExprFuncNames() []string {
	out := make([]string, 0, len(ExprFuncTable))
	for _, f := range ExprFuncTable {
		out = append(out, f.Name)
	}
	sort.Strings(out)
	return out
}

// Kind rules.

// sameKind: numbers; int if all are int, else float.
func sameKind(args []ScalarKind) (ScalarKind, error) {
	k := KInt
	for _, a := range args {
		switch a {
		case KBool:
			names := make([]string, len(args))
			for i, a := range args {
				names[i] = a.String()
			}
			return KInvalid, fmt.Errorf("needs numbers, got %s", strings.Join(names, " and "))
		case KFloat:
			k = KFloat
		}
	}
	return k, nil
}

// toFloat: a number in, a float out.
func toFloat(args []ScalarKind) (ScalarKind, error) {
	if args[0] == KBool {
		return KInvalid, fmt.Errorf("of a bool")
	}
	return KFloat, nil
}

// whereKind: a bool condition and two numbers (int if both are int), or
// two bools.
func whereKind(args []ScalarKind) (ScalarKind, error) {
	if args[0] != KBool {
		return KInvalid, fmt.Errorf("condition is %s, want bool", args[0])
	}
	if args[1] == KBool && args[2] == KBool {
		return KBool, nil // choosing between conditions
	}
	return sameKind(args[1:])
}

// joinKind is the kind of a number made of an a and a b.
func joinKind(a, b ScalarKind) ScalarKind {
	if a == KFloat || b == KFloat {
		return KFloat
	}
	return KInt
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
