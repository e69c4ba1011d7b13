package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// normWidth is what the float64 kernels of LayerNorm and RMSNorm need
// of a width: a float32 vector (half the register) widens into a float64
// register of dl lanes and narrows back.
type normWidth struct {
	suffix string
	dl     int // float64 lanes
	wide   func() reg.VecVirtual
	narrow func() reg.VecVirtual
	down   func(src, dst Op) // float64 → float32
}

var normWidths = []normWidth{
	{"AVX512", 8, ZMM, YMM, func(s, d Op) { VCVTPD2PS(s, d) }},
	{"AVX2", 4, YMM, XMM, func(s, d Op) { VCVTPD2PSY(s, d) }},
}

// normSumKernel generates
//
//	func name+suffix(x []float32, mean float64, acc *[8]float64)
//
// which adds x[i] (or, with square, (x[i]-mean)²) in float64 into the
// dl lanes of acc (lane l takes the elements i ≡ l mod dl), for len(x)
// rounded down to a multiple of dl.
func normSumKernel(name string, w normWidth, square bool) {
	name += w.suffix
	TEXT(name, NOSPLIT, "func(x []float32, mean float64, acc *[8]float64)")
	Pragma("noescape") // the kernels keep no pointer: callers may pass stack buffers
	Doc(fmt.Sprintf("%s is a %d-lane float64 sum of vec.go; it handles len(x) rounded down to a multiple of %d.", name, w.dl, w.dl))
	x := Load(Param("x").Base(), GP64())
	n := Load(Param("x").Len(), GP64())
	accp := Load(Param("acc"), GP64())
	acc, mean := w.wide(), w.wide()
	if square {
		m := Load(Param("mean"), XMM())
		VBROADCASTSD(m, mean)
	}
	VMOVUPD(Mem{Base: accp}, acc)
	Label(name + "_loop")
	CMPQ(n, Imm(uint64(w.dl)))
	JL(LabelRef(name + "_done"))
	d := w.wide()
	VCVTPS2PD(Mem{Base: x}, d)
	if square {
		VSUBPD(mean, d, d)
		VFMADD231PD(d, d, acc)
	} else {
		VADDPD(d, acc, acc)
	}
	ADDQ(Imm(uint64(w.dl*4)), x)
	SUBQ(Imm(uint64(w.dl)), n)
	JMP(LabelRef(name + "_loop"))
	Label(name + "_done")
	VMOVUPD(acc, Mem{Base: accp})
	VZEROUPPER()
	RET()
}

// normApplyKernel generates
//
//	func normApply+suffix(dst, x []float32, mean, inv float64)
//
// which sets dst[i] = float32((float64(x[i]) - mean)·inv), rounding as
// the Go expression does, for len(x) rounded down to a multiple of dl.
func normApplyKernel(w normWidth) {
	name := "normApply" + w.suffix
	TEXT(name, NOSPLIT, "func(dst, x []float32, mean, inv float64)")
	Pragma("noescape") // the kernels keep no pointer: callers may pass stack buffers
	Doc(fmt.Sprintf("%s is a %d-lane normalisation of vec.go; it handles len(x) rounded down to a multiple of %d.", name, w.dl, w.dl))
	dst := Load(Param("dst").Base(), GP64())
	x := Load(Param("x").Base(), GP64())
	n := Load(Param("x").Len(), GP64())
	mean, inv := w.wide(), w.wide()
	VBROADCASTSD(Load(Param("mean"), XMM()), mean)
	VBROADCASTSD(Load(Param("inv"), XMM()), inv)
	Label(name + "_loop")
	CMPQ(n, Imm(uint64(w.dl)))
	JL(LabelRef(name + "_done"))
	d, f := w.wide(), w.narrow()
	VCVTPS2PD(Mem{Base: x}, d)
	VSUBPD(mean, d, d)
	VMULPD(inv, d, d)
	w.down(d, f)
	VMOVUPS(f, Mem{Base: dst})
	ADDQ(Imm(uint64(w.dl*4)), x)
	ADDQ(Imm(uint64(w.dl*4)), dst)
	SUBQ(Imm(uint64(w.dl)), n)
	JMP(LabelRef(name + "_loop"))
	Label(name + "_done")
	VZEROUPPER()
	RET()
}

// normDotKernel generates
//
//	func normDot+suffix(x, y []float32, mean float64, acc *[8]float64)
//
// which adds (x[i]-mean)·y[i] in float64 into the dl lanes of acc (lane
// l takes the elements i ≡ l mod dl), for len(x) rounded down to a
// multiple of dl; y is as long as x.
func normDotKernel(w normWidth) {
	name := "normDot" + w.suffix
	TEXT(name, NOSPLIT, "func(x, y []float32, mean float64, acc *[8]float64)")
	Pragma("noescape")
	Doc(fmt.Sprintf("%s is a %d-lane float64 dot product of vec.go; it handles len(x) rounded down to a multiple of %d.", name, w.dl, w.dl))
	x := Load(Param("x").Base(), GP64())
	y := Load(Param("y").Base(), GP64())
	n := Load(Param("x").Len(), GP64())
	accp := Load(Param("acc"), GP64())
	acc, mean := w.wide(), w.wide()
	VBROADCASTSD(Load(Param("mean"), XMM()), mean)
	VMOVUPD(Mem{Base: accp}, acc)
	Label(name + "_loop")
	CMPQ(n, Imm(uint64(w.dl)))
	JL(LabelRef(name + "_done"))
	d, e := w.wide(), w.wide()
	VCVTPS2PD(Mem{Base: x}, d)
	VCVTPS2PD(Mem{Base: y}, e)
	VSUBPD(mean, d, d)
	VFMADD231PD(d, e, acc)
	ADDQ(Imm(uint64(w.dl*4)), x)
	ADDQ(Imm(uint64(w.dl*4)), y)
	SUBQ(Imm(uint64(w.dl)), n)
	JMP(LabelRef(name + "_loop"))
	Label(name + "_done")
	VMOVUPD(acc, Mem{Base: accp})
	VZEROUPPER()
	RET()
}

// normGradKernel generates
//
//	func normGrad+suffix(dst, x, dy []float32, mean float64, c *[3]float64)
//
// which sets dst[i] = float32(c[0]·dy[i] + c[1]·(x[i]-mean) + c[2]),
// computed in float64 as the Go expression of that order does (a product
// and two sums, each rounded: no fused multiply-add), for len(x) rounded
// down to a multiple of dl; dy is as long as x.
func normGradKernel(w normWidth) {
	name := "normGrad" + w.suffix
	TEXT(name, NOSPLIT, "func(dst, x, dy []float32, mean float64, c *[3]float64)")
	Pragma("noescape")
	Doc(fmt.Sprintf("%s is a %d-lane normalisation gradient of vec.go; it handles len(x) rounded down to a multiple of %d.", name, w.dl, w.dl))
	dst := Load(Param("dst").Base(), GP64())
	x := Load(Param("x").Base(), GP64())
	dy := Load(Param("dy").Base(), GP64())
	n := Load(Param("x").Len(), GP64())
	cp := Load(Param("c"), GP64())
	mean, a, b, c := w.wide(), w.wide(), w.wide(), w.wide()
	VBROADCASTSD(Load(Param("mean"), XMM()), mean)
	VBROADCASTSD(Mem{Base: cp}, a)
	VBROADCASTSD(Mem{Base: cp, Disp: 8}, b)
	VBROADCASTSD(Mem{Base: cp, Disp: 16}, c)
	Label(name + "_loop")
	CMPQ(n, Imm(uint64(w.dl)))
	JL(LabelRef(name + "_done"))
	d, g, f := w.wide(), w.wide(), w.narrow()
	VCVTPS2PD(Mem{Base: x}, d)
	VCVTPS2PD(Mem{Base: dy}, g)
	VSUBPD(mean, d, d)
	VMULPD(a, g, g)
	VMULPD(b, d, d)
	VADDPD(d, g, g)
	VADDPD(c, g, g)
	w.down(g, f)
	VMOVUPS(f, Mem{Base: dst})
	ADDQ(Imm(uint64(w.dl*4)), x)
	ADDQ(Imm(uint64(w.dl*4)), dy)
	ADDQ(Imm(uint64(w.dl*4)), dst)
	SUBQ(Imm(uint64(w.dl)), n)
	JMP(LabelRef(name + "_loop"))
	Label(name + "_done")
	VZEROUPPER()
	RET()
}

// widenAddKernel generates
//
//	func widenAdd+suffix(acc []float64, x []float32)
//
// which adds float64(x[i]) to acc[i] for len(x) rounded down to a
// multiple of dl: a column sum's row, in the float64 the Go loop adds in
// (so the sums are that loop's, bit for bit).
func widenAddKernel(w normWidth) {
	name := "widenAdd" + w.suffix
	TEXT(name, NOSPLIT, "func(acc []float64, x []float32)")
	Pragma("noescape")
	Doc(fmt.Sprintf("%s is a %d-lane widening row sum of reduce.go; it handles len(x) rounded down to a multiple of %d.", name, w.dl, w.dl))
	acc := Load(Param("acc").Base(), GP64())
	x := Load(Param("x").Base(), GP64())
	n := Load(Param("x").Len(), GP64())
	Label(name + "_loop2")
	CMPQ(n, Imm(uint64(2*w.dl)))
	JL(LabelRef(name + "_tail"))
	for u := range 2 {
		d := w.wide()
		VCVTPS2PD(Mem{Base: x, Disp: u * w.dl * 4}, d)
		VADDPD(Mem{Base: acc, Disp: u * w.dl * 8}, d, d)
		VMOVUPD(d, Mem{Base: acc, Disp: u * w.dl * 8})
	}
	ADDQ(Imm(uint64(2*w.dl*4)), x)
	ADDQ(Imm(uint64(2*w.dl*8)), acc)
	SUBQ(Imm(uint64(2*w.dl)), n)
	JMP(LabelRef(name + "_loop2"))
	Label(name + "_tail")
	CMPQ(n, Imm(uint64(w.dl)))
	JL(LabelRef(name + "_done"))
	d := w.wide()
	VCVTPS2PD(Mem{Base: x}, d)
	VADDPD(Mem{Base: acc}, d, d)
	VMOVUPD(d, Mem{Base: acc})
	Label(name + "_done")
	VZEROUPPER()
	RET()
}

func normKernels() {
	for _, w := range normWidths {
		widenAddKernel(w)
		normSumKernel("normSum", w, false)
		normSumKernel("normSumSq", w, true)
		normApplyKernel(w)
		normDotKernel(w)
		normGradKernel(w)
	}
}
