package passes

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/attnc/attnc/ir"
	"github.com/attnc/attnc/ir/eval"
)

// TestContract differentiates small modules full of matmuls, runs
// Contract and checks, in float64, that every output and gradient is what
// it was before, and that the matmuls it should rewrite are gone.
func TestContract(t *testing.T) {
	for _, tc := range []struct {
		name     string
		build    func(c *gc) *ir.Instr
		matmuls  int // matmuls left in LossAndGrad
		rewrites bool
	}{
		{name: "linear layer on a batch of rows", build: func(c *gc) *ir.Instr {
			x := c.param(shape("B", "N", 3), nil)
			return c.op(ir.OpMatMul, nil, x, c.param(shape(3, 5), nil))
		}, rewrites: true},
		{name: "linear layer on rank-4 activations", build: func(c *gc) *ir.Instr {
			x := c.param(shape("B", 2, "N", 3), nil)
			return c.op(ir.OpMatMul, nil, c.op(ir.OpTanh, nil, x), c.param(shape(3, 4), nil))
		}, rewrites: true},
		{name: "batched product of two params", build: func(c *gc) *ir.Instr {
			return c.op(ir.OpMatMul, nil, c.param(shape(2, "N", 4), nil), c.param(shape(2, 4, 5), nil))
		}, matmuls: 1, rewrites: true},
		{name: "matmul of 2-d params", build: func(c *gc) *ir.Instr {
			return c.op(ir.OpMatMul, nil, c.param(shape(3, 4), nil), c.param(shape(4, 2), nil))
		}, matmuls: 1, rewrites: true},
		{name: "broadcast batch dims stay matmuls", build: func(c *gc) *ir.Instr {
			// The forward and p0's gradient broadcast; p1's gradient
			// does not.
			return c.op(ir.OpMatMul, nil, c.param(shape(2, 1, 3, 4), nil), c.param(shape(5, 4, 6), nil))
		}, matmuls: 2, rewrites: true},
		{name: "a transposed operand in the forward", build: func(c *gc) *ir.Instr {
			x := c.param(shape("B", 3, "N"), nil)
			xt := c.op(ir.OpTranspose, ir.Attrs{"perm": ir.IntsAttr(0, 2, 1)}, x)
			return c.op(ir.OpMatMul, nil, xt, c.param(shape(3, 2), nil))
		}, rewrites: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &gc{b: ir.NewBuilder("m", "B", "N"), params: map[string]*eval.Tensor{}, inputs: map[string]*eval.Tensor{},
				rng: rand.New(rand.NewPCG(3, 4)), syms: map[string]int64{"B": 3, "N": 5}}
			y := tc.build(c)
			w := c.input(ir.F32, y.Type.Shape, c.rng.NormFloat64)
			axes := make([]int64, y.Type.Rank())
			for i := range axes {
				axes[i] = int64(i)
			}
			c.b.Output(ir.OutLoss, "loss", c.op(ir.OpReduceSum, ir.Attrs{"axes": ir.IntsAttr(axes...)}, c.op(ir.OpMul, nil, y, w)))
			c.b.Output(ir.OutValue, "y", y)
			if err := c.b.Err(); err != nil {
				t.Fatal(err)
			}
			m := c.b.M
			if err := Autodiff(m); err != nil {
				t.Fatal(err)
			}
			before := cloneModule(t, m)
			if err := Contract(m); err != nil {
				t.Fatal(err)
			}
			if err := ir.Verify(m); err != nil {
				t.Fatalf("after contract: %v\n%s", err, ir.Print(m))
			}
			env := eval.Env{Inputs: c.inputs, Params: c.params}
			want, err := eval.Run(before, env)
			if err != nil {
				t.Fatal(err)
			}
			got, err := eval.Run(m, env)
			if err != nil {
				t.Fatal(err)
			}
			for i, o := range m.Outputs {
				g, w := got.Values[o.Value.ID], want.Values[before.Outputs[i].Value.ID]
				for j := range w.Data {
					if d := math.Abs(g.Data[j] - w.Data[j]); d > 1e-9*(1+math.Abs(w.Data[j])) || math.IsNaN(g.Data[j]) {
						t.Fatalf("%s %s[%d] = %v, want %v\n%s", o.Kind, o.Name, j, g.Data[j], w.Data[j], ir.Print(m))
					}
				}
			}
			prog, err := Lower(m)
			if err != nil {
				t.Fatal(err)
			}
			matmuls, einsums := 0, 0
			for _, in := range prog.Func("LossAndGrad").Body {
				switch in.Op {
				case ir.OpMatMul:
					matmuls++
				case ir.OpEinsum:
					einsums++
				}
			}
			if matmuls != tc.matmuls || tc.rewrites != (einsums > 0) {
				t.Errorf("%d matmuls and %d einsums, want %d matmuls (rewrites %v):\n%s", matmuls, einsums, tc.matmuls, tc.rewrites, ir.Print(m))
			}
		})
	}
}
