//go:build amd64 && !purego

package runtime

// detectVec returns the vector kernels this CPU and its operating system
// support, fastest first, by the same test as the GEMM's (detectCPU).
func detectVec() []*vecSet {
	f := detectCPU(cpuid, xgetbv)
	var sets []*vecSet
	if f.avx512 {
		sets = append(sets, &vecSet{name: "avx512", lanes: 16, exp: vecExpAVX512,
			sigmoid: vecSigmoidAVX512, silu: vecSiluAVX512, tanh: vecTanhAVX512, gelu: vecGeluAVX512, geluDeriv: vecGeluDerivAVX512, adamw: adamwAVX512,
			max: vecMaxAVX512, expSum: vecExpSumAVX512,
			normSum: normSumAVX512, normSumSq: normSumSqAVX512, normApply: normApplyAVX512,
			normDot: normDotAVX512, normGrad: normGradAVX512,
			arith: [4][3]func(dst, x, y []float32){
				{vecAddVVAVX512, vecAddVSAVX512, vecAddSVAVX512},
				{vecSubVVAVX512, vecSubVSAVX512, vecSubSVAVX512},
				{vecMulVVAVX512, vecMulVSAVX512, vecMulSVAVX512},
				{vecDivVVAVX512, vecDivVSAVX512, vecDivSVAVX512},
			}})
	}
	if f.avx2 {
		sets = append(sets, &vecSet{name: "avx2", lanes: 8, exp: vecExpAVX2,
			sigmoid: vecSigmoidAVX2, silu: vecSiluAVX2, tanh: vecTanhAVX2, gelu: vecGeluAVX2, geluDeriv: vecGeluDerivAVX2, adamw: adamwAVX2,
			max: vecMaxAVX2, expSum: vecExpSumAVX2,
			normSum: normSumAVX2, normSumSq: normSumSqAVX2, normApply: normApplyAVX2,
			normDot: normDotAVX2, normGrad: normGradAVX2,
			arith: [4][3]func(dst, x, y []float32){
				{vecAddVVAVX2, vecAddVSAVX2, vecAddSVAVX2},
				{vecSubVVAVX2, vecSubVSAVX2, vecSubSVAVX2},
				{vecMulVVAVX2, vecMulVSAVX2, vecMulSVAVX2},
				{vecDivVVAVX2, vecDivVSAVX2, vecDivSVAVX2},
			}})
	}
	return sets
}

// normSumVec, normDotVec and normGradVec call set v's float64 row kernels
// directly rather than through its func values, so that acc and c (on
// the caller's stack) do not escape: the assembly is //go:noescape, a func
// value is opaque. They are called once a row of every norm.
func normSumVec(v *vecSet, square bool, x []float32, mean float64, acc *[8]float64) {
	switch {
	case v.lanes == 16 && square:
		normSumSqAVX512(x, mean, acc)
	case v.lanes == 16:
		normSumAVX512(x, mean, acc)
	case square:
		normSumSqAVX2(x, mean, acc)
	default:
		normSumAVX2(x, mean, acc)
	}
}

func normDotVec(v *vecSet, x, y []float32, mean float64, acc *[8]float64) {
	if v.lanes == 16 {
		normDotAVX512(x, y, mean, acc)
		return
	}
	normDotAVX2(x, y, mean, acc)
}

func normGradVec(v *vecSet, dst, x, dy []float32, mean float64, c *[3]float64) {
	if v.lanes == 16 {
		normGradAVX512(dst, x, dy, mean, c)
		return
	}
	normGradAVX2(dst, x, dy, mean, c)
}

// arithVec calls set v's arithmetic row kernel for op and mode (see
// vecSet.arith) directly, as normSumVec does, so that operands on the
// caller's stack (a broadcast scalar) do not escape.
func arithVec(v *vecSet, op BinaryOp, mode int, dst, x, y []float32) {
	if v.lanes == 16 {
		switch op*3 + BinaryOp(mode) {
		case Add*3 + 0:
			vecAddVVAVX512(dst, x, y)
		case Add*3 + 1:
			vecAddVSAVX512(dst, x, y)
		case Add*3 + 2:
			vecAddSVAVX512(dst, x, y)
		case Sub*3 + 0:
			vecSubVVAVX512(dst, x, y)
		case Sub*3 + 1:
			vecSubVSAVX512(dst, x, y)
		case Sub*3 + 2:
			vecSubSVAVX512(dst, x, y)
		case Mul*3 + 0:
			vecMulVVAVX512(dst, x, y)
		case Mul*3 + 1:
			vecMulVSAVX512(dst, x, y)
		case Mul*3 + 2:
			vecMulSVAVX512(dst, x, y)
		case Div*3 + 0:
			vecDivVVAVX512(dst, x, y)
		case Div*3 + 1:
			vecDivVSAVX512(dst, x, y)
		case Div*3 + 2:
			vecDivSVAVX512(dst, x, y)
		default:
			panic("runtime: arithVec: not an arithmetic op")
		}
		return
	}
	switch op*3 + BinaryOp(mode) {
	case Add*3 + 0:
		vecAddVVAVX2(dst, x, y)
	case Add*3 + 1:
		vecAddVSAVX2(dst, x, y)
	case Add*3 + 2:
		vecAddSVAVX2(dst, x, y)
	case Sub*3 + 0:
		vecSubVVAVX2(dst, x, y)
	case Sub*3 + 1:
		vecSubVSAVX2(dst, x, y)
	case Sub*3 + 2:
		vecSubSVAVX2(dst, x, y)
	case Mul*3 + 0:
		vecMulVVAVX2(dst, x, y)
	case Mul*3 + 1:
		vecMulVSAVX2(dst, x, y)
	case Mul*3 + 2:
		vecMulSVAVX2(dst, x, y)
	case Div*3 + 0:
		vecDivVVAVX2(dst, x, y)
	case Div*3 + 1:
		vecDivVSAVX2(dst, x, y)
	case Div*3 + 2:
		vecDivSVAVX2(dst, x, y)
	default:
		panic("runtime: arithVec: not an arithmetic op")
	}
}

func widenAddVec(v *vecSet, acc []float64, x []float32) {
	if v.lanes == 16 {
		widenAddAVX512(acc, x)
		return
	}
	widenAddAVX2(acc, x)
}
