package runtime_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/attnc/attnc/ir"
	"github.com/attnc/attnc/ir/eval"
	rt "github.com/attnc/attnc/runtime"
)

// tol is the relative error allowed between a float32 kernel and the
// float64 reference.
const tol = 1e-4

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 1234)) }

// randF32 returns an f32 tensor of N(0, 1) draws.
func randF32(r *rand.Rand, shape ...int) *rt.Tensor {
	t := rt.New(rt.F32, shape...)
	for i := range t.F {
		t.F[i] = float32(r.NormFloat64())
	}
	return t
}

// randI32 returns an i32 tensor of uniform draws from [lo, hi).
func randI32(r *rand.Rand, lo, hi int, shape ...int) *rt.Tensor {
	t := rt.New(rt.I32, shape...)
	for i := range t.I {
		t.I[i] = int32(lo + r.IntN(hi-lo))
	}
	return t
}

// randBool returns a bool tensor of fair coin flips.
func randBool(r *rand.Rand, shape ...int) *rt.Tensor {
	t := rt.New(rt.Bool, shape...)
	for i := range t.B {
		t.B[i] = r.IntN(2) == 1
	}
	return t
}

var toIR = map[rt.DType]ir.DType{rt.F32: ir.F32, rt.I32: ir.I32, rt.Bool: ir.Bool}

// toEval converts a runtime tensor to the reference interpreter's.
func toEval(t *rt.Tensor) *eval.Tensor {
	return eval.FromData(toIR[t.DType], t.Shape, t.Float64s())
}

func constDims(shape []int) []ir.Dim {
	out := make([]ir.Dim, len(shape))
	for i, d := range shape {
		out[i] = ir.ConstDim(int64(d))
	}
	return out
}

// refModule builds a one-op IR module on the given operands and runs it
// with the reference interpreter.
type refModule struct {
	t      *testing.T
	b      *ir.Builder
	inputs map[string]*eval.Tensor
	syms   map[string]int64
}

func newRef(t *testing.T) *refModule {
	return &refModule{t: t, b: ir.NewBuilder("ref"), inputs: map[string]*eval.Tensor{}}
}

// in declares an input holding x.
func (m *refModule) in(x *rt.Tensor) *ir.Instr {
	name := fmt.Sprintf("x%d", len(m.inputs))
	m.inputs[name] = toEval(x)
	return m.b.MustGiven(ir.OpInput, ir.TensorOf(toIR[x.DType], constDims(x.Shape)...), ir.Attrs{"name": ir.StringAttr(name)})
}

// run evaluates the module and returns the value of v.
func (m *refModule) run(v *ir.Instr) *eval.Tensor {
	m.t.Helper()
	if err := m.b.Err(); err != nil {
		m.t.Fatalf("building the reference module: %v", err)
	}
	res, err := eval.Run(m.b.M, eval.Env{Inputs: m.inputs, Syms: m.syms})
	if err != nil {
		m.t.Fatalf("reference: %v", err)
	}
	return res.Values[v.ID]
}

// ref evaluates op (type inferred) on xs with the reference interpreter.
func ref(t *testing.T, op ir.Op, attrs ir.Attrs, xs ...*rt.Tensor) *eval.Tensor {
	t.Helper()
	m := newRef(t)
	args := make([]*ir.Instr, len(xs))
	for i, x := range xs {
		args[i] = m.in(x)
	}
	return m.run(m.b.Must(op, attrs, args...))
}

// refGiven evaluates an op whose result type is stated.
func refGiven(t *testing.T, op ir.Op, dt rt.DType, shape []int, attrs ir.Attrs, xs ...*rt.Tensor) *eval.Tensor {
	t.Helper()
	m := newRef(t)
	args := make([]*ir.Instr, len(xs))
	for i, x := range xs {
		args[i] = m.in(x)
	}
	return m.run(m.b.MustGiven(op, ir.TensorOf(toIR[dt], constDims(shape)...), attrs, args...))
}

// checkRel fails unless got has want's dtype and shape, matches its
// infinities (after rounding want to float32) and NaNs exactly, and elsewhere agrees within a relative
// error of tol (the max-norm of the difference over the max-norm of
// want). i32 and bool must match exactly.
func checkRel(t *testing.T, what string, got *rt.Tensor, want *eval.Tensor, tol float64) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: no result", what)
	}
	if toIR[got.DType] != want.DType || !slices.Equal(got.Shape, want.Shape) {
		t.Fatalf("%s: got %s, want %s%v", what, got, want.DType, want.Shape)
	}
	if got.Len() != len(want.Data) {
		t.Fatalf("%s: %d values for shape %v", what, got.Len(), got.Shape)
	}
	g := got.Float64s()
	diff, norm := 0.0, 0.0
	for i, w := range want.Data {
		v := g[i]
		if want.DType == ir.F32 {
			w = float64(float32(w)) // what a float32 result can be: overflow is Inf
		}
		if math.IsInf(w, 0) || math.IsInf(v, 0) || math.IsNaN(w) || math.IsNaN(v) {
			if !(v == w || math.IsNaN(v) && math.IsNaN(w)) {
				t.Fatalf("%s: element %d is %v, want %v\ngot  %s\nwant %s", what, i, v, w, got, want)
			}
			continue
		}
		if want.DType != ir.F32 && v != w {
			t.Fatalf("%s: element %d is %v, want %v\ngot  %s\nwant %s", what, i, v, w, got, want)
		}
		diff = math.Max(diff, math.Abs(v-w))
		norm = math.Max(norm, math.Abs(w))
	}
	if norm == 0 {
		if diff != 0 {
			t.Fatalf("%s: max difference %g from an all-zero reference", what, diff)
		}
		return
	}
	if diff/norm > tol {
		t.Fatalf("%s: relative error %.3g > %g\ngot  %s\nwant %s", what, diff/norm, tol, got, want)
	}
}

// checkSame fails unless two runtime tensors are identical.
func checkSame(t *testing.T, what string, got, want *rt.Tensor) {
	t.Helper()
	if got.DType != want.DType || !slices.Equal(got.Shape, want.Shape) {
		t.Fatalf("%s: got %s, want %s", what, got, want)
	}
	g, w := got.Float64s(), want.Float64s()
	for i := range w {
		if g[i] != w[i] && !(math.IsNaN(g[i]) && math.IsNaN(w[i])) {
			t.Fatalf("%s: element %d is %v, want %v", what, i, g[i], w[i])
		}
	}
}

func ints(xs ...int) []int { return xs }

func int64s(xs []int) []int64 {
	out := make([]int64, len(xs))
	for i, x := range xs {
		out[i] = int64(x)
	}
	return out
}

// mustPanic fails unless f panics with a message containing want.
func mustPanic(t *testing.T, want string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		p := recover()
		if p == nil {
			t.Fatalf("no panic, want one mentioning %q", want)
		}
		if msg := fmt.Sprint(p); !strings.Contains(msg, want) {
			t.Fatalf("panic %q does not mention %q", msg, want)
		}
	}()
	f()
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
