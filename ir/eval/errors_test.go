package eval_test

import (
	"math"
	"regexp"
	"testing"

	"github.com/attnc/attnc/ir"
	"github.com/attnc/attnc/ir/eval"
)

// An errCase builds a module and an environment that Run must reject with
// an error matching want.
type errCase struct {
	name  string
	syms  []string
	build func(c *ctx)
	given map[string]int64
	want  string // regexp
}

var errCases = []errCase{
	{name: "missing input", want: `^missing input "x" \(f32\[2\]\)$`, build: func(c *ctx) {
		input(c.b, "x", ir.F32, cd(2))
	}},
	{name: "unknown input", want: `^unknown input "y" \(the module's inputs are x0\)$`, build: func(c *ctx) {
		c.in(f32(sh(1), 0))
		c.inputs["y"] = f32(sh(1), 0)
	}},
	{name: "nil input", want: `^input "x" is a nil tensor$`, build: func(c *ctx) {
		input(c.b, "x", ir.F32, cd(2))
		c.inputs["x"] = nil
	}},
	{name: "wrong rank", syms: []string{"N", "D"}, want: `^input "x0": tensor has rank 1 \(shape \[3\]\), want rank 2 \(f32\[N, D\]\)$`, build: func(c *ctx) {
		c.in(f32(sh(3), 1, 2, 3), sym("N"), sym("D"))
	}},
	{name: "wrong constant dim", want: `^input "x0": dim 0 is 4 but the tensor has 3$`, build: func(c *ctx) {
		c.in(f32(sh(3), 1, 2, 3), cd(4))
	}},
	{name: "wrong dtype", want: `^input "x0": dtype is i32, want f32 \(f32\[3\]\)$`, build: func(c *ctx) {
		c.inputs["x0"] = i32(sh(3), 1, 2, 3)
		input(c.b, "x0", ir.F32, cd(3))
	}},
	{name: "inconsistent symbol", syms: []string{"B", "N"}, want: `^input "tokens": dim 1 is N = 12 from input "x" but the tensor has 7$`, build: func(c *ctx) {
		c.inputs["x"] = eval.NewTensor(ir.F32, 2, 12)
		c.inputs["tokens"] = eval.NewTensor(ir.I32, 2, 7)
		input(c.b, "x", ir.F32, sym("B"), sym("N"))
		input(c.b, "tokens", ir.I32, sym("B"), sym("N"))
	}},
	{name: "symbol given and contradicted", syms: []string{"N"}, given: map[string]int64{"N": 4}, want: `^input "x0": dim 0 is N = 4 from Env.Syms but the tensor has 3$`, build: func(c *ctx) {
		c.in(f32(sh(3), 1, 2, 3), sym("N"))
	}},
	{name: "unknown symbol given", syms: []string{"N"}, given: map[string]int64{"X": 4}, want: `^Env.Syms: unknown symbol "X" \(the module's symbols are N\)$`, build: func(c *ctx) {}},
	{name: "negative symbol given", syms: []string{"N"}, given: map[string]int64{"N": -4}, want: `^Env.Syms: symbol N = -4 is negative$`, build: func(c *ctx) {}},
	{name: "affine dim contradicted", syms: []string{"S", "T"}, want: `^input "x2": dim 0 is S\+T = 5 \(S = 2 from input "x0", T = 3 from input "x1"\) but the tensor has 6$`, build: func(c *ctx) {
		c.in(eval.NewTensor(ir.F32, 2), sym("S"))
		c.in(eval.NewTensor(ir.F32, 3), sym("T"))
		c.in(eval.NewTensor(ir.F32, 6), sym("S").Add(sym("T")))
	}},
	{name: "affine dim gives a negative symbol", syms: []string{"S", "T"}, want: `^input "x1": dim 0 is S\+T with S = 5 from input "x0", which cannot be 3 \(it would make T = -2\)$`, build: func(c *ctx) {
		c.in(eval.NewTensor(ir.F32, 5), sym("S"))
		c.in(eval.NewTensor(ir.F32, 3), sym("S").Add(sym("T")))
	}},
	{name: "affine dim with no integral solution", syms: []string{"N"}, want: `^input "x0": dim 0 is 2\*N, which cannot be 7$`, build: func(c *ctx) {
		c.in(eval.NewTensor(ir.F32, 7), sym("N").Scale(2))
	}},
	{name: "affine dim underdetermined", syms: []string{"S", "T"}, want: `^input "x0": dim 0 is S\+T = 5, which does not determine S and T; give them in Env.Syms$`, build: func(c *ctx) {
		c.in(eval.NewTensor(ir.F32, 5), sym("S").Add(sym("T")))
	}},
	{name: "i32 input not integral", want: `^input "x0": element \[1\] is 1.5, not an i32$`, build: func(c *ctx) {
		c.in(i32(sh(2), 1, 1.5))
	}},
	{name: "i32 input too large", want: `^input "x0": element \[0\] is 3e\+09, not an i32$`, build: func(c *ctx) {
		c.in(i32(sh(1), 3e9))
	}},
	{name: "bool input not 0 or 1", want: `^input "x0": element \[0 1\] is 2, not a bool \(0 or 1\)$`, build: func(c *ctx) {
		c.in(boolT(sh(1, 2), 1, 2))
	}},
	{name: "data does not fill the shape", want: `^input "x0": shape \[2 2\] needs 4 values, the tensor holds 3$`, build: func(c *ctx) {
		c.inputs["x0"] = &eval.Tensor{DType: ir.F32, Shape: []int{2, 2}, Data: make([]float64, 3)}
		input(c.b, "x0", ir.F32, cd(2), cd(2))
	}},
	{name: "negative tensor dim", want: `^input "x0": dim 0 of the tensor is negative \(-2\)$`, build: func(c *ctx) {
		c.inputs["x0"] = &eval.Tensor{DType: ir.F32, Shape: []int{-2}}
		input(c.b, "x0", ir.F32, cd(2))
	}},
	{name: "missing param", want: `^missing param "w" \(f32\[2, 2\]\)$`, build: func(c *ctx) {
		c.given(ir.OpParam, ir.F32, sh(2, 2), attrs("name", ir.StringAttr("w"), "init", ir.WordAttr("zeros")))
	}},
	{name: "unknown param", want: `^unknown param "b" \(the module's params are w\)$`, build: func(c *ctx) {
		c.given(ir.OpParam, ir.F32, sh(2), attrs("name", ir.StringAttr("w"), "init", ir.WordAttr("zeros")))
		c.params["w"] = f32(sh(2), 1, 2)
		c.params["b"] = f32(sh(2), 1, 2)
	}},
	{name: "param shape", want: `^param "w": dim 1 is 2 but the tensor has 3$`, build: func(c *ctx) {
		c.given(ir.OpParam, ir.F32, sh(2, 2), attrs("name", ir.StringAttr("w"), "init", ir.WordAttr("zeros")))
		c.params["w"] = eval.NewTensor(ir.F32, 2, 3)
	}},
	{name: "gather index out of range", want: `^%2 = gather: index 300 out of range \[0, 256\)$`, build: func(c *ctx) {
		c.op(ir.OpGather, attrs("axis", ir.IntAttr(0)), c.in(eval.NewTensor(ir.F32, 256, 2)), c.in(i32(sh(3), 1, 300, 2)))
	}},
	{name: "gather negative index", want: `^%2 = gather: index -1 out of range \[0, 4\)$`, build: func(c *ctx) {
		c.op(ir.OpGather, attrs("axis", ir.IntAttr(0)), c.in(eval.NewTensor(ir.F32, 4)), c.in(i32(sh(1), -1)))
	}},
	{name: "scatter_add index out of range", want: `^%2 = scatter_add: index 4 out of range \[0, 4\)$`, build: func(c *ctx) {
		c.given(ir.OpScatterAdd, ir.F32, sh(4), attrs("axis", ir.IntAttr(0)), c.in(f32(sh(2), 1, 2)), c.in(i32(sh(2), 0, 4)))
	}},
	{name: "cross_entropy target out of range", want: `^%2 = cross_entropy: target 3 at position \[1\] out of range \[0, 3\)$`, build: func(c *ctx) {
		c.op(ir.OpCrossEntropy, nil, c.in(eval.NewTensor(ir.F32, 2, 3)), c.in(i32(sh(2), 0, 3)))
	}},
	{name: "cross_entropy negative target that is not ignore_index", want: `^%2 = cross_entropy: target -1 at position \[0\] out of range \[0, 3\)$`, build: func(c *ctx) {
		c.op(ir.OpCrossEntropy, attrs("ignore_index", ir.IntAttr(-100)), c.in(eval.NewTensor(ir.F32, 2, 3)), c.in(i32(sh(2), -1, -100)))
	}},
	{name: "slice out of range at run time", syms: []string{"S", "N"}, want: `^%2 = slice: \[S:N\] is \[5:3\], outside dim 0 of size 3$`, build: func(c *ctx) {
		c.in(eval.NewTensor(ir.F32, 5), sym("S"))
		x := c.in(eval.NewTensor(ir.F32, 3), sym("N"))
		c.op(ir.OpSlice, attrs("axis", ir.IntAttr(0), "start", ir.DimAttr(sym("S")), "end", ir.DimAttr(sym("N"))), x)
	}},
	{name: "cast NaN to i32", want: `^%1 = cast: element \[1\]: NaN cannot be converted to i32$`, build: func(c *ctx) {
		c.op(ir.OpCast, attrs("to", ir.DTypeAttr(ir.I32)), c.in(f32(sh(2), 1, math.NaN())))
	}},
	{name: "unbound symbol", syms: []string{"N"}, want: `^%0 = iota: dimension N: symbol N is not bound \(give it in Env.Syms or through an input's shape\)$`, build: func(c *ctx) {
		c.b.MustGiven(ir.OpIota, ir.TensorOf(ir.I32, sym("N")), attrs("axis", ir.IntAttr(0)))
	}},
	{name: "capture read out of range", want: `^%2 = attention: score s \+ \$0\[h, q - k\] at b=0, h=0, q=0, k=1: capture \$0 read at \[0 -1\], outside its shape \[1 8\]$`, build: func(c *ctx) {
		q := c.in(eval.NewTensor(ir.F32, 1, 1, 2, 2))
		bias := c.in(eval.NewTensor(ir.F32, 1, 8))
		score := ir.Bin(ir.EAdd, v("s"), ir.Capture(0, v("h"), ir.Bin(ir.ESub, v("q"), v("k"))))
		c.op(ir.OpAttention, attrs("scale", ir.FloatAttr(1), "score", ir.ExprAttr(score), "returns", ir.WordAttr("probs")), q, q, bias)
	}},
	{name: "integer division by zero in a mask", want: `^%1 = attention: mask q / \(k - k\) == 0 at b=0, h=0, q=0, k=0: integer division by zero in q / \(k - k\)$`, build: func(c *ctx) {
		q := c.in(eval.NewTensor(ir.F32, 1, 1, 2, 2))
		mask := ir.Bin(ir.EEq, ir.Bin(ir.EDiv, v("q"), ir.Bin(ir.ESub, v("k"), v("k"))), ir.Int(0))
		c.op(ir.OpAttention, attrs("scale", ir.FloatAttr(1), "mask", ir.ExprAttr(mask), "returns", ir.WordAttr("probs")), q, q)
	}},
	{name: "integer division by zero in a tensor", want: `^%2 = mod: integer division by zero: mod of 7 by 0$`, build: func(c *ctx) {
		c.op(ir.OpMod, nil, c.in(i32(sh(2), -3, 7)), c.in(i32(sh(2), 2, 0)))
	}},
	{name: "too large a symbol", syms: []string{"N"}, given: map[string]int64{"N": 1 << 40}, want: `^%0 = iota: shape \[1099511627776 1099511627776\] has too many elements for the reference interpreter$`, build: func(c *ctx) {
		c.b.MustGiven(ir.OpIota, ir.TensorOf(ir.I32, sym("N"), sym("N")), attrs("axis", ir.IntAttr(0)))
	}},
}

func TestRunErrors(t *testing.T) {
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCtx(tc.syms...)
			tc.build(c)
			if err := c.b.Err(); err != nil {
				t.Fatalf("building: %v", err)
			}
			_, err := eval.Run(c.b.M, eval.Env{Inputs: c.inputs, Params: c.params, Syms: tc.given})
			if err == nil {
				t.Fatalf("Run succeeded, want an error matching %s", tc.want)
			}
			if !regexp.MustCompile(tc.want).MatchString(err.Error()) {
				t.Fatalf("error\n\t%v\ndoes not match\n\t%s", err, tc.want)
			}
		})
	}
}

func TestRunRejectsUnverifiedModules(t *testing.T) {
	if _, err := eval.Run(nil, eval.Env{}); err == nil {
		t.Errorf("Run(nil) succeeded")
	}
	x := &ir.Instr{ID: 0, Op: ir.OpInput, Attrs: name("x"), Type: ir.TensorOf(ir.F32, cd(2))}
	bad := &ir.Instr{ID: 1, Op: ir.OpExp, Args: []*ir.Instr{x}, Type: ir.TensorOf(ir.F32, cd(3))}
	m := &ir.Module{Name: "bad", Instrs: []*ir.Instr{x, bad}}
	_, err := eval.Run(m, eval.Env{Inputs: map[string]*eval.Tensor{"x": f32(sh(2), 1, 2)}})
	if err == nil || !regexp.MustCompile(`module bad does not verify:\n\t%1 = exp: result type is f32\[3\]`).MatchString(err.Error()) {
		t.Errorf("Run of a module that does not verify: got %v", err)
	}
}

// TestNaNIsNotAnError: NaN flows through arithmetic and reductions.
func TestNaNIsNotAnError(t *testing.T) {
	c := newCtx()
	x := c.in(f32(sh(3), 1, math.NaN(), 2))
	s := c.op(ir.OpSoftmax, attrs("axis", ir.IntAttr(0)), c.op(ir.OpLog, nil, x))
	l := c.op(ir.OpReduceSum, axes(false, 0), s)
	a := c.op(ir.OpArgMax, attrs("axis", ir.IntAttr(0)), x)
	res := c.run(t)
	if got := res.Values[l.ID].Data[0]; !math.IsNaN(got) {
		t.Errorf("sum of a softmax with a NaN = %v, want NaN", got)
	}
	if got := res.Values[a.ID].Data[0]; got != 1 {
		t.Errorf("argmax with a NaN = %v, want its index 1", got)
	}
}
