package runtime

import (
	"math"
	"testing"
)

// TestExp32 checks exp32 against math.Exp across its whole range, the
// fast path's edges and the special values.
func TestExp32(t *testing.T) {
	worst := 0.0
	check := func(x float32) {
		got, want := float64(exp32(x)), math.Exp(float64(x))
		switch {
		case math.IsNaN(want):
			if !math.IsNaN(got) {
				t.Fatalf("exp32(%v) = %v, want NaN", x, got)
			}
		case math.IsInf(float64(float32(want)), 0) || want < 1e-37:
			if got != float64(float32(want)) && math.Abs(got-want) > 1e-44 {
				t.Fatalf("exp32(%v) = %v, want %v", x, got, float32(want))
			}
		default:
			worst = math.Max(worst, math.Abs(got-want)/want)
		}
	}
	for x := float32(-104); x < 90; x += 0.00731 {
		check(x)
	}
	inf := float32(math.Inf(1))
	for _, x := range []float32{-87, -86.99999, 87.99999, 88, 0, -0.0, 1e-30, -1e-30, inf, -inf, float32(math.NaN())} {
		check(x)
	}
	t.Logf("worst relative error %.3g", worst)
	if worst > 2e-7 {
		t.Errorf("exp32: worst relative error %.3g, want ≤ 2e-7 (under 2 ulp)", worst)
	}
}
