package runtime

import "math"

// Iv is a closed interval [Lo, Hi] of the values an index expression can
// take over a tile of (query, key) pairs; a bool is a sub-interval of
// [0, 1]. Generated code builds a mask's interval from these functions to
// classify a tile for AttnSpec.Tile: they are sound (every value the mask
// takes lies inside), not always tight, and follow the compiler's own
// interval analysis (ir.Expr.Bounds) rule for rule.
type Iv struct{ Lo, Hi float64 }

// IvPoint is the interval holding only v.
func IvPoint(v float64) Iv { return Iv{v, v} }

// IvRange is the interval of the integers in [lo, hi).
func IvRange(lo, hi int) Iv { return Iv{float64(lo), float64(hi - 1)} }

// IvTile classifies a tile by its mask's interval: always false is empty,
// always true is full.
func IvTile(m Iv) TileKind {
	switch {
	case m.Hi == 0 && m.Lo == 0:
		return TileEmpty
	case m.Lo == 1 && m.Hi == 1:
		return TileFull
	}
	return TilePartial
}

var ivUnknownBool = Iv{0, 1}

// ivCaptureMax is the most elements IvCapture reads for one box; a larger
// box gets the unknown interval.
const ivCaptureMax = 1 << 16

// IvCapture is the interval of a captured tensor's elements over the box
// of indices idx (one interval per axis): the least and greatest element
// it holds there, read from the data, so that a mask reading a tensor (a
// document mask, doc[b, q] == doc[b, k]) is classified per tile at run
// time. A box reaching outside the tensor, too large a box, or a NaN in
// it gives (-inf, inf): no claim, so the tile's pairs are evaluated one
// by one and report what they report.
func IvCapture(x *Tensor, idx ...Iv) Iv {
	unknown := Iv{math.Inf(-1), math.Inf(1)}
	const maxRank = 8
	if len(idx) != len(x.Shape) || len(idx) > maxRank {
		return unknown
	}
	// The box as a base offset, and the one axis along which it is more
	// than one element wide (a tile's range of q or k; the usual case),
	// or several.
	var lo, hi, st [maxRank]int
	base, stride, vary, n := 0, 1, -1, 1
	for a := len(idx) - 1; a >= 0; a-- {
		l, h := math.Ceil(idx[a].Lo), math.Floor(idx[a].Hi)
		if !(l >= 0 && h < float64(x.Shape[a])) || l > h {
			return unknown
		}
		lo[a], hi[a], st[a] = int(l), int(h), stride
		base += lo[a] * stride
		stride *= x.Shape[a]
		if w := hi[a] - lo[a] + 1; w > 1 {
			n *= w
			if vary < 0 {
				vary = a
			} else {
				vary = maxRank // more than one
			}
		}
		if n > ivCaptureMax {
			return unknown
		}
	}
	if vary < 0 {
		vary = 0 // one element
	}
	if vary < maxRank {
		return ivScan(x, base, hi[vary]-lo[vary]+1, st[vary])
	}
	// A box of several axes: its rows along the last varying axis.
	out := Iv{math.Inf(1), math.Inf(-1)}
	at := lo
	for {
		off := 0
		for a := range len(idx) {
			off += at[a] * st[a]
		}
		iv := ivScan(x, off, 1, 1)
		if math.IsInf(iv.Lo, -1) && math.IsInf(iv.Hi, 1) {
			return unknown
		}
		out.Lo, out.Hi = min(out.Lo, iv.Lo), max(out.Hi, iv.Hi)
		a := len(idx) - 1
		for ; a >= 0; a-- {
			if at[a] < hi[a] {
				at[a]++
				break
			}
			at[a] = lo[a]
		}
		if a < 0 {
			return out
		}
	}
}

// ivScan is the least and greatest of n elements of x from off, stride
// apart; a NaN gives the unknown interval.
func ivScan(x *Tensor, off, n, stride int) Iv {
	switch x.DType {
	case I32:
		lo, hi := x.I[off], x.I[off]
		for i := 1; i < n; i++ {
			v := x.I[off+i*stride]
			lo, hi = min(lo, v), max(hi, v)
		}
		return Iv{float64(lo), float64(hi)}
	case Bool:
		var seen [2]bool
		for i := range n {
			if x.B[off+i*stride] {
				seen[1] = true
			} else {
				seen[0] = true
			}
		}
		switch {
		case seen[0] && seen[1]:
			return Iv{0, 1}
		case seen[1]:
			return Iv{1, 1}
		}
		return Iv{0, 0}
	}
	lo, hi := x.F[off], x.F[off]
	for i := 0; i < n; i++ {
		v := x.F[off+i*stride]
		if v != v {
			return Iv{math.Inf(-1), math.Inf(1)}
		}
		lo, hi = min(lo, v), max(hi, v)
	}
	return Iv{float64(lo), float64(hi)}
}

func ivHull(vs ...float64) Iv {
	iv := Iv{math.Inf(1), math.Inf(-1)}
	for _, v := range vs {
		if math.IsNaN(v) {
			return Iv{math.Inf(-1), math.Inf(1)}
		}
		iv.Lo, iv.Hi = math.Min(iv.Lo, v), math.Max(iv.Hi, v)
	}
	return iv
}

func ivMul0(a, b float64) float64 {
	if a == 0 || b == 0 {
		return 0
	}
	return a * b
}

func ivCompare(always, never bool) Iv {
	switch {
	case always:
		return IvPoint(1)
	case never:
		return IvPoint(0)
	}
	return ivUnknownBool
}

// Interval arithmetic and logic, one function per operator and function
// of an index expression (ir.ExprFuncTable lists the functions). IvDiv
// floors when integer is set (integer division). A divisor interval
// holding 0 makes IvDiv and IvMod claim nothing (unbounded), so no
// verdict rests on a quotient whose divisor may be 0: unless the other
// side of an && or || decides the tile alone (and the mask is not run
// there at all), the tile is partial, its mask runs pair by pair, and an
// integer division by zero panics in it (the generated function returns
// that as an error) as it would with no classifier.
func IvNeg(a Iv) Iv    { return Iv{-a.Hi, -a.Lo} }
func IvNot(a Iv) Iv    { return Iv{1 - a.Hi, 1 - a.Lo} }
func IvAdd(a, b Iv) Iv { return Iv{a.Lo + b.Lo, a.Hi + b.Hi} }
func IvSub(a, b Iv) Iv { return Iv{a.Lo - b.Hi, a.Hi - b.Lo} }
func IvMul(a, b Iv) Iv {
	return ivHull(ivMul0(a.Lo, b.Lo), ivMul0(a.Lo, b.Hi), ivMul0(a.Hi, b.Lo), ivMul0(a.Hi, b.Hi))
}
func IvDiv(a, b Iv, integer bool) Iv {
	if b.Lo <= 0 && b.Hi >= 0 {
		return Iv{math.Inf(-1), math.Inf(1)}
	}
	r := ivHull(a.Lo/b.Lo, a.Lo/b.Hi, a.Hi/b.Lo, a.Hi/b.Hi)
	if integer {
		r = Iv{math.Floor(r.Lo), math.Floor(r.Hi)}
	}
	return r
}
func IvMod(a, b Iv) Iv {
	if b.Lo == b.Hi && b.Lo > 0 {
		c := b.Lo
		if !math.IsInf(a.Lo, 0) && !math.IsInf(a.Hi, 0) && math.Floor(a.Lo/c) == math.Floor(a.Hi/c) {
			base := math.Floor(a.Lo/c) * c
			return Iv{a.Lo - base, a.Hi - base}
		}
		return Iv{0, c - 1}
	}
	if b.Lo > 0 {
		return Iv{0, b.Hi - 1}
	}
	if b.Hi < 0 {
		return Iv{b.Lo + 1, 0}
	}
	return Iv{math.Inf(-1), math.Inf(1)}
}
func IvLt(a, b Iv) Iv { return ivCompare(a.Hi < b.Lo, a.Lo >= b.Hi) }
func IvLe(a, b Iv) Iv { return ivCompare(a.Hi <= b.Lo, a.Lo > b.Hi) }
func IvGt(a, b Iv) Iv { return ivCompare(a.Lo > b.Hi, a.Hi <= b.Lo) }
func IvGe(a, b Iv) Iv { return ivCompare(a.Lo >= b.Hi, a.Hi < b.Lo) }
func IvEq(a, b Iv) Iv {
	return ivCompare(a.Lo == a.Hi && b.Lo == b.Hi && a.Lo == b.Lo, a.Hi < b.Lo || b.Hi < a.Lo)
}
func IvNe(a, b Iv) Iv {
	return ivCompare(a.Hi < b.Lo || b.Hi < a.Lo, a.Lo == a.Hi && b.Lo == b.Hi && a.Lo == b.Lo)
}
func IvAnd(a, b Iv) Iv { return Iv{math.Min(a.Lo, b.Lo), math.Min(a.Hi, b.Hi)} }
func IvOr(a, b Iv) Iv  { return Iv{math.Max(a.Lo, b.Lo), math.Max(a.Hi, b.Hi)} }
func IvMin(a, b Iv) Iv { return Iv{math.Min(a.Lo, b.Lo), math.Min(a.Hi, b.Hi)} }
func IvMax(a, b Iv) Iv { return Iv{math.Max(a.Lo, b.Lo), math.Max(a.Hi, b.Hi)} }
func IvClamp(x, lo, hi Iv) Iv {
	return Iv{math.Min(math.Max(x.Lo, lo.Lo), hi.Lo), math.Min(math.Max(x.Hi, lo.Hi), hi.Hi)}
}
func IvAbs(a Iv) Iv {
	switch {
	case a.Lo >= 0:
		return a
	case a.Hi <= 0:
		return Iv{-a.Hi, -a.Lo}
	}
	return Iv{0, math.Max(-a.Lo, a.Hi)}
}
func IvExp(a Iv) Iv  { return ivMonotone(a, math.Exp, Iv{0, math.Inf(1)}) }
func IvTanh(a Iv) Iv { return ivMonotone(a, math.Tanh, Iv{-1, 1}) }
func IvLog(a Iv) Iv {
	return ivMonotone(Iv{math.Max(a.Lo, 0), math.Max(a.Hi, 0)}, math.Log, Iv{math.Inf(-1), math.Inf(1)})
}
func IvSigmoid(a Iv) Iv {
	return ivMonotone(a, func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }, Iv{0, 1})
}
func IvFloor(a Iv) Iv { return Iv{math.Floor(a.Lo), math.Floor(a.Hi)} }
func IvSin(a Iv) Iv   { return ivPeriodic(a, math.Sin, math.Pi/2) }
func IvCos(a Iv) Iv   { return ivPeriodic(a, math.Cos, 0) }

// ivMonotone is the rule of a non-decreasing f with values in rng,
// widened by two ulps each side (the library's functions are not
// correctly rounded, so not exactly monotone).
func ivMonotone(a Iv, f func(float64) float64, rng Iv) Iv {
	lo, hi := f(a.Lo), f(a.Hi)
	for range 2 {
		lo, hi = math.Nextafter(lo, math.Inf(-1)), math.Nextafter(hi, math.Inf(1))
	}
	return Iv{math.Max(lo, rng.Lo), math.Min(hi, rng.Hi)}
}

// ivPeriodic is the rule of sin and cos: period 2π, 1 at top + 2πn, -1
// half a period later, monotone in between; [-1, 1] for an interval as
// wide as a period or far from 0.
func ivPeriodic(a Iv, f func(float64) float64, top float64) Iv {
	const far = 1 << 20
	if !(a.Hi-a.Lo < 2*math.Pi && math.Abs(a.Lo) <= far && math.Abs(a.Hi) <= far) {
		return Iv{-1, 1}
	}
	lo, hi := f(a.Lo), f(a.Hi)
	r := Iv{math.Min(lo, hi) - 1e-15, math.Max(lo, hi) + 1e-15}
	if ivMayHold(a, top) {
		r.Hi = 1
	}
	if ivMayHold(a, top+math.Pi) {
		r.Lo = -1
	}
	return Iv{math.Max(r.Lo, -1), math.Min(r.Hi, 1)}
}

// ivMayHold reports whether a may hold c + 2πn for an integer n, near
// misses included.
func ivMayHold(a Iv, c float64) bool {
	const slack = 1e-9
	n := math.Ceil((a.Lo - slack - c) / (2 * math.Pi))
	return c+2*math.Pi*n <= a.Hi+slack
}
func IvWhere(c, a, b Iv) Iv {
	switch {
	case c.Lo == 1 && c.Hi == 1:
		return a
	case c.Lo == 0 && c.Hi == 0:
		return b
	}
	return ivHull(a.Lo, a.Hi, b.Lo, b.Hi)
}
