package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/attnc/attnc/ir"
)

// TestSummaryCountsWeightsExactly builds a module by hand, past the
// front end's limits, whose weight count does not fit in an int64: the
// summary must say the true count, not a wrapped negative one.
func TestSummaryCountsWeightsExactly(t *testing.T) {
	b := ir.NewBuilder("m")
	side := ir.ConstDim(3037000500) // side² just exceeds 2^63
	for _, name := range []string{"a", "b"} {
		_, err := b.Given(ir.OpParam, ir.Type{DType: ir.F32, Shape: ir.Shape{side, side}},
			ir.Attrs{"name": ir.StringAttr(name), "init": ir.WordAttr("zeros")})
		require.NoError(t, err)
	}
	s := summary(b.M)
	assert.True(t, strings.HasPrefix(s, "18446744074000500000 weights in 2 tensors"), s)
}
