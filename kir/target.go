package kir

import (
	"fmt"
	"sort"
)

// A Target describes the machine a kernel is tiled and fused for. The
// passes that produce kir read it; renderers only check that a kernel
// fits it (a tile larger than shared memory, a non-power-of-two tile on
// Triton).
type Target struct {
	Name string
	// Kind is the renderer family: "go", "cuda" or "triton".
	Kind string
	// VectorBits is the width of a SIMD register (512 for AVX-512, 256
	// for AVX2) on a CPU; 32 on a GPU, where a thread holds scalars.
	VectorBits int
	// Registers is the number of vector registers a core has (CPU), or
	// of 32-bit registers a thread may use (GPU).
	Registers int
	// L1, L2 and L3 are cache sizes in bytes: per core on a CPU (L3 per
	// socket); on a GPU L1 is per SM and L2 is shared (L3 is 0).
	L1, L2, L3 int
	// Cores is how many programs run at once: CPU cores, or GPU SMs.
	Cores int
	// SharedMem is the on-chip memory one program may use, in bytes (0 on
	// a CPU, where tiles live in cache).
	SharedMem int
	// WarpSize is how many threads execute in lockstep (32 on NVIDIA GPUs;
	// 1 on a CPU).
	WarpSize int
	// PowerOfTwoTiles says every tile dimension must be a power of two
	// (Triton's tl.arange requires it).
	PowerOfTwoTiles bool
}

// F32Lanes is the number of float32 values a vector register holds (1
// on a GPU thread).
func (t Target) F32Lanes() int { return max(1, t.VectorBits/32) }

// Check reports what is wrong with a target description, or nil.
func (t Target) Check() error {
	switch {
	case t.Name == "":
		return fmt.Errorf("target has no name")
	case t.Kind != "go" && t.Kind != "cuda" && t.Kind != "triton":
		return fmt.Errorf("target %s: kind %q is not go, cuda or triton", t.Name, t.Kind)
	case t.VectorBits < 32 || t.VectorBits%32 != 0:
		return fmt.Errorf("target %s: vector width %d bits is not a multiple of 32", t.Name, t.VectorBits)
	case t.Registers < 1 || t.Cores < 1 || t.WarpSize < 1:
		return fmt.Errorf("target %s: registers, cores and warp size must be positive", t.Name)
	case t.L1 < 1 || t.L2 < 1 || t.L3 < 0 || t.SharedMem < 0:
		return fmt.Errorf("target %s: cache and shared memory sizes must not be negative, L1 and L2 positive", t.Name)
	case t.Kind == "go" && (t.SharedMem != 0 || t.WarpSize != 1):
		return fmt.Errorf("target %s: a CPU target has no shared memory and a warp of 1", t.Name)
	case t.Kind != "go" && t.SharedMem == 0:
		return fmt.Errorf("target %s: a GPU target needs its shared memory size", t.Name)
	}
	return nil
}

// targets are the known targets by name. The Go ones describe the CPUs
// attnc is tuned on (2-vCPU slices of AMD Zen 4/5 and Intel Xeon hosts);
// the GPU ones the data sheets of the A100 (sm_80) and H100 (sm_90).
var targets = map[string]Target{
	"go-avx512": {Name: "go-avx512", Kind: "go", VectorBits: 512, Registers: 32,
		L1: 48 << 10, L2: 1 << 20, L3: 32 << 20, Cores: 2, WarpSize: 1},
	"go-avx2": {Name: "go-avx2", Kind: "go", VectorBits: 256, Registers: 16,
		L1: 32 << 10, L2: 512 << 10, L3: 16 << 20, Cores: 2, WarpSize: 1},
	"go-generic": {Name: "go-generic", Kind: "go", VectorBits: 128, Registers: 16,
		L1: 32 << 10, L2: 256 << 10, L3: 8 << 20, Cores: 2, WarpSize: 1},
	"cuda-sm80": {Name: "cuda-sm80", Kind: "cuda", VectorBits: 32, Registers: 255,
		L1: 192 << 10, L2: 40 << 20, Cores: 108, SharedMem: 163 << 10, WarpSize: 32},
	"cuda-sm90": {Name: "cuda-sm90", Kind: "cuda", VectorBits: 32, Registers: 255,
		L1: 256 << 10, L2: 50 << 20, Cores: 132, SharedMem: 227 << 10, WarpSize: 32},
	"triton-sm80": {Name: "triton-sm80", Kind: "triton", VectorBits: 32, Registers: 255,
		L1: 192 << 10, L2: 40 << 20, Cores: 108, SharedMem: 163 << 10, WarpSize: 32, PowerOfTwoTiles: true},
	"triton-sm90": {Name: "triton-sm90", Kind: "triton", VectorBits: 32, Registers: 255,
		L1: 256 << 10, L2: 50 << 20, Cores: 132, SharedMem: 227 << 10, WarpSize: 32, PowerOfTwoTiles: true},
}

// DefaultGoTarget is the target of `attnc build` and `attnc train` when
// none is named.
const DefaultGoTarget = "go-avx512"

// TargetByName returns the named target.
func TargetByName(name string) (Target, error) {
	t, ok := targets[name]
	if !ok {
		return Target{}, fmt.Errorf("unknown target %q (known: %v)", name, TargetNames())
	}
	return t, nil
}

// TargetNames returns the known targets' names, sorted.
func TargetNames() []string {
	out := make([]string, 0, len(targets))
	for n := range targets {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
