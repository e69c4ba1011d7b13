package triton

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/attnc/attnc/ir"
)

// An attnKernel is one attention op rendered as Triton kernels: the
// forward (online softmax over key tiles, FlashAttention-2's loop) and
// the backward (dk, dv and the captures' gradients over query tiles; dq
// over key tiles), with the op's mask, score and the score's derivatives
// inlined. A tile the mask leaves empty is never loaded: each program
// evaluates the mask on the tile's indices first (and the captures it
// reads), and skips the tile's keys, values and products when no pair is
// admitted.
type attnKernel struct {
	id      int
	caps    []ir.Type
	syms    []string
	mask    string // Triton expression over qi, ki, b, h, or ""
	score   string // over s too, or ""
	dscore  string // ∂score/∂s, or ""
	capGrad string // the atomic adds of the captures' gradients, indented for the dkdv loop
	gradCap []bool // which captures get a gradient
}

// tritonExpr renders index expressions as Triton code inside a kernel:
// q and k are the broadcast index tiles qi [BM, 1] and ki [1, BN], b and h
// the program's scalars, s the score tile, a symbol the argument sym_NAME
// and a capture a load of Ci (clamped into range: a capture is read only
// where a where() or the mask makes its index valid, and the other
// positions' values are discarded).
type tritonExpr struct {
	caps []ir.Type
	syms map[string]bool
}

func (w *tritonExpr) write(e *ir.Expr) (string, ir.ScalarKind, error) { return ir.RenderExpr(e, w) }

func (w *tritonExpr) Var(name string, k ir.ScalarKind) string {
	switch name {
	case "q":
		return "qi"
	case "k":
		return "ki"
	case "b", "h", "s":
		return name
	}
	w.syms[name] = true
	return "sym_" + name
}

func (w *tritonExpr) Literal(v float64, k ir.ScalarKind) string {
	switch k {
	case ir.KInt:
		return strconv.FormatInt(int64(v), 10)
	case ir.KBool:
		if v != 0 {
			return "(0 == 0)"
		}
		return "(0 != 0)"
	}
	return tritonFloat(v)
}

func (w *tritonExpr) ToFloat(s string) string { return "(" + s + ").to(tl.float32)" }

// Capture reads Ci at the indices, each clamped into the capture's dims
// (arguments Ci_n0, Ci_n1, …; the capture is contiguous).
func (w *tritonExpr) Capture(ci int, idx []string, k ir.ScalarKind) (string, error) {
	off, err := w.capOffset(ci, idx)
	if err != nil {
		return "", err
	}
	load := fmt.Sprintf("tl.load(C%d + %s)", ci, off)
	if w.caps[ci].DType == ir.Bool {
		load = "(" + load + " != 0)"
	}
	return load, nil
}

func (w *tritonExpr) capOffset(ci int, idx []string) (string, error) {
	if ci >= len(w.caps) {
		return "", fmt.Errorf("capture $%d of %d", ci, len(w.caps))
	}
	off := "0"
	for d, s := range idx {
		c := fmt.Sprintf("tl.minimum(tl.maximum(%s, 0), C%d_n%d - 1)", s, ci, d)
		if d == 0 {
			off = c
		} else {
			off = fmt.Sprintf("(%s) * C%d_n%d + %s", off, ci, d, c)
		}
	}
	return off, nil
}

func (w *tritonExpr) Neg(a string) string { return "(-" + a + ")" }
func (w *tritonExpr) Not(a string) string { return "(" + a + " == 0)" }

func (w *tritonExpr) Binary(op ir.ExprKind, a, b string, kind ir.ScalarKind) (string, error) {
	switch op {
	case ir.EDiv:
		if kind == ir.KInt {
			return fmt.Sprintf("_floordiv(%s, %s)", a, b), nil
		}
		return "(" + a + " / " + b + ")", nil
	case ir.EMod:
		if kind == ir.KInt {
			return fmt.Sprintf("_floormod(%s, %s)", a, b), nil
		}
		return fmt.Sprintf("_ffloormod(%s, %s)", a, b), nil
	}
	sym, ok := pyBinary[op]
	if !ok {
		return "", fmt.Errorf("no Triton operator for %v", op)
	}
	return "(" + a + " " + sym + " " + b + ")", nil
}

func (w *tritonExpr) Call(name string, a []string, k ir.ScalarKind) (string, error) {
	switch name {
	case "where":
		return fmt.Sprintf("tl.where(%s, %s, %s)", a[0], a[1], a[2]), nil
	case "max":
		return fmt.Sprintf("tl.maximum(%s, %s)", a[0], a[1]), nil
	case "min":
		return fmt.Sprintf("tl.minimum(%s, %s)", a[0], a[1]), nil
	case "clamp":
		return fmt.Sprintf("tl.minimum(tl.maximum(%s, %s), %s)", a[0], a[1], a[2]), nil
	case "abs":
		return fmt.Sprintf("tl.abs(%s)", a[0]), nil
	case "floor":
		if k != ir.KFloat {
			return a[0], nil
		}
		return fmt.Sprintf("_floor(%s)", a[0]), nil
	case "exp", "log", "sin", "cos", "sigmoid":
		return fmt.Sprintf("tl.%s(%s)", name, a[0]), nil
	case "tanh":
		return fmt.Sprintf("_tanh(%s)", a[0]), nil
	}
	return "", fmt.Errorf("no Triton spelling for the index function %s", name)
}

func tritonFloat(v float64) string {
	s := pyFloat(v)
	return strings.NewReplacer("-math.inf", "(-_INF)", "math.inf", "_INF", "math.nan", "_NAN").Replace(s)
}

// attnKernels renders every attention op of m that returns out (the
// others keep the plain-torch path) as an attnKernel.
func attnKernels(m *ir.Module) (map[*ir.Instr]*attnKernel, error) {
	out := map[*ir.Instr]*attnKernel{}
	for _, in := range m.Instrs {
		if in.Op != ir.OpAttention {
			continue
		}
		if r := in.Attrs.Str("returns"); r != "" && r != "out" {
			continue
		}
		_, _, _, caps := ir.AttentionOperands(in.Args, in.Attrs)
		kn := &attnKernel{id: in.ID}
		for _, c := range caps {
			kn.caps = append(kn.caps, c.Type)
		}
		w := &tritonExpr{caps: kn.caps, syms: map[string]bool{}}
		var err error
		if e := in.Attrs.Expr("mask"); e != nil {
			if kn.mask, _, err = w.write(e); err != nil {
				return nil, fmt.Errorf("%%%d = attention: mask: %w", in.ID, err)
			}
		}
		kn.gradCap = make([]bool, len(caps))
		if e := in.Attrs.Expr("score"); e != nil {
			var sk ir.ScalarKind
			if kn.score, sk, err = w.write(e); err != nil {
				return nil, fmt.Errorf("%%%d = attention: score: %w", in.ID, err)
			}
			if sk != ir.KFloat {
				kn.score = "(" + kn.score + ").to(tl.float32)"
			}
			d := e.DerivVar("s")
			if kn.dscore, _, err = w.write(d); err != nil {
				return nil, fmt.Errorf("%%%d = attention: the score's derivative: %w", in.ID, err)
			}
			var sb strings.Builder
			for ci, c := range caps {
				if c.Type.DType != ir.F32 {
					continue
				}
				for _, read := range e.CaptureReads(ci) {
					dr, _, err := w.write(e.Deriv(read))
					if err != nil {
						return nil, fmt.Errorf("%%%d = attention: the score's derivative: %w", in.ID, err)
					}
					idx := make([]string, len(read.Args))
					for i, x := range read.Args {
						if idx[i], _, err = w.write(x); err != nil {
							return nil, err
						}
					}
					off, err := w.capOffset(ci, idx)
					if err != nil {
						return nil, err
					}
					kn.gradCap[ci] = true
					fmt.Fprintf(&sb, "            tl.atomic_add(DC%d + (%s) + zero_tile, ds * (%s), mask=valid)\n", ci, off, dr)
				}
			}
			kn.capGrad = sb.String()
		}
		for s := range w.syms {
			kn.syms = append(kn.syms, s)
		}
		sortStrings(kn.syms)
		out[in] = kn
	}
	return out, nil
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// render writes the kernels and the autograd.Function of kn.
func (kn *attnKernel) render(sb *strings.Builder) {
	var capParams, capArgs, dcapParams []string
	for ci, c := range kn.caps {
		capParams = append(capParams, fmt.Sprintf("C%d", ci))
		for d := range c.Shape {
			capParams = append(capParams, fmt.Sprintf("C%d_n%d", ci, d))
		}
		capArgs = append(capArgs, fmt.Sprintf("caps[%d]", ci))
		for d := range c.Shape {
			capArgs = append(capArgs, fmt.Sprintf("caps[%d].shape[%d]", ci, d))
		}
		dcapParams = append(dcapParams, fmt.Sprintf("DC%d", ci))
	}
	var symParams, symArgs []string
	for _, s := range kn.syms {
		symParams = append(symParams, "sym_"+s)
		symArgs = append(symArgs, fmt.Sprintf("sz[%s]", pyString(s)))
	}
	join := func(xs []string) string {
		if len(xs) == 0 {
			return ""
		}
		return strings.Join(xs, ", ") + ", "
	}
	valid := "(qi < NQ) & (ki < NK)"
	if kn.mask != "" {
		valid += " & (" + kn.mask + ")"
	}
	score, dscore := "s", "1.0"
	if kn.score != "" {
		score, dscore = kn.score, kn.dscore
	}
	r := strings.NewReplacer(
		"ID", strconv.Itoa(kn.id),
		"CAPS, ", join(capParams),
		"DCAPS, ", join(dcapParams),
		"SYMS, ", join(symParams),
		"VALID", valid,
		"SCORE", score,
		"DSCORE", dscore,
		"CAPGRAD\n", kn.capGrad,
	)
	sb.WriteString(r.Replace(attnKernelSource))
	var gradCaps []string
	for ci, g := range kn.gradCap {
		if g {
			gradCaps = append(gradCaps, strconv.Itoa(ci))
		}
	}
	w := strings.NewReplacer(
		"ID", strconv.Itoa(kn.id),
		"CAPARGS, ", join(capArgs),
		"SYMARGS, ", join(symArgs),
		"GRADCAPS", "("+strings.Join(gradCaps, ", ")+func() string {
			if len(gradCaps) == 1 {
				return ","
			}
			return ""
		}()+")",
		"NCAPS", strconv.Itoa(len(kn.caps)),
	)
	sb.WriteString(w.Replace(attnWrapperSource))
}

// attnKernelSource is the Triton kernels of one attention op: the
// placeholders are replaced by render. Q, K, V, O, dO, dQ, dK, dV are
// contiguous [B, H, N, D]; L (lse) and DELTA (rowsum(dO·O)) [B, H, Nq].
const attnKernelSource = `

@triton.jit
def _attnID_fwd(Q, K, V, O, L, CAPS, SYMS, NH, NQ, NK, scale,
                D: tl.constexpr, DV: tl.constexpr, BD: tl.constexpr, BDV: tl.constexpr,
                BM: tl.constexpr, BN: tl.constexpr):
    pid = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // NH
    h = bh % NH
    offs_m = pid * BM + tl.arange(0, BM)
    offs_d = tl.arange(0, BD)
    offs_dv = tl.arange(0, BDV)
    qi = offs_m[:, None]
    q = tl.load(Q + bh * NQ * D + qi * D + offs_d[None, :], mask=(qi < NQ) & (offs_d[None, :] < D), other=0.0)
    m_i = tl.full([BM], -_INF, tl.float32)
    l_i = tl.zeros([BM], tl.float32)
    acc = tl.zeros([BM, BDV], tl.float32)
    for start in range(0, NK, BN):
        offs_n = start + tl.arange(0, BN)
        ki = offs_n[None, :]
        valid = VALID
        # Tile classification: an empty tile's keys and values are never loaded.
        if tl.sum(tl.sum(valid.to(tl.int32), 1), 0) > 0:
            kt = tl.load(K + bh * NK * D + ki * D + offs_d[:, None], mask=(ki < NK) & (offs_d[:, None] < D), other=0.0)
            s = tl.dot(q, kt) * scale
            s = SCORE
            s = tl.where(valid, s, -_INF)
            m_new = tl.maximum(m_i, tl.max(s, 1))
            m_safe = tl.where(m_new == -_INF, 0.0, m_new)
            p = tl.exp(s - m_safe[:, None])
            alpha = tl.exp(m_i - m_safe)
            l_i = l_i * alpha + tl.sum(p, 1)
            v = tl.load(V + bh * NK * DV + offs_n[:, None] * DV + offs_dv[None, :],
                        mask=(offs_n[:, None] < NK) & (offs_dv[None, :] < DV), other=0.0)
            acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v)
            m_i = m_new
    full = l_i > 0
    out = acc / tl.where(full, l_i, 1.0)[:, None]
    lse = tl.where(full, tl.where(m_i == -_INF, 0.0, m_i) + tl.log(tl.where(full, l_i, 1.0)), -_INF)
    tl.store(O + bh * NQ * DV + qi * DV + offs_dv[None, :], out, mask=(qi < NQ) & (offs_dv[None, :] < DV))
    tl.store(L + bh * NQ + offs_m, lse, mask=offs_m < NQ)


@triton.jit
def _attnID_dkdv(Q, K, V, L, DELTA, DO, DK, DV_, CAPS, DCAPS, SYMS, NH, NQ, NK, scale,
                 D: tl.constexpr, DV: tl.constexpr, BD: tl.constexpr, BDV: tl.constexpr,
                 BM: tl.constexpr, BN: tl.constexpr):
    pid = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // NH
    h = bh % NH
    offs_n = pid * BN + tl.arange(0, BN)
    offs_d = tl.arange(0, BD)
    offs_dv = tl.arange(0, BDV)
    ki = offs_n[None, :]
    kt = tl.load(K + bh * NK * D + ki * D + offs_d[:, None], mask=(ki < NK) & (offs_d[:, None] < D), other=0.0)
    vt = tl.load(V + bh * NK * DV + ki * DV + offs_dv[:, None], mask=(ki < NK) & (offs_dv[:, None] < DV), other=0.0)
    dk = tl.zeros([BN, BD], tl.float32)
    dv = tl.zeros([BN, BDV], tl.float32)
    zero_tile = tl.zeros([BM, BN], tl.int32)
    for start in range(0, NQ, BM):
        offs_m = start + tl.arange(0, BM)
        qi = offs_m[:, None]
        valid = VALID
        if tl.sum(tl.sum(valid.to(tl.int32), 1), 0) > 0:
            q = tl.load(Q + bh * NQ * D + qi * D + offs_d[None, :], mask=(qi < NQ) & (offs_d[None, :] < D), other=0.0)
            s = tl.dot(q, kt) * scale
            raw = s
            s = SCORE
            lse = tl.load(L + bh * NQ + offs_m, mask=offs_m < NQ, other=0.0)
            lse = tl.where(lse == -_INF, 0.0, lse)
            p = tl.where(valid, tl.exp(tl.where(valid, s, 0.0) - lse[:, None]), 0.0)
            do = tl.load(DO + bh * NQ * DV + qi * DV + offs_dv[None, :], mask=(qi < NQ) & (offs_dv[None, :] < DV), other=0.0)
            dv += tl.dot(tl.trans(p), do)
            dp = tl.dot(do, vt)
            delta = tl.load(DELTA + bh * NQ + offs_m, mask=offs_m < NQ, other=0.0)
            ds = p * (dp - delta[:, None])
            s = raw
            dsr = tl.where(valid, ds * (DSCORE), 0.0)
            dk += tl.dot(tl.trans(dsr), q) * scale
CAPGRAD
    tl.store(DK + bh * NK * D + offs_n[:, None] * D + offs_d[None, :], dk,
             mask=(offs_n[:, None] < NK) & (offs_d[None, :] < D))
    tl.store(DV_ + bh * NK * DV + offs_n[:, None] * DV + offs_dv[None, :], dv,
             mask=(offs_n[:, None] < NK) & (offs_dv[None, :] < DV))


@triton.jit
def _attnID_dq(Q, K, V, L, DELTA, DO, DQ, CAPS, SYMS, NH, NQ, NK, scale,
               D: tl.constexpr, DV: tl.constexpr, BD: tl.constexpr, BDV: tl.constexpr,
               BM: tl.constexpr, BN: tl.constexpr):
    pid = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // NH
    h = bh % NH
    offs_m = pid * BM + tl.arange(0, BM)
    offs_d = tl.arange(0, BD)
    offs_dv = tl.arange(0, BDV)
    qi = offs_m[:, None]
    q = tl.load(Q + bh * NQ * D + qi * D + offs_d[None, :], mask=(qi < NQ) & (offs_d[None, :] < D), other=0.0)
    do = tl.load(DO + bh * NQ * DV + qi * DV + offs_dv[None, :], mask=(qi < NQ) & (offs_dv[None, :] < DV), other=0.0)
    lse = tl.load(L + bh * NQ + offs_m, mask=offs_m < NQ, other=0.0)
    lse = tl.where(lse == -_INF, 0.0, lse)
    delta = tl.load(DELTA + bh * NQ + offs_m, mask=offs_m < NQ, other=0.0)
    dq = tl.zeros([BM, BD], tl.float32)
    for start in range(0, NK, BN):
        offs_n = start + tl.arange(0, BN)
        ki = offs_n[None, :]
        valid = VALID
        if tl.sum(tl.sum(valid.to(tl.int32), 1), 0) > 0:
            kt = tl.load(K + bh * NK * D + ki * D + offs_d[:, None], mask=(ki < NK) & (offs_d[:, None] < D), other=0.0)
            vt = tl.load(V + bh * NK * DV + ki * DV + offs_dv[:, None], mask=(ki < NK) & (offs_dv[:, None] < DV), other=0.0)
            s = tl.dot(q, kt) * scale
            raw = s
            s = SCORE
            p = tl.where(valid, tl.exp(tl.where(valid, s, 0.0) - lse[:, None]), 0.0)
            dp = tl.dot(do, vt)
            ds = p * (dp - delta[:, None])
            s = raw
            dsr = tl.where(valid, ds * (DSCORE), 0.0)
            dq += tl.dot(dsr, tl.trans(kt)) * scale
    tl.store(DQ + bh * NQ * D + qi * D + offs_d[None, :], dq, mask=(qi < NQ) & (offs_d[None, :] < D))
`

// attnWrapperSource is the autograd.Function that launches one attention
// op's kernels.
const attnWrapperSource = `

class _AttnID(torch.autograd.Function):
    @staticmethod
    def forward(ctx, sz, scale, q, k, v, *caps):
        q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
        caps = [_cap_arg(c) for c in caps]
        nb, nh, nq, d = q.shape
        nk, dv = k.shape[2], v.shape[3]
        o = torch.empty((nb, nh, nq, dv), dtype=torch.float32, device=q.device)
        lse = torch.empty((nb, nh, nq), dtype=torch.float32, device=q.device)
        meta = _meta(d, dv)
        grid = (triton.cdiv(nq, meta["BM"]), nb * nh)
        _attnID_fwd[grid](q, k, v, o, lse, CAPARGS, SYMARGS, nh, nq, nk, scale, **meta)
        ctx.save_for_backward(q, k, v, o, lse, *caps)
        ctx.sz, ctx.scale = sz, scale
        return o

    @staticmethod
    def backward(ctx, do):
        q, k, v, o, lse, *caps = ctx.saved_tensors
        sz, scale = ctx.sz, ctx.scale
        dtypes = (q.dtype, k.dtype, v.dtype)
        q, k, v = q.float(), k.float(), v.float()
        do = do.contiguous().float()
        nb, nh, nq, d = q.shape
        nk, dv = k.shape[2], v.shape[3]
        delta = (do * o).sum(-1).contiguous()
        dq, dk, dvv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
        dcaps = [torch.zeros(c.shape, dtype=torch.float32, device=c.device) for c in caps]
        meta = _meta(d, dv)
        _attnID_dkdv[(triton.cdiv(nk, meta["BN"]), nb * nh)](
            q, k, v, lse, delta, do, dk, dvv, CAPARGS, *dcaps, SYMARGS, nh, nq, nk, scale, **meta)
        _attnID_dq[(triton.cdiv(nq, meta["BM"]), nb * nh)](
            q, k, v, lse, delta, do, dq, CAPARGS, SYMARGS, nh, nq, nk, scale, **meta)
        grads = [dcaps[i] if i in GRADCAPS and ctx.needs_input_grad[5 + i] else None for i in range(NCAPS)]
        return (None, None, dq.to(dtypes[0]), dk.to(dtypes[1]), dvv.to(dtypes[2]), *grads)


def attnID(sz, scale, q, k, v, caps):
    """Attention op %ID through its Triton kernels."""
    return _AttnID.apply(sz, scale, q, k, v, *caps)
`

// kernelsHeader opens kernels.py.
const kernelsHeader = `# Code generated by attnc. DO NOT EDIT.
"""Triton kernels of the model's attention ops: forward and backward, each
op's mask, score and their derivatives inlined, empty tiles skipped.
model.py runs them when Triton and a GPU are there (or ATTNC_TRITON=1)."""

import torch
import triton
import triton.language as tl

_INF = tl.constexpr(float("inf"))
_NAN = tl.constexpr(float("nan"))


def _meta(d, dv):
    bd, bdv = max(16, triton.next_power_of_2(d)), max(16, triton.next_power_of_2(dv))
    return {"D": d, "DV": dv, "BD": bd, "BDV": bdv, "BM": 64, "BN": 64}


def _cap_arg(c):
    """A capture as a kernel reads it: contiguous, bool as int8."""
    c = c.contiguous()
    return c.to(torch.int8) if c.dtype == torch.bool else c


@triton.jit
def _floordiv(a, b):
    # Floor division whatever the target's integer division rounds to.
    q = a // b
    fix = tl.where(b > 0, q * b > a, q * b < a)
    return q - fix.to(q.dtype)


@triton.jit
def _floormod(a, b):
    return a - _floordiv(a, b) * b


@triton.jit
def _ffloormod(a, b):
    return a - _floor(a / b) * b


@triton.jit
def _floor(x):
    t = x.to(tl.int64).to(tl.float32)
    return tl.where(t > x, t - 1.0, t)


@triton.jit
def _tanh(x):
    return 2.0 / (1.0 + tl.exp(-2.0 * x)) - 1.0
`
