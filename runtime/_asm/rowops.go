package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// The row kernels are the online softmax's per-row work in the attention
// tiles: the row maximum, then e^(s - m) written back with its sum. A
// tile row is short (64 keys), so each kernel reduces its lanes to one
// value itself instead of handing a vector back to Go.

// rowKernels generates the row kernels of width w.
func rowKernels(w vecWidth) {
	maxKernel(w)
	expSumKernel(w)
	expSumRowsKernel(w)
}

// hreduce folds the lanes of x into its lowest lane with op (VMAXPS or
// VADDPS); x is clobbered.
func hreduce(w vecWidth, x reg.VecVirtual, op func(a, b, dst Op)) {
	y := x.AsY()
	if w.lanes == 16 {
		hi := YMM()
		VEXTRACTF64X4(Imm(1), x, hi)
		op(hi, y, y)
	}
	xl, hi := x.AsX(), XMM()
	VEXTRACTF128(Imm(1), y, hi)
	op(hi, xl, xl)
	VMOVHLPS(xl, xl, hi) // lanes 2, 3 into 0, 1
	op(hi, xl, xl)
	VPSHUFD(Imm(1), xl, hi) // lane 1 into 0
	op(hi, xl, xl)
}

// maxKernel generates
//
//	func vecMax+suffix(x []float32) (m float32, nan uint32)
//
// m is the largest of x[i] for i below len(x) rounded down to a multiple
// of the lanes (-Inf for none) and nan is non-zero when one of them is
// NaN, which VMAXPS does not propagate: the Go side then returns NaN.
func maxKernel(w vecWidth) {
	name := "vecMax" + w.suffix
	TEXT(name, NOSPLIT, "func(x []float32) (m float32, nan uint32)")
	Pragma("noescape") // the kernels keep no pointer: callers may pass stack buffers
	Doc(fmt.Sprintf("%s is a %d-lane row maximum of vec.go; it handles len(x) rounded down to a multiple of %d.", name, w.lanes, w.lanes))
	src := Load(Param("x").Base(), GP64())
	n := Load(Param("x").Len(), GP64())
	acc := w.reg()
	VBROADCASTSS(vc(cNegInf), acc)
	var kacc reg.Register
	var vnan reg.VecVirtual
	if w.lanes == 16 {
		kacc = K()
		KXORW(kacc, kacc, kacc)
	} else {
		vnan = w.reg()
		VXORPS(vnan, vnan, vnan)
	}
	Label(name + "_loop")
	CMPQ(n, Imm(uint64(w.lanes)))
	JL(LabelRef(name + "_done"))
	x := w.reg()
	VMOVUPS(Mem{Base: src}, x)
	VMAXPS(x, acc, acc)
	if w.lanes == 16 {
		k := K()
		VCMPPS(Imm(3), x, x, k) // unordered: NaN
		KORW(k, kacc, kacc)
	} else {
		t := w.reg()
		VCMPPS(Imm(3), x, x, t)
		VORPS(t, vnan, vnan)
	}
	ADDQ(Imm(uint64(w.lanes*4)), src)
	SUBQ(Imm(uint64(w.lanes)), n)
	JMP(LabelRef(name + "_loop"))
	Label(name + "_done")
	hreduce(w, acc, func(a, b, d Op) { VMAXPS(a, b, d) })
	Store(acc.AsX(), ReturnIndex(0))
	r := GP32()
	if w.lanes == 16 {
		KMOVW(kacc, r)
	} else {
		VMOVMSKPS(vnan, r)
	}
	Store(r, ReturnIndex(1))
	VZEROUPPER()
	RET()
}

// expSumKernel generates
//
//	func vecExpSum+suffix(dst, src []float32, sub float32) float32
//
// which sets dst[i] = e^(src[i] - sub), as vecExp does, and returns their
// float32 sum, for i below len(src) rounded down to a multiple of the
// lanes.
func expSumKernel(w vecWidth) {
	name := "vecExpSum" + w.suffix
	TEXT(name, NOSPLIT, "func(dst, src []float32, sub float32) float32")
	Pragma("noescape") // the kernels keep no pointer: callers may pass stack buffers
	Doc(fmt.Sprintf("%s is a %d-lane exponential and sum of vec.go; it handles len(src) rounded down to a multiple of %d.", name, w.lanes, w.lanes))
	dst := Load(Param("dst").Base(), GP64())
	src := Load(Param("src").Base(), GP64())
	n := Load(Param("src").Len(), GP64())
	s := Load(Param("sub"), XMM())
	sub := w.reg()
	VBROADCASTSS(s, sub)
	lo, hi, acc := w.reg(), w.reg(), w.reg()
	VMOVUPS(vc(cExpLo), lo)
	VMOVUPS(vc(cExpHi), hi)
	w.xor(acc, acc, acc)
	Label(name + "_loop")
	CMPQ(n, Imm(uint64(w.lanes)))
	JL(LabelRef(name + "_done"))
	x := w.reg()
	VMOVUPS(Mem{Base: src}, x)
	VSUBPS(sub, x, x)
	y := expCore(w, clamp(x, lo, hi))
	VMOVUPS(y, Mem{Base: dst})
	VADDPS(y, acc, acc)
	ADDQ(Imm(uint64(w.lanes*4)), src)
	ADDQ(Imm(uint64(w.lanes*4)), dst)
	SUBQ(Imm(uint64(w.lanes)), n)
	JMP(LabelRef(name + "_loop"))
	Label(name + "_done")
	hreduce(w, acc, func(a, b, d Op) { VADDPS(a, b, d) })
	Store(acc.AsX(), ReturnIndex(0))
	VZEROUPPER()
	RET()
}

// expSumRowsKernel generates
//
//	func vecExpSumRows+suffix(x *float32, stride, rows, n int, subs, sums *float32)
//
// which is vecExpSum on each of rows rows of n elements (a multiple of
// the lanes), row r at x + r·stride in place, with sub subs[r], its sum
// into sums[r]: the rows of a short attention tile in one call instead
// of one each. A row of 16 keys is a single vector whose exponential is a
// chain of dependent instructions; across rows the chains are
// independent, and the out-of-order core overlaps them only within one
// call. Each row's sum is vecExpSum's, bit for bit.
func expSumRowsKernel(w vecWidth) {
	name := "vecExpSumRows" + w.suffix
	TEXT(name, NOSPLIT, "func(x *float32, stride, rows, n int, subs, sums *float32)")
	Pragma("noescape") // the kernels keep no pointer: callers may pass stack buffers
	Doc(fmt.Sprintf("%s is vecExpSum%s on rows rows of n elements, stride apart, in place, subtracting subs[r] and summing into sums[r]; n must be a multiple of %d.", name, w.suffix, w.lanes))
	px := Load(Param("x"), GP64())
	stride := Load(Param("stride"), GP64())
	SHLQ(Imm(2), stride)
	rows := Load(Param("rows"), GP64())
	n := Load(Param("n"), GP64())
	subs := Load(Param("subs"), GP64())
	sums := Load(Param("sums"), GP64())
	lo, hi := w.reg(), w.reg()
	VMOVUPS(vc(cExpLo), lo)
	VMOVUPS(vc(cExpHi), hi)
	Label(name + "_row")
	TESTQ(rows, rows)
	JZ(LabelRef(name + "_done"))
	sub, acc := w.reg(), w.reg()
	VBROADCASTSS(Mem{Base: subs}, sub)
	w.xor(acc, acc, acc)
	p, j := GP64(), GP64()
	MOVQ(px, p)
	MOVQ(n, j)
	Label(name + "_vec")
	CMPQ(j, Imm(uint64(w.lanes)))
	JL(LabelRef(name + "_sum"))
	x := w.reg()
	VMOVUPS(Mem{Base: p}, x)
	VSUBPS(sub, x, x)
	y := expCore(w, clamp(x, lo, hi))
	VMOVUPS(y, Mem{Base: p})
	VADDPS(y, acc, acc)
	ADDQ(Imm(uint64(w.lanes*4)), p)
	SUBQ(Imm(uint64(w.lanes)), j)
	JMP(LabelRef(name + "_vec"))
	Label(name + "_sum")
	hreduce(w, acc, func(a, b, d Op) { VADDPS(a, b, d) })
	VMOVSS(acc.AsX(), Mem{Base: sums})
	ADDQ(Imm(4), subs)
	ADDQ(Imm(4), sums)
	ADDQ(stride, px)
	DECQ(rows)
	JMP(LabelRef(name + "_row"))
	Label(name + "_done")
	VZEROUPPER()
	RET()
}
