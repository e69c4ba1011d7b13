package eval_test

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/attnc/attnc/ir"
	"github.com/attnc/attnc/ir/eval"
)

// Tensor literals: sh(2, 3) is a shape, f32(sh(2, 3), 1, 2, …) a tensor.
func sh(dims ...int) []int { return dims }

func f32(shape []int, v ...float64) *eval.Tensor   { return eval.FromData(ir.F32, shape, v) }
func i32(shape []int, v ...float64) *eval.Tensor   { return eval.FromData(ir.I32, shape, v) }
func boolT(shape []int, v ...float64) *eval.Tensor { return eval.FromData(ir.Bool, shape, v) }

var (
	inf = math.Inf(1)
	nan = math.NaN()
)

func sym(s string) ir.Dim    { return ir.SymDim(s) }
func cd(n int64) ir.Dim      { return ir.ConstDim(n) }
func name(s string) ir.Attrs { return ir.Attrs{"name": ir.StringAttr(s)} }

// input declares an input of type dt[dims...].
func input(b *ir.Builder, n string, dt ir.DType, dims ...ir.Dim) *ir.Instr {
	return b.MustGiven(ir.OpInput, ir.TensorOf(dt, dims...), name(n))
}

// constDims returns the constant dims of shape.
func constDims(shape []int) []ir.Dim {
	out := make([]ir.Dim, len(shape))
	for i, d := range shape {
		out[i] = cd(int64(d))
	}
	return out
}

// ctx builds a module for one test case and collects the tensors its
// inputs and params are given.
type ctx struct {
	b      *ir.Builder
	inputs map[string]*eval.Tensor
	params map[string]*eval.Tensor
}

func newCtx(syms ...string) *ctx {
	return &ctx{b: ir.NewBuilder("test", syms...), inputs: map[string]*eval.Tensor{}, params: map[string]*eval.Tensor{}}
}

// in declares a fresh input holding t; its declared shape is dims, or
// t's shape as constants when dims is empty.
func (c *ctx) in(t *eval.Tensor, dims ...ir.Dim) *ir.Instr {
	if len(dims) == 0 {
		dims = constDims(t.Shape)
	}
	n := fmt.Sprintf("x%d", len(c.inputs))
	c.inputs[n] = t
	return input(c.b, n, t.DType, dims...)
}

// op appends an op whose type is inferred.
func (c *ctx) op(op ir.Op, attrs ir.Attrs, args ...*ir.Instr) *ir.Instr {
	return c.b.Must(op, attrs, args...)
}

// given appends an op with a stated type of constant shape.
func (c *ctx) given(op ir.Op, dt ir.DType, shape []int, attrs ir.Attrs, args ...*ir.Instr) *ir.Instr {
	return c.b.MustGiven(op, ir.TensorOf(dt, constDims(shape)...), attrs, args...)
}

// run evaluates the module built so far.
func (c *ctx) run(t *testing.T) *eval.Result {
	t.Helper()
	if err := c.b.Err(); err != nil {
		t.Fatalf("building the module: %v", err)
	}
	res, err := eval.Run(c.b.M, eval.Env{Inputs: c.inputs, Params: c.params})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

// checkClose fails unless got has want's dtype and shape and every element
// is within tol of want, relative to max(1, |want|); NaN matches NaN and
// infinities must match exactly. i32 and bool must match exactly.
func checkClose(t *testing.T, what string, got, want *eval.Tensor, tol float64) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: no value", what)
	}
	if got.DType != want.DType || !slices.Equal(got.Shape, want.Shape) {
		t.Fatalf("%s: got %s, want %s", what, got, want)
	}
	if want.DType != ir.F32 {
		tol = 0
	}
	for i, w := range want.Data {
		g := got.Data[i]
		switch {
		case math.IsNaN(w) || math.IsNaN(g):
			if math.IsNaN(w) != math.IsNaN(g) {
				t.Fatalf("%s: element %d is %v, want %v\ngot  %s\nwant %s", what, i, g, w, got, want)
			}
		case math.IsInf(w, 0) || math.IsInf(g, 0):
			if g != w {
				t.Fatalf("%s: element %d is %v, want %v\ngot  %s\nwant %s", what, i, g, w, got, want)
			}
		case math.Abs(g-w) > tol*math.Max(1, math.Abs(w)):
			t.Fatalf("%s: element %d is %.17g, want %.17g\ngot  %s\nwant %s", what, i, g, w, got, want)
		}
	}
}
