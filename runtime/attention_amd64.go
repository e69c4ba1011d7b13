//go:build amd64 && !purego

package runtime

// expSumRows sets each of rows rows of x, w elements from r·stride, to
// e^(x - subs[r]) and sums[r] to the float32 sum of what it wrote, as
// expSumSlice does a row at a time (the same sums, bit for bit), in one
// call: the rows of a short attention tile, where the calls were the
// cost. w must be a multiple of the vector kernels' lanes (see padCols).
// It reports false, doing nothing, without vector kernels.
func expSumRows(x []float32, stride, rows, w int, subs, sums []float32) bool {
	v := activeVec
	if v == nil || rows == 0 || w == 0 || w%v.lanes != 0 {
		return false
	}
	_, _, _ = x[(rows-1)*stride+w-1], subs[rows-1], sums[rows-1]
	if v.lanes == 16 {
		vecExpSumRowsAVX512(&x[0], stride, rows, w, &subs[0], &sums[0])
	} else {
		vecExpSumRowsAVX2(&x[0], stride, rows, w, &subs[0], &sums[0])
	}
	return true
}
