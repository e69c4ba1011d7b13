package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// AdamW's hyperparameters, as the float32 array h the kernel reads.
const (
	hB1  = iota
	hB1c // 1 - β₁
	hB2
	hB2c // 1 - β₂
	hStep
	hRc2
	hEps
	hWd
	nHyper
)

// adamwKernel generates
//
//	func adamw+suffix(p, g, m, v []float32, h *[8]float32)
//
// which applies one AdamW update to len(p) rounded down to a multiple of
// the lanes (runtime/vec.go gives the formula and finishes the tail).
func adamwKernel(w vecWidth) {
	name := "adamw" + w.suffix
	TEXT(name, NOSPLIT, "func(p, g, m, v []float32, h *[8]float32)")
	Pragma("noescape") // the kernels keep no pointer: callers may pass stack buffers
	Doc(fmt.Sprintf("%s is a %d-lane AdamW update of vec.go; it handles len(p) rounded down to a multiple of %d.", name, w.lanes, w.lanes))
	p := Load(Param("p").Base(), GP64())
	g := Load(Param("g").Base(), GP64())
	m := Load(Param("m").Base(), GP64())
	v := Load(Param("v").Base(), GP64())
	n := Load(Param("p").Len(), GP64())
	hp := Load(Param("h"), GP64())
	var h [nHyper]reg.VecVirtual
	for i := range h {
		h[i] = w.reg()
		VBROADCASTSS(Mem{Base: hp, Disp: 4 * i}, h[i])
	}
	Label(name + "_loop")
	CMPQ(n, Imm(uint64(w.lanes)))
	JL(LabelRef(name + "_done"))
	gv, mv, vv, pv, t := w.reg(), w.reg(), w.reg(), w.reg(), w.reg()
	VMOVUPS(Mem{Base: g}, gv)
	VMOVUPS(Mem{Base: m}, mv)
	VMOVUPS(Mem{Base: v}, vv)
	VMOVUPS(Mem{Base: p}, pv)
	// m = β₁m + (1-β₁)g
	VMULPS(h[hB1c], gv, t)
	VFMADD213PS(t, h[hB1], mv)
	VMOVUPS(mv, Mem{Base: m})
	// v = β₂v + (1-β₂)g²
	VMULPS(gv, gv, gv)
	VMULPS(h[hB2c], gv, gv)
	VFMADD213PS(gv, h[hB2], vv)
	VMOVUPS(vv, Mem{Base: v})
	// p -= step·m/(√v·rc2 + ε) + wd·p
	VSQRTPS(vv, vv)
	VFMADD213PS(h[hEps], h[hRc2], vv)
	VMULPS(h[hStep], mv, t)
	VDIVPS(vv, t, t)
	VFMADD231PS(h[hWd], pv, t)
	VSUBPS(t, pv, pv)
	VMOVUPS(pv, Mem{Base: p})
	for _, r := range []reg.Register{p, g, m, v} {
		ADDQ(Imm(uint64(w.lanes*4)), r)
	}
	SUBQ(Imm(uint64(w.lanes)), n)
	JMP(LabelRef(name + "_loop"))
	Label(name + "_done")
	VZEROUPPER()
	RET()
}
