package runtime

import (
	"fmt"
	"slices"
)

// CrossEntropyGrad returns the gradient of CrossEntropy(logits, targets)
// with respect to logits, given dy, the f32 scalar gradient of the loss:
// (softmax(row) - onehot(target))·dy/max(n, 1) at each position, n the
// positions whose target is not ignoreIndex (when hasIgnore); ignored
// positions get 0. One pass over each row: the softmax as Softmax
// computes it, the one subtracted at the target, the row scaled; the
// results are those of Softmax, a one-hot and the products in float32,
// bit for bit. A target out of [0, C) that is not ignored is an error, as
// in CrossEntropy.
func CrossEntropyGrad(logits, targets, dy *Tensor, ignoreIndex int32, hasIgnore bool) (*Tensor, error) {
	r := len(logits.Shape)
	if logits.DType != F32 || targets.DType != I32 || r == 0 || !slices.Equal(logits.Shape[:r-1], targets.Shape) ||
		dy.DType != F32 || len(dy.F) != 1 {
		panic(fmt.Sprintf("runtime.CrossEntropyGrad: logits %s, targets %s and dy %s do not fit",
			typeString(logits.DType, logits.Shape), typeString(targets.DType, targets.Shape), typeString(dy.DType, dy.Shape)))
	}
	c := logits.Shape[r-1]
	count := 0
	for p, t := range targets.I {
		if hasIgnore && t == ignoreIndex {
			continue
		}
		if t < 0 || int(t) >= c {
			return nil, fmt.Errorf("cross_entropy: target %d at position %v out of range [0, %d)", t, unravel(p, targets.Shape), c)
		}
		count++
	}
	// The scale dy/max(n, 1) in float32, as the graph's div computed it.
	scale := [1]float32{dy.F[0] / max(float32(count), 1)}
	out := newUninit(F32, logits.Shape...) // every row is written
	if c == 0 {
		return out, nil
	}
	ParallelFor(len(targets.I), max(1, elemGrain/c), func(lo, hi int) {
		for p := lo; p < hi; p++ {
			dst := out.F[p*c : (p+1)*c]
			t := targets.I[p]
			if hasIgnore && t == ignoreIndex {
				clear(dst)
				continue
			}
			softmaxRow(dst, logits.F[p*c:(p+1)*c])
			dst[t]--
			arithRowF32(Mul, dst, dst, 1, scale[:], 0)
		}
	})
	return out, nil
}
