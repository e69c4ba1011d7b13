//go:build !amd64 || purego

package runtime

// detectVec returns no vector kernels: off amd64, or under the purego
// tag, the slice kernels use their portable twins.
func detectVec() []*vecSet { return nil }

// The direct calls of the float64 row kernels (vec_amd64.go): never
// reached here, where there is no vector set.
func normSumVec(v *vecSet, square bool, x []float32, mean float64, acc *[8]float64) {
	panic("runtime: no vector kernels")
}

func normDotVec(v *vecSet, x, y []float32, mean float64, acc *[8]float64) {
	panic("runtime: no vector kernels")
}

func normGradVec(v *vecSet, dst, x, dy []float32, mean float64, c *[3]float64) {
	panic("runtime: no vector kernels")
}

func arithVec(v *vecSet, op BinaryOp, mode int, dst, x, y []float32) {
	panic("runtime: no vector kernels")
}

func widenAddVec(v *vecSet, acc []float64, x []float32) { panic("runtime: no vector kernels") }
