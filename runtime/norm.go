package runtime

import (
	"fmt"
	"math"
	"slices"
	"sync"
)

// LayerNormAffine returns LayerNorm(x, eps)·gamma + beta, gamma and beta
// f32 vectors along the last axis (the norm's weight and bias), in one
// pass over the rows: each row is normalised, multiplied and shifted
// while it is in cache, with the products and sums rounded to f32 as
// Binary's mul and add round them.
func LayerNormAffine(x, gamma, beta *Tensor, eps float32) *Tensor {
	return norm("LayerNormAffine", x, gamma, beta, eps, false)
}

// RMSNormAffine returns RMSNorm(x, eps)·gamma, as LayerNormAffine.
func RMSNormAffine(x, gamma *Tensor, eps float32) *Tensor {
	return norm("RMSNormAffine", x, gamma, nil, eps, true)
}

// LayerNormGradParams returns, for the affine norm y = LayerNorm(x)·gamma
// + beta and dy the gradient of y, the gradients (dx, dgamma, dbeta):
// dx = LayerNormGradScaled(x, dy, gamma), dgamma = Σ dy·LayerNorm(x) and
// dbeta = Σ dy, the sums over every row, from one pass over the rows.
// The products dy·LayerNorm(x) are rounded to f32 as Binary's mul rounds
// them; the sums are float64 partials over fixed chunks of
// normParamRows rows, added in chunk order and then rounded, so the
// result is the same bit for bit however many cores share the rows.
func LayerNormGradParams(x, dy, gamma *Tensor, eps float32) []*Tensor {
	return normGradParams("LayerNormGradParams", x, dy, gamma, nil, eps, false)
}

// RMSNormGradParams is LayerNormGradParams for RMSNorm: (dx, dgamma).
func RMSNormGradParams(x, dy, gamma *Tensor, eps float32) []*Tensor {
	return normGradParams("RMSNormGradParams", x, dy, gamma, nil, eps, true)
}

// LayerNormGradParamsAdd is LayerNormGradParams with add, a tensor of
// x's shape, added to dx as each row is written (add + dx, as Binary's
// Add rounds it): the IR's layer_norm_grad with accumulate, the residual
// path's gradient folded in.
func LayerNormGradParamsAdd(x, dy, gamma, add *Tensor, eps float32) []*Tensor {
	return normGradParams("LayerNormGradParamsAdd", x, dy, gamma, add, eps, false)
}

// RMSNormGradParamsAdd is LayerNormGradParamsAdd for RMSNorm.
func RMSNormGradParamsAdd(x, dy, gamma, add *Tensor, eps float32) []*Tensor {
	return normGradParams("RMSNormGradParamsAdd", x, dy, gamma, add, eps, true)
}

// normParamElems is about how many elements each chunk of rows of
// normGradParams covers: a constant, not a function of GOMAXPROCS, so
// that the chunks, and with them the rounding of the weight gradients,
// are the same on any machine. Small enough that a model's few thousand
// rows of width 64 make a dozen chunks for the cores to share; each chunk
// costs only a float64 partial sum per column.
const normParamElems = 1 << 13

// normPartials holds normGradParams's float64 partial sums between
// calls (*[]float64), so a training step allocates none.
var normPartials sync.Pool

// getPartials returns n zeroed float64s from normPartials.
func getPartials(n int) *[]float64 {
	p, _ := normPartials.Get().(*[]float64)
	if p == nil || cap(*p) < n {
		s := make([]float64, n)
		return &s
	}
	*p = (*p)[:n]
	clear(*p)
	return p
}

// normParamRows is the number of rows in each chunk of normGradParams
// for rows of n elements.
func normParamRows(n int) int { return max(1, normParamElems/n) }

func normGradParams(kernel string, x, dy, gamma, add *Tensor, eps float32, rms bool) []*Tensor {
	if x.DType != F32 || len(x.Shape) == 0 || dy.DType != F32 || !slices.Equal(x.Shape, dy.Shape) {
		panic(fmt.Sprintf("runtime.%s: needs f32 x of rank ≥ 1 and dy of its shape, got %s and %s", kernel, typeString(x.DType, x.Shape), typeString(dy.DType, dy.Shape)))
	}
	n := x.Shape[len(x.Shape)-1]
	if gamma == nil || gamma.DType != F32 || len(gamma.F) != n {
		panic(fmt.Sprintf("runtime.%s: gamma is not an f32 vector along the last axis of %s", kernel, typeString(x.DType, x.Shape)))
	}
	if add != nil && (add.DType != F32 || !slices.Equal(add.Shape, x.Shape)) {
		panic(fmt.Sprintf("runtime.%s: the addend %s is not of x's type %s", kernel, typeString(add.DType, add.Shape), typeString(x.DType, x.Shape)))
	}
	out := newUninit(F32, x.Shape...) // every row is written
	grads := []*Tensor{New(F32, n)}
	if !rms {
		grads = append(grads, New(F32, n))
	}
	res := append([]*Tensor{out}, grads...)
	if len(x.F) == 0 {
		return res // no rows: zero sums
	}
	rows, per, fn := len(x.F)/n, normParamRows(n), float64(n)
	chunks := ceilDiv(rows, per)
	width := len(grads) * n
	pp := getPartials(chunks * width)
	defer normPartials.Put(pp)
	part := *pp
	ParallelFor(chunks, 1, func(lo, hi int) {
		scaled, y := getBuffer(n), getBuffer(n)
		defer putBuffer(scaled)
		defer putBuffer(y)
		for ch := lo; ch < hi; ch++ {
			acc := part[ch*width : (ch+1)*width]
			for r := ch * per; r < min(rows, (ch+1)*per); r++ {
				row, g, dst := x.F[r*n:(r+1)*n], dy.F[r*n:(r+1)*n], out.F[r*n:(r+1)*n]
				arithRowF32(Mul, *scaled, g, 1, gamma.F, 1) // Binary's product, element for element
				mean, mg := 0.0, 0.0
				if !rms {
					mean = sum64(row) / fn
					mg = sum64(*scaled) / fn
				}
				inv := 1 / math.Sqrt(sumSq64(row, mean)/fn+float64(eps))
				c := [3]float64{inv, -inv * inv * inv * dot64(row, *scaled, mean) / fn, -inv * mg}
				normGradApply(dst, row, *scaled, mean, &c)
				if add != nil {
					arithRowF32(Add, dst, add.F[r*n:(r+1)*n], 1, dst, 1)
				}
				// y as the norm wrote it, then dy·y as mul would.
				normApply(*y, row, mean, inv)
				arithRowF32(Mul, *y, *y, 1, g, 1)
				widenAdd(acc[:n], *y)
				if !rms {
					widenAdd(acc[n:], g)
				}
			}
		}
	})
	sum := part[:width] // chunk 0's partials, the others added in order
	for ch := 1; ch < chunks; ch++ {
		for j, v := range part[ch*width : (ch+1)*width] {
			sum[j] += v
		}
	}
	for i, t := range grads {
		for j, v := range sum[i*n : (i+1)*n] {
			t.F[j] = float32(v)
		}
	}
	return res
}
