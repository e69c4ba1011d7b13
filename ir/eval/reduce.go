package eval

import (
	"fmt"
	"math"
	"sort"

	"github.com/attnc/attnc/ir"
)

// reduce applies reduce_sum, reduce_max, reduce_mean or logsumexp over
// axes; shape is the result shape (with or without kept dims, which does
// not change the element order). An empty reduction gives the identity:
// 0 for a sum, -Inf (f32) or MinInt32 (i32) for a max, NaN for a mean
// (0/0) and -Inf for logsumexp.
func reduce(op ir.Op, x *Tensor, axes []int, shape []int) (*Tensor, error) {
	reduced := make([]bool, len(x.Shape))
	count := 1
	for _, a := range axes {
		if a < 0 || a >= len(x.Shape) {
			return nil, fmt.Errorf("axis %d out of range for rank %d", a, len(x.Shape))
		}
		reduced[a] = true
		count *= x.Shape[a]
	}
	// outOff[i] is the result element input element i belongs to: its
	// index with the reduced axes dropped.
	var keptShape []int
	for i, d := range x.Shape {
		if !reduced[i] {
			keptShape = append(keptShape, d)
		}
	}
	if numel(keptShape) != numel(shape) {
		return nil, fmt.Errorf("result shape %v does not match %v reduced over %v", shape, x.Shape, axes)
	}
	kst := stridesOf(keptShape)
	outOff := make([]int, len(x.Data))
	idx := make([]int, len(x.Shape))
	for i := range x.Data {
		unravel(i, x.Shape, idx)
		o, j := 0, 0
		for d, v := range idx {
			if !reduced[d] {
				o += v * kst[j]
				j++
			}
		}
		outOff[i] = o
	}
	out := NewTensor(x.DType, shape...)
	switch op {
	case ir.OpReduceSum, ir.OpReduceMean:
		for i, v := range x.Data {
			out.Data[outOff[i]] += v
		}
		if op == ir.OpReduceMean {
			for i := range out.Data {
				out.Data[i] /= float64(count)
			}
		}
		if x.DType == ir.I32 {
			for i, v := range out.Data {
				out.Data[i] = wrap32(v)
			}
		}
	case ir.OpReduceMax, ir.OpLogSumExp:
		lowest := math.Inf(-1)
		if x.DType == ir.I32 {
			lowest = math.MinInt32
		}
		for i := range out.Data {
			out.Data[i] = lowest
		}
		for i, v := range x.Data {
			out.Data[outOff[i]] = nanMax(out.Data[outOff[i]], v)
		}
		if op == ir.OpLogSumExp {
			m := out.Data
			sum := make([]float64, len(m))
			for i, v := range x.Data {
				sum[outOff[i]] += math.Exp(v - m[outOff[i]])
			}
			out.Data = make([]float64, len(m))
			for i := range m {
				out.Data[i] = shiftedLog(m[i], sum[i])
			}
		}
	default:
		return nil, fmt.Errorf("not a reduction")
	}
	return out, nil
}

// shiftedLog returns m + log(sum) for a max-shifted log-sum-exp, where
// sum = Σ e^(x-m): ±Inf and NaN maxima are the result as they stand
// (all -Inf gives -Inf; +Inf gives +Inf).
func shiftedLog(m, sum float64) float64 {
	if math.IsInf(m, 0) || math.IsNaN(m) {
		return m
	}
	return m + math.Log(sum)
}

// logSumExp returns log Σ e^x over xs, stably (see shiftedLog).
func logSumExp(xs []float64) float64 {
	m := math.Inf(-1)
	for _, v := range xs {
		m = nanMax(m, v)
	}
	sum := 0.0
	for _, v := range xs {
		sum += math.Exp(v - m)
	}
	return shiftedLog(m, sum)
}

// argmax returns the i32 index of the largest element along axis, the
// first on ties; a NaN counts as the largest (as in numpy).
func argmax(x *Tensor, axis int, shape []int) (*Tensor, error) {
	outer, n, inner := split3(x.Shape, axis)
	if n == 0 && outer*inner > 0 {
		return nil, fmt.Errorf("argmax over an empty axis %d of %v", axis, x.Shape)
	}
	out := NewTensor(ir.I32, shape...)
	for o := range outer {
		for in := range inner {
			best, bi := math.Inf(-1), 0
			for i := range n {
				v := x.Data[(o*n+i)*inner+in]
				if math.IsNaN(v) {
					bi = i
					break
				}
				if v > best || i == 0 {
					best, bi = v, i
				}
			}
			out.Data[o*inner+in] = float64(bi)
		}
	}
	return out, nil
}

// argsort is, for each row of x along its last axis, the positions in
// increasing (descending: decreasing) order, ties in position order, NaN
// larger than every number.
func argsort(x *Tensor, descending bool) *Tensor {
	out := NewTensor(ir.I32, x.Shape...)
	n := 1
	if len(x.Shape) > 0 {
		n = x.Shape[len(x.Shape)-1]
	}
	if n == 0 {
		return out
	}
	less := func(a, b float64) bool {
		switch {
		case math.IsNaN(a):
			return false
		case math.IsNaN(b):
			return true
		}
		return a < b
	}
	idx := make([]int, n)
	for r := 0; r < len(x.Data)/n; r++ {
		row := x.Data[r*n : (r+1)*n]
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(i, j int) bool {
			if descending {
				return less(row[idx[j]], row[idx[i]])
			}
			return less(row[idx[i]], row[idx[j]])
		})
		for i, v := range idx {
			out.Data[r*n+i] = float64(v)
		}
	}
	return out
}

// softmax is e^x / Σ e^x along axis, shifted by the maximum. A slice
// whose maximum is -Inf or +Inf gives NaN, as the formula does.
func softmax(x *Tensor, axis int) *Tensor {
	out := x.Clone()
	outer, n, inner := split3(x.Shape, axis)
	row := make([]float64, n)
	for o := range outer {
		for in := range inner {
			at := func(i int) int { return (o*n+i)*inner + in }
			m := math.Inf(-1)
			for i := range n {
				m = nanMax(m, x.Data[at(i)])
			}
			sum := 0.0
			for i := range n {
				row[i] = math.Exp(x.Data[at(i)] - m)
				sum += row[i]
			}
			for i := range n {
				out.Data[at(i)] = row[i] / sum
			}
		}
	}
	return out
}

// layerNorm normalises over the last axis: (x - mean)/√(var + eps) with
// the biased variance, or, when rms, x/√(mean(x²) + eps).
func layerNorm(x *Tensor, eps float64, rms bool) *Tensor {
	out := x.Clone()
	n := x.Shape[len(x.Shape)-1]
	if n == 0 {
		return out
	}
	for start := 0; start < len(x.Data); start += n {
		row := x.Data[start : start+n]
		mean := 0.0
		if !rms {
			for _, v := range row {
				mean += v
			}
			mean /= float64(n)
		}
		ss := 0.0
		for _, v := range row {
			ss += (v - mean) * (v - mean)
		}
		inv := 1 / math.Sqrt(ss/float64(n)+eps)
		for i, v := range row {
			out.Data[start+i] = (v - mean) * inv
		}
	}
	return out
}

// layerNormGrad is layer_norm's (with rms, rms_norm's) gradient at x
// given dy, row by row over the last axis, by its definition: with
// y = layerNorm(x) and r its 1/√(var + eps), r·(dy - mean(dy) -
// y·mean(dy·y)), without the mean(dy) term for rms.
func layerNormGrad(x, dy *Tensor, eps float64, rms bool) *Tensor {
	y := layerNorm(x, eps, rms)
	out := x.Clone()
	n := x.Shape[len(x.Shape)-1]
	if n == 0 {
		return out
	}
	for start := 0; start < len(x.Data); start += n {
		row, g, yr := x.Data[start:start+n], dy.Data[start:start+n], y.Data[start:start+n]
		mean := 0.0
		if !rms {
			for _, v := range row {
				mean += v
			}
			mean /= float64(n)
		}
		ss, mg, mgy := 0.0, 0.0, 0.0
		for i, v := range row {
			ss += (v - mean) * (v - mean)
			mg += g[i]
			mgy += g[i] * yr[i]
		}
		r := 1 / math.Sqrt(ss/float64(n)+eps)
		mg /= float64(n)
		mgy /= float64(n)
		if rms {
			mg = 0
		}
		for i := range row {
			out.Data[start+i] = r * (g[i] - mg - yr[i]*mgy)
		}
	}
	return out
}

// affine is layer_norm's (and rms_norm's) affine part y·γ + β, β absent
// for rms_norm: the mul and add it replaces, in their order.
func affine(y *Tensor, params []*Tensor) (*Tensor, error) {
	out, err := binary(ir.OpMul, y, params[0], ir.F32, y.Shape)
	if err != nil || len(params) == 1 {
		return out, err
	}
	return binary(ir.OpAdd, out, params[1], ir.F32, y.Shape)
}

// normGradParams is layer_norm_grad (with rms, rms_norm_grad) with
// scale and params: args x, dy, γ give dx = the gradient at dy·γ, dγ =
// Σ dy·y and (not for rms) dβ = Σ dy over every axis but the last, by
// their definitions; a fourth operand (accumulate) is added to dx.
func normGradParams(args []*Tensor, eps float64, rms bool) (*Tensor, error) {
	x, dy := args[0], args[1]
	scaled, err := binary(ir.OpMul, dy, args[2], ir.F32, dy.Shape)
	if err != nil {
		return nil, err
	}
	dx := layerNormGrad(x, scaled, eps, rms)
	if len(args) == 4 {
		if dx, err = binary(ir.OpAdd, args[3], dx, ir.F32, dx.Shape); err != nil {
			return nil, err
		}
	}
	y := layerNorm(x, eps, rms)
	n := x.Shape[len(x.Shape)-1]
	dg, db := NewTensor(ir.F32, n), NewTensor(ir.F32, n)
	for i, g := range dy.Data {
		dg.Data[i%n] += g * y.Data[i]
		db.Data[i%n] += g
	}
	if rms {
		return &Tensor{Tuple: []*Tensor{dx, dg}}, nil
	}
	return &Tensor{Tuple: []*Tensor{dx, dg, db}}, nil
}

// checkTargets reports the first target out of [0, c) that is not
// ignored.
func checkTargets(targets *Tensor, c int, ignore int64, hasIgnore bool) error {
	for p, tv := range targets.Data {
		t := int64(tv)
		if hasIgnore && t == ignore {
			continue
		}
		if t < 0 || t >= int64(c) {
			idx := make([]int, len(targets.Shape))
			unravel(p, targets.Shape, idx)
			return fmt.Errorf("target %d at position %v out of range [0, %d)", t, idx, c)
		}
	}
	return nil
}

// crossEntropy is the mean over positions of logsumexp(logits) -
// logits[target], leaving out positions whose target is ignore (when
// hasIgnore); with every position left out it is 0.
func crossEntropy(logits, targets *Tensor, ignore int64, hasIgnore bool) (*Tensor, error) {
	c := logits.Shape[len(logits.Shape)-1]
	if err := checkTargets(targets, c, ignore, hasIgnore); err != nil {
		return nil, err
	}
	total, count := 0.0, 0
	for p, tv := range targets.Data {
		t := int64(tv)
		if hasIgnore && t == ignore {
			continue
		}
		row := logits.Data[p*c : (p+1)*c]
		total += logSumExp(row) - row[t]
		count++
	}
	if count == 0 {
		return Scalar(ir.F32, 0), nil
	}
	return Scalar(ir.F32, total/float64(count)), nil
}

// crossEntropyGrad is cross_entropy_grad from its definition: at each
// position not ignored, (softmax(row) - onehot(target))·dy/max(n, 1), n
// the positions not ignored; 0 at ignored ones.
func crossEntropyGrad(logits, targets, dy *Tensor, ignore int64, hasIgnore bool) (*Tensor, error) {
	c := logits.Shape[len(logits.Shape)-1]
	out := NewTensor(ir.F32, logits.Shape...)
	if err := checkTargets(targets, c, ignore, hasIgnore); err != nil {
		return nil, err
	}
	count := 0
	for _, tv := range targets.Data {
		if !hasIgnore || int64(tv) != ignore {
			count++
		}
	}
	scale := dy.Data[0] / math.Max(float64(count), 1)
	for p, tv := range targets.Data {
		t := int64(tv)
		if hasIgnore && t == ignore {
			continue
		}
		row, dst := logits.Data[p*c:(p+1)*c], out.Data[p*c:(p+1)*c]
		lse := logSumExp(row)
		for j, x := range row {
			g := math.Exp(x - lse)
			if int64(j) == t {
				g--
			}
			dst[j] = g * scale
		}
	}
	return out, nil
}
