package runtime

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
)

// An RNG is a seeded PCG random source. The same seed gives the same
// sequence, bit for bit, on every machine. An RNG is not safe for
// concurrent use.
type RNG struct {
	r *rand.Rand
}

// rngStream is the PCG stream of RNGs made by NewRNG; InitParam uses a
// stream keyed by the param's name instead.
const rngStream = 0x9e3779b97f4a7c15

// NewRNG returns an RNG seeded with seed.
func NewRNG(seed uint64) *RNG { return &RNG{rand.New(rand.NewPCG(seed, rngStream))} }

// Normal returns a draw from N(0, 1).
func (r *RNG) Normal() float32 { return float32(r.r.NormFloat64()) }

// Uniform returns a draw from U(lo, hi).
func (r *RNG) Uniform(lo, hi float32) float32 {
	return lo + (hi-lo)*float32(r.r.Float64())
}

// Float32 returns a draw from U[0, 1).
func (r *RNG) Float32() float32 { return r.r.Float32() }

// IntN returns a uniform draw from [0, n); it panics if n ≤ 0.
func (r *RNG) IntN(n int) int { return r.r.IntN(n) }

// Perm returns a uniformly random permutation of [0, n).
func (r *RNG) Perm(n int) []int { return r.r.Perm(n) }

// InitParam fills the f32 tensor t as a param's init attribute says:
// "normal" draws N(0, scale²), "uniform" U(-scale, scale), "zeros" and
// "ones" are constant. The draws come from a PCG stream keyed by seed and
// an FNV-1a hash of name, so a param's values depend only on (seed, name,
// shape): adding a param to a model leaves the others as they were. The
// values are those of the reference interpreter's InitParams, rounded to
// float32. It panics on an unknown init.
func InitParam(t *Tensor, init string, scale float32, seed uint64, name string) {
	if t.DType != F32 {
		panic(fmt.Sprintf("runtime.InitParam: param %q is %s, want f32", name, t.DType))
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	r := rand.New(rand.NewPCG(seed, h.Sum64()))
	s := float64(scale)
	switch init {
	case "zeros":
		clear(t.F)
	case "ones":
		for i := range t.F {
			t.F[i] = 1
		}
	case "normal":
		for i := range t.F {
			t.F[i] = float32(s * r.NormFloat64())
		}
	case "uniform":
		for i := range t.F {
			t.F[i] = float32(s * (2*r.Float64() - 1))
		}
	default:
		panic(fmt.Sprintf("runtime.InitParam: param %q: unknown init %q", name, init))
	}
}
