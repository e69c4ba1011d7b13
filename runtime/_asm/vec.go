package main

import (
	"fmt"
	"math"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// The vector kernels map a slice of float32 to another, a whole vector
// of lanes at a time; the Go side (runtime/vec.go) hands them a length
// that is a multiple of the lanes and finishes the tail itself. All of
// them rest on one exponential: x = n·ln2 + r with |r| ≤ ln2/2,
// e^r = 1 + r + r²·P(r) with the degree-5 P of the runtime's scalar
// exp32, and 2^n built in the exponent bits. n is split in two halves,
// 2^n = 2^⌊n/2⌋·2^(n-⌊n/2⌋), so that after clamping x to [-104, 89]
// overflow rounds to +Inf and underflow to a subnormal or 0 in the last
// multiplication, with no blend.
//
// NaN needs no blend either: the clamps are VMINPS/VMAXPS with x as the
// source that those instructions return when an operand is NaN.

// Each constant fills one 64-byte row of vecconst, so that a kernel of
// either width can use it as a memory operand.
const (
	cLog2e = iota
	cLn2Hi
	cLn2Lo
	cP5
	cP4
	cP3
	cP2
	cP1
	cP0
	cOne
	cBias // int32 127, the exponent bias
	cExpHi
	cExpLo
	cAbs  // 0x7fffffff
	cSign // 0x80000000
	cTanhHi
	cTwo
	cGeluA // -2·√(2/π)
	cGeluB // -2·√(2/π)·0.044715
	cGeluC // 3·cGeluB
	cNegInf
	nConst
)

var vecConst Mem

func vecConstants() {
	vecConst = GLOBL("vecconst", RODATA|NOPTR)
	f := func(v float64) uint32 { return math.Float32bits(float32(v)) }
	vals := [nConst]uint32{
		cLog2e: f(math.Log2E),
		// ln2 in two parts: cLn2Hi has few enough bits that n·cLn2Hi is
		// exact for |n| ≤ 2^9.
		cLn2Hi: f(0.693359375),
		cLn2Lo: f(-2.12194440e-4),
		cP5:    f(1.9875691500e-4),
		cP4:    f(1.3981999507e-3),
		cP3:    f(8.3334519073e-3),
		cP2:    f(4.1665795894e-2),
		cP1:    f(1.6666665459e-1),
		cP0:    f(5.0000001201e-1),
		cOne:   f(1),
		cBias:  127,
		// e^89 overflows float32 and e^-104 is below half the smallest
		// subnormal, so clamping there changes no result; n stays within
		// [-150, 129] and its halves within the normal exponents.
		cExpHi:  f(89),
		cExpLo:  f(-104),
		cAbs:    0x7fffffff,
		cSign:   0x80000000,
		cTanhHi: f(10), // tanh 10 rounds to 1
		cTwo:    f(2),
		cGeluA:  f(-2 * math.Sqrt(2/math.Pi)),
		cGeluB:  f(-2 * math.Sqrt(2/math.Pi) * 0.044715),
		cGeluC:  f(-6 * math.Sqrt(2/math.Pi) * 0.044715),
		cNegInf: f(math.Inf(-1)),
	}
	for i, v := range vals {
		for l := range 16 {
			DATA(i*64+l*4, U32(v))
		}
	}
}

func vc(i int) Mem { return vecConst.Offset(i * 64) }

// vecWidth is what differs between the AVX-512 and AVX2 kernels.
type vecWidth struct {
	suffix string
	lanes  int
	reg    func() reg.VecVirtual
	and    func(m, x, dst Op) // bitwise and: VPANDD needs only AVX512F on zmm
	xor    func(m, x, dst Op)
}

var widths = []vecWidth{
	{"AVX512", 16, ZMM, func(m, x, d Op) { VPANDD(m, x, d) }, func(m, x, d Op) { VPXORD(m, x, d) }},
	{"AVX2", 8, YMM, func(m, x, d Op) { VANDPS(m, x, d) }, func(m, x, d Op) { VXORPS(m, x, d) }},
}

func vecKernels() {
	vecConstants()
	normKernels()
	for _, w := range widths {
		vecKernel("vecExp", w, true, func(x, sub, lo, hi, one reg.VecVirtual) reg.VecVirtual {
			VSUBPS(sub, x, x)
			return expCore(w, clamp(x, lo, hi))
		})
		vecKernel("vecSigmoid", w, false, func(x, _, lo, hi, one reg.VecVirtual) reg.VecVirtual {
			w.xor(vc(cSign), x, x)
			d := expCore(w, clamp(x, lo, hi))
			VADDPS(one, d, d)
			VDIVPS(d, one, d)
			return d
		})
		vecKernel("vecSilu", w, false, func(x, _, lo, hi, one reg.VecVirtual) reg.VecVirtual {
			t := w.reg()
			w.xor(vc(cSign), x, t)
			d := expCore(w, clamp(t, lo, hi))
			VADDPS(one, d, d)
			VDIVPS(d, x, d)
			return d
		})
		// GELU's 0.5·(1 + tanh u) is 1/(1 + e^(-2u)): no cancellation
		// for negative x.
		vecKernel("vecGelu", w, false, func(x, _, lo, hi, one reg.VecVirtual) reg.VecVirtual {
			// -2u = x·(a + b·x²) in three roundings.
			t, b := w.reg(), w.reg()
			VMULPS(x, x, t)
			VMOVUPS(vc(cGeluB), b)
			VFMADD213PS(vc(cGeluA), b, t)
			VMULPS(x, t, t)
			d := expCore(w, clamp(t, lo, hi))
			VADDPS(one, d, d)
			VDIVPS(d, x, d)
			return d
		})
		// GELU's derivative, s·(1 - x·q·s·e) with e = e^(-2u) = e^(x·p),
		// s = 1/(1 + e), p = a + b·x² and q = a + 3b·x² = -2·du/dx:
		// 0.5(1 + tanh u) is s and 0.5(1 - tanh² u) is 2·s·(s·e), where
		// s·e is 1 - s without its cancellation. x is clamped to ±10
		// first, where the derivative is 1 (and 1e-36, for 0) to float32
		// precision, so that e stays finite.
		vecKernel("vecGeluDeriv", w, false, func(x, _, lo, hi, one reg.VecVirtual) reg.VecVirtual {
			ten := w.reg()
			VMOVUPS(vc(cTanhHi), ten)
			VMINPS(x, ten, x) // x is returned when it is NaN
			w.xor(vc(cSign), ten, ten)
			VMAXPS(x, ten, x)
			x2, p, q := w.reg(), w.reg(), w.reg()
			VMULPS(x, x, x2)
			VMOVUPS(vc(cGeluB), p)
			VFMADD213PS(vc(cGeluA), x2, p) // p = b·x² + a
			VMOVUPS(vc(cGeluC), q)
			VFMADD213PS(vc(cGeluA), x2, q) // q = 3b·x² + a
			VMULPS(x, p, p)
			e := expCore(w, clamp(p, lo, hi))
			s := w.reg()
			VADDPS(one, e, s)
			VDIVPS(s, one, s) // s = 1/(1 + e)
			VMULPS(s, e, e)   // s·e
			VMULPS(x, q, q)
			VMULPS(e, q, q)
			VSUBPS(q, one, q) // 1 - x·q·s·e
			VMULPS(s, q, q)
			return q
		})
		vecKernel("vecTanh", w, false, func(x, _, lo, hi, one reg.VecVirtual) reg.VecVirtual {
			return tanhCore(w, x, one)
		})
		adamwKernel(w)
		rowKernels(w)
		for op := range arithOps {
			for _, mode := range arithModes {
				arithKernel(w, op, mode)
			}
		}
	}
	attnShortKernels()
}

// clamp limits x to [lo, hi] in place and returns it; a NaN stays NaN
// because x is the operand VMINPS and VMAXPS return when one is NaN.
func clamp(x, lo, hi reg.VecVirtual) reg.VecVirtual {
	VMINPS(x, hi, x)
	VMAXPS(x, lo, x)
	return x
}

// reduce computes, for x, n = round(x·log2 e) as int32 lanes and
// q = e^r - 1 = r + r²·P(r) where r = x - n·ln2, and returns both.
func reduce(w vecWidth, x reg.VecVirtual) (n, q reg.VecVirtual) {
	t, fn := w.reg(), w.reg()
	n = w.reg()
	VMULPS(vc(cLog2e), x, t)
	VCVTPS2DQ(t, n) // rounds to nearest under Go's MXCSR
	VCVTDQ2PS(n, fn)
	r := x
	VFNMADD231PS(vc(cLn2Hi), fn, r)
	VFNMADD231PS(vc(cLn2Lo), fn, r)
	q = w.reg()
	VMOVUPS(vc(cP5), q)
	for _, c := range []int{cP4, cP3, cP2, cP1, cP0} {
		VFMADD213PS(vc(c), r, q) // q = r·q + c
	}
	r2 := t
	VMULPS(r, r, r2)
	VFMADD213PS(r, r2, q) // q = r²·q + r
	return n, q
}

// expCore returns e^x for x clamped to [-104, 89].
func expCore(w vecWidth, x reg.VecVirtual) reg.VecVirtual {
	n, y := reduce(w, x)
	VADDPS(vc(cOne), y, y)
	h := w.reg()
	VPSRAD(Imm(1), n, h)
	VPSUBD(h, n, n)
	for _, e := range []reg.VecVirtual{h, n} {
		VPADDD(vc(cBias), e, e)
		VPSLLD(Imm(23), e, e)
		VMULPS(e, y, y)
	}
	return y
}

// tanhCore returns tanh x = sign(x)·m/(m+2), m = e^(2|x|) - 1, with
// |x| clamped to 10. m comes from the reduction without cancellation:
// m = 2^n·q + (2^n - 1), where 2^n - 1 is exact and, for n = 0, m = q.
func tanhCore(w vecWidth, x, one reg.VecVirtual) reg.VecVirtual {
	a, s, hi := w.reg(), w.reg(), w.reg()
	w.and(vc(cAbs), x, a)
	w.and(vc(cSign), x, s)
	VMOVUPS(vc(cTanhHi), hi)
	VMINPS(a, hi, a)
	VADDPS(a, a, a)
	n, q := reduce(w, a)
	VPADDD(vc(cBias), n, n)
	VPSLLD(Imm(23), n, n) // 2^n, n ∈ [0, 29]
	m := hi
	VSUBPS(one, n, m) // 2^n - 1
	VFMADD213PS(m, n, q)
	d := n
	VADDPS(vc(cTwo), q, d)
	VDIVPS(d, q, q)
	w.xor(s, q, q)
	return q
}

// vecKernel generates
//
//	func name+suffix(dst, src []float32[, sub float32])
//
// which sets dst[i] = f(src[i]) (f(src[i] - sub) for the exponential)
// for i below len(src) rounded down to a multiple of the lanes. dst must
// be as long.
func vecKernel(name string, w vecWidth, withSub bool, f func(x, sub, lo, hi, one reg.VecVirtual) reg.VecVirtual) {
	name += w.suffix
	sig := "func(dst, src []float32)"
	if withSub {
		sig = "func(dst, src []float32, sub float32)"
	}
	TEXT(name, NOSPLIT, sig)
	Pragma("noescape") // the kernels keep no pointer: callers may pass stack buffers
	Doc(fmt.Sprintf("%s is a %d-lane kernel of vec.go; it handles len(src) rounded down to a multiple of %d.", name, w.lanes, w.lanes))
	dst := Load(Param("dst").Base(), GP64())
	src := Load(Param("src").Base(), GP64())
	n := Load(Param("src").Len(), GP64())
	var sub reg.VecVirtual
	if withSub {
		s := Load(Param("sub"), XMM())
		sub = w.reg()
		VBROADCASTSS(s, sub)
	}
	lo, hi, one := w.reg(), w.reg(), w.reg()
	VMOVUPS(vc(cExpLo), lo)
	VMOVUPS(vc(cExpHi), hi)
	VMOVUPS(vc(cOne), one)
	Label(name + "_loop")
	CMPQ(n, Imm(uint64(w.lanes)))
	JL(LabelRef(name + "_done"))
	x := w.reg()
	VMOVUPS(Mem{Base: src}, x)
	y := f(x, sub, lo, hi, one)
	VMOVUPS(y, Mem{Base: dst})
	ADDQ(Imm(uint64(w.lanes*4)), src)
	ADDQ(Imm(uint64(w.lanes*4)), dst)
	SUBQ(Imm(uint64(w.lanes)), n)
	JMP(LabelRef(name + "_loop"))
	Label(name + "_done")
	VZEROUPPER()
	RET()
}
