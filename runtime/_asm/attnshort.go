package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// The short-sequence attention kernels (AVX-512 only): attention of one
// (b, h) pair whose keys, at most 16, fit one vector, so that a query's
// scores, probabilities and score gradients are each one register. The
// tiled kernels of attention.go pay per tile and per pair of rows what
// these pay once per row; see runtime/attention_short.go for the
// contract and the Go side.
func attnShortKernels() {
	attnShortFwd()
	attnShortBwd()
}

// scoreRow returns s = Σ_j q[j]·kt[j] over the d elements of the query
// row at q, kt holding the keys transposed (16 lanes a column j), with
// four accumulators (d is a multiple of 4), times scale.
func scoreRow(q, kt, d reg.Register, scale reg.VecVirtual, name string) reg.VecVirtual {
	acc := []reg.VecVirtual{ZMM(), ZMM(), ZMM(), ZMM()}
	for _, a := range acc {
		VPXORD(a, a, a)
	}
	pq, pk, j := GP64(), GP64(), GP64()
	MOVQ(q, pq)
	MOVQ(kt, pk)
	MOVQ(d, j)
	Label(name)
	for u, a := range acc {
		t := ZMM()
		VMOVUPS(Mem{Base: pk, Disp: 64 * u}, t)
		fmaBcast(Mem{Base: pq, Disp: 4 * u}, t, a)
	}
	ADDQ(Imm(16), pq)
	ADDQ(U32(256), pk)
	SUBQ(Imm(4), j)
	JNZ(LabelRef(name))
	VADDPS(acc[1], acc[0], acc[0])
	VADDPS(acc[3], acc[2], acc[2])
	VADDPS(acc[2], acc[0], acc[0])
	VMULPS(scale, acc[0], acc[0])
	return acc[0]
}

// rowTimes sets dst[c] = Σ_k p[k]·m[k][c] for the 16-column blocks c of
// width w (a multiple of 16, possibly 0), p the nk values at the stack
// slot p and row k of m at m + k·ms bytes, each block times mul (when
// non-nil): a row of probabilities times v, or of score gradients times k.
func rowTimes(dst, m, ms, nk, w reg.Register, p Mem, mul reg.VecVirtual, name string) {
	c, pd, pm := GP64(), GP64(), GP64()
	MOVQ(w, c)
	MOVQ(dst, pd)
	MOVQ(m, pm)
	Label(name + "_col")
	TESTQ(c, c)
	JZ(LabelRef(name + "_done"))
	acc := ZMM()
	VPXORD(acc, acc, acc)
	k, pr, pp := GP64(), GP64(), GP64()
	MOVQ(nk, k)
	MOVQ(pm, pr)
	LEAQ(p, pp)
	Label(name + "_key")
	t := ZMM()
	VMOVUPS(Mem{Base: pr}, t)
	fmaBcast(Mem{Base: pp}, t, acc)
	ADDQ(ms, pr)
	ADDQ(Imm(4), pp)
	DECQ(k)
	JNZ(LabelRef(name + "_key"))
	if mul != nil {
		VMULPS(mul, acc, acc)
	}
	VMOVUPS(acc, Mem{Base: pd})
	ADDQ(Imm(64), pd)
	ADDQ(Imm(64), pm)
	SUBQ(Imm(16), c)
	JMP(LabelRef(name + "_col"))
	Label(name + "_done")
}

// addOuter adds p[k]·x into row k of dst (rows ds bytes apart) for each
// of the nk keys, x the w elements at x (w a multiple of 16): a query's
// share of dv (p the probabilities, x its dy) or of dk (the score
// gradients and q).
func addOuter(dst, ds, nk, x, w reg.Register, p Mem, name string) {
	k, pd, pp := GP64(), GP64(), GP64()
	MOVQ(nk, k)
	MOVQ(dst, pd)
	LEAQ(p, pp)
	Label(name + "_key")
	c, px, pc := GP64(), GP64(), GP64()
	MOVQ(w, c)
	MOVQ(x, px)
	MOVQ(pd, pc)
	Label(name + "_col")
	t, u := ZMM(), ZMM()
	VMOVUPS(Mem{Base: pc}, t)
	VMOVUPS(Mem{Base: px}, u)
	fmaBcast(Mem{Base: pp}, u, t)
	VMOVUPS(t, Mem{Base: pc})
	ADDQ(Imm(64), pc)
	ADDQ(Imm(64), px)
	SUBQ(Imm(16), c)
	JNZ(LabelRef(name + "_col"))
	ADDQ(ds, pd)
	ADDQ(Imm(4), pp)
	DECQ(k)
	JNZ(LabelRef(name + "_key"))
}

// attnShortFwd generates
//
//	func attnShortFwdAVX512(q *float32, qs, rows int, kt *float32, d int, v *float32, vs, dv, nk int, masks *uint16, scale float32, out *float32, os int, ml *float32)
//
// which, for each of rows query rows (row i at q + i·qs, d elements, d a
// positive multiple of 4), computes the scores against the nk keys
// (1 ≤ nk ≤ 16) of kt (the keys transposed: element j of key k at
// kt[16·j + k]) times scale, admits the keys whose bit is set in
// masks[i], and writes ml[2i] = m, the largest admitted score (-Inf for
// none), ml[2i+1] = l, the float32 sum of e^(s - m) over them, and, when
// dv > 0 (a multiple of 16), out row i (at out + i·os) =
// Σ_k e^(s_k - m)·v_k / l (zeros when l is 0), v_k at v + k·vs. Strides
// are in elements.
//
// Few general registers outlive a phase of a row: the row pointers are
// loaded from the arguments and stored back advanced, so that each
// phase has the registers it needs.
func attnShortFwd() {
	TEXT("attnShortFwdAVX512", NOSPLIT, "func(q *float32, qs, rows int, kt *float32, d int, v *float32, vs, dv, nk int, masks *uint16, scale float32, out *float32, os int, ml *float32)")
	Pragma("noescape")
	Doc("attnShortFwdAVX512 is the forward pass of attention over at most 16 keys, a query row at a time (see runtime/attention_short.go).")
	p := AllocLocal(64)
	scale := ZMM()
	VBROADCASTSS(Load(Param("scale"), XMM()), scale)
	negInf := ZMM()
	VMOVUPS(vc(cNegInf), negInf)
	lo, hi := expBounds()
	km := rowHead("fwd")
	q := Load(Param("q"), GP64())
	s := scoreRow(q, Load(Param("kt"), GP64()), Load(Param("d"), GP64()), scale, "fwd_dot")
	advance(q, "qs", "q")
	sm := ZMM()
	VBLENDMPS(s, negInf, km, sm) // masked keys -Inf
	mx := ZMM()
	VMOVAPS(sm, mx)
	hreduce(widths[0], mx, func(a, b, d Op) { VMAXPS(a, b, d) })
	ml := Load(Param("ml"), GP64())
	VMOVSS(mx.AsX(), Mem{Base: ml})
	mb := ZMM()
	VBROADCASTSS(mx.AsX(), mb)
	VSUBPS(mb, sm, sm)
	e := expCore(widths[0], clamp(sm, lo, hi))
	VMOVAPS_Z(e, km, e) // a row with no key has m = -Inf and NaNs here
	VMOVUPS(e, p)
	hreduce(widths[0], e, func(a, b, d Op) { VADDPS(a, b, d) })
	VMOVSS(e.AsX(), Mem{Base: ml, Disp: 4})
	ADDQ(Imm(8), ml)
	Store(ml, Param("ml"))
	// inv = 1/l, or 0 for a row with no key (whose p are all 0).
	inv, zero := XMM(), XMM()
	VXORPS(zero, zero, zero)
	VXORPS(inv, inv, inv)
	VUCOMISS(zero, e.AsX())
	JE(LabelRef("fwd_inv"))
	VMOVSS(vc(cOne), inv)
	VDIVSS(e.AsX(), inv, inv)
	Label("fwd_inv")
	ib := ZMM()
	VBROADCASTSS(inv, ib)
	out := Load(Param("out"), GP64())
	vs := Load(Param("vs"), GP64())
	SHLQ(Imm(2), vs)
	rowTimes(out, Load(Param("v"), GP64()), vs, Load(Param("nk"), GP64()), Load(Param("dv"), GP64()), p, ib, "fwd_pv")
	advance(out, "os", "out")
	JMP(LabelRef("fwd_row"))
	Label("fwd_done")
	VZEROUPPER()
	RET()
}

// attnShortBwd generates
//
//	func attnShortBwdAVX512(q *float32, qs, rows int, kt *float32, d int, vt *float32, dv int, dy *float32, dys int, lse, rs *float32, ls int, masks *uint16, scale float32, k *float32, ks, nk int, dq *float32, dqs int, dk *float32, dks int, dvo *float32, dvos int)
//
// which, for each query row i as attnShortFwdAVX512 reads them, with
// vt the values transposed as kt holds the keys, dy row i at dy + i·dys
// (dv elements), and lse and rs (the row sums D) at lse + i·ls and
// rs + i·ls: recomputes p = e^(s - lse) over the admitted keys, dp =
// dy·vᵀ and ds = scale·p·(dp - D), then writes dq row i = Σ_k ds_k·k_k
// (k_k at k + k·ks, d elements) and adds ds_k·q into dk row k and p_k·dy
// into dvo row k (rows dks and dvos apart), each only where its pointer
// is not nil. d and dv are positive multiples of 16.
func attnShortBwd() {
	TEXT("attnShortBwdAVX512", NOSPLIT, "func(q *float32, qs, rows int, kt *float32, d int, vt *float32, dv int, dy *float32, dys int, lse, rs *float32, ls int, masks *uint16, scale float32, k *float32, ks, nk int, dq *float32, dqs int, dk *float32, dks int, dvo *float32, dvos int)")
	Pragma("noescape")
	Doc("attnShortBwdAVX512 is the backward pass of attention over at most 16 keys, a query row at a time (see runtime/attention_short.go).")
	p := AllocLocal(128)
	ds := p.Offset(64)
	scale := ZMM()
	VBROADCASTSS(Load(Param("scale"), XMM()), scale)
	one := ZMM()
	VMOVUPS(vc(cOne), one)
	lo, hi := expBounds()
	km := rowHead("bwd")
	s := scoreRow(Load(Param("q"), GP64()), Load(Param("kt"), GP64()), Load(Param("d"), GP64()), scale, "bwd_qk")
	lse := Load(Param("lse"), GP64())
	lb := ZMM()
	VBROADCASTSS(Mem{Base: lse}, lb)
	VSUBPS(lb, s, s)
	e := expCore(widths[0], clamp(s, lo, hi))
	VMOVAPS_Z(e, km, e)
	VMOVUPS(e, p)
	dp := scoreRow(Load(Param("dy"), GP64()), Load(Param("vt"), GP64()), Load(Param("dv"), GP64()), one, "bwd_dyv")
	rs := Load(Param("rs"), GP64())
	rb := ZMM()
	VBROADCASTSS(Mem{Base: rs}, rb)
	VSUBPS(rb, dp, dp)
	VMULPS_Z(e, dp, km, dp) // masked keys 0 whatever dp holds there
	VMULPS(scale, dp, dp)
	VMOVUPS(dp, ds)
	ls := Load(Param("ls"), GP64())
	SHLQ(Imm(2), ls)
	ADDQ(ls, lse)
	ADDQ(ls, rs)
	Store(lse, Param("lse"))
	Store(rs, Param("rs"))

	dq := Load(Param("dq"), GP64())
	TESTQ(dq, dq)
	JZ(LabelRef("bwd_nodq"))
	ks := Load(Param("ks"), GP64())
	SHLQ(Imm(2), ks)
	rowTimes(dq, Load(Param("k"), GP64()), ks, Load(Param("nk"), GP64()), Load(Param("d"), GP64()), ds, nil, "bwd_dq")
	advance(dq, "dqs", "dq")
	Label("bwd_nodq")

	addOuterRow("dk", "dks", "q", "qs", "d", ds, "bwd_dk")
	addOuterRow("dvo", "dvos", "dy", "dys", "dv", p, "bwd_dv")
	JMP(LabelRef("bwd_row"))
	Label("bwd_done")
	VZEROUPPER()
	RET()
}

// rowHead starts a row of the kernel whose labels begin with prefix:
// it jumps to prefix_done when no row is left, counts the row off and
// returns the row's mask word, loaded into a mask register (the
// arguments rows and masks stored back, see attnShortFwd).
func rowHead(prefix string) reg.Register {
	Label(prefix + "_row")
	rows := Load(Param("rows"), GP64())
	TESTQ(rows, rows)
	JZ(LabelRef(prefix + "_done"))
	DECQ(rows)
	Store(rows, Param("rows"))
	masks := Load(Param("masks"), GP64())
	km := K()
	KMOVW(Mem{Base: masks}, km)
	ADDQ(Imm(2), masks)
	Store(masks, Param("masks"))
	return km
}

// advance adds the argument stride (in elements) to the row pointer r
// and stores r back as the argument ptr.
func advance(r reg.Register, stride, ptr string) {
	s := Load(Param(stride), GP64())
	SHLQ(Imm(2), s)
	ADDQ(s, r)
	Store(r, Param(ptr))
}

// addOuterRow adds p_k·x into row k of the argument dst (rows the
// argument dstStride apart) for each key when dst is not nil (see
// addOuter), x the current row of the argument x, width elements (the
// argument width), then advances x a row (the argument xStride).
func addOuterRow(dst, dstStride, x, xStride, width string, p Mem, name string) {
	px := Load(Param(x), GP64())
	pd := Load(Param(dst), GP64())
	TESTQ(pd, pd)
	JZ(LabelRef(name + "_skip"))
	ds := Load(Param(dstStride), GP64())
	SHLQ(Imm(2), ds)
	addOuter(pd, ds, Load(Param("nk"), GP64()), px, Load(Param(width), GP64()), p, name)
	Label(name + "_skip")
	advance(px, xStride, x)
}

// expBounds loads the exponential's clamping bounds.
func expBounds() (lo, hi reg.VecVirtual) {
	lo, hi = ZMM(), ZMM()
	VMOVUPS(vc(cExpLo), lo)
	VMOVUPS(vc(cExpHi), hi)
	return lo, hi
}

// fmaBcast adds m (one float32, broadcast) times x into acc.
func fmaBcast(m Mem, x, acc reg.VecVirtual) {
	b := ZMM()
	VBROADCASTSS(m, b)
	VFMADD231PS(b, x, acc)
}
