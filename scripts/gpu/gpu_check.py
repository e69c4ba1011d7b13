"""The GPU checks of attnc's Triton and CUDA targets, on a machine with an
NVIDIA GPU, PyTorch and Triton, and no Go toolchain: scripts/gpu-check.sh
prepare DIR builds what it reads (elsewhere, with attnc), and

    python3 DIR/gpu_check.py DIR [--device cuda|cpu] [--n 8192]

runs, for each stdlib model built for both targets:

  - the Triton kernels (kernels.py) against the plain-torch path: the loss
    and every gradient on a batch of the model's own task;
  - the CUDA target's attention kernels (kernels_sm_XX.ptx, loaded with
    the CUDA driver through ctypes) against the plain-torch path, the
    same way, and whether the fused kernels' PTX (kernels_ll_sm_XX.ptx)
    loads;
  - attention forward timings at N tokens, d = 64, bf16: attnc's Triton
    kernels against torch's scaled_dot_product_attention and, where torch
    has it, FlexAttention (full, causal, window 256, causal document).

It prints one table and exits 1 if a check fails. Without a GPU, what
needs one is skipped with the reason; --device cpu runs the Triton
comparisons on the CPU (with Triton's interpreter, or attnc's stand-in
for it on PYTHONPATH).
"""

import argparse
import ctypes
import importlib
import json
import math
import os
import sys
import time

import torch

ROWS = []
FAILED = []


def row(check, result, detail=""):
    ROWS.append((check, result, detail))
    if result == "FAIL":
        FAILED.append(check)


def rel(a, b):
    a, b = a.detach().float().cpu(), b.detach().float().cpu()
    den = max(float(b.norm()), 1e-3 * math.sqrt(b.numel()))
    return float((a - b).norm()) / den


def task_batch(pkg_name, n):
    """A batch of n examples of the package's default task."""
    train = importlib.import_module(pkg_name + ".train")
    model = importlib.import_module(pkg_name + ".model")
    gen = torch.Generator()
    gen.manual_seed(5)
    task = train.make_task("")
    batch = task(gen, n, train.SPEC["task_params"])
    return {k: v for k, v in batch.items() if k in model.INPUTS}


def loss_and_grads(m, inputs):
    m.zero_grad(set_to_none=True)
    # Not training: a model's buffer updates (k-means centroids) would
    # change the second run's inputs; the gradients are the same.
    m.train(False)
    out = m(inputs)
    out["loss"].backward()
    grads = {n: (p.grad if p.grad is not None else torch.zeros_like(p)).clone() for n, p in m.named_parameters()}
    return out["loss"].detach(), grads


def tolerance(pkg, tol):
    """tol, or a looser one for a model whose attention reads a choice made
    from the data (routing_lm's clusters, a top-k selection): attention
    outputs equal to rounding can flip a near tie downstream, which moves a
    few positions' gradients a lot while the loss barely changes."""
    return max(tol, 5e-2) if getattr(pkg, "DATA_ROUTED", False) else tol


def compare(label, m, inputs, on, off, tol):
    """Runs m with the kernels (env on) and in plain torch (env off) and
    adds a row with the loss's and the worst gradient's relative error."""
    os.environ["ATTNC_TRITON"] = on
    l1, g1 = loss_and_grads(m, inputs)
    os.environ["ATTNC_TRITON"] = off
    l2, g2 = loss_and_grads(m, inputs)
    worst, where = 0.0, ""
    for n in g2:
        e = rel(g1[n], g2[n])
        if e > worst:
            worst, where = e, n
    e = max(rel(l1, l2), worst)
    row(label, "ok" if e <= tol else "FAIL",
        "loss %.3g, worst grad %.3g (%s)" % (rel(l1, l2), worst, where or "-"))


def triton_checks(dir, models, device):
    try:
        import triton  # noqa: F401
    except ImportError as e:
        row("triton", "skip", "Triton does not import: %s" % e)
        return
    for name in models:
        pkg = importlib.import_module(name + ".model")
        if getattr(pkg, "kernels", None) is None:
            row("triton " + name, "skip", "no attention kernels")
            continue
        m = pkg.Model(1).to(device)
        inputs = {k: v.to(device) for k, v in task_batch(name, 8).items()}
        on = "1" if device == "cpu" else ""
        compare("triton " + name, m, inputs, on, "0", tolerance(pkg, 1e-2 if device == "cuda" else 1e-4))


class CUDADriver:
    """The CUDA driver API through ctypes, in torch's context."""

    def __init__(self):
        self.lib = ctypes.CDLL("libcuda.so.1")
        torch.zeros(1, device="cuda")  # torch makes its context current

    def check(self, r, what):
        if r != 0:
            raise RuntimeError("%s: CUDA error %d" % (what, r))

    def load(self, ptx):
        mod = ctypes.c_void_p()
        self.check(self.lib.cuModuleLoadData(ctypes.byref(mod), ctypes.c_char_p(ptx.encode() + b"\0")), "cuModuleLoadData")
        return mod

    def function(self, mod, name):
        fn = ctypes.c_void_p()
        self.check(self.lib.cuModuleGetFunction(ctypes.byref(fn), mod, name.encode()), "cuModuleGetFunction " + name)
        return fn

    def launch(self, fn, grid, block, args):
        holders = [a if isinstance(a, ctypes._SimpleCData) else ctypes.c_void_p(a) for a in args]
        params = (ctypes.c_void_p * len(holders))(*[ctypes.cast(ctypes.pointer(h), ctypes.c_void_p) for h in holders])
        stream = ctypes.c_void_p(torch.cuda.current_stream().cuda_stream)
        self.check(self.lib.cuLaunchKernel(fn, grid[0], grid[1], 1, block, 1, 1, 0, stream, params, None), "cuLaunchKernel")


def cuda_attention(drv, mod, meta):
    L = ctypes.c_longlong
    kid = meta["id"]
    fns = {p: drv.function(mod, "attn%d_%s" % (kid, p)) for p in ("fwd", "delta", "dkdv", "dq")}

    def cap_args(caps):
        out = []
        for c in caps:
            out.append(c.data_ptr())
            out += [L(n) for n in c.shape]
        return out

    class F(torch.autograd.Function):
        @staticmethod
        def forward(ctx, sz, scale, q, k, v, *caps):
            q, k, v = (x.detach().float().contiguous() for x in (q, k, v))
            cs = [(c.detach().float() if dt == "f32" else c.detach().to(torch.int32) if dt == "i32"
                   else c.detach().to(torch.uint8)).contiguous() for c, dt in zip(caps, meta["caps"])]
            nb, nh, nq, _ = q.shape
            nk, dv = k.shape[2], v.shape[3]
            o = torch.zeros((nb, nh, nq, dv), device=q.device)
            lse = torch.zeros((nb, nh, nq), device=q.device)
            syms = [L(sz[s]) for s in meta["syms"]]
            common = [L(nh), L(nq), L(nk), ctypes.c_float(scale)]
            drv.launch(fns["fwd"], ((nq + 63) // 64, nb * nh), 64,
                       [q.data_ptr(), k.data_ptr(), v.data_ptr(), o.data_ptr(), lse.data_ptr()] + cap_args(cs) + syms + common)
            ctx.save_for_backward(q, k, v, o, lse, *cs)
            ctx.sz, ctx.scale = sz, scale
            return o

        @staticmethod
        def backward(ctx, do):
            q, k, v, o, lse, *cs = ctx.saved_tensors
            do = do.float().contiguous()
            nb, nh, nq, _ = q.shape
            nk = k.shape[2]
            delta = torch.zeros((nb, nh, nq), device=q.device)
            rows = nb * nh * nq
            drv.launch(fns["delta"], ((rows + 63) // 64, 1), 64, [o.data_ptr(), do.data_ptr(), delta.data_ptr(), L(rows)])
            dq, dk, dv = torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)
            dcs = [torch.zeros(c.shape, device=q.device) for c in cs]
            syms = [L(ctx.sz[s]) for s in meta["syms"]]
            common = [L(nh), L(nq), L(nk), ctypes.c_float(ctx.scale)]
            head = [q.data_ptr(), k.data_ptr(), v.data_ptr(), lse.data_ptr(), delta.data_ptr(), do.data_ptr()]
            drv.launch(fns["dkdv"], ((nk + 63) // 64, nb * nh), 64,
                       head + [dk.data_ptr(), dv.data_ptr()] + cap_args(cs) + [x.data_ptr() for x in dcs] + syms + common)
            drv.launch(fns["dq"], ((nq + 63) // 64, nb * nh), 64, head + [dq.data_ptr()] + cap_args(cs) + syms + common)
            grads = [dcs[i] if i in meta["grad_caps"] and ctx.needs_input_grad[5 + i] else None for i in range(len(cs))]
            return (None, None, dq, dk, dv, *grads)

    return lambda sz, scale, q, k, v, caps: F.apply(sz, scale, q, k, v, *caps)


def cuda_checks(dir, models):
    if not torch.cuda.is_available():
        row("cuda", "skip", "no GPU")
        return
    try:
        drv = CUDADriver()
    except OSError as e:
        row("cuda", "skip", "no CUDA driver: %s" % e)
        return
    major, _ = torch.cuda.get_device_capability()
    import types
    for name in models:
        cdir = os.path.join(dir, name + "_cuda")
        arch = "sm_90" if major >= 9 and os.path.exists(os.path.join(cdir, "kernels_sm_90.ptx")) else "sm_80"
        ptx = os.path.join(cdir, "kernels_%s.ptx" % arch)
        if not os.path.exists(ptx):
            row("cuda " + name, "skip", "no %s (attnc build found no clang)" % os.path.basename(ptx))
            continue
        pkg = importlib.import_module(name + ".model")
        if not hasattr(pkg, "kernels_on"):
            row("cuda " + name, "skip", "no attention kernels")
            continue
        mod = drv.load(open(ptx).read())
        kernels = types.SimpleNamespace()
        for meta in json.load(open(os.path.join(cdir, "kernels.json"))):
            setattr(kernels, "attn%d" % meta["id"], cuda_attention(drv, mod, meta))
        saved = pkg.kernels, pkg.kernels_on
        pkg.kernels, pkg.kernels_on = kernels, (lambda t: os.environ.get("ATTNC_TRITON") != "0")
        try:
            m = pkg.Model(1).cuda()
            inputs = {k: v.cuda() for k, v in task_batch(name, 8).items()}
            compare("cuda %s (%s)" % (name, arch), m, inputs, "", "0", tolerance(pkg, 1e-3))
        finally:
            pkg.kernels, pkg.kernels_on = saved
        fused = os.path.join(cdir, "kernels_ll_%s.ptx" % arch)
        if os.path.exists(fused):
            try:
                drv.load(open(fused).read())
                row("cuda %s fused PTX (%s)" % (name, arch), "ok", "loads")
            except RuntimeError as e:
                row("cuda %s fused PTX (%s)" % (name, arch), "FAIL", str(e))


def timed(fn, reps=10):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b))
    times.sort()
    return times[len(times) // 2]


def bench(n):
    if not torch.cuda.is_available():
        row("bench", "skip", "no GPU")
        return
    try:
        import triton  # noqa: F401
        ab = importlib.import_module("attn_bench.model")
    except ImportError as e:
        row("bench", "skip", "no Triton: %s" % e)
        return
    import torch.nn.functional as F
    b, h, d = 1, 16, 64
    q, k, v = (torch.randn(b, h, n, d, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    doc = (torch.arange(n, device="cuda") // 1024).repeat(b, 1)  # documents of 1024 tokens
    scale = 1 / math.sqrt(d)
    sz = {"B": b, "H": h, "N": n}
    ids = sorted(int(x[4:]) for x in dir(ab.kernels) if x.startswith("attn") and x[4:].isdigit())
    cases = dict(zip(["full", "causal", "window256", "document"], ids))
    flex = None
    try:
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention
        flex = torch.compile(flex_attention)
    except Exception as e:  # torch < 2.5
        row("flex", "skip", "no FlexAttention: %s" % e)
    qi = torch.arange(n, device="cuda")
    dense = {
        "full": None,
        "causal": qi[None, :] <= qi[:, None],
        "window256": (qi[None, :] <= qi[:, None]) & (qi[:, None] - qi[None, :] < 256),
        "document": (qi[None, :] <= qi[:, None]) & (doc[0][:, None] == doc[0][None, :]),
    }
    mods = {
        "full": None,
        "causal": lambda b_, h_, q_, k_: k_ <= q_,
        "window256": lambda b_, h_, q_, k_: (k_ <= q_) & (q_ - k_ < 256),
        "document": lambda b_, h_, q_, k_: (k_ <= q_) & (doc[b_, q_] == doc[b_, k_]),
    }
    for case, kid in cases.items():
        fn = getattr(ab.kernels, "attn%d" % kid)
        caps = [doc] if case == "document" else []
        ours = timed(lambda: fn(sz, scale, q, k, v, caps))
        if case == "full":
            sdpa = timed(lambda: F.scaled_dot_product_attention(q, k, v))
        elif case == "causal":
            sdpa = timed(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True))
        else:
            sdpa = timed(lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=dense[case]))
        fl = float("nan")
        if flex is not None:
            if mods[case] is None:
                fl = timed(lambda: flex(q, k, v))
            else:
                bm = create_block_mask(mods[case], b, None, n, n, device="cuda")
                fl = timed(lambda: flex(q, k, v, block_mask=bm))
        row("bench %s N=%d" % (case, n), "time",
            "attnc %.3f ms, SDPA %.3f ms (%.2fx), Flex %.3f ms (%.2fx)" % (ours, sdpa, sdpa / ours, fl, fl / ours))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--n", type=int, default=8192)
    args = ap.parse_args()
    sys.path.insert(0, args.dir)
    models = sorted(x for x in os.listdir(args.dir)
                    if os.path.exists(os.path.join(args.dir, x, "model.py")) and x != "attn_bench")
    row("device", "info", torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU (%s)" % args.device)
    row("torch", "info", torch.__version__)
    triton_checks(args.dir, models, args.device)
    cuda_checks(args.dir, models)
    bench(args.n)
    w = max(len(r[0]) for r in ROWS)
    for check, result, detail in ROWS:
        print("%-*s  %-5s  %s" % (w, check, result, detail))
    if FAILED:
        print("failed: " + ", ".join(FAILED))
        sys.exit(1)


if __name__ == "__main__":
    t0 = time.time()
    main()
    print("(%.0f s)" % (time.time() - t0))
