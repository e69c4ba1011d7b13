//go:build !amd64 || purego

package runtime

// expSumRows reports false: without vector kernels the rows go through
// expSumSlice one at a time (see the amd64 version).
func expSumRows(x []float32, stride, rows, w int, subs, sums []float32) bool { return false }
