package runtime

import "math"

// Iv is a closed interval [Lo, Hi] of the values an index expression can
// take over a tile of (query, key) pairs; a bool is a sub-interval of
// [0, 1]. Generated code builds a mask's interval from these functions to
// classify a tile for AttnSpec.Tile: they are sound (every value the mask
// takes lies inside), not always tight, and are the compiler's own
// interval analysis's (ir.Expr.Bounds): interval_rules.go is generated
// from ir/interval.go, the one implementation of the rules.
type Iv struct{ Lo, Hi float64 }

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
