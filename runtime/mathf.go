package runtime

import "math"

// exp32 returns e^x in float32 to within about 2 ulp, several times faster
// than math.Exp: softmax and attention spend much of their time here.
// Inputs whose result would be subnormal, overflow or NaN take math.Exp.
//
// It is Cephes' expf: x = n·ln2 + r with |r| ≤ ln2/2, e^r by a degree-6
// polynomial, and 2^n put straight into the exponent bits.
func exp32(x float32) float32 {
	if !(x > -87 && x < 88) { // also NaN
		return float32(math.Exp(float64(x)))
	}
	t := x * math.Log2E
	if t < 0 {
		t -= 0.5
	} else {
		t += 0.5
	}
	n := int32(t) // round to nearest; -126 ≤ n ≤ 127 for x in range
	fn := float32(n)
	r := x - fn*0.693359375 - fn*-2.12194440e-4 // ln2 split in two for exactness
	y := ((((1.9875691500e-4*r+1.3981999507e-3)*r+8.3334519073e-3)*r+4.1665795894e-2)*r+1.6666665459e-1)*r + 5.0000001201e-1
	y = y*r*r + r + 1
	return y * math.Float32frombits(uint32(n+127)<<23)
}

// negInf32 is -Inf: a masked score. Go's min and max builtins propagate
// NaN for floats, as the reference's nanMax does, so they are used as is.
var (
	negInf32 = float32(math.Inf(-1))
	posInf32 = float32(math.Inf(1))
)
