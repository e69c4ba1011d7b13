package ir

import "math"

// The interval rules of index expressions: one function per operator
// and function (ExprFuncTable's rows name theirs), over closed intervals
// [Lo, Hi] with ±Inf for an unbounded side and bools as sub-intervals of
// [0, 1]. This file is their one implementation. The compiler's analysis
// (Expr.Bounds, Expr.Overflow) calls them, and the runtime, which
// classifies tiles of (query, key) pairs while a kernel runs and imports
// nothing of the compiler, gets a copy generated from this file
// (runtime/interval_rules.go, with the interval type renamed; go test
// ./runtime -run TestIntervalRulesAreIRs -update writes it, and that
// test fails while the two differ). So this file may use only the
// standard library and the interval type.
//
// Every rule is sound (each value the operation can take lies inside)
// and need not be tight. A divisor interval holding 0 makes IvDiv and
// IvMod claim nothing (unbounded).

// IvPoint is the interval holding only v.
func IvPoint(v float64) Interval { return Interval{v, v} }

var (
	ivUnbounded   = Interval{math.Inf(-1), math.Inf(1)}
	ivUnknownBool = Interval{0, 1}
)

func IvNeg(a Interval) Interval    { return Interval{-a.Hi, -a.Lo} }
func IvNot(a Interval) Interval    { return Interval{1 - a.Hi, 1 - a.Lo} }
func IvAdd(a, b Interval) Interval { return Interval{a.Lo + b.Lo, a.Hi + b.Hi} }
func IvSub(a, b Interval) Interval { return Interval{a.Lo - b.Hi, a.Hi - b.Lo} }
func IvMul(a, b Interval) Interval {
	return ivHull(ivMul0(a.Lo, b.Lo), ivMul0(a.Lo, b.Hi), ivMul0(a.Hi, b.Lo), ivMul0(a.Hi, b.Hi))
}

// IvDiv is a / b, floored when integer is set (integer division).
func IvDiv(a, b Interval, integer bool) Interval {
	if b.Lo <= 0 && b.Hi >= 0 {
		return ivUnbounded
	}
	r := ivHull(a.Lo/b.Lo, a.Lo/b.Hi, a.Hi/b.Lo, a.Hi/b.Hi)
	if integer {
		r = Interval{math.Floor(r.Lo), math.Floor(r.Hi)}
	}
	return r
}

// IvMod is a floor modulo: exact when the divisor is a positive constant
// and the dividend stays inside one period; otherwise [0, c-1] for a
// positive divisor, (c, 0] for a negative one.
func IvMod(a, b Interval) Interval {
	if b.Lo == b.Hi && b.Lo > 0 {
		c := b.Lo
		if !math.IsInf(a.Lo, 0) && !math.IsInf(a.Hi, 0) && math.Floor(a.Lo/c) == math.Floor(a.Hi/c) {
			base := math.Floor(a.Lo/c) * c
			return Interval{a.Lo - base, a.Hi - base}
		}
		return Interval{0, c - 1}
	}
	if b.Lo > 0 {
		return Interval{0, b.Hi - 1}
	}
	if b.Hi < 0 {
		return Interval{b.Lo + 1, 0}
	}
	return ivUnbounded
}

func IvLt(a, b Interval) Interval { return ivCompare(a.Hi < b.Lo, a.Lo >= b.Hi) }
func IvLe(a, b Interval) Interval { return ivCompare(a.Hi <= b.Lo, a.Lo > b.Hi) }
func IvGt(a, b Interval) Interval { return ivCompare(a.Lo > b.Hi, a.Hi <= b.Lo) }
func IvGe(a, b Interval) Interval { return ivCompare(a.Lo >= b.Hi, a.Hi < b.Lo) }
func IvEq(a, b Interval) Interval {
	return ivCompare(a.Lo == a.Hi && b.Lo == b.Hi && a.Lo == b.Lo, a.Hi < b.Lo || b.Hi < a.Lo)
}
func IvNe(a, b Interval) Interval {
	return ivCompare(a.Hi < b.Lo || b.Hi < a.Lo, a.Lo == a.Hi && b.Lo == b.Hi && a.Lo == b.Lo)
}
func IvAnd(a, b Interval) Interval { return Interval{math.Min(a.Lo, b.Lo), math.Min(a.Hi, b.Hi)} }
func IvOr(a, b Interval) Interval  { return Interval{math.Max(a.Lo, b.Lo), math.Max(a.Hi, b.Hi)} }
func IvMin(a, b Interval) Interval { return Interval{math.Min(a.Lo, b.Lo), math.Min(a.Hi, b.Hi)} }
func IvMax(a, b Interval) Interval { return Interval{math.Max(a.Lo, b.Lo), math.Max(a.Hi, b.Hi)} }
func IvClamp(x, lo, hi Interval) Interval {
	return Interval{math.Min(math.Max(x.Lo, lo.Lo), hi.Lo), math.Min(math.Max(x.Hi, lo.Hi), hi.Hi)}
}
func IvAbs(a Interval) Interval {
	switch {
	case a.Lo >= 0:
		return a
	case a.Hi <= 0:
		return Interval{-a.Hi, -a.Lo}
	}
	return Interval{0, math.Max(-a.Lo, a.Hi)}
}
func IvExp(a Interval) Interval  { return ivMonotone(a, math.Exp, Interval{0, math.Inf(1)}) }
func IvTanh(a Interval) Interval { return ivMonotone(a, math.Tanh, Interval{-1, 1}) }

// IvLog covers [max(lo, 0), hi]: below 0 the value is NaN, which no
// interval holds.
func IvLog(a Interval) Interval {
	return ivMonotone(Interval{math.Max(a.Lo, 0), math.Max(a.Hi, 0)}, math.Log, ivUnbounded)
}
func IvSigmoid(a Interval) Interval {
	return ivMonotone(a, func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }, Interval{0, 1})
}

// IvFloor: math.Floor is exact and monotone, no widening.
func IvFloor(a Interval) Interval { return Interval{math.Floor(a.Lo), math.Floor(a.Hi)} }

// IvSin and IvCos: sin is 1 at π/2 + 2πn and -1 at 3π/2 + 2πn; cos is 1
// at 2πn and -1 at π + 2πn.
func IvSin(a Interval) Interval { return ivPeriodic(a, math.Sin, math.Pi/2) }
func IvCos(a Interval) Interval { return ivPeriodic(a, math.Cos, 0) }

// IvWhere is the chosen side where the condition is decided, else the
// hull of both.
func IvWhere(c, a, b Interval) Interval {
	switch {
	case c.Lo == 1 && c.Hi == 1:
		return a
	case c.Lo == 0 && c.Hi == 0:
		return b
	}
	return ivHull(a.Lo, a.Hi, b.Lo, b.Hi)
}

// ivHull is the least interval holding vs; a NaN among them claims
// nothing.
func ivHull(vs ...float64) Interval {
	iv := Interval{math.Inf(1), math.Inf(-1)}
	for _, v := range vs {
		if math.IsNaN(v) {
			return ivUnbounded
		}
		iv.Lo, iv.Hi = math.Min(iv.Lo, v), math.Max(iv.Hi, v)
	}
	return iv
}

// ivMul0 multiplies with 0·∞ = 0, the right convention for bounds.
func ivMul0(a, b float64) float64 {
	if a == 0 || b == 0 {
		return 0
	}
	return a * b
}

// ivCompare is a comparison's bool interval: always, never or either.
func ivCompare(always, never bool) Interval {
	switch {
	case always:
		return IvPoint(1)
	case never:
		return IvPoint(0)
	}
	return ivUnknownBool
}

// ivMonotone is the rule of a non-decreasing f whose values lie in rng:
// [f(lo), f(hi)], widened by two units in the last place each side (the
// library's functions are not correctly rounded, so not exactly monotone
// in float64), then cut back to rng.
func ivMonotone(a Interval, f func(float64) float64, rng Interval) Interval {
	lo, hi := f(a.Lo), f(a.Hi)
	for range 2 {
		lo, hi = math.Nextafter(lo, math.Inf(-1)), math.Nextafter(hi, math.Inf(1))
	}
	return Interval{math.Max(lo, rng.Lo), math.Min(hi, rng.Hi)}
}

// ivPeriodic is the rule of sin and cos: f has period 2π, is 1 at top +
// 2πn and -1 half a period later, and is monotone in between. An interval
// as wide as a period, or far from 0 (where the float64 period is too
// coarse to place the extremes), gives [-1, 1]; otherwise the values at
// the ends, and 1 or -1 where an extreme may lie inside. The library's
// sin and cos are within an ulp or two of exact: 1e-15 (several ulps of
// 1) covers that near the extremes, where values lie closest together.
func ivPeriodic(a Interval, f func(float64) float64, top float64) Interval {
	const far = 1 << 20
	if !(a.Hi-a.Lo < 2*math.Pi && math.Abs(a.Lo) <= far && math.Abs(a.Hi) <= far) {
		return Interval{-1, 1}
	}
	lo, hi := f(a.Lo), f(a.Hi)
	r := Interval{math.Min(lo, hi) - 1e-15, math.Max(lo, hi) + 1e-15}
	if ivMayHold(a, top) {
		r.Hi = 1
	}
	if ivMayHold(a, top+math.Pi) {
		r.Lo = -1
	}
	return Interval{math.Max(r.Lo, -1), math.Min(r.Hi, 1)}
}

// ivMayHold reports whether [a.Lo, a.Hi] may hold c + 2πn for an integer
// n. A near miss counts: the rounding of 2πn (under 1e-9 for |x| up to
// 2^20) must not hide an extreme.
func ivMayHold(a Interval, c float64) bool {
	const slack = 1e-9
	n := math.Ceil((a.Lo - slack - c) / (2 * math.Pi))
	return c+2*math.Pi*n <= a.Hi+slack
}
