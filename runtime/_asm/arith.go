package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// arithOps are the binary ops arithKernel generates, in the order of
// the runtime's BinaryOp (Add, Sub, Mul, Div).
var arithOps = []struct {
	name string
	ins  func(b, a, dst Op) // dst = a op b
}{
	{"Add", func(b, a, d Op) { VADDPS(b, a, d) }},
	{"Sub", func(b, a, d Op) { VSUBPS(b, a, d) }},
	{"Mul", func(b, a, d Op) { VMULPS(b, a, d) }},
	{"Div", func(b, a, d Op) { VDIVPS(b, a, d) }},
}

// arithModes say which operands are slices: both (VV), x with y
// broadcast from y[0] (VS), or x[0] broadcast with y (SV).
var arithModes = []string{"VV", "VS", "SV"}

// arithKernel generates
//
//	func vec+Op+Mode+suffix(dst, x, y []float32)
//
// which sets dst[i] = x[i] op y[i] (with the broadcast operand's element
// 0 in place of a slice) for len(dst) rounded down to a multiple of the
// lanes. Each lane rounds as the scalar operation does, so the results
// are those of the Go loop bit for bit.
func arithKernel(w vecWidth, op int, mode string) {
	o := arithOps[op]
	name := "vec" + o.name + mode + w.suffix
	TEXT(name, NOSPLIT, "func(dst, x, y []float32)")
	Pragma("noescape") // the kernels keep no pointer: callers may pass stack buffers
	Doc(fmt.Sprintf("%s is a %d-lane kernel of elementwise.go's arithRowF32 (%s, %s); it handles len(dst) rounded down to a multiple of %d.", name, w.lanes, o.name, mode, w.lanes))
	dst := Load(Param("dst").Base(), GP64())
	n := Load(Param("dst").Len(), GP64())
	x := Load(Param("x").Base(), GP64())
	y := Load(Param("y").Base(), GP64())
	var bx, by reg.VecVirtual
	switch mode {
	case "VS":
		by = w.reg()
		VBROADCASTSS(Mem{Base: y}, by)
	case "SV":
		bx = w.reg()
		VBROADCASTSS(Mem{Base: x}, bx)
	}
	const unroll = 4
	step := func(k int, lbl string) {
		Label(name + lbl)
		CMPQ(n, Imm(uint64(k*w.lanes)))
		JL(LabelRef(name + lbl + "_end"))
		for u := range k {
			d := w.reg()
			m := func(base reg.Register) Mem { return Mem{Base: base, Disp: u * w.lanes * 4} }
			switch mode {
			case "VV":
				VMOVUPS(m(x), d)
				o.ins(m(y), d, d)
			case "VS":
				VMOVUPS(m(x), d)
				o.ins(by, d, d)
			case "SV":
				o.ins(m(y), bx, d)
			}
			VMOVUPS(d, m(dst))
		}
		moving := map[string][]reg.Register{"VV": {dst, x, y}, "VS": {dst, x}, "SV": {dst, y}}[mode]
		for _, r := range moving {
			ADDQ(U32(k*w.lanes*4), r)
		}
		SUBQ(Imm(uint64(k*w.lanes)), n)
		JMP(LabelRef(name + lbl))
		Label(name + lbl + "_end")
	}
	step(unroll, "_loop4")
	step(1, "_loop1")
	VZEROUPPER()
	RET()
}
