package tests

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/attnc/attnc/ir"
	"github.com/attnc/attnc/ir/eval"
	"github.com/attnc/attnc/kir"
	keval "github.com/attnc/attnc/kir/eval"
	"github.com/attnc/attnc/passes"
)

// checkGroups runs every fused group's kernel of prog, for target t, in
// the kernel interpreter on fresh random inputs and compares its result
// with the members evaluated one by one by the graph IR's reference
// (eval.Elementwise; a reduce group's root by eval.Run of the reduction
// alone): the kernel path must compute what the graph says, tile edges,
// padded tiles and broadcast operands included. It returns the number of
// groups checked.
func checkGroups(t *testing.T, prog *ir.Program, tg kir.Target, syms map[string]int64, rng *rand.Rand) int {
	t.Helper()
	kp, err := passes.Fuse(prog, tg)
	require.NoError(t, err)
	require.NoError(t, kir.Verify(kp.Kernels))
	n := 0
	for _, f := range prog.Funcs {
		for _, g := range kp.Funcs[f.Name].Groups {
			n++
			bufs := map[string]*eval.Tensor{}
			vals := map[*ir.Instr]*eval.Tensor{}
			for i, x := range g.Inputs {
				shape := evalShape(t, x.Type.Shape, syms)
				v := eval.NewTensor(ir.F32, shape...)
				for j := range v.Data {
					v.Data[j] = rng.NormFloat64() + 0.5
				}
				bufs[fmt.Sprintf("in%d", i)] = v
				vals[x] = v
			}
			for _, m := range g.Members {
				args := make([]*eval.Tensor, len(m.Args))
				for i, a := range m.Args {
					args[i] = vals[a]
				}
				var v *eval.Tensor
				if m.Op.Info().Class == ir.ClassReduce {
					require.Same(t, g.Root, m, "%s: a reduction below the root", g.Label())
					v = evalReduce(t, m, args[0])
				} else {
					v, err = eval.Elementwise(m.Op, ir.F32, evalShape(t, m.Type.Shape, syms), args...)
					require.NoError(t, err, "%s %s", f.Name, m)
				}
				vals[m] = v
			}
			want := vals[g.Root]
			out := eval.NewTensor(ir.F32, want.Shape...)
			for j := range out.Data {
				out.Data[j] = math.NaN() // every element must be written
			}
			bufs["out"] = out
			require.NoError(t, keval.Run(kp.Kernels, g.Kernel.Name, keval.Env{Syms: syms, Buffers: bufs}), "%s", g.Label())
			for j, w := range want.Data {
				got := out.Data[j]
				if !(got == w || math.IsNaN(got) && math.IsNaN(w) || math.Abs(got-w) <= 1e-12*math.Abs(w)) {
					t.Fatalf("%s, target %s: element %d is %v, want %v\n%s", g.Label(), tg.Name, j, got, w, kir.Print(&kir.Module{Name: "g", Syms: kp.Kernels.Syms, Kernels: []*kir.Kernel{g.Kernel}}))
				}
			}
		}
	}
	return n
}

// evalReduce is the reduction in (a reduce group's root) of x, by the
// reference: eval.Run of a module of x and in alone.
func evalReduce(t *testing.T, in *ir.Instr, x *eval.Tensor) *eval.Tensor {
	t.Helper()
	b := ir.NewBuilder("reduce")
	dims := make([]ir.Dim, len(x.Shape))
	for i, n := range x.Shape {
		dims[i] = ir.ConstDim(int64(n))
	}
	xi := b.MustGiven(ir.OpInput, ir.TensorOf(ir.F32, dims...), ir.Attrs{"name": ir.StringAttr("x")})
	b.Output(ir.OutValue, "y", b.Must(in.Op, in.Attrs, xi))
	require.NoError(t, b.Err())
	res, err := eval.Run(b.M, eval.Env{Inputs: map[string]*eval.Tensor{"x": x}})
	require.NoError(t, err, "%s", in)
	return res.Outputs["y"]
}

func evalShape(t *testing.T, s ir.Shape, syms map[string]int64) []int {
	out := make([]int, len(s))
	for i, d := range s {
		v, err := d.Eval(syms)
		require.NoError(t, err)
		out[i] = int(v)
	}
	return out
}

// TestFusedKernelsOfStdlib checks the fuse pass's kernels of every
// stdlib model (small configurations) on the Go and Triton targets.
func TestFusedKernelsOfStdlib(t *testing.T) {
	for _, s := range seeds {
		t.Run(s.file, func(t *testing.T) {
			m := elaborate(t, s.file, s.config)
			prog, err := passes.Run(m.IR, passes.Options{VerifyEach: true})
			require.NoError(t, err)
			rng := rand.New(rand.NewPCG(11, uint64(len(s.file))))
			for _, name := range []string{kir.DefaultGoTarget, "triton-sm80"} {
				tg, err := kir.TargetByName(name)
				require.NoError(t, err)
				n := checkGroups(t, prog.IR, tg, s.syms, rng)
				require.Positive(t, n, "%s has fused groups", s.file)
			}
		})
	}
}

// TestFusedKernelShapes checks groups built to reach every path of the
// tiling: ranks 1 to 4, a symbolic last axis cut into chunks, a last
// axis longer than a tile row, rows that do not fill the last tile, and
// operands broadcast as scalars, rows, columns and middle axes; with a
// tiny L1 so that a program holds few rows.
func TestFusedKernelShapes(t *testing.T) {
	b := ir.NewBuilder("shapes", "B", "N", "M")
	sym := ir.SymDim
	c := func(n int64) ir.Dim { return ir.ConstDim(n) }
	in := func(name string, dims ...ir.Dim) *ir.Instr {
		return b.MustGiven(ir.OpInput, ir.TensorOf(ir.F32, dims...), ir.Attrs{"name": ir.StringAttr(name)})
	}
	chain := func(name string, x *ir.Instr, others ...*ir.Instr) {
		v := b.Must(ir.OpExp, nil, x)
		for _, o := range others {
			v = b.Must(ir.OpMul, nil, b.Must(ir.OpAdd, nil, v, o), o)
		}
		b.Output(ir.OutValue, name, b.Must(ir.OpTanh, nil, v))
	}
	chain("r1", in("a1", sym("N")), in("s1"))
	chain("r2", in("a2", sym("N"), c(300)), in("row2", c(300)), in("col2", sym("N"), c(1)))
	chain("r3", in("a3", sym("B"), sym("N"), c(5000)), in("row3", sym("N"), c(5000)), in("col3", sym("B"), c(1), c(1)))
	chain("r4", in("a4", c(2), sym("B"), sym("N"), sym("M")), in("mid4", c(1), sym("B"), c(1), sym("M")), in("s4", c(1)))
	require.NoError(t, b.Err())
	m := b.M
	require.NoError(t, ir.Verify(m))
	prog, err := passes.Lower(m)
	require.NoError(t, err)
	tg, err := kir.TargetByName(kir.DefaultGoTarget)
	require.NoError(t, err)
	tg.L1 = 1 << 10 // 32 elements a tile
	rng := rand.New(rand.NewPCG(3, 3))
	syms := map[string]int64{"B": 3, "N": 37, "M": 601}
	require.Equal(t, 4, checkGroups(t, prog, tg, syms, rng))
	tg.Name, tg.Kind, tg.SharedMem, tg.WarpSize, tg.PowerOfTwoTiles = "tiny-triton", "triton", 1<<16, 32, true
	require.Equal(t, 4, checkGroups(t, prog, tg, syms, rng))
}

// rowReductions builds the reduce groups of TestFusedRowReductions and
// TestFusedRowReductionsGo — reductions over a last axis of 1, 3, 64 and
// 1000 (keepdims or not; rank 1 to 3; sum, max and mean) at the end of
// elementwise chains — and reductions the fuse pass must leave alone: a
// chain whose middle value is also an output (the reduction's group
// stops there), a last axis past maxTileRow or symbolic, a reduction over
// another axis. It returns how many groups the pass should make and how
// many of them end in a reduction.
func rowReductions(c *caseBuilder) (groups, reduceGroups int) {
	keep := func(axis int64) ir.Attrs {
		return ir.Attrs{"axes": ir.IntsAttr(axis), "keepdims": ir.BoolAttr(true)}
	}
	// attention backward's rowsum(dy·out) over a head of 64.
	c.out("sum64", c.op(ir.OpReduceSum, axes(2), c.bin(ir.OpMul, c.in("dy", ir.F32, "B", "N", 64), c.in("o", ir.F32, "B", "N", 64))))
	// A maximum of exp(x) + a row bias over 3 columns, kept as [N, 1].
	c.out("max3", c.op(ir.OpReduceMax, keep(1), c.bin(ir.OpAdd, c.op(ir.OpExp, nil, c.in("x3", ir.F32, "N", 3)), c.in("b3", ir.F32, 3))))
	// Means of one column, kept and not.
	d1 := c.bin(ir.OpSub, c.in("x1", ir.F32, "N", 1), c.in("y1", ir.F32, "B", "N", 1))
	c.out("mean1_keep", c.op(ir.OpReduceMean, keep(2), c.op(ir.OpTanh, nil, d1)))
	c.out("mean1", c.op(ir.OpReduceMean, axes(2), c.op(ir.OpNeg, nil, c.bin(ir.OpMul, c.in("z1", ir.F32, "B", "N", 1), c.in("w1", ir.F32, "B", 1, 1)))))
	// A mean over 1000 columns (a power-of-two tile pads it to 1024),
	// scaled by a column of the rows.
	c.out("mean1000", c.op(ir.OpReduceMean, axes(2), c.op(ir.OpTanh, nil, c.bin(ir.OpMul, c.in("x1000", ir.F32, "B", "N", 1000), c.in("col", ir.F32, "N", 1)))))
	// Rank 1: a scalar sum of exp over 7 (padded to 8).
	c.out("sum7", c.op(ir.OpReduceSum, axes(0), c.op(ir.OpExp, nil, c.bin(ir.OpSub, c.in("x7", ir.F32, 7), c.in("s7", ir.F32)))))
	// The product is an output: the group is exp, max only.
	p := c.bin(ir.OpMul, c.in("xp", ir.F32, "N", 64), c.in("yp", ir.F32, "N", 64))
	c.out("p", p)
	c.out("maxp", c.op(ir.OpReduceMax, axes(1), c.op(ir.OpExp, nil, p)))
	// Not reduce groups: 5000 columns (the chain tanh, exp is a group of
	// its own), a symbolic last axis, the axis before the last.
	c.out("sum5000", c.op(ir.OpReduceSum, axes(1), c.op(ir.OpTanh, nil, c.op(ir.OpExp, nil, c.in("x5000", ir.F32, 2, 5000)))))
	c.out("sumN", c.op(ir.OpReduceSum, axes(1), c.op(ir.OpExp, nil, c.in("xn", ir.F32, "B", "N"))))
	c.out("sum_rows", c.op(ir.OpReduceSum, axes(0), c.op(ir.OpExp, nil, c.in("xr", ir.F32, "N", 64))))
	return 8, 7
}

// TestFusedRowReductions checks the reduce groups of rowReductions in
// the kernel interpreter against the reference — rows that do not fill
// the last tile (N = 37), tiles of one row (a tiny L1), tiles padded to a
// power of two (Triton) — and that the pass fuses exactly the
// reductions it may.
func TestFusedRowReductions(t *testing.T) {
	c := &caseBuilder{Builder: ir.NewBuilder("rowred")}
	groups, reduceGroups := rowReductions(c)
	require.NoError(t, c.Err())
	require.NoError(t, ir.Verify(c.M))
	prog, err := passes.Lower(c.M)
	require.NoError(t, err)
	tg, err := kir.TargetByName(kir.DefaultGoTarget)
	require.NoError(t, err)
	kp, err := passes.Fuse(prog, tg)
	require.NoError(t, err)
	var roots []string
	n := 0
	for _, g := range kp.Funcs["Forward"].Groups {
		if g.Root.Op.Info().Class == ir.ClassReduce {
			n++
			roots = append(roots, g.Label())
		}
		for _, m := range g.Members {
			require.False(t, m.Op == ir.OpMul && m.Type.Shape.String() == "[N, 64]", "%s holds the product that is an output", g.Label())
		}
	}
	require.Len(t, kp.Funcs["Forward"].Groups, groups, "%s", kp.Print())
	require.Equal(t, reduceGroups, n, "%v", roots)

	rng := rand.New(rand.NewPCG(5, 9))
	for _, syms := range []map[string]int64{{"B": 2, "N": 37}, {"B": 1, "N": 1}} {
		require.Equal(t, groups, checkGroups(t, prog, tg, syms, rng))
		tiny := tg
		tiny.L1 = 1 << 10 // 32 elements: 10 rows of 3, one of 64 or 1000
		require.Equal(t, groups, checkGroups(t, prog, tiny, syms, rng))
		tri, err := kir.TargetByName("triton-sm80")
		require.NoError(t, err)
		require.Equal(t, groups, checkGroups(t, prog, tri, syms, rng))
	}
	// The padded kernels (select, -inf) print and parse back.
	tri, err := kir.TargetByName("triton-sm80")
	require.NoError(t, err)
	kt, err := passes.Fuse(prog, tri)
	require.NoError(t, err)
	src := kir.Print(kt.Kernels)
	back, err := kir.Parse("rowred.kir", src)
	require.NoError(t, err)
	require.Equal(t, src, kir.Print(back))
	require.Contains(t, src, "value = -inf")
}

// TestFusedRowReductionsGo generates, builds and runs rowReductions with
// the Go backend (rt.ReduceTile in rt.Launch kernels) and compares its
// outputs with the reference, NaN and infinities included.
func TestFusedRowReductionsGo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a Go program")
	}
	c := &caseBuilder{Builder: ir.NewBuilder("rowred")}
	rowReductions(c)
	c.finish()
	require.NoError(t, c.Err())
	m := c.M
	prog, err := passes.Run(m, passes.Options{VerifyEach: true})
	require.NoError(t, err)
	trials := []trial{{syms: syms("B", 2, "N", 37)}, {syms: syms("B", 1, "N", 1)}, {syms: syms("B", 3, "N", 5), special: []string{"dy", "x3", "x1000", "xp"}}}
	rng := rand.New(rand.NewPCG(7, 7))
	var envs []eval.Env
	for _, tr := range trials {
		env, err := c.fill(m, tr, rng)
		require.NoError(t, err)
		envs = append(envs, env)
	}
	u := &unit{name: "rowred", prog: prog, envs: envs}
	res := runUnits(t, []*unit{u})["rowred"]
	require.Len(t, res, len(envs))
	for j, env := range envs {
		ref, err := eval.Run(m, env)
		require.NoError(t, err)
		require.Empty(t, res[j].Err, "trial %d", j)
		for _, d := range compareOutputs(m, ref, res[j], 1e-4) {
			t.Errorf("trial %d %v: %s", j, trials[j].syms, d)
		}
	}
}
