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
// (eval.Elementwise): the kernel path must compute what the graph says,
// tile edges and broadcast operands included. It returns the number of
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
				v, err := eval.Elementwise(m.Op, ir.F32, evalShape(t, m.Type.Shape, syms), args...)
				require.NoError(t, err, "%s %s", f.Name, m)
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
