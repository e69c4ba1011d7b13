package tests

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
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
	"github.com/attnc/attnc/ir"
	"github.com/attnc/attnc/ir/eval"
	"github.com/attnc/attnc/kir"
	kireval "github.com/attnc/attnc/kir/eval"
	"github.com/attnc/attnc/passes"
)

// llvmDriver runs the kernels of a shared library built from the CPU
// lowering (cuda.LLVM with cuda.CPU): for each kernel of the manifest it
// reads the buffers from raw files, runs every program of the grid with
// three threads (in order), and writes the buffers back.
const llvmDriver = `
import ctypes, json, sys
lib = ctypes.CDLL(sys.argv[1])
for k in json.load(open(sys.argv[2])):
    fn = getattr(lib, k["name"])
    bufs = []
    for p in k["params"]:
        data = bytearray(open(p["file"], "rb").read())
        ct = {"f32": ctypes.c_float, "i32": ctypes.c_int32, "bool": ctypes.c_uint8}[p["dtype"]]
        n = len(data) // ctypes.sizeof(ct)
        bufs.append((p["file"], data, (ct * max(n, 1)).from_buffer(data) if n else (ct * 1)()))
    syms = [ctypes.c_int64(v) for v in k["syms"]]
    g = k["grid"] + [1] * (3 - len(k["grid"]))
    T = 3
    for x in range(g[0]):
        for y in range(g[1]):
            for z in range(g[2]):
                for t in range(T):
                    fn(ctypes.c_int64(x), ctypes.c_int64(y), ctypes.c_int64(z), ctypes.c_int64(t), ctypes.c_int64(T),
                       *[b[2] for b in bufs], *syms)
    for f, data, _ in bufs:
        open(f + ".out", "wb").write(bytes(data))
`

// TestLLVMKernelsOnCPU lowers every kernel of every corpus model's
// training step (kir, after the kernel passes) to LLVM IR with the CPU
// variant of the lowering the CUDA target compiles to PTX, compiles it
// with llc-14, runs each kernel on fresh random buffers and compares every
// buffer with the kernel IR's interpreter (kir/eval): the lowering's
// semantics, executed, without a GPU. Its NVPTX variant compiles to PTX
// for sm_80 with llc-14 and for sm_90 with llc-16.
func TestLLVMKernelsOnCPU(t *testing.T) {
	if testing.Short() {
		t.Skip("runs llc, gcc and Python")
	}
	llc, llc16, cc, py := findTool("llc-14", "llc"), findTool("llc-16", "llc-19"), findTool("gcc", "cc"), findTool("python3")
	if llc == "" || llc16 == "" || cc == "" || py == "" {
		msg := "needs llc-14, llc-16, gcc and python3 (apt-get install llvm-14 llvm-16)"
		if os.Getenv("ATTNC_REQUIRE_CLANG") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	progs := corpus(t)
	dir := t.TempDir()
	total := 0
	for i, p := range progs {
		kp, err := passes.Run(p.m, passes.Options{})
		require.NoError(t, err, p.name)
		km := kp.Kernels
		if len(km.Kernels) == 0 {
			continue
		}
		base := filepath.Join(dir, "m"+strconv.Itoa(i))
		// PTX from the NVPTX variant, both architectures.
		src, lowered, skipped, err := cuda.LLVM(km, cuda.NVPTX)
		require.NoError(t, err, p.name)
		assert.Empty(t, skipped, "%s: every kernel lowers", p.name)
		require.NoError(t, os.WriteFile(base+".nvptx.ll", []byte(src), 0o644))
		for _, tg := range []struct{ llc, arch string }{{llc, "sm_80"}, {llc16, "sm_90"}} {
			out, err := exec.Command(tg.llc, "-march=nvptx64", "-mcpu="+tg.arch, "-O3", base+".nvptx.ll", "-o", base+"."+tg.arch+".ptx").CombinedOutput()
			require.NoError(t, err, "%s: llc for %s:\n%s", p.name, tg.arch, out)
			ptx, err := os.ReadFile(base + "." + tg.arch + ".ptx")
			require.NoError(t, err)
			for _, k := range lowered {
				assert.Contains(t, string(ptx), ".entry "+k.Name, "%s: %s", p.name, tg.arch)
			}
		}
		// The CPU variant, run.
		src, lowered, _, err = cuda.LLVM(km, cuda.CPU)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(base+".ll", []byte(src), 0o644))
		out, err := exec.Command(llc, "-O2", "-filetype=obj", "-relocation-model=pic", base+".ll", "-o", base+".o").CombinedOutput()
		require.NoError(t, err, "%s: llc:\n%s", p.name, out)
		out, err = exec.Command(cc, "-shared", "-o", base+".so", base+".o", "-lm").CombinedOutput()
		require.NoError(t, err, "%s: cc:\n%s", p.name, out)
		syms := map[string]int64{}
		vars := map[string]float64{}
		for j, s := range km.Syms {
			syms[s] = int64(3 + 2*j + j%2) // 3, 6, 7, 10, …: distinct, small
			if s == "N" || s == "T" || s == "S" {
				syms[s] = int64(29 + j) // past a tile of 24
			}
			vars[s] = float64(syms[s])
		}
		type param struct {
			File  string `json:"file"`
			DType string `json:"dtype"`
		}
		type manifest struct {
			Name   string  `json:"name"`
			Params []param `json:"params"`
			Syms   []int64 `json:"syms"`
			Grid   []int64 `json:"grid"`
		}
		var man []manifest
		want := map[string]map[string]*eval.Tensor{}
		rng := rand.New(rand.NewPCG(9, uint64(i)))
		for ki, k := range lowered {
			kk := km.Kernel(k.Name)
			mf := manifest{Name: k.Name}
			for _, s := range km.Syms {
				mf.Syms = append(mf.Syms, syms[s])
			}
			for _, g := range kk.Grid {
				v, err := g.Eval(vars, nil)
				require.NoError(t, err)
				mf.Grid = append(mf.Grid, int64(v))
			}
			bufs := map[string]*eval.Tensor{}
			ref := map[string]*eval.Tensor{}
			for _, prm := range kk.Params {
				shape, err := prm.Type.Dims.Eval(syms)
				require.NoError(t, err)
				x := eval.NewTensor(prm.Type.DType, shape...)
				for j := range x.Data {
					switch prm.Type.DType {
					case ir.F32:
						x.Data[j] = float64(float32(rng.NormFloat64()))
					case ir.I32:
						x.Data[j] = float64(rng.IntN(7) - 2)
					default:
						x.Data[j] = float64(rng.IntN(2))
					}
				}
				bufs[prm.Name] = x
				ref[prm.Name] = x.Clone()
				file := fmt.Sprintf("%s.k%d.%s", base, ki, prm.Name)
				require.NoError(t, os.WriteFile(file, rawBytes(x), 0o644))
				mf.Params = append(mf.Params, param{File: file, DType: prm.Type.DType.String()})
			}
			require.NoError(t, kireval.Run(km, k.Name, kireval.Env{Syms: syms, Buffers: ref}), "%s: %s", p.name, k.Name)
			want[k.Name] = ref
			man = append(man, mf)
		}
		mb, err := json.Marshal(man)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(base+".json", mb, 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "driver.py"), []byte(llvmDriver), 0o644))
		out, err = exec.Command(py, filepath.Join(dir, "driver.py"), base+".so", base+".json").CombinedOutput()
		require.NoError(t, err, "%s: driver:\n%s", p.name, out)
		for ki, k := range lowered {
			kk := km.Kernel(k.Name)
			for _, prm := range kk.Params {
				file := fmt.Sprintf("%s.k%d.%s.out", base, ki, prm.Name)
				b, err := os.ReadFile(file)
				require.NoError(t, err)
				w := want[k.Name][prm.Name]
				if d := compareRaw(b, w); d != "" {
					t.Errorf("%s: kernel %s, buffer %s: %s", p.name, k.Name, prm.Name, d)
				}
			}
			total++
		}
	}
	t.Logf("%d kernels lowered, run and compared", total)
	require.Positive(t, total)
}

// rawBytes is a tensor as the kernels read it: little-endian f32 or
// i32, bool as bytes.
func rawBytes(x *eval.Tensor) []byte {
	var out []byte
	for _, v := range x.Data {
		switch x.DType {
		case ir.F32:
			out = binary.LittleEndian.AppendUint32(out, math.Float32bits(float32(v)))
		case ir.I32:
			out = binary.LittleEndian.AppendUint32(out, uint32(int32(v)))
		default:
			out = append(out, byte(v))
		}
	}
	return out
}

// compareRaw compares a buffer the kernels wrote with the interpreter's:
// integers exactly, floats to 1e-4 relative (RMS, floored as mismatch
// does), non-finite values exactly.
func compareRaw(b []byte, want *eval.Tensor) string {
	got := make([]float64, len(want.Data))
	for i := range got {
		switch want.DType {
		case ir.F32:
			got[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])))
		case ir.I32:
			got[i] = float64(int32(binary.LittleEndian.Uint32(b[4*i:])))
		default:
			got[i] = float64(b[i])
		}
	}
	var num, den float64
	var bad []string
	for i, w := range want.Data {
		w32 := w
		if want.DType == ir.F32 {
			w32 = float64(float32(w))
		}
		switch {
		case want.DType != ir.F32 || math.IsNaN(w32) || math.IsInf(w32, 0):
			if got[i] != w32 && !(math.IsNaN(got[i]) && math.IsNaN(w32)) {
				bad = append(bad, fmt.Sprintf("element %d is %v, want %v", i, got[i], w32))
			}
		default:
			num += (got[i] - w) * (got[i] - w)
			den += w * w
		}
		if len(bad) > 3 {
			break
		}
	}
	if len(bad) > 0 {
		return strings.Join(bad, "; ")
	}
	if e := math.Sqrt(num / math.Max(den, 1e-6*float64(len(want.Data)))); e > 1e-4 {
		return fmt.Sprintf("relative error %.3g", e)
	}
	return ""
}

var _ = kir.KIndex
