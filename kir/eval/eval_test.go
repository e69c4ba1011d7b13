package eval_test

import (
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/attnc/attnc/ir"
	"github.com/attnc/attnc/ir/eval"
	"github.com/attnc/attnc/kir"
	keval "github.com/attnc/attnc/kir/eval"
)

func parseFile(t *testing.T, name string) *kir.Module {
	t.Helper()
	src, err := os.ReadFile("../testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return parseText(t, name, string(src))
}

func parseText(t *testing.T, name, src string) *kir.Module {
	t.Helper()
	m, err := kir.Parse(name, src)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func randTensor(r *rand.Rand, dt ir.DType, shape ...int) *eval.Tensor {
	x := eval.NewTensor(dt, shape...)
	for i := range x.Data {
		x.Data[i] = r.NormFloat64()
	}
	return x
}

// closeTo compares got with want element by element, relative to the
// largest magnitude of want.
func closeTo(t *testing.T, what string, got, want *eval.Tensor, tol float64) {
	t.Helper()
	if len(got.Data) != len(want.Data) {
		t.Fatalf("%s: %d elements, want %d", what, len(got.Data), len(want.Data))
	}
	scale := 1e-300
	for _, w := range want.Data {
		scale = max(scale, math.Abs(w))
	}
	for i, w := range want.Data {
		if d := math.Abs(got.Data[i] - w); !(d <= tol*scale) {
			t.Fatalf("%s: element %d is %v, want %v", what, i, got.Data[i], w)
		}
	}
}

const attnRef = `module attn(B, H, N) {
  %0 = input {name = "q"} : f32[B, H, N, 32]
  %1 = input {name = "k"} : f32[B, H, N, 32]
  %2 = input {name = "v"} : f32[B, H, N, 32]
  %3 = attention %0, %1, %2 {mask = (k <= q), scale = 0.17677669529663687} : f32[B, H, N, 32]
  %4 = attention %0, %1 {mask = (k <= q), scale = 0.17677669529663687, returns = lse} : f32[B, H, N]
  output "out" = %3
  output "lse" = %4
}
`

// runAttention runs kernel attn_fwd_causal of m against the graph IR's
// attention on fresh inputs, at sizes with a partial last tile.
func runAttention(t *testing.T, m *kir.Module) (out, lse, wantOut, wantLSE *eval.Tensor) {
	t.Helper()
	const b, h, n, d = 2, 3, 70, 32
	r := rand.New(rand.NewPCG(1, 2))
	q, k, v := randTensor(r, ir.F32, b, h, n, d), randTensor(r, ir.F32, b, h, n, d), randTensor(r, ir.F32, b, h, n, d)
	out, lse = eval.NewTensor(ir.F32, b, h, n, d), eval.NewTensor(ir.F32, b, h, n)
	err := keval.Run(m, "attn_fwd_causal", keval.Env{
		Syms:    map[string]int64{"B": b, "H": h, "N": n},
		Buffers: map[string]*eval.Tensor{"q": q, "k": k, "v": v, "out": out, "lse": lse},
	})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := ir.Parse("ref", attnRef)
	if err != nil {
		t.Fatal(err)
	}
	res, err := eval.Run(ref, eval.Env{Inputs: map[string]*eval.Tensor{"q": q, "k": k, "v": v}})
	if err != nil {
		t.Fatal(err)
	}
	return out, lse, res.Outputs["out"], res.Outputs["lse"]
}

// TestFlashAttentionKernel runs the golden flash-attention kernel (online
// softmax over key tiles, full tiles skipping the mask, the causal bound
// on the key loop) and compares it with the graph IR's attention.
func TestFlashAttentionKernel(t *testing.T) {
	out, lse, wantOut, wantLSE := runAttention(t, parseFile(t, "attention.kir"))
	closeTo(t, "out", out, wantOut, 1e-12)
	closeTo(t, "lse", lse, wantLSE, 1e-12)
}

// TestUnsoundTileRuleIsCaught breaks the kernel's tile classification on
// purpose — a key tile counts as full once it starts at or before the
// query tile, which skips the mask on the diagonal tile — and checks that
// the comparison with the reference fails.
func TestUnsoundTileRuleIsCaught(t *testing.T) {
	src, err := os.ReadFile("../testdata/attention.kir")
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(src), "%28 = le %27, %7 : bool[]", "%28 = le %20, %7 : bool[]", 1)
	if bad == string(src) {
		t.Fatal("the tile rule was not found in the kernel")
	}
	out, _, wantOut, _ := runAttention(t, parseText(t, "bad", bad))
	worst := 0.0
	for i, w := range wantOut.Data {
		worst = max(worst, math.Abs(out.Data[i]-w))
	}
	if worst < 1e-3 {
		t.Fatalf("an unsound tile rule went unnoticed (largest difference %g)", worst)
	}
}

// TestLinearKernel runs the golden GEMM with a bias and GELU epilogue
// against x·w + bias through GELU, with M not a multiple of the tile.
func TestLinearKernel(t *testing.T) {
	const m = 70
	r := rand.New(rand.NewPCG(3, 4))
	x, w, bias := randTensor(r, ir.F32, m, 128), randTensor(r, ir.F32, 128, 512), randTensor(r, ir.F32, 512)
	out := eval.NewTensor(ir.F32, m, 512)
	for i := range out.Data {
		out.Data[i] = 42 // every element must be written
	}
	err := keval.Run(parseFile(t, "linear.kir"), "linear_gelu", keval.Env{
		Syms:    map[string]int64{"M": m},
		Buffers: map[string]*eval.Tensor{"x": x, "w": w, "bias": bias, "out": out},
	})
	if err != nil {
		t.Fatal(err)
	}
	pre := eval.NewTensor(ir.F32, m, 512)
	for i := range m {
		for j := range 512 {
			s := 0.0
			for p := range 128 {
				s += x.Data[i*128+p] * w.Data[p*512+j]
			}
			pre.Data[i*512+j] = s + bias.Data[j]
		}
	}
	want, err := eval.Elementwise(ir.OpGelu, ir.F32, []int{m, 512}, pre)
	if err != nil {
		t.Fatal(err)
	}
	closeTo(t, "out", out, want, 1e-12)
}

// TestDocMaskKernel runs the golden document-mask kernel (gathers of a
// captured i32 tensor at query and key indices) on random documents.
func TestDocMaskKernel(t *testing.T) {
	const b, n = 2, 70
	r := rand.New(rand.NewPCG(5, 6))
	doc := eval.NewTensor(ir.I32, b, n)
	for i := range doc.Data {
		doc.Data[i] = float64(r.IntN(4))
	}
	mask := eval.NewTensor(ir.Bool, b, n, n)
	err := keval.Run(parseFile(t, "attention.kir"), "doc_mask", keval.Env{
		Syms:    map[string]int64{"B": b, "H": 1, "N": n},
		Buffers: map[string]*eval.Tensor{"doc": doc, "mask": mask},
	})
	if err != nil {
		t.Fatal(err)
	}
	for bi := range b {
		for q := range n {
			for k := range n {
				want := 0.0
				if doc.At(bi, q) == doc.At(bi, k) {
					want = 1
				}
				if got := mask.At(bi, q, k); got != want {
					t.Fatalf("mask[%d, %d, %d] = %v, want %v", bi, q, k, got, want)
				}
			}
		}
	}
}

// TestCallsAndScalars runs the golden row_stats kernel: calls to runtime
// kernels the environment implements, rank-0 tiles, cast, a loop with no
// carried values.
func TestCallsAndScalars(t *testing.T) {
	const m = 5
	r := rand.New(rand.NewPCG(7, 8))
	x := randTensor(r, ir.F32, m, 128)
	mean, peak := eval.NewTensor(ir.F32, m), eval.NewTensor(ir.F32, m)
	touched := 0
	err := keval.Run(parseFile(t, "linear.kir"), "row_stats", keval.Env{
		Syms:    map[string]int64{"M": m},
		Buffers: map[string]*eval.Tensor{"x": x, "mean": mean, "peak": peak},
		Calls: map[string]keval.Call{
			"runtime.rowPeak": func(args []any) ([]any, error) {
				row := args[0].(*eval.Tensor)
				p := eval.NewTensor(ir.F32)
				p.Data[0] = math.Inf(-1)
				for _, v := range row.Data {
					p.Data[0] = max(p.Data[0], v)
				}
				return []any{p, row}, nil
			},
			"runtime.touch": func(args []any) ([]any, error) { touched++; return nil, nil },
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range m {
		s, p := 0.0, math.Inf(-1)
		for _, v := range x.Data[i*128 : (i+1)*128] {
			s += v
			p = max(p, v)
		}
		if math.Abs(mean.Data[i]-s/128) > 1e-12 || peak.Data[i] != p {
			t.Fatalf("row %d: mean %v peak %v, want %v %v", i, mean.Data[i], peak.Data[i], s/128, p)
		}
	}
	// Program i loops from 0 to ⌈i/3⌉ in steps of 3: not at all for
	// i = 0, once for each of i = 1..4 (⌈4/3⌉ = 2 < 3).
	if touched != 4 {
		t.Errorf("runtime.touch ran %d times, want 4", touched)
	}
}

func TestRunErrors(t *testing.T) {
	m := parseFile(t, "linear.kir")
	x := eval.NewTensor(ir.F32, 5, 128)
	for _, c := range []struct {
		env  keval.Env
		want string
	}{
		{keval.Env{Syms: map[string]int64{}}, "symbol M has no value"},
		{keval.Env{Syms: map[string]int64{"M": 5}, Buffers: map[string]*eval.Tensor{"x": x}}, "no buffer mean"},
		{keval.Env{Syms: map[string]int64{"M": 6}, Buffers: map[string]*eval.Tensor{"x": x, "mean": x, "peak": x}}, "buffer x has shape [5 128], want M = 6"},
		{keval.Env{Syms: map[string]int64{"M": 5}, Buffers: map[string]*eval.Tensor{"x": x, "mean": eval.NewTensor(ir.F32, 5), "peak": eval.NewTensor(ir.F32, 5)}}, "no implementation of runtime.rowPeak"},
	} {
		err := keval.Run(m, "row_stats", c.env)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v, want an error containing %q", err, c.want)
		}
	}
	if err := keval.Run(m, "nosuch", keval.Env{}); err == nil || !strings.Contains(err.Error(), "no kernel nosuch") {
		t.Errorf("an unknown kernel: %v", err)
	}
	zero := parseText(t, "z", `kir z(N)

kernel k(x: f32[N]) grid [N] {
  %0 = program_id {axis = 0} : index
  %1 = const {value = 0.0} : index
  %2 = idiv %0, %1 : index
}
`)
	if err := keval.Run(zero, "k", keval.Env{Syms: map[string]int64{"N": 2}, Buffers: map[string]*eval.Tensor{"x": eval.NewTensor(ir.F32, 2)}}); err == nil || !strings.Contains(err.Error(), "idiv by zero") {
		t.Errorf("division by zero: %v", err)
	}
}
