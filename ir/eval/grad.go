package eval

import (
	"fmt"
	"math"

	"github.com/attnc/attnc/ir"
)

// pad returns x with before zeros ahead of it along axis and zeros after
// it up to the result shape.
func pad(x *Tensor, axis int, shape []int, beforeDim ir.Dim, syms map[string]int64) (*Tensor, error) {
	before, err := beforeDim.Eval(syms)
	if err != nil {
		return nil, err
	}
	if before < 0 || int(before)+x.Shape[axis] > shape[axis] {
		return nil, fmt.Errorf("pad: %d zeros before %d elements do not fit in %d", before, x.Shape[axis], shape[axis])
	}
	out := NewTensor(x.DType, shape...)
	outer, n, inner := split3(x.Shape, axis)
	m := shape[axis]
	for o := range outer {
		copy(out.Data[(o*m+int(before))*inner:][:n*inner], x.Data[o*n*inner:][:n*inner])
	}
	return out, nil
}

// attentionGrad evaluates attention_grad from the definition of the
// attention op's derivative. For each row (b, h, q) the probabilities are
// recomputed from the forward's log-sum-exp, P_k = exp(s'_k - lse); then
//
//	out:      dP_k = dy·v_k,  dS'_k = P_k (dP_k - Σ_j P_j dP_j),  dv_k += P_k dy
//	probs:    dP_k = dy_k,    dS'_k as for out
//	logprobs: dS'_k = dy_k - P_k Σ_j dy_j
//
// and dS_k = dS'_k ∂score/∂s, dq += scale Σ_k dS_k k_k, dk_k += scale dS_k q.
// A captured tensor read by the score at $i[idx] gets dS'_k ∂score/∂$i[idx]
// added at idx, for every read. Masked keys and fully masked rows
// contribute nothing.
func attentionGrad(in *ir.Instr, args []*Tensor, syms map[string]int64) (*Tensor, error) {
	q, k, v, caps, lseT, dy := ir.AttentionGradOperands(args, in.Attrs)
	returns := in.Attrs.Str("returns")
	if returns == "" {
		returns = "out"
	}
	scale := in.Attrs.Float("scale")
	mask, score := in.Attrs.Expr("mask"), in.Attrs.Expr("score")
	wrt := in.Attrs.Str("wrt")
	capIdx := in.Attrs.Int("cap")

	nb, nh, nq, d := q.Shape[0], q.Shape[1], q.Shape[2], q.Shape[3]
	nk := k.Shape[2]
	dv := 0
	if v != nil {
		dv = (*v).Shape[3]
	}
	var res *Tensor
	switch wrt {
	case "q":
		res = NewTensor(ir.F32, q.Shape...)
	case "k":
		res = NewTensor(ir.F32, k.Shape...)
	case "v":
		res = NewTensor(ir.F32, (*v).Shape...)
	case "cap":
		res = NewTensor(ir.F32, caps[capIdx].Shape...)
	}

	// Derivatives of the score expression, once per instruction.
	var dsds *ir.Expr
	var reads, dreads []*ir.Expr
	if score != nil {
		dsds = score.DerivVar("s")
		if wrt == "cap" {
			reads = score.CaptureReads(capIdx)
			for _, r := range reads {
				dreads = append(dreads, score.Deriv(r))
			}
		}
	}

	ev := newAttnEval(q, k, caps, scale, mask, score, syms)
	vars, capture := ev.vars, ev.capture
	at := func(what string, b, h, qi, ki int, err error) error {
		return fmt.Errorf("%s at b=%d, h=%d, q=%d, k=%d: %w", what, b, h, qi, ki, err)
	}

	keep := make([]bool, nk)
	raw := make([]float64, nk) // scale·q·k
	p := make([]float64, nk)   // s', then the recomputed probabilities
	dsp := make([]float64, nk) // dS'
	for b := range nb {
		for h := range nh {
			for qi := range nq {
				row := (b*nh+h)*nq + qi
				lse := lseT.Data[row]
				if math.IsInf(lse, -1) {
					continue // every key masked: no gradient
				}
				if _, _, err := ev.row(b, h, qi, keep, raw, p); err != nil {
					return nil, err
				}
				for ki := range nk {
					if keep[ki] {
						p[ki] = math.Exp(p[ki] - lse)
					}
				}
				qrow := q.Data[row*d:][:d]
				// dS' for the admitted keys.
				var dyrow []float64
				switch returns {
				case "out":
					dyrow = dy.Data[row*dv:][:dv]
					dot := 0.0
					for ki := range nk {
						if !keep[ki] {
							continue
						}
						vrow := (*v).Data[((b*nh+h)*nk+ki)*dv:][:dv]
						dp := 0.0
						for j := range dv {
							dp += dyrow[j] * vrow[j]
						}
						dsp[ki] = dp
						dot += p[ki] * dp
					}
					for ki := range nk {
						if keep[ki] {
							dsp[ki] = p[ki] * (dsp[ki] - dot)
						}
					}
				case "probs":
					dyrow = dy.Data[row*nk:][:nk]
					dot := 0.0
					for ki := range nk {
						if keep[ki] {
							dot += p[ki] * dyrow[ki]
						}
					}
					for ki := range nk {
						if keep[ki] {
							dsp[ki] = p[ki] * (dyrow[ki] - dot)
						}
					}
				case "logprobs":
					dyrow = dy.Data[row*nk:][:nk]
					sum := 0.0
					for ki := range nk {
						if keep[ki] {
							sum += dyrow[ki]
						}
					}
					for ki := range nk {
						if keep[ki] {
							dsp[ki] = dyrow[ki] - p[ki]*sum
						}
					}
				}
				for ki := range nk {
					if !keep[ki] {
						continue
					}
					ev.at(b, h, qi, ki)
					vars["s"] = raw[ki]
					ds := dsp[ki]
					if dsds != nil {
						f, err := dsds.Eval(vars, capture)
						if err != nil {
							return nil, at("score derivative", b, h, qi, ki, err)
						}
						ds *= f
					}
					krow := k.Data[((b*nh+h)*nk+ki)*d:][:d]
					switch wrt {
					case "q":
						out := res.Data[row*d:][:d]
						for j := range d {
							out[j] += scale * ds * krow[j]
						}
					case "k":
						out := res.Data[((b*nh+h)*nk+ki)*d:][:d]
						for j := range d {
							out[j] += scale * ds * qrow[j]
						}
					case "v":
						out := res.Data[((b*nh+h)*nk+ki)*dv:][:dv]
						for j := range dv {
							out[j] += p[ki] * dyrow[j]
						}
					case "cap":
						for r, read := range reads {
							f, err := dreads[r].Eval(vars, capture)
							if err != nil {
								return nil, at("score derivative", b, h, qi, ki, err)
							}
							if f == 0 {
								continue
							}
							off := 0
							for j, ix := range read.Args {
								x, err := ix.Eval(vars, capture)
								if err != nil {
									return nil, at("capture index", b, h, qi, ki, err)
								}
								off = off*res.Shape[j] + int(x)
							}
							res.Data[off] += dsp[ki] * f
						}
					}
				}
			}
		}
	}
	return res, nil
}
