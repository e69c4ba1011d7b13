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

// Interval arithmetic and logic, one function per operator of an index
// expression. IvDiv floors when integer is set (integer division).
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
func IvExp(a Iv) Iv  { return Iv{math.Exp(a.Lo), math.Exp(a.Hi)} }
func IvTanh(a Iv) Iv { return Iv{math.Tanh(a.Lo), math.Tanh(a.Hi)} }
func IvLog(a Iv) Iv {
	lo := math.Inf(-1)
	if a.Lo > 0 {
		lo = math.Log(a.Lo)
	}
	return Iv{lo, math.Log(math.Max(a.Hi, 0))}
}
func IvSigmoid(a Iv) Iv {
	return Iv{1 / (1 + math.Exp(-a.Lo)), 1 / (1 + math.Exp(-a.Hi))}
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
