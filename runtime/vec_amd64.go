//go:build amd64 && !purego

package runtime

// detectVec returns the vector kernels this CPU and its operating system
// support, fastest first, by the same test as the GEMM's (detectCPU).
func detectVec() []*vecSet {
	f := detectCPU(cpuid, xgetbv)
	var sets []*vecSet
	if f.avx512 {
		sets = append(sets, &vecSet{name: "avx512", lanes: 16, exp: vecExpAVX512,
			sigmoid: vecSigmoidAVX512, silu: vecSiluAVX512, tanh: vecTanhAVX512, gelu: vecGeluAVX512, adamw: adamwAVX512})
	}
	if f.avx2 {
		sets = append(sets, &vecSet{name: "avx2", lanes: 8, exp: vecExpAVX2,
			sigmoid: vecSigmoidAVX2, silu: vecSiluAVX2, tanh: vecTanhAVX2, gelu: vecGeluAVX2, adamw: adamwAVX2})
	}
	return sets
}
