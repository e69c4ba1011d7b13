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
