package runtime

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Every interval rule is sound: for random intervals and random points in
// them, the operator's value at the points lies in the rule's interval.
func TestIntervalRulesAreSound(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	iv := func() (Iv, func() float64) {
		a, b := float64(rng.IntN(41)-20), float64(rng.IntN(41)-20)
		lo, hi := math.Min(a, b), math.Max(a, b)
		return Iv{lo, hi}, func() float64 { return lo + float64(rng.IntN(int(hi-lo)+1)) }
	}
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	floorDiv := func(x, y float64) float64 { return math.Floor(x / y) }
	floorMod := func(x, y float64) float64 { return x - y*math.Floor(x/y) }
	binary := map[string]struct {
		rule func(a, b Iv) Iv
		f    func(x, y float64) float64
	}{
		"add": {IvAdd, func(x, y float64) float64 { return x + y }},
		"sub": {IvSub, func(x, y float64) float64 { return x - y }},
		"mul": {IvMul, func(x, y float64) float64 { return x * y }},
		"div": {func(a, b Iv) Iv { return IvDiv(a, b, true) }, floorDiv},
		"mod": {IvMod, floorMod},
		"lt":  {IvLt, func(x, y float64) float64 { return b2f(x < y) }},
		"le":  {IvLe, func(x, y float64) float64 { return b2f(x <= y) }},
		"gt":  {IvGt, func(x, y float64) float64 { return b2f(x > y) }},
		"ge":  {IvGe, func(x, y float64) float64 { return b2f(x >= y) }},
		"eq":  {IvEq, func(x, y float64) float64 { return b2f(x == y) }},
		"ne":  {IvNe, func(x, y float64) float64 { return b2f(x != y) }},
		"min": {IvMin, math.Min},
		"max": {IvMax, math.Max},
	}
	for name, op := range binary {
		for trial := 0; trial < 2000; trial++ {
			a, pa := iv()
			b, pb := iv()
			if (name == "div" || name == "mod") && b.Lo <= 0 && b.Hi >= 0 {
				// A divisor that may be 0: no claim at all.
				if r := op.rule(a, b); !math.IsInf(r.Lo, -1) || !math.IsInf(r.Hi, 1) {
					t.Fatalf("%s by %v = %v, want unbounded", name, b, r)
				}
				continue
			}
			r := op.rule(a, b)
			x, y := pa(), pb()
			if v := op.f(x, y); v < r.Lo || v > r.Hi {
				t.Fatalf("%s: %v %s %v = %v is outside %v", name, x, name, y, v, r)
			}
		}
	}
	for trial := 0; trial < 2000; trial++ {
		a, pa := iv()
		x := pa()
		for name, c := range map[string]struct {
			r Iv
			v float64
		}{"neg": {IvNeg(a), -x}, "abs": {IvAbs(a), math.Abs(x)}, "clamp": {IvClamp(a, IvPoint(-3), IvPoint(5)), math.Min(math.Max(x, -3), 5)}} {
			if c.v < c.r.Lo || c.v > c.r.Hi {
				t.Fatalf("%s(%v) = %v is outside %v", name, x, c.v, c.r)
			}
		}
	}
	// The float functions, on small and wide float intervals, some
	// infinite; a NaN value (log of a negative, sin of inf) is in no
	// interval and is skipped.
	unary := map[string]struct {
		rule func(Iv) Iv
		f    func(float64) float64
	}{
		"exp": {IvExp, math.Exp}, "log": {IvLog, math.Log}, "tanh": {IvTanh, math.Tanh},
		"sigmoid": {IvSigmoid, func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }},
		"floor":   {IvFloor, math.Floor}, "sin": {IvSin, math.Sin}, "cos": {IvCos, math.Cos},
	}
	for name, op := range unary {
		for trial := 0; trial < 5000; trial++ {
			s := []float64{0.01, 1, 4, 30, 1e7}[rng.IntN(5)]
			a, b := s*rng.NormFloat64(), s*rng.NormFloat64()
			lo, hi := math.Min(a, b), math.Max(a, b)
			x := lo + (hi-lo)*rng.Float64()
			switch rng.IntN(4) {
			case 0:
				x = lo
			case 1:
				x = hi
			}
			if rng.IntN(10) == 0 {
				lo = math.Inf(-1)
			}
			r := op.rule(Iv{lo, hi})
			if v := op.f(x); !math.IsNaN(v) && (v < r.Lo || v > r.Hi) {
				t.Fatalf("%s(%v) = %v is outside %v, the rule over [%v, %v]", name, x, v, r, lo, hi)
			}
		}
	}
	// Bool logic over the three bool intervals.
	for _, a := range []Iv{{0, 0}, {1, 1}, {0, 1}} {
		for _, b := range []Iv{{0, 0}, {1, 1}, {0, 1}} {
			for x := a.Lo; x <= a.Hi; x++ {
				for y := b.Lo; y <= b.Hi; y++ {
					and, or := IvAnd(a, b), IvOr(a, b)
					if v := b2f(x == 1 && y == 1); v < and.Lo || v > and.Hi {
						t.Fatalf("and %v %v", a, b)
					}
					if v := b2f(x == 1 || y == 1); v < or.Lo || v > or.Hi {
						t.Fatalf("or %v %v", a, b)
					}
				}
			}
		}
	}
	if IvTile(IvLe(IvRange(64, 128), IvRange(0, 64))) != TileEmpty {
		t.Error("a causal mask's tile above the diagonal is empty")
	}
	if IvTile(IvLe(IvRange(0, 64), IvRange(64, 128))) != TileFull {
		t.Error("a causal mask's tile below the diagonal is full")
	}
	if IvTile(IvLe(IvRange(0, 64), IvRange(0, 64))) != TilePartial {
		t.Error("a causal mask's diagonal tile is partial")
	}
}

// TestIvCapture checks the interval of a captured tensor over boxes of
// its indices against the least and greatest element found by brute
// force — for each dtype, boxes along one axis, several axes and a point
// — and that boxes reaching outside, too large or holding a NaN claim
// nothing.
func TestIvCapture(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	unknown := Iv{math.Inf(-1), math.Inf(1)}
	for _, dt := range []DType{F32, I32, Bool} {
		x := New(dt, 3, 5, 7)
		for i := range 3 * 5 * 7 {
			switch dt {
			case F32:
				x.F[i] = float32(rng.NormFloat64())
			case I32:
				x.I[i] = int32(rng.IntN(20) - 10)
			case Bool:
				x.B[i] = rng.IntN(3) == 0
			}
		}
		at := func(i, j, k int) float64 {
			switch dt {
			case F32:
				return float64(x.F[(i*5+j)*7+k])
			case I32:
				return float64(x.I[(i*5+j)*7+k])
			}
			if x.B[(i*5+j)*7+k] {
				return 1
			}
			return 0
		}
		for range 300 {
			var lo, hi [3]int
			for a, n := range []int{3, 5, 7} {
				lo[a] = rng.IntN(n)
				hi[a] = lo[a] + rng.IntN(n-lo[a])
				if rng.IntN(2) == 0 {
					hi[a] = lo[a] // often a point, as b or h is
				}
			}
			want := Iv{math.Inf(1), math.Inf(-1)}
			for i := lo[0]; i <= hi[0]; i++ {
				for j := lo[1]; j <= hi[1]; j++ {
					for k := lo[2]; k <= hi[2]; k++ {
						want.Lo, want.Hi = math.Min(want.Lo, at(i, j, k)), math.Max(want.Hi, at(i, j, k))
					}
				}
			}
			got := IvCapture(x, IvRange(lo[0], hi[0]+1), IvRange(lo[1], hi[1]+1), IvRange(lo[2], hi[2]+1))
			if got != want {
				t.Fatalf("%s box %v..%v: %v, want %v", dt, lo, hi, got, want)
			}
		}
		if got := IvCapture(x, IvPoint(0), IvRange(3, 6), IvPoint(0)); got != unknown {
			t.Errorf("%s: a box past the end gave %v", dt, got)
		}
		if got := IvCapture(x, IvPoint(-1), IvPoint(0), IvPoint(0)); got != unknown {
			t.Errorf("%s: a negative index gave %v", dt, got)
		}
		if got := IvCapture(x, IvPoint(0), IvPoint(0)); got != unknown {
			t.Errorf("%s: too few indices gave %v", dt, got)
		}
	}
	f := New(F32, 4)
	f.F[2] = float32(math.NaN())
	if got := IvCapture(f, IvRange(0, 4)); got != unknown {
		t.Errorf("a NaN in the box gave %v", got)
	}
	if got := IvCapture(f, IvRange(0, 2)); got != (Iv{0, 0}) {
		t.Errorf("a box before the NaN gave %v", got)
	}
	big := New(I32, 300, 300)
	if got := IvCapture(big, IvRange(0, 300), IvRange(0, 300)); got != unknown {
		t.Errorf("a box of 90000 elements gave %v", got)
	}
	s := New(I32)
	s.I[0] = 7
	if got := IvCapture(s); got != (Iv{7, 7}) {
		t.Errorf("a scalar gave %v", got)
	}
}
