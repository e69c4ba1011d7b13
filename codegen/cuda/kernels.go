package cuda

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/attnc/attnc/ir"
)

// Block is the threads of a block the kernels are written for: a thread
// per query row (forward, dq) or key row (dk, dv), Block rows a block.
const Block = 64

// A Kernel describes one attention op's kernels in kernels.cu, for a host
// that launches them: their names are attn<ID>_fwd, _delta, _dkdv and
// _dq, and their parameters follow the order documented on Render.
type Kernel struct {
	ID       int      `json:"id"`
	D        int      `json:"d"`
	DV       int      `json:"dv"`
	Caps     []string `json:"caps"`      // each capture's dtype: f32, i32 or bool
	CapRanks []int    `json:"cap_ranks"` // each capture's rank
	Syms     []string `json:"syms"`      // the symbols the mask and score read, in order
	GradCaps []int    `json:"grad_caps"` // the captures that get a gradient
}

// Render writes the CUDA C kernels of m's attention ops that return
// their output (kernels.cu) and their descriptions (kernels.json). An
// op whose head dims are not constants, or that returns probabilities,
// log-probabilities or lse, has none.
//
// Each op's kernels, all launched with blocks of Block threads and a grid
// (⌈rows/Block⌉, B·H) (delta: (⌈B·H·Nq/Block⌉, 1)):
//
//	attnI_fwd(Q, K, V, O, L, caps…, syms…, NH, NQ, NK, scale)
//	attnI_delta(O, DO, DELTA, NROWS)
//	attnI_dkdv(Q, K, V, L, DELTA, DO, DK, DV, caps…, dcaps…, syms…, NH, NQ, NK, scale)
//	attnI_dq(Q, K, V, L, DELTA, DO, DQ, caps…, syms…, NH, NQ, NK, scale)
//
// where Q, K, V, O, DO and the gradients are contiguous f32 [B, H, N, D],
// L (the row log-sum-exp) and DELTA (rowsum(dO·O)) [B, H, Nq], a capture
// Ci is its data (f32, i32, or bool as bytes) followed by its dims
// Ci_n0, Ci_n1, … (long long), dcaps the f32 gradients of every capture
// (zeroed by the caller; only those of GradCaps are written), and a sym
// a long long. Compiled with ATTNC_CPU defined, as C++, the file is
// plain host code with a launcher attnc_cpu_<kernel>(gx, gy, bx, args…)
// per kernel that runs the blocks and threads in order: the kernels use
// no shared memory and no barriers, so that is their semantics.
func Render(m *ir.Module) (map[string][]byte, []Kernel, error) {
	var sb strings.Builder
	sb.WriteString(prelude)
	var kernels []Kernel
	for _, in := range m.Instrs {
		if in.Op != ir.OpAttention {
			continue
		}
		if r := in.Attrs.Str("returns"); r != "" && r != "out" {
			continue
		}
		q, _, v, caps := ir.AttentionOperands(in.Args, in.Attrs)
		d, ok1 := q.Type.Shape[3].IsConst()
		dv, ok2 := (*v).Type.Shape[3].IsConst()
		if !ok1 || !ok2 {
			continue
		}
		kn := Kernel{ID: in.ID, D: int(d), DV: int(dv), Caps: []string{}, CapRanks: []int{}, Syms: []string{}, GradCaps: []int{}}
		var capTypes []ir.Type
		for _, c := range caps {
			capTypes = append(capTypes, c.Type)
			kn.Caps = append(kn.Caps, c.Type.DType.String())
			kn.CapRanks = append(kn.CapRanks, c.Type.Rank())
		}
		src, err := renderAttention(in, &kn, capTypes)
		if err != nil {
			return nil, nil, fmt.Errorf("%%%d = attention: %w", in.ID, err)
		}
		sb.WriteString(src)
		kernels = append(kernels, kn)
	}
	meta, err := json.MarshalIndent(kernels, "", "  ")
	if err != nil {
		return nil, nil, err
	}
	return map[string][]byte{"kernels.cu": []byte(sb.String()), "kernels.json": append(meta, '\n')}, kernels, nil
}

func renderAttention(in *ir.Instr, kn *Kernel, caps []ir.Type) (string, error) {
	w := &cExpr{caps: caps, syms: map[string]bool{}}
	mask, score, dscore := "true", "s", "1.0f"
	var err error
	if e := in.Attrs.Expr("mask"); e != nil {
		if mask, _, err = w.write(e); err != nil {
			return "", fmt.Errorf("mask: %w", err)
		}
	}
	var capGrad strings.Builder
	if e := in.Attrs.Expr("score"); e != nil {
		var k ir.ScalarKind
		if score, k, err = w.write(e); err != nil {
			return "", fmt.Errorf("score: %w", err)
		}
		if k != ir.KFloat {
			score = "((float)(" + score + "))"
		}
		if dscore, _, err = w.write(e.DerivVar("s")); err != nil {
			return "", fmt.Errorf("the score's derivative: %w", err)
		}
		for ci, c := range caps {
			if c.DType != ir.F32 {
				continue
			}
			reads := e.CaptureReads(ci)
			for _, read := range reads {
				dr, _, err := w.write(e.Deriv(read))
				if err != nil {
					return "", fmt.Errorf("the score's derivative: %w", err)
				}
				// The read's offset, as the capture read renders it.
				at, _, err := w.write(read)
				if err != nil {
					return "", err
				}
				fmt.Fprintf(&capGrad, "    attnc_atomic_add(&D%s, ds * (%s));\n", at, dr)
			}
			if len(reads) > 0 {
				kn.GradCaps = append(kn.GradCaps, ci)
			}
		}
	}
	for s := range w.syms {
		kn.Syms = append(kn.Syms, s)
	}
	sort.Strings(kn.Syms)

	var capParams, capArgs, dcapParams, dcapArgs []string
	for ci, c := range caps {
		ct := map[ir.DType]string{ir.F32: "const float*", ir.I32: "const int*", ir.Bool: "const unsigned char*"}[c.DType]
		capParams = append(capParams, fmt.Sprintf("%s C%d", ct, ci))
		capArgs = append(capArgs, fmt.Sprintf("C%d", ci))
		for d := range c.Shape {
			capParams = append(capParams, fmt.Sprintf("long long C%d_n%d", ci, d))
			capArgs = append(capArgs, fmt.Sprintf("C%d_n%d", ci, d))
		}
		dcapParams = append(dcapParams, fmt.Sprintf("float* DC%d", ci))
		dcapArgs = append(dcapArgs, fmt.Sprintf("DC%d", ci))
	}
	var symParams, symArgs []string
	for _, s := range kn.Syms {
		symParams = append(symParams, "long long sym_"+s)
		symArgs = append(symArgs, "sym_"+s)
	}
	lead := func(xs []string) string {
		if len(xs) == 0 {
			return ""
		}
		return ", " + strings.Join(xs, ", ")
	}
	r := strings.NewReplacer(
		"@ID", strconv.Itoa(kn.ID),
		"@DV", strconv.Itoa(kn.DV),
		"@DCAPS", lead(dcapParams),
		"@DSCORE", dscore,
		"@D", strconv.Itoa(kn.D),
		"@CAPS", lead(capParams),
		"@SYMS", lead(symParams),
		"@MASK", mask,
		"@SCORE", score,
		"@CAPGRAD\n", capGrad.String(),
	)
	src := r.Replace(attentionSource)
	// The CPU launchers.
	launch := func(name, params, args string) string {
		return fmt.Sprintf(`extern "C" void attnc_cpu_%s(unsigned gx, unsigned gy, unsigned bx, %s) {
  gridDim = attnc_dim3{gx, gy, 1};
  blockDim = attnc_dim3{bx, 1, 1};
  for (unsigned y = 0; y < gy; y++)
    for (unsigned x = 0; x < gx; x++)
      for (unsigned t = 0; t < bx; t++) {
        blockIdx = attnc_dim3{x, y, 0};
        threadIdx = attnc_dim3{t, 0, 0};
        %s(%s);
      }
}
`, name, params, name, args)
	}
	id := strconv.Itoa(kn.ID)
	common := "long long NH, long long NQ, long long NK, float scale"
	commonArgs := "NH, NQ, NK, scale"
	var cpu strings.Builder
	cpu.WriteString("\n#ifdef ATTNC_CPU\n")
	cpu.WriteString(launch("attn"+id+"_fwd", "const float* Q, const float* K, const float* V, float* O, float* L"+lead(capParams)+lead(symParams)+", "+common,
		"Q, K, V, O, L"+lead(capArgs)+lead(symArgs)+", "+commonArgs))
	cpu.WriteString(launch("attn"+id+"_delta", "const float* O, const float* DO, float* DELTA, long long NROWS", "O, DO, DELTA, NROWS"))
	cpu.WriteString(launch("attn"+id+"_dkdv", "const float* Q, const float* K, const float* V, const float* L, const float* DELTA, const float* DO, float* DK, float* DV"+lead(capParams)+lead(dcapParams)+lead(symParams)+", "+common,
		"Q, K, V, L, DELTA, DO, DK, DV"+lead(capArgs)+lead(dcapArgs)+lead(symArgs)+", "+commonArgs))
	cpu.WriteString(launch("attn"+id+"_dq", "const float* Q, const float* K, const float* V, const float* L, const float* DELTA, const float* DO, float* DQ"+lead(capParams)+lead(symParams)+", "+common,
		"Q, K, V, L, DELTA, DO, DQ"+lead(capArgs)+lead(symArgs)+", "+commonArgs))
	cpu.WriteString("#endif\n")
	return src + cpu.String(), nil
}

// attentionSource is one attention op's kernels; render fills the @
// placeholders. Each thread owns a query row (fwd, dq) or a key row
// (dkdv) and loops over the other side's rows, skipping those the mask
// excludes before reading them.
const attentionSource = `
// Attention op %@ID.
extern "C" __global__ void attn@ID_fwd(const float* Q, const float* K, const float* V, float* O, float* L@CAPS@SYMS,
                                      long long NH, long long NQ, long long NK, float scale) {
  const int D = @D, DV = @DV;
  long long q = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  long long bh = blockIdx.y;
  if (q >= NQ) return;
  long long b = bh / NH, h = bh % NH;
  (void)b; (void)h;
  const float* qrow = Q + (bh * NQ + q) * D;
  float acc[DV];
  for (int d = 0; d < DV; d++) acc[d] = 0.0f;
  float m = -ATTNC_INF, l = 0.0f;
  for (long long k = 0; k < NK; k++) {
    if (!(@MASK)) continue;
    const float* krow = K + (bh * NK + k) * D;
    float raw = 0.0f;
    for (int d = 0; d < D; d++) raw += qrow[d] * krow[d];
    raw *= scale;
    float s = raw;
    float sc = @SCORE;
    if (sc == -ATTNC_INF) continue;
    float mn = attnc_maxf(m, sc);
    float alpha = m == -ATTNC_INF ? 0.0f : attnc_exp(m - mn);
    float p = attnc_exp(sc - mn);
    l = l * alpha + p;
    const float* vrow = V + (bh * NK + k) * DV;
    for (int d = 0; d < DV; d++) acc[d] = acc[d] * alpha + p * vrow[d];
    m = mn;
  }
  float* orow = O + (bh * NQ + q) * DV;
  float inv = l > 0.0f ? 1.0f / l : 0.0f;
  for (int d = 0; d < DV; d++) orow[d] = acc[d] * inv;
  L[bh * NQ + q] = l > 0.0f ? m + attnc_log(l) : -ATTNC_INF;
}

extern "C" __global__ void attn@ID_delta(const float* O, const float* DO, float* DELTA, long long NROWS) {
  const int DV = @DV;
  long long r = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= NROWS) return;
  float sum = 0.0f;
  for (int d = 0; d < DV; d++) sum += O[r * DV + d] * DO[r * DV + d];
  DELTA[r] = sum;
}

extern "C" __global__ void attn@ID_dkdv(const float* Q, const float* K, const float* V, const float* L, const float* DELTA,
                                       const float* DO, float* DK, float* DV_@CAPS@DCAPS@SYMS,
                                       long long NH, long long NQ, long long NK, float scale) {
  const int D = @D, DV = @DV;
  long long k = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  long long bh = blockIdx.y;
  if (k >= NK) return;
  long long b = bh / NH, h = bh % NH;
  (void)b; (void)h;
  const float* krow = K + (bh * NK + k) * D;
  const float* vrow = V + (bh * NK + k) * DV;
  float dk[D], dv[DV];
  for (int d = 0; d < D; d++) dk[d] = 0.0f;
  for (int d = 0; d < DV; d++) dv[d] = 0.0f;
  for (long long q = 0; q < NQ; q++) {
    if (!(@MASK)) continue;
    float lse = L[bh * NQ + q];
    if (lse == -ATTNC_INF) continue;
    const float* qrow = Q + (bh * NQ + q) * D;
    float raw = 0.0f;
    for (int d = 0; d < D; d++) raw += qrow[d] * krow[d];
    raw *= scale;
    float s = raw;
    float sc = @SCORE;
    if (sc == -ATTNC_INF) continue;
    float p = attnc_exp(sc - lse);
    const float* dorow = DO + (bh * NQ + q) * DV;
    float dp = 0.0f;
    for (int d = 0; d < DV; d++) {
      dp += dorow[d] * vrow[d];
      dv[d] += p * dorow[d];
    }
    float ds = p * (dp - DELTA[bh * NQ + q]);
    float dsr = ds * (@DSCORE);
    for (int d = 0; d < D; d++) dk[d] += dsr * scale * qrow[d];
@CAPGRAD
  }
  for (int d = 0; d < D; d++) DK[(bh * NK + k) * D + d] = dk[d];
  for (int d = 0; d < DV; d++) DV_[(bh * NK + k) * DV + d] = dv[d];
}

extern "C" __global__ void attn@ID_dq(const float* Q, const float* K, const float* V, const float* L, const float* DELTA,
                                     const float* DO, float* DQ@CAPS@SYMS,
                                     long long NH, long long NQ, long long NK, float scale) {
  const int D = @D, DV = @DV;
  long long q = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  long long bh = blockIdx.y;
  if (q >= NQ) return;
  long long b = bh / NH, h = bh % NH;
  (void)b; (void)h;
  const float* qrow = Q + (bh * NQ + q) * D;
  const float* dorow = DO + (bh * NQ + q) * DV;
  float lse = L[bh * NQ + q], delta = DELTA[bh * NQ + q];
  float dq[D];
  for (int d = 0; d < D; d++) dq[d] = 0.0f;
  if (lse != -ATTNC_INF) {
    for (long long k = 0; k < NK; k++) {
      if (!(@MASK)) continue;
      const float* krow = K + (bh * NK + k) * D;
      const float* vrow = V + (bh * NK + k) * DV;
      float raw = 0.0f;
      for (int d = 0; d < D; d++) raw += qrow[d] * krow[d];
      raw *= scale;
      float s = raw;
      float sc = @SCORE;
      if (sc == -ATTNC_INF) continue;
      float p = attnc_exp(sc - lse);
      float dp = 0.0f;
      for (int d = 0; d < DV; d++) dp += dorow[d] * vrow[d];
      float dsr = p * (dp - delta) * (@DSCORE);
      for (int d = 0; d < D; d++) dq[d] += dsr * scale * krow[d];
    }
  }
  for (int d = 0; d < D; d++) DQ[(bh * NQ + q) * D + d] = dq[d];
}
`

// prelude opens kernels.cu: what the kernels need, for the three ways it
// is compiled (clang -x cuda --cuda-device-only -nocudainc, nvcc, and
// C++ on the host with ATTNC_CPU).
const prelude = `// Code generated by attnc. DO NOT EDIT.
//
// The model's attention ops as CUDA kernels (see kernels.json for their
// parameters). Compile to PTX with
//   clang -x cuda --cuda-device-only -nocudainc -nocudalib --cuda-gpu-arch=sm_80 -O3 -S kernels.cu
// or nvcc -ptx; compiled as C++ with -DATTNC_CPU, the file runs its kernels
// on the host (attnc_cpu_<kernel> launchers), blocks and threads in order.

#if defined(ATTNC_CPU)
#include <math.h>
struct attnc_dim3 { unsigned x, y, z; };
static thread_local attnc_dim3 threadIdx, blockIdx, blockDim, gridDim;
#define __global__
#define ATTNC_DEVICE static inline
static inline void attnc_atomic_add(float* p, float v) { *p += v; }
#define ATTNC_INF INFINITY
#define ATTNC_NAN NAN
#define attnc_exp expf
#define attnc_log logf
#define attnc_sin sinf
#define attnc_cos cosf
#define ATTNC_FLOOR floorf
#elif defined(__clang__) && defined(__CUDA__)
#if !defined(__CUDA_RUNTIME_H__)
#include <__clang_cuda_builtin_vars.h>
#define __global__ __attribute__((global))
#define __device__ __attribute__((device))
#endif
#define ATTNC_DEVICE static __device__ inline __attribute__((unused))
#define attnc_atomic_add(p, v) ((void)__nvvm_atom_add_gen_f((p), (v)))
#define ATTNC_INF __builtin_inff()
#define ATTNC_NAN __builtin_nanf("")
#define attnc_exp(x) __nvvm_ex2_approx_f((x) * 1.4426950408889634f)
#define attnc_log(x) (__nvvm_lg2_approx_f(x) * 0.6931471805599453f)
#define attnc_sin(x) __nvvm_sin_approx_f(x)
#define attnc_cos(x) __nvvm_cos_approx_f(x)
#define ATTNC_FLOOR(x) __builtin_floorf(x)
#else
#define ATTNC_DEVICE static __device__ inline
#define attnc_atomic_add(p, v) ((void)atomicAdd((p), (v)))
#define ATTNC_INF __int_as_float(0x7f800000)
#define ATTNC_NAN __int_as_float(0x7fffffff)
#define attnc_exp __expf
#define attnc_log __logf
#define attnc_sin __sinf
#define attnc_cos __cosf
#define ATTNC_FLOOR floorf
#endif

ATTNC_DEVICE float attnc_maxf(float a, float b) { return a > b ? a : b; }
ATTNC_DEVICE float attnc_minf(float a, float b) { return a < b ? a : b; }
ATTNC_DEVICE long long attnc_maxi(long long a, long long b) { return a > b ? a : b; }
ATTNC_DEVICE long long attnc_mini(long long a, long long b) { return a < b ? a : b; }
ATTNC_DEVICE float attnc_absf(float a) { return a < 0.0f ? -a : a; }
ATTNC_DEVICE long long attnc_absi(long long a) { return a < 0 ? -a : a; }
ATTNC_DEVICE float attnc_tanh(float x) { return 2.0f / (1.0f + attnc_exp(-2.0f * x)) - 1.0f; }
ATTNC_DEVICE float attnc_sigmoid(float x) { return 1.0f / (1.0f + attnc_exp(-x)); }
// Integer division and remainder rounding toward -inf, as the language has them.
ATTNC_DEVICE long long attnc_floordiv(long long a, long long b) {
  long long q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}
ATTNC_DEVICE long long attnc_floormod(long long a, long long b) { return a - attnc_floordiv(a, b) * b; }
ATTNC_DEVICE float attnc_ffloormod(float a, float b) { return a - ATTNC_FLOOR(a / b) * b; }
ATTNC_DEVICE long long attnc_clamp(long long i, long long n) { return i < 0 ? 0 : (i >= n ? n - 1 : i); }
`
