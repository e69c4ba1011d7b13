package runtime

// A KeySpan is the keys [Lo, Hi); it is empty when Lo ≥ Hi.
type KeySpan struct{ Lo, Hi int }

// KeySpans is the union of at most two key spans: the keys one query
// admits under a mask that is an interval in k for each query (causal,
// sliding window, prefix-LM, …), as AttnSpec.Rows returns them. The
// spans may be empty, overlap or come in any order.
type KeySpans [2]KeySpan

// Bounds of the key spans that reach past every key: far enough out that
// no index expression meets them, near enough that adding a tile offset
// cannot overflow.
const (
	spanMin = -1 << 62
	spanMax = 1 << 62
)

// Key spans of the comparisons of k with an expression x that does not
// read k, and of a condition that does not read k at all. Generated code
// builds a mask's KeySpans from these and SpansAnd and SpansOr.
func SpanBelow(x int) KeySpans { return KeySpans{{spanMin, x}} }                   // k < x
func SpanFrom(x int) KeySpans  { return KeySpans{{x, spanMax}} }                   // k >= x
func SpanAt(x int) KeySpans    { return KeySpans{{x, x + 1}} }                     // k == x
func SpanNot(x int) KeySpans   { return KeySpans{{spanMin, x}, {x + 1, spanMax}} } // k != x
func SpanIf(c bool) KeySpans {
	if c {
		return KeySpans{{spanMin, spanMax}}
	}
	return KeySpans{}
}

// SpansAnd returns the keys in both a and b. It panics if they need
// more than two spans, which the compiler rules out before it writes a
// call (it derives Rows only where two spans suffice).
func SpansAnd(a, b KeySpans) KeySpans {
	var ps [4]KeySpan
	n := 0
	for _, x := range a {
		for _, y := range b {
			ps[n] = KeySpan{max(x.Lo, y.Lo), min(x.Hi, y.Hi)}
			n++
		}
	}
	return normSpans(ps[:n])
}

// SpansOr returns the keys in a or b; it panics as SpansAnd does.
func SpansOr(a, b KeySpans) KeySpans {
	return normSpans([]KeySpan{a[0], a[1], b[0], b[1]})
}

// normSpans merges ps into at most two sorted disjoint spans, empty ones
// last.
func normSpans(ps []KeySpan) KeySpans {
	n := 0
	for _, s := range ps { // drop the empty spans, insertion-sort the rest
		if s.Lo >= s.Hi {
			continue
		}
		i := n
		for ; i > 0 && ps[i-1].Lo > s.Lo; i-- {
			ps[i] = ps[i-1]
		}
		ps[i] = s
		n++
	}
	ps = ps[:n]
	var out KeySpans
	n = 0
	for _, s := range ps {
		if n > 0 && s.Lo <= out[n-1].Hi {
			out[n-1].Hi = max(out[n-1].Hi, s.Hi)
			continue
		}
		if n == len(out) {
			panic("runtime: a mask's keys need more than two spans")
		}
		out[n] = s
		n++
	}
	return out
}

// clip returns the spans of s within the keys [k0, k1), as tile columns
// (0 is k0): sorted, disjoint, the empty ones {0, 0} and last.
func (s KeySpans) clip(k0, k1 int) KeySpans {
	for i, r := range s {
		lo, hi := max(r.Lo, k0)-k0, min(r.Hi, k1)-k0
		if lo >= hi {
			lo, hi = 0, 0
		}
		s[i] = KeySpan{lo, hi}
	}
	x, y := s[0], s[1]
	switch {
	case x.Lo >= x.Hi:
		return KeySpans{y}
	case y.Lo >= y.Hi:
		return KeySpans{x}
	case y.Lo < x.Lo:
		x, y = y, x
	}
	if y.Lo <= x.Hi {
		return KeySpans{{x.Lo, max(x.Hi, y.Hi)}}
	}
	return KeySpans{x, y}
}
