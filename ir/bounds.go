package ir

import "math"

// An Interval is the closed range [Lo, Hi] of values an expression can
// take; ±Inf marks an unbounded side. A bool expression's interval is a
// subset of [0, 1]: [1, 1] always true, [0, 0] always false, [0, 1] either.
type Interval struct{ Lo, Hi float64 }

// Point returns the interval holding only v.
func Point(v float64) Interval { return IvPoint(v) }

// Unbounded is the interval of a value nothing is known about.
var Unbounded = ivUnbounded

// Verdicts for a bool interval.
func (iv Interval) AlwaysTrue() bool  { return iv.Lo == 1 && iv.Hi == 1 }
func (iv Interval) AlwaysFalse() bool { return iv.Lo == 0 && iv.Hi == 0 }

// Bounds returns an interval holding every value e takes when each
// variable ranges over its interval in vars (an absent variable is
// unbounded). It is sound, not always tight: q - k over q∈[0,3], k∈[0,3]
// gives [-3, 3] whatever the correlation. A captured f32 or bool tensor is
// unknown; a captured i32 tensor holds 32-bit integers.
func (e *Expr) Bounds(vars map[string]Interval) Interval {
	w := boundsWalk{vars: vars}
	return w.bounds(e)
}

// MaxExactInt is the largest integer an index expression may compute.
// Kernels compute integers in int64, while the reference (ir/eval) and the
// interval analysis compute them in float64, exact only up to 2^53: past
// it the two would disagree (and past 2^63 the kernels wrap), so an
// integer operation that can leave ±MaxExactInt is refused.
const MaxExactInt = 1<<53 - 1

// Overflow returns the first integer operation of e (innermost first,
// then left to right) whose operands or result can leave
// [-MaxExactInt, MaxExactInt] when each variable ranges over its interval
// in vars, with the interval of that result; nil if there is none. e must
// have been checked (Check), which says which operations are integer
// ones. An integer / or % is taken to have a non-zero divisor here: a
// zero divisor is an error of its own, at run time.
func (e *Expr) Overflow(vars map[string]Interval) (*Expr, Interval) {
	w := boundsWalk{vars: vars, checked: true}
	w.bounds(e)
	return w.overflow, w.overflowIv
}

// int32Range is the interval of a captured i32 tensor's elements.
var int32Range = Interval{math.MinInt32, math.MaxInt32}

// boundsWalk computes intervals bottom up. It is the one implementation of
// the interval rules: Bounds uses it plainly, Overflow with checked set.
type boundsWalk struct {
	vars map[string]Interval
	// checked makes integer / and % assume a non-zero divisor, and
	// records the first integer operation that can leave ±MaxExactInt.
	checked    bool
	overflow   *Expr
	overflowIv Interval
}

func (w *boundsWalk) bounds(e *Expr) Interval {
	// A NaN end (inf - inf, a nan literal) would make every comparison
	// with the interval false; widen it to the unbounded side instead.
	iv := w.rule(e)
	if math.IsNaN(iv.Lo) {
		iv.Lo = math.Inf(-1)
	}
	if math.IsNaN(iv.Hi) {
		iv.Hi = math.Inf(1)
	}
	return iv
}

func (w *boundsWalk) rule(e *Expr) Interval {
	switch e.Kind {
	case EVar:
		if iv, ok := w.vars[e.Name]; ok {
			return iv
		}
		return Unbounded
	case EInt, EBool:
		return Point(float64(e.Int))
	case EFloat:
		return Point(e.Num)
	case ECapture:
		for _, x := range e.Args {
			w.bounds(x) // for overflows in the indices
		}
		switch e.kind {
		case KBool:
			return ivUnknownBool
		case KInt:
			return int32Range
		}
		return Unbounded
	}
	a := make([]Interval, len(e.Args))
	for i, x := range e.Args {
		a[i] = w.bounds(x)
	}
	r := w.apply(e, a)
	if w.checked && w.overflow == nil && e.kind == KInt && isArith(e) {
		for _, iv := range append(a, r) {
			if !(iv.Lo >= -MaxExactInt && iv.Hi <= MaxExactInt) {
				w.overflow, w.overflowIv = e, r
				break
			}
		}
	}
	return r
}

// isArith reports whether e computes a new integer from its operands
// (rather than choosing one, as min and where do).
func isArith(e *Expr) bool {
	switch e.Kind {
	case ENeg, EAdd, ESub, EMul, EDiv, EMod:
		return true
	case ECall:
		f, ok := exprFuncs[e.Name]
		return ok && f.NewInt
	}
	return false
}

// apply is the interval rule of e's operator over its operands'
// intervals (interval.go's functions, the runtime's too), but for the
// integer / and % of Overflow's analysis, which takes the divisor to be
// non-zero.
func (w *boundsWalk) apply(e *Expr, a []Interval) Interval {
	switch e.Kind {
	case ENeg:
		return IvNeg(a[0])
	case ENot:
		return IvNot(a[0])
	case EAdd:
		return IvAdd(a[0], a[1])
	case ESub:
		return IvSub(a[0], a[1])
	case EMul:
		return IvMul(a[0], a[1])
	case EDiv:
		if w.checked && e.kind == KInt && a[1].Lo <= 0 && a[1].Hi >= 0 {
			// |⌊x/y⌋| <= |x| for an integer y != 0.
			return ivHull(a[0].Lo, a[0].Hi, -a[0].Lo, -a[0].Hi)
		}
		return IvDiv(a[0], a[1], e.kind == KInt)
	case EMod:
		if w.checked && a[1].Lo <= 0 && a[1].Hi >= 0 {
			// A floor modulo takes the divisor's sign and is smaller
			// in size: (y, 0] for y < 0, [0, y) for y > 0.
			return Interval{math.Min(0, a[1].Lo+1), math.Max(0, a[1].Hi-1)}
		}
		return IvMod(a[0], a[1])
	case ELt:
		return IvLt(a[0], a[1])
	case ELe:
		return IvLe(a[0], a[1])
	case EGt:
		return IvGt(a[0], a[1])
	case EGe:
		return IvGe(a[0], a[1])
	case EEq:
		return IvEq(a[0], a[1])
	case ENe:
		return IvNe(a[0], a[1])
	case EAnd:
		return IvAnd(a[0], a[1])
	case EOr:
		return IvOr(a[0], a[1])
	case ECall:
		if f, ok := exprFuncs[e.Name]; ok && len(a) == f.Arity {
			return f.Bounds(a)
		}
	}
	return Unbounded
}
