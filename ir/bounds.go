package ir

import "math"

// An Interval is the closed range [Lo, Hi] of values an expression can
// take; ±Inf marks an unbounded side. A bool expression's interval is a
// subset of [0, 1]: [1, 1] always true, [0, 0] always false, [0, 1] either.
type Interval struct{ Lo, Hi float64 }

// Point returns the interval holding only v.
func Point(v float64) Interval { return Interval{v, v} }

// Unbounded is the interval of a value nothing is known about.
var Unbounded = Interval{math.Inf(-1), math.Inf(1)}

// Verdicts for a bool interval.
func (iv Interval) AlwaysTrue() bool  { return iv.Lo == 1 && iv.Hi == 1 }
func (iv Interval) AlwaysFalse() bool { return iv.Lo == 0 && iv.Hi == 0 }

var unknownBool = Interval{0, 1}

// Bounds returns an interval holding every value e takes when each
// variable ranges over its interval in vars (an absent variable is
// unbounded). It is sound, not always tight: q - k over q∈[0,3], k∈[0,3]
// gives [-3, 3] whatever the correlation. Captured tensors are unknown.
func (e *Expr) Bounds(vars map[string]Interval) Interval {
	// A NaN end (inf - inf, a nan literal) would make every comparison
	// with the interval false; widen it to the unbounded side instead.
	iv := e.bounds(vars)
	if math.IsNaN(iv.Lo) {
		iv.Lo = math.Inf(-1)
	}
	if math.IsNaN(iv.Hi) {
		iv.Hi = math.Inf(1)
	}
	return iv
}

func (e *Expr) bounds(vars map[string]Interval) Interval {
	switch e.Kind {
	case EVar:
		if iv, ok := vars[e.Name]; ok {
			return iv
		}
		return Unbounded
	case EInt, EBool:
		return Point(float64(e.Int))
	case EFloat:
		return Point(e.Num)
	case ECapture:
		if e.kind == KBool {
			return unknownBool
		}
		return Unbounded
	}
	a := make([]Interval, len(e.Args))
	for i, x := range e.Args {
		a[i] = x.Bounds(vars)
	}
	switch e.Kind {
	case ENeg:
		return Interval{-a[0].Hi, -a[0].Lo}
	case ENot:
		return Interval{1 - a[0].Hi, 1 - a[0].Lo}
	case EAdd:
		return Interval{a[0].Lo + a[1].Lo, a[0].Hi + a[1].Hi}
	case ESub:
		return Interval{a[0].Lo - a[1].Hi, a[0].Hi - a[1].Lo}
	case EMul:
		return hull(mulInf(a[0].Lo, a[1].Lo), mulInf(a[0].Lo, a[1].Hi), mulInf(a[0].Hi, a[1].Lo), mulInf(a[0].Hi, a[1].Hi))
	case EDiv:
		if a[1].Lo <= 0 && a[1].Hi >= 0 {
			return Unbounded
		}
		r := hull(a[0].Lo/a[1].Lo, a[0].Lo/a[1].Hi, a[0].Hi/a[1].Lo, a[0].Hi/a[1].Hi)
		if e.kind == KInt {
			r = Interval{math.Floor(r.Lo), math.Floor(r.Hi)}
		}
		return r
	case EMod:
		// Exact when the divisor is a positive constant and the dividend
		// stays inside one period; otherwise [0, c-1].
		if a[1].Lo == a[1].Hi && a[1].Lo > 0 {
			c := a[1].Lo
			if !math.IsInf(a[0].Lo, 0) && !math.IsInf(a[0].Hi, 0) && math.Floor(a[0].Lo/c) == math.Floor(a[0].Hi/c) {
				base := math.Floor(a[0].Lo/c) * c
				return Interval{a[0].Lo - base, a[0].Hi - base}
			}
			return Interval{0, c - 1}
		}
		if a[1].Lo > 0 {
			return Interval{0, a[1].Hi - 1}
		}
		return Unbounded
	case ELt:
		return compare(a[0].Hi < a[1].Lo, a[0].Lo >= a[1].Hi)
	case ELe:
		return compare(a[0].Hi <= a[1].Lo, a[0].Lo > a[1].Hi)
	case EGt:
		return compare(a[0].Lo > a[1].Hi, a[0].Hi <= a[1].Lo)
	case EGe:
		return compare(a[0].Lo >= a[1].Hi, a[0].Hi < a[1].Lo)
	case EEq:
		return compare(a[0].Lo == a[0].Hi && a[1].Lo == a[1].Hi && a[0].Lo == a[1].Lo,
			a[0].Hi < a[1].Lo || a[1].Hi < a[0].Lo)
	case ENe:
		return compare(a[0].Hi < a[1].Lo || a[1].Hi < a[0].Lo,
			a[0].Lo == a[0].Hi && a[1].Lo == a[1].Hi && a[0].Lo == a[1].Lo)
	case EAnd:
		return Interval{math.Min(a[0].Lo, a[1].Lo), math.Min(a[0].Hi, a[1].Hi)}
	case EOr:
		return Interval{math.Max(a[0].Lo, a[1].Lo), math.Max(a[0].Hi, a[1].Hi)}
	case ECall:
		switch e.Name {
		case "clamp":
			return Interval{math.Min(math.Max(a[0].Lo, a[1].Lo), a[2].Lo), math.Min(math.Max(a[0].Hi, a[1].Hi), a[2].Hi)}
		case "min":
			return Interval{math.Min(a[0].Lo, a[1].Lo), math.Min(a[0].Hi, a[1].Hi)}
		case "max":
			return Interval{math.Max(a[0].Lo, a[1].Lo), math.Max(a[0].Hi, a[1].Hi)}
		case "abs":
			switch {
			case a[0].Lo >= 0:
				return a[0]
			case a[0].Hi <= 0:
				return Interval{-a[0].Hi, -a[0].Lo}
			}
			return Interval{0, math.Max(-a[0].Lo, a[0].Hi)}
		case "exp":
			return Interval{math.Exp(a[0].Lo), math.Exp(a[0].Hi)}
		case "log":
			lo := math.Inf(-1)
			if a[0].Lo > 0 {
				lo = math.Log(a[0].Lo)
			}
			return Interval{lo, math.Log(math.Max(a[0].Hi, 0))}
		case "tanh":
			return Interval{math.Tanh(a[0].Lo), math.Tanh(a[0].Hi)}
		case "sigmoid":
			return Interval{1 / (1 + math.Exp(-a[0].Lo)), 1 / (1 + math.Exp(-a[0].Hi))}
		case "where":
			switch {
			case a[0].AlwaysTrue():
				return a[1]
			case a[0].AlwaysFalse():
				return a[2]
			}
			return hull(a[1].Lo, a[1].Hi, a[2].Lo, a[2].Hi)
		}
	}
	return Unbounded
}

func compare(always, never bool) Interval {
	switch {
	case always:
		return Point(1)
	case never:
		return Point(0)
	}
	return unknownBool
}

func hull(vs ...float64) Interval {
	iv := Interval{math.Inf(1), math.Inf(-1)}
	for _, v := range vs {
		if math.IsNaN(v) {
			return Unbounded
		}
		iv.Lo = math.Min(iv.Lo, v)
		iv.Hi = math.Max(iv.Hi, v)
	}
	return iv
}

// mulInf multiplies with 0·∞ = 0, the right convention for bounds.
func mulInf(a, b float64) float64 {
	if a == 0 || b == 0 {
		return 0
	}
	return a * b
}
