package runtime

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPeakFollowsLiveness(t *testing.T) {
	var p Peak
	p.Alloc(1, 4, 2, 3) // 24
	p.Alloc(2, 4, 2, 3) // 48 live
	p.Free(1)
	p.Alloc(3, 1, 10) // 34 live
	p.Free(2, 3)
	p.Alloc(4, 4, 5) // 20 live
	assert.Equal(t, int64(48), p.Max())

	var huge Peak
	huge.Alloc(1, 4, 1<<40, 1<<40, 1<<40)
	huge.Free(1)
	huge.Alloc(2, 4, 1)
	assert.Equal(t, int64(math.MaxInt64), huge.Max(), "saturates instead of wrapping")

	var neg Peak
	neg.Alloc(1, 4, -1, 8)
	assert.Equal(t, int64(0), neg.Max())
}

func TestShapeLenNeverOverflows(t *testing.T) {
	for _, c := range []struct {
		shape []int
		n     int
		err   string
	}{
		{nil, 1, ""},
		{[]int{2, 3}, 6, ""},
		{[]int{1 << 32, 1 << 32, 0}, 0, ""},
		{[]int{1 << 32, 1 << 32}, 0, "more than"},
		{[]int{math.MaxInt, 2}, 0, "more than"},
		{[]int{3, -1}, 0, "negative dim"},
	} {
		n, err := ShapeLen(c.shape)
		if c.err != "" {
			require.Error(t, err, "%v", c.shape)
			assert.Contains(t, err.Error(), c.err)
			continue
		}
		require.NoError(t, err, "%v", c.shape)
		assert.Equal(t, c.n, n, "%v", c.shape)
	}
	_, err := WrapF32([]int{1 << 32, 1 << 32}, nil)
	assert.Error(t, err, "a product that wraps to 0 does not match empty data")
	assert.Error(t, CheckData(&Tensor{DType: F32, Shape: []int{2}, F: []float32{1}}))
	assert.Error(t, CheckData(&Tensor{Shape: []int{}}), "no dtype")
}

func TestCheckMemory(t *testing.T) {
	assert.NoError(t, CheckMemory("Forward", 10, 0))
	assert.NoError(t, CheckMemory("Forward", 10, 10))
	err := CheckMemory("Forward", 3<<30, 1<<30)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "3.0 GiB")
	assert.Contains(t, err.Error(), "1.0 GiB")
	assert.Positive(t, DefaultMemoryLimit())
}
