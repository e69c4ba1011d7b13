package ir

import (
	"math"
	"math/rand"
	"testing"
)

// TestExprOverflow: integer arithmetic that can leave ±MaxExactInt for
// some point of the variables' ranges is found, innermost first; what
// stays inside, and float arithmetic, is not.
func TestExprOverflow(t *testing.T) {
	pos := Interval{0, math.MaxInt32}
	vars := map[string]Interval{"q": pos, "k": pos, "h": pos, "b": pos, "N": pos}
	env := attnEnv(TensorOf(I32, dB, dN), TensorOf(F32, dB, dN))
	for _, tc := range []struct {
		src, want string // want: the operation reported, or ""
	}{
		{"k * 9223372036854775807 * 4 <= q", "k * 9223372036854775807"},
		{"k * 4194304 <= q", ""},                       // 2^53 - 2^31·2^22 > 0: inside
		{"k * 4194305 * 2 <= q", "k * 4194305"},        // just past 2^53
		{"(q - k) * (q - k) > 0", "(q - k) * (q - k)"}, // 2^62
		{"-(q * 4611686018427387904) < 0", "q * 4611686018427387904"},
		{"q + 9007199254740992 > k", "q + 9007199254740992"}, // an operand past 2^53
		{"k <= 9223372036854775807", ""},                     // a comparison computes nothing
		{"min(k, 9223372036854775807) >= 0", ""},
		{"abs(k - 9007199254740991) > q", ""},
		{"abs(k - 9007199254740991 - 1) > q", "k - 9007199254740991 - 1"},
		{"$0[b, q] * $0[b, k] == 0", "$0[b, q] * $0[b, k]"},
		{"$0[b, q] * 1024 == 0", ""},
		{"$1[b, q * 9223372036854775807] > 0.0", "q * 9223372036854775807"}, // inside an index
		{"q / (k - 5) < 3", ""},                                             // a zero divisor is not an overflow
		{"q % (k - 5) < 3", ""},
		{"k * 1e300 > 0.0", ""}, // float arithmetic is IEEE on both sides
		{"q * N * N > 0", "q * N"},
	} {
		e, err := ParseExpr(tc.src)
		if err != nil {
			t.Fatalf("%s: %v", tc.src, err)
		}
		if _, err := e.Check(env); err != nil {
			t.Fatalf("%s: %v", tc.src, err)
		}
		op, iv := e.Overflow(vars)
		got := ""
		if op != nil {
			got = op.String()
		}
		if got != tc.want {
			t.Errorf("Overflow(%s) = %q over %v, want %q", tc.src, got, iv, tc.want)
		}
	}
}

// TestExprOverflowRulesSound: the rules Overflow adds for an integer / or
// % whose divisor range holds 0 bound every value at a non-zero divisor.
func TestExprOverflowRulesSound(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	env := attnEnv()
	for _, src := range []string{"q / k", "q % k", "(q - 7) / (k - 3)", "(q - 7) % (k - 3)"} {
		e := mustExpr(src)
		if _, err := e.Check(env); err != nil {
			t.Fatal(err)
		}
		for range 2000 {
			vars := map[string]Interval{}
			for _, v := range []string{"q", "k"} {
				lo := float64(r.Intn(41) - 20)
				vars[v] = Interval{lo, lo + float64(r.Intn(12))}
			}
			w := boundsWalk{vars: vars, checked: true}
			b := w.bounds(e)
			for range 10 {
				point := map[string]float64{}
				for v, iv := range vars {
					point[v] = iv.Lo + float64(r.Intn(int(iv.Hi-iv.Lo)+1))
				}
				val, err := e.Eval(point, nil)
				if err != nil {
					continue // a zero divisor
				}
				if val < b.Lo || val > b.Hi {
					t.Fatalf("%s at %v = %v, outside [%v, %v] over %v", src, point, val, b.Lo, b.Hi, vars)
				}
			}
		}
	}
}
