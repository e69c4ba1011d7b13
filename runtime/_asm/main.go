// Command _asm generates the runtime's amd64 assembly with avo: the
// GEMM micro-kernels (AVX-512 and AVX2+FMA) and the CPUID/XGETBV probes
// that choose between them at run time, and with -set vec the elementwise
// kernels (vec.go). It lives in its own module so
// that avo never becomes a dependency of attnc or of a user's module;
// the generated files are committed. Run it with `go generate` in
// runtime/ (see runtime/gemm.go).
package main

import (
	"flag"
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// set picks the file to generate: "gemm" (gemm_amd64.s) or "vec"
// (vec_amd64.s, the elementwise kernels of vec.go).
var set = flag.String("set", "gemm", "kernels to generate: gemm or vec")

func main() {
	flag.Parse()
	ConstraintExpr("!purego")
	if *set == "vec" {
		vecKernels()
		Generate()
		return
	}
	cpuProbes()
	// AVX-512: 14 rows × 32 columns, two zmm accumulators a row (28 of
	// the 32 registers), two for the row of B and two for broadcasts.
	microKernel("gemmKernel14x32AVX512", 14, 14, 2, 16, zmm, form{})
	// AVX2+FMA: 6 rows × 16 columns, two ymm accumulators a row (12 of
	// the 16 registers), two for the row of B and two for broadcasts.
	microKernel("gemmKernel6x16AVX2", 6, 6, 2, 8, ymm, form{})
	// Kernels of fewer rows for the last sliver of A, which packA pads
	// with zero rows: they read the same slivers but compute and store
	// only the rows that exist.
	for h := 1; h < 14; h++ {
		microKernel(fmt.Sprintf("gemmKernel14x32AVX512h%d", h), 14, h, 2, 16, zmm, form{})
	}
	// A kernel for a tile short of columns, which loads and stores C
	// under a mask (AVX-512 only: on AVX2 such tiles go through a
	// scratch tile).
	microKernel("gemmKernel14x32AVX512m", 14, 14, 2, 16, zmm, form{masked: true})
	for h := 1; h < 6; h++ {
		microKernel(fmt.Sprintf("gemmKernel6x16AVX2h%d", h), 6, h, 2, 8, ymm, form{})
	}
	// The full kernels reading A unpacked, row-major with rows of 64
	// elements: the attention tiles' P and dS (runtime/attention.go's
	// attnBK), which would otherwise be packed before every product.
	microKernel("gemmKernel14x32A64AVX512", 14, 14, 2, 16, zmm, form{lda: 64})
	microKernel("gemmKernel6x16A64AVX2", 6, 6, 2, 8, ymm, form{lda: 64})
	// And reading B unpacked, rows 64 apart: the tiles as B operands
	// (Pᵀ·dy and dSᵀ·q computed as dyᵀ·P and qᵀ·dS).
	microKernel("gemmKernel14x32B64AVX512", 14, 14, 2, 16, zmm, form{ldb: 64})
	microKernel("gemmKernel6x16B64AVX2", 6, 6, 2, 8, ymm, form{ldb: 64})
	// And the packed kernels storing C = A·B instead of adding to it: the
	// attention's score tiles, which need no clearing first.
	microKernel("gemmKernel14x32SetAVX512", 14, 14, 2, 16, zmm, form{set: true})
	microKernel("gemmKernel6x16SetAVX2", 6, 6, 2, 8, ymm, form{set: true})
	// Those three forms of fewer rows on AVX-512, as for the packed
	// kernel: a 64-row attention tile ends in a sliver of 8 rows, and a
	// head of 64 (32, 16) in one of 8 (4, 2).
	for h := 1; h < 14; h++ {
		microKernel(fmt.Sprintf("gemmKernel14x32A64AVX512h%d", h), 14, h, 2, 16, zmm, form{lda: 64})
		microKernel(fmt.Sprintf("gemmKernel14x32B64AVX512h%d", h), 14, h, 2, 16, zmm, form{ldb: 64})
		microKernel(fmt.Sprintf("gemmKernel14x32SetAVX512h%d", h), 14, h, 2, 16, zmm, form{set: true})
	}
	// Kernels of the first 16 columns of a packed 32-wide sliver of B
	// (read as B rows 32 apart), one zmm a row, for each height: a tile
	// of C only 16 wide (a head of 16: attention's scores, p·v, dq, dk
	// and dv at d = 16) would otherwise go through the scratch tile,
	// computing 32 columns to keep 16. Packed A adding and storing, and
	// A unpacked with rows of 64 adding.
	for h := 1; h <= 14; h++ {
		microKernel(fmt.Sprintf("gemmKernel14x16AVX512h%d", h), 14, h, 1, 16, zmm, form{ldb: 32})
		microKernel(fmt.Sprintf("gemmKernel14x16SetAVX512h%d", h), 14, h, 1, 16, zmm, form{ldb: 32, set: true})
		microKernel(fmt.Sprintf("gemmKernel14x16A64AVX512h%d", h), 14, h, 1, 16, zmm, form{lda: 64, ldb: 32})
	}
	packTranspose("gemmPackA14", 14, 14)
	packTranspose("gemmPackA6", 6, 6)
	// Slivers of B from a B stored transposed (key rows as the columns
	// of Kᵀ, attention's scores q·kᵀ): 16 rows at a time into a sliver
	// 32 (AVX-512) or 16 (AVX2) wide; a 32-wide sliver takes two calls,
	// since 32 row pointers would not fit in the general registers.
	packTranspose("gemmPackT16x32", 16, 32)
	packTranspose("gemmPackT16x16", 16, 16)
	// Row copies: slivers of B from a row-major B (nr wide) and of A
	// from a column-major A (mr wide), which are already laid out as the
	// sliver wants them, a row of the sliver per row of the source.
	for _, w := range []int{32, 16, 14, 6} {
		packCopy(fmt.Sprintf("gemmCopy%d", w), w)
	}
	Generate()
}

func zmm(i int) reg.VecPhysical {
	return []reg.VecPhysical{
		reg.Z0, reg.Z1, reg.Z2, reg.Z3, reg.Z4, reg.Z5, reg.Z6, reg.Z7,
		reg.Z8, reg.Z9, reg.Z10, reg.Z11, reg.Z12, reg.Z13, reg.Z14, reg.Z15,
		reg.Z16, reg.Z17, reg.Z18, reg.Z19, reg.Z20, reg.Z21, reg.Z22, reg.Z23,
		reg.Z24, reg.Z25, reg.Z26, reg.Z27, reg.Z28, reg.Z29, reg.Z30, reg.Z31}[i]
}

func ymm(i int) reg.VecPhysical {
	return []reg.VecPhysical{
		reg.Y0, reg.Y1, reg.Y2, reg.Y3, reg.Y4, reg.Y5, reg.Y6, reg.Y7,
		reg.Y8, reg.Y9, reg.Y10, reg.Y11, reg.Y12, reg.Y13, reg.Y14, reg.Y15}[i]
}

// cpuProbes generates cpuid and xgetbv, the two instructions the
// runtime needs to learn which vector units the CPU and the OS enable.
func cpuProbes() {
	TEXT("cpuid", NOSPLIT, "func(leaf, sub uint32) (eax, ebx, ecx, edx uint32)")
	Doc("cpuid executes CPUID with EAX=leaf and ECX=sub.")
	Load(Param("leaf"), reg.EAX)
	Load(Param("sub"), reg.ECX)
	CPUID()
	Store(reg.EAX, Return("eax"))
	Store(reg.EBX, Return("ebx"))
	Store(reg.ECX, Return("ecx"))
	Store(reg.EDX, Return("edx"))
	RET()

	TEXT("xgetbv", NOSPLIT, "func() (eax, edx uint32)")
	Doc("xgetbv returns the extended control register XCR0; call it only when CPUID reports OSXSAVE.")
	XORL(reg.ECX, reg.ECX)
	XGETBV()
	Store(reg.EAX, Return("eax"))
	Store(reg.EDX, Return("edx"))
	RET()
}

// A form is how a micro-kernel reads A and B and writes C: with lda > 0
// A is not packed but row-major with rows of lda elements (a[i*lda+p]),
// with ldb > 0 B is row-major with rows of ldb elements (b[p*ldb+j]) —
// either way the offsets are constants and cost no register — with set
// the tile of C is overwritten with the product instead of added to, and
// with masked only the columns of C whose bits are set in a mask
// argument are read and written.
type form struct {
	lda, ldb    int
	set, masked bool
}

// microKernel generates
//
//	func name(k int, a, b, c *float32, ldc int)
//
// which adds the product of the first rows (≤ mr) rows of a packed mr×k
// sliver of A (a[p*mr+i]) and a packed k×nr sliver of B (b[p*nr+j]),
// nr = vecs·lanes, into the rows×nr tile of C at c with row stride ldc
// elements. The accumulators stay in
// vector registers for the whole k loop; each element of C is loaded and
// stored once. The form changes that (see there).
func microKernel(name string, mr, rows, vecs, lanes int, v func(int) reg.VecPhysical, f form) {
	nr := vecs * lanes
	width := nr * 4 // bytes of a row of the tile of C
	bStep := nr * 4 // bytes from one row of B to the next
	if f.ldb > 0 {
		bStep = f.ldb * 4
	}
	lda, set, masked := f.lda, f.set, f.masked
	if (lda > 0 || f.ldb > 0 || set) && masked {
		panic("microKernel: unpacked operands and set need unmasked tiles")
	}
	part := ""
	if rows < mr {
		part = fmt.Sprintf(" (its first %d rows)", rows)
	}
	// aStep is the bytes from one k step's elements of A to the next's;
	// aAt the offset of row i's element at step p.
	aStep, aAt := mr*4, func(p, i int) int { return (p*mr + i) * 4 }
	if lda > 0 {
		aStep, aAt = 4, func(p, i int) int { return (i*lda + p) * 4 }
	}
	switch {
	case f.ldb > nr:
		// The first nr columns of a wider packed sliver of B.
		TEXT(name, NOSPLIT, "func(k int, a, b, c *float32, ldc int)")
		verb, aDesc := "adds", fmt.Sprintf("a packed %d×k sliver of A", mr)
		if set {
			verb = "stores"
		}
		if lda > 0 {
			aDesc = fmt.Sprintf("A, %d elements apart,", lda)
		}
		Doc(fmt.Sprintf("%s %s %d rows of %s times the first %d columns of a packed k×%d sliver of B into C.", name, verb, rows, aDesc, nr, f.ldb))
	case lda > 0:
		TEXT(name, NOSPLIT, "func(k int, a, b, c *float32, ldc int)")
		Doc(fmt.Sprintf("%s adds %d rows of A, %d elements apart, times a packed k×%d sliver of B into C.", name, rows, lda, nr))
	case f.ldb > 0:
		TEXT(name, NOSPLIT, "func(k int, a, b, c *float32, ldc int)")
		Doc(fmt.Sprintf("%s adds a packed %d×k sliver of A%s times k rows of B, %d elements apart, into C.", name, mr, part, f.ldb))
	case set:
		TEXT(name, NOSPLIT, "func(k int, a, b, c *float32, ldc int)")
		Doc(fmt.Sprintf("%s stores a packed %d×k sliver of A%s times a packed k×%d sliver of B into C.", name, mr, part, nr))
	case masked:
		TEXT(name, NOSPLIT, "func(k int, a, b, c *float32, ldc int, mask uint32)")
		Doc(fmt.Sprintf("%s adds a packed %d×k sliver of A times a packed k×%d sliver of B into the columns of C whose bits are set in mask.", name, mr, nr))
	case rows == mr:
		TEXT(name, NOSPLIT, "func(k int, a, b, c *float32, ldc int)")
		Doc(fmt.Sprintf("%s adds a packed %d×k sliver of A times a packed k×%d sliver of B into C.", name, mr, nr))
	default:
		TEXT(name, NOSPLIT, "func(k int, a, b, c *float32, ldc int)")
		Doc(fmt.Sprintf("%s adds the first %d rows of a packed %d×k sliver of A times a packed k×%d sliver of B into C.", name, rows, mr, nr))
	}
	k := Load(Param("k"), GP64())
	a := Load(Param("a"), GP64())
	b := Load(Param("b"), GP64())
	// Prefetch the tile of C, which the kernel loads only after the k
	// loop, too late for the out-of-order core to hide a miss: on a
	// 2-core AMD EPYC this made products with k ≤ 512 3-7 % faster.
	// Every line a row touches, its last byte included, for rows that
	// do not start on a line.
	pc := Load(Param("c"), GP64())
	pl := Load(Param("ldc"), GP64())
	SHLQ(Imm(2), pl)
	for i := range rows {
		for off := 0; off < width; off += 64 {
			PREFETCHT0(Mem{Base: pc, Disp: off})
		}
		PREFETCHT0(Mem{Base: pc, Disp: width - 1})
		if i < rows-1 {
			ADDQ(pl, pc)
		}
	}
	acc := func(i, j int) reg.VecPhysical { return v(i*vecs + j) }
	bv := func(j int) reg.VecPhysical { return v(rows*vecs + j) }
	bc := func(i int) reg.VecPhysical { return v(rows*vecs + vecs + i%2) }
	for i := range rows * vecs {
		// VPXORD, not VXORPS: on zmm registers VXORPS needs AVX512DQ.
		r := v(i)
		if r.Size() == 64 {
			VPXORD(r, r, r)
		} else {
			VXORPS(r, r, r)
		}
	}
	// One k step: load the row of B, broadcast each a[i] and multiply.
	step := func(p int) {
		for j := range vecs {
			VMOVUPS(Mem{Base: b, Disp: p*bStep + j*lanes*4}, bv(j))
		}
		for i := range rows {
			VBROADCASTSS(Mem{Base: a, Disp: aAt(p, i)}, bc(i))
			for j := range vecs {
				VFMADD231PS(bv(j), bc(i), acc(i, j))
			}
		}
	}
	const unroll = 4
	Label(name + "_loop4")
	CMPQ(k, Imm(unroll))
	JL(LabelRef(name + "_tail"))
	for p := range unroll {
		step(p)
	}
	ADDQ(U32(unroll*aStep), a)
	ADDQ(U32(unroll*bStep), b)
	SUBQ(Imm(unroll), k)
	JMP(LabelRef(name + "_loop4"))
	Label(name + "_tail")
	TESTQ(k, k)
	JZ(LabelRef(name + "_store"))
	step(0)
	ADDQ(U32(aStep), a)
	ADDQ(U32(bStep), b)
	DECQ(k)
	JMP(LabelRef(name + "_tail"))

	Label(name + "_store")
	c := Load(Param("c"), GP64())
	ldc := Load(Param("ldc"), GP64())
	SHLQ(Imm(2), ldc)
	// Masked: a mask register a vector of the row, lanes bits each.
	var kmask []reg.OpmaskPhysical
	if masked {
		if lanes != 16 {
			panic("microKernel: masks need 16-lane vectors")
		}
		mk := GP32()
		Load(Param("mask"), mk)
		for j := range vecs {
			kj := []reg.OpmaskPhysical{reg.K1, reg.K2, reg.K3, reg.K4}[j]
			KMOVW(mk, kj)
			if j < vecs-1 {
				SHRL(Imm(16), mk)
			}
			kmask = append(kmask, kj)
		}
	}
	for i := range rows {
		for j := range vecs {
			m := Mem{Base: c, Disp: j * lanes * 4}
			if masked {
				// Masked-off lanes of C are neither read nor written.
				VMOVUPS_Z(m, kmask[j], bc(0))
				VADDPS(bc(0), acc(i, j), acc(i, j))
				VMOVUPS(acc(i, j), kmask[j], m)
				continue
			}
			if !set {
				VADDPS(m, acc(i, j), acc(i, j))
			}
			VMOVUPS(acc(i, j), m)
		}
		if i < rows-1 {
			ADDQ(ldc, c)
		}
	}
	VZEROUPPER()
	RET()
}

// packTranspose generates
//
//	func name(k4 int, src *float32, rs int, dst *float32)
//
// which packs mr rows of A (row i at src + i·rs) into a sliver ds
// elements wide: dst[p*ds+i] = src[i*rs+p] for p < 4·k4 (ds = mr for a
// sliver of A; ds > mr fills the first mr columns of a wider one).
// Columns mr..ds of dst are not written. It transposes 4 × 4 blocks in
// xmm registers (AVX), and a last block of 2 rows when mr % 4 is 2, so
// it reads each row forwards and writes the sliver in order. Every 16
// columns it prefetches the same columns of the next sliver's rows:
// rows as short as a layer's (128 columns, 8 cache lines) end before a
// hardware prefetcher gets going, and the packer waited on memory.
func packTranspose(name string, mr, ds int) {
	if mr%4 != 0 && mr%4 != 2 || ds < mr {
		panic("packTranspose: mr % 4 must be 0 or 2, and ds at least mr")
	}
	TEXT(name, NOSPLIT, "func(k4 int, src *float32, rs int, dst *float32)")
	if ds == mr {
		Doc(fmt.Sprintf("%s packs %d rows of A, rs elements apart, 4·k4 columns long, into a sliver at dst.", name, mr))
	} else {
		Doc(fmt.Sprintf("%s packs %d rows, rs elements apart, 4·k4 columns long, transposed into the first %d columns of a sliver %d wide at dst.", name, mr, mr, ds))
	}
	k := Load(Param("k4"), GP64())
	src := Load(Param("src"), GP64())
	rs := Load(Param("rs"), GP64())
	dst := Load(Param("dst"), GP64())
	SHLQ(Imm(2), rs)
	rs3 := GP64()
	LEAQ(Mem{Base: rs, Index: rs, Scale: 2}, rs3)
	// One base pointer per group of four rows, in this sliver and in the
	// next.
	var base, next []reg.Register
	base = append(base, src)
	for g := 4; g < mr; g += 4 {
		p := GP64()
		LEAQ(Mem{Base: base[len(base)-1], Index: rs, Scale: 4}, p)
		base = append(base, p)
	}
	dist := GP64()
	IMUL3Q(Imm(uint64(mr)), rs, dist)
	for _, b := range base {
		p := GP64()
		LEAQ(Mem{Base: b, Index: dist, Scale: 1}, p)
		next = append(next, p)
	}
	row := func(bases []reg.Register, i, disp int) Mem {
		b := bases[i/4]
		switch i % 4 {
		case 0:
			return Mem{Base: b, Disp: disp}
		case 3:
			return Mem{Base: b, Index: rs3, Scale: 1, Disp: disp}
		}
		return Mem{Base: b, Index: rs, Scale: uint8(i % 4), Disp: disp}
	}
	x := func(i int) reg.VecPhysical {
		return []reg.VecPhysical{reg.X0, reg.X1, reg.X2, reg.X3, reg.X4, reg.X5, reg.X6, reg.X7,
			reg.X8, reg.X9, reg.X10, reg.X11, reg.X12, reg.X13, reg.X14, reg.X15}[i]
	}
	// step packs columns q..q+3 of the rows, q = s·4 past the pointers.
	step := func(s int) {
		col := func(p, i int) Mem { return Mem{Base: dst, Disp: ((4*s+p)*ds + i) * 4} }
		for g := 0; g+4 <= mr; g += 4 {
			a, b, c, d := x(0), x(1), x(2), x(3)
			t0, t1, t2, t3 := x(4), x(5), x(6), x(7)
			VMOVUPS(row(base, g, 16*s), a)
			VMOVUPS(row(base, g+1, 16*s), b)
			VMOVUPS(row(base, g+2, 16*s), c)
			VMOVUPS(row(base, g+3, 16*s), d)
			VUNPCKLPS(b, a, t0) // a0 b0 a1 b1
			VUNPCKHPS(b, a, t1) // a2 b2 a3 b3
			VUNPCKLPS(d, c, t2) // c0 d0 c1 d1
			VUNPCKHPS(d, c, t3) // c2 d2 c3 d3
			VUNPCKLPD(t2, t0, a)
			VUNPCKHPD(t2, t0, b)
			VUNPCKLPD(t3, t1, c)
			VUNPCKHPD(t3, t1, d)
			VMOVUPS(a, col(0, g))
			VMOVUPS(b, col(1, g))
			VMOVUPS(c, col(2, g))
			VMOVUPS(d, col(3, g))
		}
		if g := mr - mr%4; mr%4 == 2 {
			a, b, t0, t1 := x(0), x(1), x(4), x(5)
			VMOVUPS(row(base, g, 16*s), a)
			VMOVUPS(row(base, g+1, 16*s), b)
			VUNPCKLPS(b, a, t0)
			VUNPCKHPS(b, a, t1)
			VMOVLPS(t0, col(0, g))
			VMOVHPS(t0, col(1, g))
			VMOVLPS(t1, col(2, g))
			VMOVHPS(t1, col(3, g))
		}
	}
	advance := func(steps int) {
		for _, b := range append(base, next...) {
			ADDQ(Imm(uint64(16*steps)), b)
		}
		ADDQ(U32(4*steps*ds*4), dst)
	}
	Label(name + "_loop4")
	CMPQ(k, Imm(4))
	JL(LabelRef(name + "_tail"))
	for i := range mr {
		PREFETCHT0(row(next, i, 0))
	}
	for s := range 4 {
		step(s)
	}
	advance(4)
	SUBQ(Imm(4), k)
	JMP(LabelRef(name + "_loop4"))
	Label(name + "_tail")
	TESTQ(k, k)
	JZ(LabelRef(name + "_done"))
	step(0)
	advance(1)
	DECQ(k)
	JMP(LabelRef(name + "_tail"))
	Label(name + "_done")
	RET()
}

// packCopy generates
//
//	func name(k int, src *float32, rs int, dst *float32)
//
// which copies k rows of width elements, rs elements apart at src, into
// dst one after another: dst[p*width+j] = src[p*rs+j]. It is packB for a
// row-major B and packA for a column-major A, whose slivers need no
// transposing, only gathering: a call of copy a row cost more than the
// row. It moves 8 floats a ymm register (AVX), then 4, 2 and 1, two rows
// a step.
func packCopy(name string, width int) {
	TEXT(name, NOSPLIT, "func(k int, src *float32, rs int, dst *float32)")
	Doc(fmt.Sprintf("%s copies k rows of %d elements, rs elements apart at src, one after another into dst.", name, width))
	k := Load(Param("k"), GP64())
	src := Load(Param("src"), GP64())
	rs := Load(Param("rs"), GP64())
	dst := Load(Param("dst"), GP64())
	SHLQ(Imm(2), rs)
	ys := []reg.VecPhysical{reg.Y0, reg.Y1, reg.Y2, reg.Y3, reg.Y4, reg.Y5, reg.Y6, reg.Y7}
	xs := []reg.VecPhysical{reg.X8, reg.X9, reg.X10, reg.X11}
	// row copies one row from src+srcIdx·rs to dst+disp, using
	// registers of set g (0 or 1) so that two rows' loads can overlap.
	row := func(g int, second bool, disp int) {
		at := func(off int) Mem {
			if second {
				return Mem{Base: src, Index: rs, Scale: 1, Disp: off}
			}
			return Mem{Base: src, Disp: off}
		}
		off, n := 0, 0
		for ; off+8 <= width; off += 8 {
			VMOVUPS(at(off*4), ys[g*4+n])
			VMOVUPS(ys[g*4+n], Mem{Base: dst, Disp: disp + off*4})
			n++
		}
		if off+4 <= width {
			VMOVUPS(at(off*4), xs[g*2])
			VMOVUPS(xs[g*2], Mem{Base: dst, Disp: disp + off*4})
			off += 4
		}
		if off+2 <= width {
			VMOVSD(at(off*4), xs[g*2+1])
			VMOVSD(xs[g*2+1], Mem{Base: dst, Disp: disp + off*4})
			off += 2
		}
		if off < width {
			VMOVSS(at(off*4), xs[g*2+1])
			VMOVSS(xs[g*2+1], Mem{Base: dst, Disp: disp + off*4})
		}
	}
	if width > 32 {
		panic("packCopy: at most 32 elements a row")
	}
	Label(name + "_loop2")
	CMPQ(k, Imm(2))
	JL(LabelRef(name + "_tail"))
	row(0, false, 0)
	row(1, true, width*4)
	LEAQ(Mem{Base: src, Index: rs, Scale: 2}, src)
	ADDQ(U32(2*width*4), dst)
	SUBQ(Imm(2), k)
	JMP(LabelRef(name + "_loop2"))
	Label(name + "_tail")
	TESTQ(k, k)
	JZ(LabelRef(name + "_done"))
	row(0, false, 0)
	Label(name + "_done")
	VZEROUPPER()
	RET()
}
