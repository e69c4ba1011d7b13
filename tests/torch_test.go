package tests

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/attnc/attnc/codegen/cuda"
	"github.com/attnc/attnc/codegen/triton"
	"github.com/attnc/attnc/ir"
	"github.com/attnc/attnc/ir/eval"
	"github.com/attnc/attnc/lang"
	"github.com/attnc/attnc/passes"
	"github.com/attnc/attnc/runtime"
)

// torchPython returns a Python that imports torch: $ATTNC_PYTHON, else
// Debian's /usr/bin/python3, else python3 on the PATH. Without one the
// test skips, unless $ATTNC_REQUIRE_TORCH is set (CI sets it, having
// installed python3-torch), where it fails.
func torchPython(t *testing.T) string {
	t.Helper()
	var tried []string
	for _, py := range []string{os.Getenv("ATTNC_PYTHON"), "/usr/bin/python3", "python3"} {
		if py == "" {
			continue
		}
		tried = append(tried, py)
		if err := exec.Command(py, "-c", "import torch, numpy").Run(); err == nil {
			return py
		}
	}
	msg := "no Python with torch and numpy (tried " + strings.Join(tried, ", ") + "; apt-get install python3-torch, or set ATTNC_PYTHON)"
	if os.Getenv("ATTNC_REQUIRE_TORCH") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// torchCheck is the script TestTorchModule runs: for each package dir
// given, it loads the weights and inputs beside it, runs forward and
// backward, and prints one JSON line of runResult.
const torchCheck = `
import importlib, json, os, sys
import numpy as np
import torch
torch.manual_seed(0)

def wire(t):
    t = t.detach().cpu()
    if t.dtype == torch.float32:
        return {"dtype": "f32", "shape": list(t.shape), "f": t.contiguous().numpy().view(np.uint32).reshape(-1).tolist()}
    if t.dtype == torch.bool:
        return {"dtype": "bool", "shape": list(t.shape), "b": t.reshape(-1).tolist()}
    return {"dtype": "i32", "shape": list(t.shape), "i": t.to(torch.int64).reshape(-1).tolist()}

def cuda_cpu(pkg, d):
    """Runs pkg's attention through its CUDA kernels compiled for the CPU."""
    import ctypes, types
    lib = ctypes.CDLL(d + "/libkernels.so")
    kernels = types.SimpleNamespace()
    for meta in json.load(open(d + "/kernels.json")) or []:
        setattr(kernels, "attn%d" % meta["id"], cuda_attention(lib, meta))
    pkg.kernels = kernels
    pkg.kernels_on = lambda t: True

def cuda_attention(lib, meta):
    import ctypes
    kid = meta["id"]
    P = lambda t: ctypes.c_void_p(t.data_ptr())
    L = ctypes.c_longlong
    def cap_args(caps):
        out = []
        for c in caps:
            out.append(P(c))
            out += [L(n) for n in c.shape]
        return out
    def run(name, gx, gy, *args):
        getattr(lib, "attnc_cpu_attn%d_%s" % (kid, name))(ctypes.c_uint(gx), ctypes.c_uint(gy), ctypes.c_uint(64), *args)
    class F(torch.autograd.Function):
        @staticmethod
        def forward(ctx, sz, scale, q, k, v, *caps):
            q, k, v = (x.detach().float().contiguous() for x in (q, k, v))
            cs = []
            for c, dt in zip(caps, meta["caps"]):
                c = c.detach()
                cs.append((c.float() if dt == "f32" else c.to(torch.int32) if dt == "i32" else c.to(torch.uint8)).contiguous())
            nb, nh, nq, _ = q.shape
            nk, dv = k.shape[2], v.shape[3]
            o = torch.zeros((nb, nh, nq, dv))
            lse = torch.zeros((nb, nh, nq))
            syms = [L(sz[s]) for s in meta["syms"]]
            common = [L(nh), L(nq), L(nk), ctypes.c_float(scale)]
            run("fwd", (nq + 63) // 64, nb * nh, P(q), P(k), P(v), P(o), P(lse), *cap_args(cs), *syms, *common)
            ctx.save_for_backward(q, k, v, o, lse, *cs)
            ctx.sz, ctx.scale = sz, scale
            return o
        @staticmethod
        def backward(ctx, do):
            q, k, v, o, lse, *cs = ctx.saved_tensors
            do = do.float().contiguous()
            nb, nh, nq, _ = q.shape
            nk = k.shape[2]
            delta = torch.zeros((nb, nh, nq))
            run("delta", (nb * nh * nq + 63) // 64, 1, P(o), P(do), P(delta), L(nb * nh * nq))
            dq, dk, dv = torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)
            dcs = [torch.zeros(c.shape) for c in cs]
            syms = [L(ctx.sz[s]) for s in meta["syms"]]
            common = [L(nh), L(nq), L(nk), ctypes.c_float(ctx.scale)]
            run("dkdv", (nk + 63) // 64, nb * nh, P(q), P(k), P(v), P(lse), P(delta), P(do), P(dk), P(dv),
                *cap_args(cs), *[P(x) for x in dcs], *syms, *common)
            run("dq", (nq + 63) // 64, nb * nh, P(q), P(k), P(v), P(lse), P(delta), P(do), P(dq),
                *cap_args(cs), *syms, *common)
            grads = [dcs[i] if i in meta["grad_caps"] and ctx.needs_input_grad[5 + i] else None for i in range(len(cs))]
            return (None, None, dq, dk, dv, *grads)
    return lambda sz, scale, q, k, v, caps: F.apply(sz, scale, q, k, v, *caps)

sys.path.insert(0, sys.argv[1])
for name in sys.argv[2:]:
    try:
        pkg = importlib.import_module(name + ".model")
        if os.environ.get("ATTNC_TRITON") == "1" and hasattr(pkg, "kernels_on") and pkg.kernels is None:
            raise RuntimeError("ATTNC_TRITON=1 but kernels.py did not import")
        rt = importlib.import_module(name + ".rt")
        if os.environ.get("ATTNC_CUDA_CPU") == "1" and hasattr(pkg, "kernels_on"):
            cuda_cpu(pkg, sys.argv[1] + "/" + name)
        m = pkg.Model()
        m.load(sys.argv[1] + "/" + name + "/weights.safetensors")
        inputs, _ = rt.read_safetensors(sys.argv[1] + "/" + name + "/inputs.safetensors")
        out = m(inputs)
        res = {"err": "", "forward": {k: wire(v) for k, v in out.items()}, "grad": {}, "grads": {}}
        if "loss" in out and out["loss"].requires_grad:
            out["loss"].backward()
            res["grad"]["loss"] = wire(out["loss"])
            for pname, p in m.named_parameters():
                g = p.grad if p.grad is not None else torch.zeros_like(p)
                res["grads"][pname] = wire(g)
            # A forward in training mode applied the update rules.
            for bname, b in m.named_buffers():
                res["grads"]["update:" + bname] = wire(b)
    except Exception as e:
        import traceback
        res = {"err": traceback.format_exc()}
    print(name, json.dumps(res))
`

// TestTorchModule renders every model of the corpus (testdata/programs
// and the stdlib models at their test configs) as the torch target's
// plain-torch package, runs its forward and autograd's backward in one
// Python process on the reference's weights and inputs, and compares the
// loss, metrics, outputs and every gradient with the float64 reference.
func TestTorchModule(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Python with torch")
	}
	checkTorchCorpus(t, nil, nil)
}

// TestTritonKernelsOnCPU is TestTorchModule with every attention op that
// has Triton kernels (kernels.py) run through them, forward and backward,
// by the CPU stand-in for Triton in testdata/tritonshim: the kernels'
// semantics, checked against the float64 reference without a GPU.
func TestTritonKernelsOnCPU(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Python with torch")
	}
	shim, err := filepath.Abs("testdata/tritonshim")
	require.NoError(t, err)
	checkTorchCorpus(t, []string{"PYTHONPATH=" + shim, "ATTNC_TRITON=1"}, nil)
}

// TestCUDAKernelsOnCPU compiles each corpus model's kernels.cu (the CUDA
// target's attention kernels) as C++ with ATTNC_CPU, which runs a
// kernel's blocks and threads in order, and runs the torch module with
// every attention op through them, forward and backward: the CUDA
// kernels' semantics against the float64 reference, without a GPU.
func TestCUDAKernelsOnCPU(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Python with torch and a C++ compiler")
	}
	cxx, err := exec.LookPath("g++")
	if err != nil {
		t.Skip("no g++ to compile kernels.cu for the CPU")
	}
	checkTorchCorpus(t, []string{"ATTNC_CUDA_CPU=1"}, func(t *testing.T, pkg string, m *ir.Module) {
		files, _, err := cuda.Render(m)
		require.NoError(t, err)
		for f, b := range files {
			require.NoError(t, os.WriteFile(filepath.Join(pkg, f), b, 0o644))
		}
		out, err := exec.Command(cxx, "-x", "c++", "-std=c++11", "-DATTNC_CPU", "-O1", "-Wall", "-Werror", "-Wno-unused-variable",
			"-shared", "-fPIC", "-o", filepath.Join(pkg, "libkernels.so"), filepath.Join(pkg, "kernels.cu")).CombinedOutput()
		require.NoError(t, err, "compiling kernels.cu for the CPU:\n%s", out)
	})
}

// checkTorchCorpus renders the corpus as torch packages and compares them
// with the reference, the Python process run with env added.
func checkTorchCorpus(t *testing.T, env []string, prepare func(t *testing.T, pkg string, m *ir.Module)) {
	py := torchPython(t)
	progs := corpus(t)
	dir := t.TempDir()
	envs := make([]eval.Env, len(progs))
	var names []string
	for i, p := range progs {
		name := "p" + strconv.Itoa(i) + "_" + identifier(p.lm.Name)
		names = append(names, name)
		files, err := triton.Torch(p.m, triton.Options{Source: p.name, Version: "test"})
		require.NoError(t, err, p.name)
		pkg := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(pkg, 0o755))
		for f, b := range files {
			require.NoError(t, os.WriteFile(filepath.Join(pkg, f), b, 0o644))
		}
		if prepare != nil {
			prepare(t, pkg, p.m)
		}
		params, err := eval.InitParams(p.m, 7)
		require.NoError(t, err)
		rng := rand.New(rand.NewPCG(5, uint64(i)))
		for _, w := range params {
			for j := range w.Data {
				w.Data[j] += 0.1 * rng.NormFloat64()
			}
		}
		envs[i] = eval.Env{Inputs: p.inputs, Params: params}
		var ws, ins []runtime.Named
		for n, w := range params {
			ws = append(ws, runtime.Named{Name: n, T: toRuntime(w)})
		}
		for n, x := range p.inputs {
			ins = append(ins, runtime.Named{Name: n, T: toRuntime(x)})
		}
		require.NoError(t, runtime.SaveSafetensors(filepath.Join(pkg, "weights.safetensors"), ws, nil))
		require.NoError(t, runtime.SaveSafetensors(filepath.Join(pkg, "inputs.safetensors"), ins, nil))
		// The reference's gradients: autodiff adds them to the module.
		_, err = passes.Run(p.m, passes.Options{})
		require.NoError(t, err, p.name)
	}
	script := filepath.Join(dir, "check.py")
	require.NoError(t, os.WriteFile(script, []byte(torchCheck), 0o644))
	cmd := exec.Command(py, append([]string{script, dir}, names...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	results := map[string]runResult{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		name, js, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		var r runResult
		if json.Unmarshal([]byte(js), &r) == nil {
			results[name] = r
		}
	}
	for i, p := range progs {
		t.Run(p.name, func(t *testing.T) {
			res, ok := results[names[i]]
			require.True(t, ok, "no result for %s:\n%s", p.name, out)
			require.Empty(t, res.Err, "the torch module failed")
			ref, err := eval.Run(p.m, envs[i])
			require.NoError(t, err, "reference")
			for _, d := range compareOutputs(p.m, ref, res, 1e-4) {
				t.Error(d)
			}
		})
	}
}

// trainPackage writes the torch package of a stdlib model at a small
// config, with train.py set to its own train section, into dir/name.
func trainPackage(t *testing.T, dir, name, file string, config map[string]lang.Value) {
	t.Helper()
	lm := elaborate(t, file, config)
	spec := &triton.TrainSpec{Model: lm.Name, TaskParams: map[string]any{}, Steps: 20, Batch: 8, LR: 1e-3,
		WeightDecay: 0.01, Schedule: "cosine", Warmup: 5, Clip: 1, Seed: 3, LogEvery: 10}
	ts := taskOf(t, lm)
	spec.Task = ts.Name
	for k, v := range ts.Ints {
		spec.TaskParams[k] = v
	}
	for k, v := range ts.Strings {
		spec.TaskParams[k] = v
	}
	files, err := triton.Torch(lm.IR, triton.Options{Source: file, Version: "test", Train: spec})
	require.NoError(t, err)
	pkg := filepath.Join(dir, name)
	require.NoError(t, os.MkdirAll(pkg, 0o755))
	for f, b := range files {
		require.NoError(t, os.WriteFile(filepath.Join(pkg, f), b, 0o644))
	}
}

// runTrainPy runs python -m name.train in dir with args and returns the
// losses it printed (--json).
func runTrainPy(t *testing.T, py, dir, name string, args ...string) []float64 {
	t.Helper()
	cmd := exec.Command(py, append([]string{"-m", name + ".train", "--json"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "OMP_NUM_THREADS=1")
	out, err := cmd.Output()
	var stderr []byte
	if ee, ok := err.(*exec.ExitError); ok {
		stderr = ee.Stderr
	}
	require.NoError(t, err, "%s\n%s", out, stderr)
	var losses []float64
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var rec struct{ Loss float64 }
		require.NoError(t, json.Unmarshal([]byte(line), &rec), line)
		losses = append(losses, rec.Loss)
	}
	return losses
}

// TestTorchTrainDDP: 20 steps of train.py on two processes
// (DistributedDataParallel over gloo, each process half of the batch)
// give the losses of one process with the whole batch.
func TestTorchTrainDDP(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Python with torch")
	}
	py := torchPython(t)
	dir := t.TempDir()
	trainPackage(t, dir, "sorter", "pointer_sort.attn", ints("d", 16, "heads", 2, "enc_layers", 1, "dec_layers", 1))
	one := runTrainPy(t, py, dir, "sorter", "--steps", "20", "--batch", "8")
	two := runTrainPy(t, py, dir, "sorter", "--steps", "20", "--batch", "8", "--nproc", "2")
	require.Len(t, one, 20)
	require.Len(t, two, 20)
	for i := range one {
		require.InEpsilon(t, one[i], two[i], 1e-5, "step %d: one process %v, two %v", i+1, one[i], two[i])
	}
	require.Less(t, one[19], one[0], "the loss falls")
}

// TestTorchTrainTasks runs three steps of train.py for every stdlib
// model: each task draws batches the model accepts, and the loss is
// finite.
func TestTorchTrainTasks(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Python with torch")
	}
	py := torchPython(t)
	dir := t.TempDir()
	for i, s := range seeds {
		name := "m" + strconv.Itoa(i)
		t.Run(s.file, func(t *testing.T) {
			trainPackage(t, dir, name, s.file, s.config)
			losses := runTrainPy(t, py, dir, name, "--steps", "3", "--batch", "4")
			require.Len(t, losses, 3)
		})
	}
}

// TestGPUCheckScriptOnCPU prepares the GPU check (scripts/gpu-check.sh
// prepare) and runs it on the CPU with the stand-in for Triton: the
// Triton comparisons run, the checks that need a GPU say they are
// skipped, and it exits 0, so the script a GPU machine runs does not rot.
func TestGPUCheckScriptOnCPU(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Python with torch")
	}
	py := torchPython(t)
	bin := filepath.Join(t.TempDir(), "attnc")
	out, err := exec.Command("go", "build", "-o", bin, "../cmd/attnc").CombinedOutput()
	require.NoError(t, err, "%s", out)
	dir := filepath.Join(t.TempDir(), "gpu")
	prep := exec.Command("bash", "scripts/gpu-check.sh", "prepare", dir, bin)
	prep.Dir = ".."
	out, err = prep.CombinedOutput()
	require.NoError(t, err, "%s", out)
	shim, err := filepath.Abs("testdata/tritonshim")
	require.NoError(t, err)
	run := exec.Command("bash", "scripts/gpu-check.sh", "run", dir, "--device", "cpu")
	run.Dir = ".."
	run.Env = append(os.Environ(), "PYTHON="+py, "PYTHONPATH="+shim)
	out, err = run.CombinedOutput()
	require.NoError(t, err, "%s", out)
	text := string(out)
	for _, m := range []string{"pointer_sort", "seq2seq", "hybrid_ssm", "char_lm"} {
		assert.Regexp(t, `triton `+m+` +ok`, text)
	}
	assert.Regexp(t, `cuda +skip +no GPU`, text)
	assert.Regexp(t, `bench +skip +no GPU`, text)
}
