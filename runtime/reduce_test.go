package runtime_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/attnc/attnc/ir"
	rt "github.com/attnc/attnc/runtime"
)

var reduceAxes = []struct {
	shape []int
	axes  []int
}{
	{[]int{7}, []int{0}},
	{[]int{3, 5}, []int{1}},
	{[]int{3, 5}, []int{0}},
	{[]int{3, 5}, []int{0, 1}},
	{[]int{2, 3, 4}, []int{1}},
	{[]int{2, 3, 4}, []int{0, 2}}, // not adjacent: transposed first
	{[]int{2, 3, 4, 5}, []int{1, 2}},
	{[]int{2, 3, 4, 5}, []int{0, 1, 3}},
	{[]int{3, 4}, []int{}},
	{[]int{3, 0, 2}, []int{1}}, // empty reduction
	{[]int{40, 1000}, []int{1}},
	{[]int{1000, 600}, []int{0}}, // strided, parallel over column blocks
}

func TestReductions(t *testing.T) {
	r := newRand(10)
	ops := []struct {
		name string
		f    func(*rt.Tensor, []int, bool) *rt.Tensor
		ir   ir.Op
	}{
		{"sum", rt.ReduceSum, ir.OpReduceSum},
		{"max", rt.ReduceMax, ir.OpReduceMax},
		{"mean", rt.ReduceMean, ir.OpReduceMean},
		{"logsumexp", rt.LogSumExp, ir.OpLogSumExp},
	}
	for _, c := range reduceAxes {
		for _, op := range ops {
			for _, keep := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s%v%v/keep=%v", op.name, c.shape, c.axes, keep), func(t *testing.T) {
					x := randF32(r, c.shape...)
					attrs := ir.Attrs{"axes": ir.IntsAttr(int64s(c.axes)...)}
					if keep {
						attrs["keepdims"] = ir.BoolAttr(true)
					}
					checkRel(t, "result", op.f(x, c.axes, keep), ref(t, op.ir, attrs, x), tol)
				})
			}
		}
	}
}

func TestReductionsI32(t *testing.T) {
	r := newRand(11)
	for _, c := range reduceAxes[:10] {
		x := randI32(r, -100, 100, c.shape...)
		attrs := ir.Attrs{"axes": ir.IntsAttr(int64s(c.axes)...)}
		checkRel(t, fmt.Sprint("sum", c), rt.ReduceSum(x, c.axes, false), ref(t, ir.OpReduceSum, attrs, x), 0)
		checkRel(t, fmt.Sprint("max", c), rt.ReduceMax(x, c.axes, false), ref(t, ir.OpReduceMax, attrs, x), 0)
	}
	wrap := rt.FromI32(ints(2), []int32{math.MaxInt32, 5})
	if got := rt.ReduceSum(wrap, ints(0), false).I[0]; got != math.MinInt32+4 {
		t.Errorf("i32 sum wraps to %d, want %d", got, math.MinInt32+4)
	}
	mustPanic(t, "does not apply", func() { rt.ReduceMean(wrap, ints(0), false) })
	mustPanic(t, "sorted", func() { rt.ReduceSum(rt.New(rt.F32, 2, 2), ints(1, 0), false) })
}

func TestLogSumExpExtremes(t *testing.T) {
	inf := float32(math.Inf(1))
	x := rt.FromF32(ints(4, 2), []float32{1000, 1001, -1000, -1000, -inf, -inf, 1, inf})
	checkRel(t, "lse", rt.LogSumExp(x, ints(1), false), ref(t, ir.OpLogSumExp, ir.Attrs{"axes": ir.IntsAttr(1)}, x), tol)
}

func TestArgMax(t *testing.T) {
	r := newRand(12)
	for _, c := range []struct {
		shape []int
		axis  int
	}{{ints(7), 0}, {ints(3, 5), 1}, {ints(3, 5), 0}, {ints(2, 3, 4), 1}} {
		x := randF32(r, c.shape...)
		// Ties: the first wins.
		for i := range x.F {
			if i%4 == 1 {
				x.F[i] = 3
			}
		}
		attrs := ir.Attrs{"axis": ir.IntAttr(int64(c.axis))}
		checkRel(t, fmt.Sprint(c), rt.ArgMax(x, c.axis), ref(t, ir.OpArgMax, attrs, x), 0)
		xi := randI32(r, -3, 3, c.shape...)
		checkRel(t, fmt.Sprint("i32", c), rt.ArgMax(xi, c.axis), ref(t, ir.OpArgMax, attrs, xi), 0)
	}
	nan := rt.FromF32(ints(4), []float32{1, float32(math.NaN()), 5, float32(math.NaN())})
	checkRel(t, "nan", rt.ArgMax(nan, 0), ref(t, ir.OpArgMax, ir.Attrs{"axis": ir.IntAttr(0)}, nan), 0)
}

func TestSoftmax(t *testing.T) {
	r := newRand(13)
	for _, c := range []struct {
		shape []int
		axis  int
	}{{ints(7), 0}, {ints(3, 5), 1}, {ints(3, 5), 0}, {ints(2, 3, 4), 1}, {ints(64, 1000), 1}} {
		x := randF32(r, c.shape...)
		for i := range x.F {
			x.F[i] *= 5
		}
		checkRel(t, fmt.Sprint(c), rt.Softmax(x, c.axis), ref(t, ir.OpSoftmax, ir.Attrs{"axis": ir.IntAttr(int64(c.axis))}, x), tol)
	}
	inf := float32(math.Inf(1))
	x := rt.FromF32(ints(3, 2), []float32{-inf, -inf, 1000, -1000, 3, inf})
	checkRel(t, "extremes", rt.Softmax(x, 1), ref(t, ir.OpSoftmax, ir.Attrs{"axis": ir.IntAttr(1)}, x), tol)
}

func TestNorms(t *testing.T) {
	r := newRand(14)
	for _, shape := range [][]int{{7}, {3, 5}, {2, 3, 64}, {100, 512}} {
		x := randF32(r, shape...)
		for i := range x.F {
			x.F[i] = 3*x.F[i] + 1
		}
		attrs := ir.Attrs{"eps": ir.FloatAttr(1e-5)}
		checkRel(t, fmt.Sprint("layer", shape), rt.LayerNorm(x, 1e-5), ref(t, ir.OpLayerNorm, attrs, x), tol)
		checkRel(t, fmt.Sprint("rms", shape), rt.RMSNorm(x, 1e-5), ref(t, ir.OpRMSNorm, attrs, x), tol)
	}
}

// TestNormGrads checks LayerNormGrad and RMSNormGrad against the
// reference on rows of awkward lengths (the float64 kernels' tails),
// rows of one element and constant rows (where eps alone keeps r
// finite), and an empty last axis; and that mismatched operands panic.
func TestNormGrads(t *testing.T) {
	r := newRand(16)
	for _, shape := range [][]int{{1}, {7}, {3, 5}, {2, 3, 64}, {100, 128}, {7, 257}, {4, 1}, {3, 0}} {
		x, dy := randF32(r, shape...), randF32(r, shape...)
		for i := range x.F {
			x.F[i] = 3*x.F[i] + 1
		}
		attrs := ir.Attrs{"eps": ir.FloatAttr(1e-5)}
		checkRel(t, fmt.Sprint("layer", shape), rt.LayerNormGrad(x, dy, 1e-5), ref(t, ir.OpLayerNormGrad, attrs, x, dy), tol)
		checkRel(t, fmt.Sprint("rms", shape), rt.RMSNormGrad(x, dy, 1e-5), ref(t, ir.OpRMSNormGrad, attrs, x, dy), tol)
		if n := shape[len(shape)-1]; n > 0 {
			g := randF32(r, n)
			scaled := ir.Attrs{"eps": ir.FloatAttr(1e-5), "scale": ir.BoolAttr(true)}
			checkRel(t, fmt.Sprint("layer scaled", shape), rt.LayerNormGradScaled(x, dy, g, 1e-5), ref(t, ir.OpLayerNormGrad, scaled, x, dy, g), tol)
			checkRel(t, fmt.Sprint("rms scaled", shape), rt.RMSNormGradScaled(x, dy, g, 1e-5), ref(t, ir.OpRMSNormGrad, scaled, x, dy, g), tol)
		}
	}
	x, dy := rt.FromF32(ints(2, 9), make([]float32, 18)), randF32(r, 2, 9)
	for i := range x.F[:9] {
		x.F[i] = 2.5 // a constant row: var 0
	}
	attrs := ir.Attrs{"eps": ir.FloatAttr(0.25)}
	checkRel(t, "layer, constant rows", rt.LayerNormGrad(x, dy, 0.25), ref(t, ir.OpLayerNormGrad, attrs, x, dy), tol)
	checkRel(t, "rms, constant rows", rt.RMSNormGrad(x, dy, 0.25), ref(t, ir.OpRMSNormGrad, attrs, x, dy), tol)
	mustPanic(t, "dy of its shape", func() { rt.LayerNormGrad(randF32(r, 2, 3), randF32(r, 3, 2), 1e-5) })
	mustPanic(t, "rank ≥ 1", func() { rt.RMSNormGrad(randF32(r), randF32(r), 1e-5) })
}

func TestCrossEntropy(t *testing.T) {
	r := newRand(15)
	for _, c := range []struct {
		shape  []int // of the targets
		c      int
		ignore bool
	}{{ints(5), 7, false}, {ints(3, 4), 10, true}, {ints(16, 64), 256, true}, {ints(), 3, false}} {
		logits := randF32(r, append(append([]int{}, c.shape...), c.c)...)
		targets := randI32(r, 0, c.c, c.shape...)
		attrs := ir.Attrs{}
		if c.ignore {
			attrs["ignore_index"] = ir.IntAttr(1)
		}
		got, err := rt.CrossEntropy(logits, targets, 1, c.ignore)
		if err != nil {
			t.Fatal(err)
		}
		checkRel(t, fmt.Sprint(c), got, ref(t, ir.OpCrossEntropy, attrs, logits, targets), tol)
	}
	// Every position ignored gives 0; a bad target is an error naming it.
	logits := randF32(r, 2, 3)
	got, err := rt.CrossEntropy(logits, rt.FromI32(ints(2), []int32{-100, -100}), -100, true)
	if err != nil || got.F[0] != 0 {
		t.Errorf("all ignored: got %v, %v; want 0", got, err)
	}
	_, err = rt.CrossEntropy(logits, rt.FromI32(ints(2), []int32{0, 3}), -100, true)
	if err == nil || !contains(err.Error(), "target 3 at position [1]") {
		t.Errorf("bad target: got error %v", err)
	}
}

func TestScan(t *testing.T) {
	r := newRand(16)
	for _, c := range []struct {
		shape []int
		axis  int
	}{{ints(9), 0}, {ints(3, 8), 1}, {ints(8, 3), 0}, {ints(2, 17, 300), 1}} {
		for _, rev := range []bool{false, true} {
			a, x := randF32(r, c.shape...), randF32(r, c.shape...)
			for i := range a.F {
				a.F[i] = 0.9 * float32(math.Tanh(float64(a.F[i])))
			}
			attrs := ir.Attrs{"axis": ir.IntAttr(int64(c.axis)), "reverse": ir.BoolAttr(rev)}
			checkRel(t, fmt.Sprint(c, rev), rt.Scan(a, x, c.axis, rev), ref(t, ir.OpScan, attrs, a, x), tol)
		}
	}
}
