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
	microKernel("gemmKernel14x32AVX512", 14, 2, 16, zmm, form{})
	// AVX2+FMA: 6 rows × 16 columns, two ymm accumulators a row (12 of
	// the 16 registers), two for the row of B and two for broadcasts.
	microKernel("gemmKernel6x16AVX2", 6, 2, 8, ymm, form{})
	// The same kernels reading A unpacked, row-major with rows of 64
	// elements: the attention tiles' P and dS (runtime/attention.go's
	// attnBK), which would otherwise be packed before every product.
	microKernel("gemmKernel14x32A64AVX512", 14, 2, 16, zmm, form{lda: 64})
	microKernel("gemmKernel6x16A64AVX2", 6, 2, 8, ymm, form{lda: 64})
	// And reading B unpacked, rows 64 apart: the tiles as B operands
	// (Pᵀ·dy and dSᵀ·q computed as dyᵀ·P and qᵀ·dS).
	microKernel("gemmKernel14x32B64AVX512", 14, 2, 16, zmm, form{ldb: 64})
	microKernel("gemmKernel6x16B64AVX2", 6, 2, 8, ymm, form{ldb: 64})
	// And the packed kernels storing C = A·B instead of adding to it: the
	// attention's score tiles, which need no clearing first.
	microKernel("gemmKernel14x32SetAVX512", 14, 2, 16, zmm, form{set: true})
	microKernel("gemmKernel6x16SetAVX2", 6, 2, 8, ymm, form{set: true})
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
// either way the offsets are constants and cost no register — and with
// set the tile of C is overwritten with the product instead of added to.
type form struct {
	lda, ldb int
	set      bool
}

// microKernel generates
//
//	func name(k int, a, b, c *float32, ldc int)
//
// which adds the product of a packed mr×k sliver of A (a[p*mr+i]) and a
// packed k×nr sliver of B (b[p*nr+j]), nr = vecs·lanes, into the mr×nr
// tile of C at c with row stride ldc elements. The accumulators stay in
// vector registers for the whole k loop; each element of C is loaded and
// stored once. The form changes that (see there).
func microKernel(name string, mr, vecs, lanes int, v func(int) reg.VecPhysical, f form) {
	nr := vecs * lanes
	width := nr * 4 // bytes from one row of B to the next
	if f.ldb > 0 {
		width = f.ldb * 4
	}
	lda, set := f.lda, f.set
	TEXT(name, NOSPLIT, "func(k int, a, b, c *float32, ldc int)")
	switch {
	case lda > 0:
		Doc(fmt.Sprintf("%s adds %d rows of A, %d elements apart, times a packed k×%d sliver of B into C.", name, mr, lda, nr))
	case f.ldb > 0:
		Doc(fmt.Sprintf("%s adds a packed %d×k sliver of A times k rows of B, %d elements apart, into C.", name, mr, f.ldb))
	case set:
		Doc(fmt.Sprintf("%s stores a packed %d×k sliver of A times a packed k×%d sliver of B into C.", name, mr, nr))
	default:
		Doc(fmt.Sprintf("%s adds a packed %d×k sliver of A times a packed k×%d sliver of B into C.", name, mr, nr))
	}
	// aStep is the bytes from one k step's elements of A to the next's;
	// aAt the offset of row i's element at step p.
	aStep, aAt := mr*4, func(p, i int) int { return (p*mr + i) * 4 }
	if lda > 0 {
		aStep, aAt = 4, func(p, i int) int { return (i*lda + p) * 4 }
	}
	k := Load(Param("k"), GP64())
	a := Load(Param("a"), GP64())
	b := Load(Param("b"), GP64())
	acc := func(i, j int) reg.VecPhysical { return v(i*vecs + j) }
	bv := func(j int) reg.VecPhysical { return v(mr*vecs + j) }
	bc := func(i int) reg.VecPhysical { return v(mr*vecs + vecs + i%2) }
	for i := range mr * vecs {
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
			VMOVUPS(Mem{Base: b, Disp: p*width + j*lanes*4}, bv(j))
		}
		for i := range mr {
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
	ADDQ(U32(unroll*width), b)
	SUBQ(Imm(unroll), k)
	JMP(LabelRef(name + "_loop4"))
	Label(name + "_tail")
	TESTQ(k, k)
	JZ(LabelRef(name + "_store"))
	step(0)
	ADDQ(U32(aStep), a)
	ADDQ(U32(width), b)
	DECQ(k)
	JMP(LabelRef(name + "_tail"))

	Label(name + "_store")
	c := Load(Param("c"), GP64())
	ldc := Load(Param("ldc"), GP64())
	SHLQ(Imm(2), ldc)
	for i := range mr {
		for j := range vecs {
			m := Mem{Base: c, Disp: j * lanes * 4}
			if !set {
				VADDPS(m, acc(i, j), acc(i, j))
			}
			VMOVUPS(acc(i, j), m)
		}
		if i < mr-1 {
			ADDQ(ldc, c)
		}
	}
	VZEROUPPER()
	RET()
}
