package eval

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"

	"github.com/attnc/attnc/ir"
)

// InitParams returns a fresh tensor for every param of m, filled as the
// param's init and scale attributes say: normal draws N(0, scale²),
// uniform draws U(-scale, scale), zeros and ones are constant; scale
// defaults to 1. The values depend only on seed and the param's name and
// shape (each param has its own PCG stream, keyed by a hash of its name),
// so adding a param to a model does not change the others. Param shapes
// must be constant.
func InitParams(m *ir.Module, seed int64) (map[string]*Tensor, error) {
	out := map[string]*Tensor{}
	for _, p := range append(m.Params(), m.Buffers()...) {
		name := p.Name()
		shape, err := p.Type.Shape.Eval(nil)
		if err != nil {
			return nil, fmt.Errorf("param %q: shape %s is not constant", name, p.Type.Shape)
		}
		if !sizeOK(shape) {
			return nil, fmt.Errorf("param %q: shape %v has too many elements", name, shape)
		}
		scale := 1.0
		if p.Attrs.Has("scale") {
			scale = p.Attrs.Float("scale")
		}
		if scale < 0 || math.IsNaN(scale) || math.IsInf(scale, 0) {
			return nil, fmt.Errorf("param %q: scale %v must be finite and ≥ 0", name, scale)
		}
		t := NewTensor(ir.F32, shape...)
		rng := stream(seed, name)
		switch init := p.Attrs.Str("init"); init {
		case "zeros":
		case "ones":
			for i := range t.Data {
				t.Data[i] = 1
			}
		case "normal":
			for i := range t.Data {
				t.Data[i] = scale * rng.NormFloat64()
			}
		case "uniform":
			for i := range t.Data {
				t.Data[i] = scale * (2*rng.Float64() - 1)
			}
		default:
			return nil, fmt.Errorf("param %q: unknown init %q", name, init)
		}
		out[name] = t
	}
	return out, nil
}

// RandomInputs returns a tensor for every input of m with the shape its
// declaration gives under syms: f32 elements are drawn from N(0, 1),
// bools are fair coin flips, and the i32 elements of input name are
// uniform in [lo, hi) with lo, hi = intRange(name). Like InitParams, each
// input has its own stream derived from seed and its name.
func RandomInputs(m *ir.Module, syms map[string]int64, seed int64, intRange func(name string) (lo, hi int)) (map[string]*Tensor, error) {
	out := map[string]*Tensor{}
	for _, in := range m.Inputs() {
		name := in.Name()
		shape, err := in.Type.Shape.Eval(syms)
		if err != nil {
			return nil, fmt.Errorf("input %q: %v", name, err)
		}
		if !sizeOK(shape) {
			return nil, fmt.Errorf("input %q: shape %v has too many elements", name, shape)
		}
		t := NewTensor(in.Type.DType, shape...)
		rng := stream(seed, name)
		switch in.Type.DType {
		case ir.F32:
			for i := range t.Data {
				t.Data[i] = rng.NormFloat64()
			}
		case ir.Bool:
			for i := range t.Data {
				t.Data[i] = float64(rng.IntN(2))
			}
		case ir.I32:
			if intRange == nil {
				return nil, fmt.Errorf("input %q is i32 but no range for its values was given", name)
			}
			lo, hi := intRange(name)
			if lo >= hi || lo < math.MinInt32 || hi-1 > math.MaxInt32 {
				return nil, fmt.Errorf("input %q: value range [%d, %d) is empty or not i32", name, lo, hi)
			}
			for i := range t.Data {
				t.Data[i] = float64(lo + rng.IntN(hi-lo))
			}
		default:
			return nil, fmt.Errorf("input %q has dtype %s", name, in.Type.DType)
		}
		out[name] = t
	}
	return out, nil
}

// stream returns the random stream of the value called name under seed.
func stream(seed int64, name string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(name))
	return rand.New(rand.NewPCG(uint64(seed), h.Sum64()))
}
