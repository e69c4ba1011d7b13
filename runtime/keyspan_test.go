package runtime

import (
	"math/rand/v2"
	"testing"
)

func (s KeySpans) has(k int) bool {
	return s[0].Lo <= k && k < s[0].Hi || s[1].Lo <= k && k < s[1].Hi
}

// randSpans returns at most two spans (two only when disjoint, as the
// compiler's static count allows them) over small keys, some empty.
func randSpans(r *rand.Rand) KeySpans {
	one := func() KeySpan {
		switch r.IntN(6) {
		case 0:
			return KeySpan{spanMin, r.IntN(12) - 2}
		case 1:
			return KeySpan{r.IntN(12) - 2, spanMax}
		}
		lo := r.IntN(12) - 2
		return KeySpan{lo, lo + r.IntN(6) - 1}
	}
	s := KeySpans{one()}
	if r.IntN(2) == 0 {
		s[1] = one()
	}
	return s
}

// TestKeySpansMatchSets checks SpansAnd, SpansOr and clip against the
// sets of keys they stand for.
func TestKeySpansMatchSets(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		a, b := randSpans(r), randSpans(r)
		and := SpansAnd(a, KeySpans{b[0]})
		or := func() (s KeySpans, ok bool) {
			defer func() { ok = recover() == nil }()
			return SpansOr(KeySpans{a[0]}, KeySpans{b[0]}), true
		}
		o, ok := or()
		k0 := r.IntN(8) - 1
		k1 := k0 + r.IntN(8)
		c := a.clip(k0, k1)
		for k := -4; k < 14; k++ {
			if got, want := and.has(k), a.has(k) && b[0].Lo <= k && k < b[0].Hi; got != want {
				t.Fatalf("SpansAnd(%v, %v) = %v: key %d in it %v, want %v", a, b[0], and, k, got, want)
			}
			if got, want := o.has(k), a[0].Lo <= k && k < a[0].Hi || b[0].Lo <= k && k < b[0].Hi; !ok || got != want {
				t.Fatalf("SpansOr(%v, %v) = %v (ok %v): key %d in it %v, want %v", a[0], b[0], o, ok, k, got, want)
			}
			if k >= k0 && k < k1 {
				if got, want := c.has(k-k0), a.has(k); got != want {
					t.Fatalf("%v.clip(%d, %d) = %v: key %d in it %v, want %v", a, k0, k1, c, k, got, want)
				}
			}
		}
		if c[0].Lo < 0 || c[1].Lo < 0 || c[0].Hi > k1-k0 || c[1].Hi > k1-k0 ||
			c[1].Lo < c[1].Hi && (c[0].Hi >= c[1].Lo || c[0].Lo >= c[0].Hi) {
			t.Fatalf("%v.clip(%d, %d) = %v: not sorted disjoint tile columns, the empty last", a, k0, k1, c)
		}
	}
	defer func() {
		if recover() == nil {
			t.Errorf("SpansOr of three disjoint spans did not panic")
		}
	}()
	SpansOr(KeySpans{{0, 2}, {4, 6}}, SpanAt(8))
}
