package runtime

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// A vecCase is one slice kernel with its float64 meaning and the error
// it may make, in ulps of the result, at input x.
type vecCase struct {
	name string
	run  func(dst, src []float32)
	ref  func(x float32) float64
	ulps func(x float32) float64
	// tiny is the magnitude below which a result may be flushed to zero:
	// sigmoid, SiLU and GELU of a large negative x divide by an e^t that
	// overflows, as the portable sigmoid32 does, before their result
	// becomes subnormal.
	tiny float64
}

const expSub = 0.75 // the shift the exp case uses, to test it

var vecCases = []vecCase{
	{"exp", func(d, s []float32) { expSlice(d, s, expSub) },
		func(x float32) float64 { return math.Exp(float64(x - expSub)) },
		func(float32) float64 { return 3 }, 0},
	{"expsum", func(d, s []float32) { expSumSlice(d, s, expSub) },
		func(x float32) float64 { return math.Exp(float64(x - expSub)) },
		func(float32) float64 { return 3 }, 0},
	{"sigmoid", sigmoidSlice,
		func(x float32) float64 { return 1 / (1 + math.Exp(-float64(x))) },
		func(float32) float64 { return 4 }, 0x1p-120},
	{"silu", siluSlice,
		func(x float32) float64 { return float64(x) / (1 + math.Exp(-float64(x))) },
		func(float32) float64 { return 5 }, 0x1p-120},
	{"tanh", tanhSlice,
		func(x float32) float64 { return math.Tanh(float64(x)) },
		func(float32) float64 { return 4 }, 0},
	// GELU's exponent, -2u, is rounded to float32 before the exp, which
	// magnifies its relative error (a few roundings) by |2u|.
	{"gelu", geluSlice,
		func(x float32) float64 {
			v := float64(x)
			return v / (1 + math.Exp(-2*math.Sqrt(2/math.Pi)*(v+0.044715*v*v*v)))
		},
		func(x float32) float64 {
			v := float64(x)
			return 6 + 3*math.Abs(2*math.Sqrt(2/math.Pi)*(v+0.044715*v*v*v))
		}, 0x1p-120},
	// GELU's derivative: as GELU's error, plus, near its zero at
	// x ≈ -0.75, the cancellation of 1 - x·q·s·e, whose terms' error is
	// what counts there; below -10 it is about 1e-36 where the true
	// value underflows (see _asm/vec.go).
	{"gelu_deriv", geluDerivSlice,
		func(x float32) float64 {
			v := float64(x)
			switch {
			case v > 20:
				return 1
			case v < -20:
				return 0
			}
			c := math.Sqrt(2 / math.Pi)
			e := math.Exp(-2 * c * (v + 0.044715*v*v*v))
			s := 1 / (1 + e)
			return s * (1 + 2*v*s*e*c*(1+3*0.044715*v*v))
		},
		func(x float32) float64 {
			v := min(max(float64(x), -10), 10)
			c := math.Sqrt(2 / math.Pi)
			u := c * (v + 0.044715*v*v*v)
			e := math.Exp(-2 * u)
			s := 1 / (1 + e)
			term := math.Abs(2 * v * s * e * c * (1 + 3*0.044715*v*v))
			d := math.Abs(s * (1 + 2*v*s*e*c*(1+3*0.044715*v*v)))
			return (32 + 3*math.Abs(2*u)) * (1 + s*term/max(d, 1e-300))
		}, 0x1p-110},
}

// ulpDiff is how many float32 values lie between got and want (want
// rounded to float32), treating results whose magnitudes are both below
// tiny as equal. NaN matches only NaN.
func ulpDiff(got float32, want, tiny float64) float64 {
	w := float32(want)
	gn, wn := got != got, w != w
	if gn || wn {
		if gn && wn {
			return 0
		}
		return math.Inf(1)
	}
	if got == w {
		return 0
	}
	if math.Abs(float64(got)) < tiny && math.Abs(want) < tiny {
		return 0
	}
	return math.Abs(float64(ordered(got) - ordered(w)))
}

// ordered maps float32 bits to integers in the order of the values.
func ordered(f float32) int64 {
	b := int64(math.Float32bits(f))
	if b&(1<<31) != 0 {
		return -(b &^ (1 << 31))
	}
	return b
}

// eachVec runs f with each vector set this CPU has and with the portable
// twins (named "go").
func eachVec(t *testing.T, f func(t *testing.T)) {
	old := activeVec
	defer func() { activeVec = old }()
	for _, s := range append([]*vecSet{nil}, vecSets...) {
		name := "go"
		if s != nil {
			name = s.name
		}
		activeVec = s
		t.Run(name, f)
	}
}

// specials are the inputs every kernel must get right.
var specials = []float32{0, float32(math.Copysign(0, -1)), 1, -1, 0.5, -0.5, 1e-3, -1e-3,
	float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()),
	math.MaxFloat32, -math.MaxFloat32, 1e30, -1e30, 1e-30, -1e-30,
	math.SmallestNonzeroFloat32, -math.SmallestNonzeroFloat32, 0x1p-130, -0x1p-130,
	88, 88.7, 88.73, 89, -87, -87.5, -88, -95, -103, -104, -105, -150,
	9, 9.5, 10, 11, -9, -10, -11, 0.3465, 0.3466, -0.3466, 20, -20, 3.5, -3.5}

func checkVec(t *testing.T, c vecCase, dst, src []float32) {
	t.Helper()
	bad := 0
	for i, x := range src {
		want := c.ref(x)
		if d := ulpDiff(dst[i], want, c.tiny); d > c.ulps(x) {
			if bad++; bad <= 5 {
				t.Errorf("%s(%g) [%d of %d] = %g, want %g (%g ulps)", c.name, x, i, len(src), dst[i], want, d)
			}
		}
	}
}

func TestVecSpecials(t *testing.T) {
	eachVec(t, func(t *testing.T) {
		for _, c := range vecCases {
			src := append([]float32(nil), specials...)
			dst := make([]float32, len(src))
			c.run(dst, src)
			checkVec(t, c, dst, src)
			// Signed zeros: exp(-0) is 1, the odd functions keep the sign.
			if c.name == "tanh" && math.Float32bits(dst[1]) != 1<<31 {
				t.Errorf("tanh(-0) = %g, want -0", dst[1])
			}
		}
	})
}

// TestVecSizes checks every kernel at lengths around the vector widths
// and at unaligned offsets, in place and not, against the float64
// meaning, and that nothing past the end is written.
func TestVecSizes(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	eachVec(t, func(t *testing.T) {
		for _, c := range vecCases {
			for _, n := range []int{0, 1, 7, 8, 9, 15, 16, 17, 31, 63, 1000} {
				for _, off := range []int{0, 1, 3} {
					buf := make([]float32, n+off+4)
					for i := range buf {
						buf[i] = float32(r.NormFloat64() * 8)
					}
					src := append([]float32(nil), buf[off:off+n]...)
					out := make([]float32, len(buf))
					for i := range out {
						out[i] = 42
					}
					c.run(out[off:off+n], buf[off:off+n])
					checkVec(t, c, out[off:off+n], src)
					for i, v := range out {
						if (i < off || i >= off+n) && v != 42 {
							t.Fatalf("%s n=%d off=%d wrote out[%d]", c.name, n, off, i)
						}
					}
					c.run(buf[off:off+n], buf[off:off+n]) // in place
					for i := range n {
						if math.Float32bits(buf[off+i]) != math.Float32bits(out[off+i]) {
							t.Fatalf("%s n=%d off=%d in place differs at %d", c.name, n, off, i)
						}
					}
				}
			}
		}
	})
}

// TestVecSweep measures each kernel's largest error over a dense sweep
// of float32 bit patterns (every 509th), positive and negative.
func TestVecSweep(t *testing.T) {
	step := uint32(509)
	if testing.Short() {
		step = 8191
	}
	eachVec(t, func(t *testing.T) {
		for _, c := range vecCases {
			src := make([]float32, 0, 1<<16)
			dst := make([]float32, 1<<16)
			worst, worstX := 0.0, float32(0)
			flush := func() {
				defer func() { src = src[:0] }()
				c.run(dst[:len(src)], src)
				for i, x := range src {
					d := ulpDiff(dst[i], c.ref(x), c.tiny)
					if d > c.ulps(x) {
						t.Errorf("%s(%g) = %g, want %g (%g ulps)", c.name, x, dst[i], c.ref(x), d)
						return
					}
					if d > worst {
						worst, worstX = d, x
					}
				}
			}
			for b := uint64(0); b < 1<<32; b += uint64(step) {
				src = append(src, math.Float32frombits(uint32(b)))
				if len(src) == cap(src) {
					flush()
				}
			}
			flush()
			t.Logf("%s: at most %g ulps (at %g)", c.name, worst, worstX)
		}
	})
}

// TestVecSetsAgree checks that the vector sets compute the same bits:
// their arithmetic is the same lane by lane.
func TestVecSetsAgree(t *testing.T) {
	if len(vecSets) < 2 {
		t.Skip("fewer than two vector sets on this CPU")
	}
	r := rand.New(rand.NewPCG(9, 10))
	src := make([]float32, 1001)
	for i := range src {
		src[i] = float32(r.NormFloat64() * 20)
	}
	copy(src, specials)
	old := activeVec
	defer func() { activeVec = old }()
	for _, c := range vecCases {
		var first []float32
		for _, s := range vecSets {
			activeVec = s
			dst := make([]float32, len(src))
			c.run(dst, src)
			if first == nil {
				first = dst
				continue
			}
			for i := range dst {
				if math.Float32bits(dst[i]) != math.Float32bits(first[i]) && !(dst[i] != dst[i] && first[i] != first[i]) {
					t.Fatalf("%s(%g): %s gives %g, %s %g", c.name, src[i], s.name, dst[i], vecSets[0].name, first[i])
				}
			}
		}
	}
}

func FuzzVec(f *testing.F) {
	var seed []byte
	for _, x := range specials {
		seed = binary.LittleEndian.AppendUint32(seed, math.Float32bits(x))
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		src := make([]float32, len(data)/4)
		for i := range src {
			src[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
		}
		old := activeVec
		defer func() { activeVec = old }()
		for _, s := range append([]*vecSet{nil}, vecSets...) {
			activeVec = s
			for _, c := range vecCases {
				dst := make([]float32, len(src))
				c.run(dst, src)
				for i, x := range src {
					if d := ulpDiff(dst[i], c.ref(x), c.tiny); d > c.ulps(x) {
						t.Fatalf("%s %s(%g) = %g, want %g", fmt.Sprint(s != nil), c.name, x, dst[i], c.ref(x))
					}
				}
			}
			want := negInf32
			for _, x := range src {
				want = max(want, x)
			}
			// ±0 may come out either way, as the sign of a zero maximum
			// means nothing to the softmax.
			if got := maxSlice(src); got != want && !(got != got && want != want) {
				t.Fatalf("%s maxSlice = %g, want %g", fmt.Sprint(s != nil), got, want)
			}
		}
	})
}

// BenchmarkVec times each slice kernel on 4096 elements with each set:
// "go" is the portable twin, what every kernel ran before the vector
// sets.
func BenchmarkVec(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	src := make([]float32, 4096)
	for i := range src {
		src[i] = float32(r.NormFloat64() * 3)
	}
	dst := make([]float32, len(src))
	old := activeVec
	defer func() { activeVec = old }()
	for _, c := range vecCases {
		for _, s := range append([]*vecSet{nil}, vecSets...) {
			name := "go"
			if s != nil {
				name = s.name
			}
			b.Run(c.name+"/"+name, func(b *testing.B) {
				activeVec = s
				b.SetBytes(int64(4 * len(src)))
				for b.Loop() {
					c.run(dst, src)
				}
			})
		}
	}
}

// TestAdamWUpdate checks one AdamW step of each set against the formula
// in float64, at lengths around the vector widths and unaligned offsets,
// and that a NaN gradient poisons its own element only.
func TestAdamWUpdate(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const b1, b2, step, rc2, eps, wd = 0.9, 0.999, 1e-3, 1.5, 1e-8, 1e-4
	eachVec(t, func(t *testing.T) {
		for _, n := range []int{0, 1, 7, 15, 16, 17, 63, 1000, 5000} {
			off := n % 3
			mk := func(scale float64, abs bool) []float32 {
				s := make([]float32, n+off)
				for i := range s {
					x := r.NormFloat64() * scale
					if abs {
						x = math.Abs(x)
					}
					s[i] = float32(x)
				}
				return s[off:]
			}
			p, g, m, v := mk(1, false), mk(0.1, false), mk(0.01, false), mk(1e-4, true)
			if n > 5 {
				g[5] = float32(math.NaN())
			}
			p0, m0, v0 := append([]float32(nil), p...), append([]float32(nil), m...), append([]float32(nil), v...)
			AdamWUpdate(p, g, m, v, b1, b2, step, rc2, eps, wd)
			for i := range n {
				// The kernels round the hyperparameters to float32.
				f := func(x float64) float64 { return float64(float32(x)) }
				gi := float64(g[i])
				mi := f(b1)*float64(m0[i]) + float64(1-float32(b1))*gi
				vi := f(b2)*float64(v0[i]) + float64(1-float32(b2))*gi*gi
				mScale := math.Abs(float64(m0[i])) + math.Abs(gi)
				upd := f(step)*mi/(math.Sqrt(vi)*f(rc2)+f(eps)) + f(wd)*float64(p0[i])
				pi := float64(p0[i]) - upd
				if i == 5 {
					if p[i] == p[i] || m[i] == m[i] || v[i] == v[i] {
						t.Errorf("n=%d: a NaN gradient gives p=%g m=%g v=%g", n, p[i], m[i], v[i])
					}
					continue
				}
				if math.Abs(float64(p[i])-pi) > 1e-6*(math.Abs(pi)+math.Abs(upd)) ||
					math.Abs(float64(m[i])-mi) > 1e-6*mScale || math.Abs(float64(v[i])-vi) > 1e-6*vi {
					t.Fatalf("n=%d [%d]: p %g m %g v %g, want %g %g %g", n, i, p[i], m[i], v[i], pi, mi, vi)
				}
			}
		}
	})
}

func BenchmarkAdamW(b *testing.B) {
	const n = 1 << 16
	p, g, m, v := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range g {
		g[i] = float32(i%7) * 0.01
	}
	old := activeVec
	defer func() { activeVec = old }()
	for _, s := range append([]*vecSet{nil}, vecSets...) {
		name := "go"
		if s != nil {
			name = s.name
		}
		b.Run(name, func(b *testing.B) {
			activeVec = s
			b.SetBytes(16 * n)
			for b.Loop() {
				AdamWUpdate(p, g, m, v, 0.9, 0.999, 1e-3, 1, 1e-8, 1e-4)
			}
		})
	}
}

// TestArithRowVec checks that the vector kernels of arithRowF32 give the
// portable loops' results bit for bit, for each op and broadcast mode, at
// lengths around the vector widths and unaligned offsets, with special
// values among the operands, and write nothing past the row.
func TestArithRowVec(t *testing.T) {
	if len(vecSets) == 0 {
		t.Skip("no vector kernels on this CPU")
	}
	r := rand.New(rand.NewPCG(5, 6))
	old := activeVec
	defer func() { activeVec = old }()
	for _, s := range vecSets {
		for _, op := range []BinaryOp{Add, Sub, Mul, Div} {
			for _, st := range [][2]int{{1, 1}, {1, 0}, {0, 1}, {0, 0}} {
				for _, n := range []int{0, 1, 7, 15, 16, 17, 63, 64, 65, 1000} {
					off := n % 3
					mk := func() []float32 {
						b := make([]float32, n+off+1)
						for i := range b {
							b[i] = float32(r.NormFloat64())
						}
						for i := 0; i < len(b) && i < len(specials); i += 5 {
							b[i] = specials[(i+n)%len(specials)]
						}
						return b[off:]
					}
					x, y := mk(), mk()
					run := func(vs *vecSet) []float32 {
						activeVec = vs
						out := make([]float32, n+1)
						out[n] = 42
						arithRowF32(op, out[:n], x, st[0], y, st[1])
						return out
					}
					want, got := run(nil), run(s)
					for i := range want {
						if math.Float32bits(got[i]) != math.Float32bits(want[i]) && !(got[i] != got[i] && want[i] != want[i]) {
							t.Fatalf("%s %s strides %v n=%d: [%d] = %g, want %g", s.name, op, st, n, i, got[i], want[i])
						}
					}
				}
			}
		}
	}
}

func BenchmarkArithRow(b *testing.B) {
	x, y, dst := make([]float32, 4096), make([]float32, 4096), make([]float32, 4096)
	for i := range x {
		x[i], y[i] = float32(i), float32(i%13)+1
	}
	old := activeVec
	defer func() { activeVec = old }()
	for _, s := range append([]*vecSet{nil}, vecSets...) {
		name := "go"
		if s != nil {
			name = s.name
		}
		for _, op := range []BinaryOp{Add, Mul, Div} {
			b.Run(op.String()+"/"+name, func(b *testing.B) {
				activeVec = s
				b.SetBytes(12 * 4096)
				for b.Loop() {
					arithRowF32(op, dst, x, 1, y, 1)
				}
			})
		}
	}
}

// TestNormKernels checks LayerNorm's and RMSNorm's float64 kernels of
// each set, and their gradients': the sums and dot products against the
// portable ones (to float64 rounding, as the lanes add in another
// order), normApply and normGradApply bit for bit, at lengths
// around the vector widths and unaligned offsets; and that NaN and Inf
// reach the sums.
func TestNormKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	old := activeVec
	defer func() { activeVec = old }()
	for _, s := range vecSets {
		for _, n := range []int{0, 1, 3, 4, 7, 8, 15, 16, 17, 63, 1000} {
			off := n % 3
			buf := make([]float32, n+off)
			for i := range buf {
				buf[i] = float32(r.NormFloat64()*3 + 1)
			}
			x := buf[off:]
			mean := 0.7
			activeVec = nil
			wantSum, wantSq := sum64(x), sumSq64(x, mean)
			want := make([]float32, n+1)
			normApply(want[:n], x, mean, 1.3)
			activeVec = s
			gotSum, gotSq := sum64(x), sumSq64(x, mean)
			got := make([]float32, n+1)
			got[n] = 42
			normApply(got[:n], x, mean, 1.3)
			if math.Abs(gotSum-wantSum) > 1e-12*(1+math.Abs(wantSum)) || math.Abs(gotSq-wantSq) > 1e-12*(1+wantSq) {
				t.Errorf("%s n=%d: sums %g %g, want %g %g", s.name, n, gotSum, gotSq, wantSum, wantSq)
			}
			for i := range n {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%s n=%d: normApply [%d] = %g, want %g", s.name, n, i, got[i], want[i])
				}
			}
			if got[n] != 42 {
				t.Fatalf("%s n=%d: normApply wrote past the end", s.name, n)
			}
			// The gradient's kernels: a dot product to float64
			// rounding, the apply bit for bit.
			dy := make([]float32, n)
			for i := range dy {
				dy[i] = float32(r.NormFloat64())
			}
			c := [3]float64{1.3, -0.4, 0.05}
			activeVec = nil
			wantDot := dot64(x, dy, mean)
			normGradApply(want[:n], x, dy, mean, &c)
			activeVec = s
			gotDot := dot64(x, dy, mean)
			normGradApply(got[:n], x, dy, mean, &c)
			if math.Abs(gotDot-wantDot) > 1e-12*(1+math.Abs(wantDot)) {
				t.Errorf("%s n=%d: dot %g, want %g", s.name, n, gotDot, wantDot)
			}
			for i := range n {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%s n=%d: normGradApply [%d] = %g, want %g", s.name, n, i, got[i], want[i])
				}
			}
			if got[n] != 42 {
				t.Fatalf("%s n=%d: normGradApply wrote past the end", s.name, n)
			}
			// The widening row sum, bit for bit, into a longer acc.
			accWant, accGot := make([]float64, n+1), make([]float64, n+1)
			for i := range accWant {
				accWant[i] = float64(i) * 0.25
				accGot[i] = accWant[i]
			}
			activeVec = nil
			widenAdd(accWant, x)
			activeVec = s
			widenAdd(accGot, x)
			for i := range accWant {
				if math.Float64bits(accGot[i]) != math.Float64bits(accWant[i]) {
					t.Fatalf("%s n=%d: widenAdd [%d] = %g, want %g", s.name, n, i, accGot[i], accWant[i])
				}
			}
		}
		activeVec = s
		for _, sp := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
			x := make([]float32, 37)
			x[20] = sp
			if got, want := sum64(x), float64(sp); !(got == want || got != got && want != want) {
				t.Errorf("%s: sum with %g = %g", s.name, sp, got)
			}
			if got := sumSq64(x, 0); !(math.IsInf(got, 1) || got != got && sp != sp) {
				t.Errorf("%s: sum of squares with %g = %g", s.name, sp, got)
			}
		}
	}
}

// TestRowKernels checks maxSlice and expSumSlice's sum, the attention
// tiles' row kernels, against plain loops at awkward sizes and offsets,
// with a NaN, ±Inf or -Inf-only rows planted.
func TestRowKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	eachVec(t, func(t *testing.T) {
		for _, n := range []int{0, 1, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 1000} {
			for _, off := range []int{0, 1, 3} {
				for plant := range 5 {
					buf := make([]float32, n+off)
					for i := range buf {
						buf[i] = float32(r.NormFloat64() * 4)
					}
					x := buf[off:]
					if n > 0 {
						at := r.IntN(n)
						switch plant {
						case 1:
							x[at] = nan
						case 2:
							x[at] = inf
						case 3:
							x[at] = -inf
						case 4:
							for i := range x {
								x[i] = -inf
							}
						}
					}
					want := negInf32
					for _, v := range x {
						want = max(want, v)
					}
					got := maxSlice(x)
					if got != want && !(got != got && want != want) {
						t.Fatalf("n=%d off=%d plant=%d: maxSlice = %g, want %g", n, off, plant, got, want)
					}
					if want != want || want == inf || want == negInf32 {
						continue
					}
					dst := make([]float32, n)
					sum := expSumSlice(dst, x, want)
					ref := 0.0
					for i, v := range dst {
						ref += float64(v)
						if d := ulpDiff(v, math.Exp(float64(x[i]-want)), 0); d > 3 {
							t.Fatalf("n=%d off=%d: e^(%g - %g) = %g", n, off, x[i], want, v)
						}
					}
					if math.Abs(float64(sum)-ref) > 1e-6*ref+1e-30 {
						t.Fatalf("n=%d off=%d plant=%d: expSumSlice sum = %g, want %g", n, off, plant, sum, ref)
					}
				}
			}
		}
	})
}
