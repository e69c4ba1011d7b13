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
// attention op's derivative, every operand of wrt in the one walk. For
// each row (b, h, q) the probabilities are recomputed from the forward's
// log-sum-exp, P_k = exp(s'_k - lse), and with D the row's given row sum
// (the rs operand),
//
//	out:      dP_k = dy·v_k,  dS'_k = P_k (dP_k - D),  dv_k += P_k dy
//	probs:    dP_k = dy_k,    dS'_k as for out
//	logprobs: dS'_k = dy_k - P_k D
//
// and dS_k = dS'_k ∂score/∂s, dq += scale Σ_k dS_k k_k, dk_k += scale dS_k q.
// A captured tensor read by the score at $i[idx] gets dS'_k ∂score/∂$i[idx]
// added at idx, for every read. Masked keys and fully masked rows
// contribute nothing.
func attentionGrad(in *ir.Instr, args []*Tensor, syms map[string]int64) (*Tensor, error) {
	fwd, lseT, rsT, dy := ir.AttentionGradOperands(args, in.Attrs)
	q, k, v, caps := ir.AttentionOperands(fwd, in.Attrs)
	returns := in.Attrs.Str("returns")
	if returns == "" {
		returns = "out"
	}
	scale := in.Attrs.Float("scale")
	mask, score := in.Attrs.Expr("mask"), in.Attrs.Expr("score")
	wrt := in.Attrs.Ints("wrt")

	nb, nh, nq, d := q.Shape[0], q.Shape[1], q.Shape[2], q.Shape[3]
	nk := k.Shape[2]
	dv := 0
	if v != nil {
		dv = (*v).Shape[3]
	}
	// The result per operand position; capture i is operand firstCap+i.
	firstCap := 2
	if v != nil {
		firstCap = 3
	}
	res := &Tensor{}
	var dq, dk, dvT *Tensor
	capRes := make([]*Tensor, len(caps))
	for _, w := range wrt {
		t := NewTensor(ir.F32, fwd[w].Shape...)
		res.Tuple = append(res.Tuple, t)
		switch {
		case w == 0:
			dq = t
		case w == 1:
			dk = t
		case w == 2 && v != nil:
			dvT = t
		default:
			capRes[w-firstCap] = t
		}
	}

	// Derivatives of the score expression, once per instruction.
	var dsds *ir.Expr
	reads := make([][]*ir.Expr, len(caps))
	dreads := make([][]*ir.Expr, len(caps))
	if score != nil {
		dsds = score.DerivVar("s")
		for ci := range caps {
			if capRes[ci] == nil {
				continue
			}
			reads[ci] = score.CaptureReads(ci)
			for _, r := range reads[ci] {
				dreads[ci] = append(dreads[ci], score.Deriv(r))
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
				rs := rsT.Data[row]
				// dS' for the admitted keys.
				var dyrow []float64
				switch returns {
				case "out":
					dyrow = dy.Data[row*dv:][:dv]
					for ki := range nk {
						if !keep[ki] {
							continue
						}
						vrow := (*v).Data[((b*nh+h)*nk+ki)*dv:][:dv]
						dp := 0.0
						for j := range dv {
							dp += dyrow[j] * vrow[j]
						}
						dsp[ki] = p[ki] * (dp - rs)
					}
				case "probs":
					dyrow = dy.Data[row*nk:][:nk]
					for ki := range nk {
						if keep[ki] {
							dsp[ki] = p[ki] * (dyrow[ki] - rs)
						}
					}
				case "logprobs":
					dyrow = dy.Data[row*nk:][:nk]
					for ki := range nk {
						if keep[ki] {
							dsp[ki] = dyrow[ki] - p[ki]*rs
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
					if dsds != nil && (dq != nil || dk != nil) {
						f, err := dsds.Eval(vars, capture)
						if err != nil {
							return nil, at("score derivative", b, h, qi, ki, err)
						}
						ds *= f
					}
					krow := k.Data[((b*nh+h)*nk+ki)*d:][:d]
					if dq != nil {
						out := dq.Data[row*d:][:d]
						for j := range d {
							out[j] += scale * ds * krow[j]
						}
					}
					if dk != nil {
						out := dk.Data[((b*nh+h)*nk+ki)*d:][:d]
						for j := range d {
							out[j] += scale * ds * qrow[j]
						}
					}
					if dvT != nil {
						out := dvT.Data[((b*nh+h)*nk+ki)*dv:][:dv]
						for j := range dv {
							out[j] += p[ki] * dyrow[j]
						}
					}
					for ci, cr := range capRes {
						if cr == nil {
							continue
						}
						for r, read := range reads[ci] {
							f, err := dreads[ci][r].Eval(vars, capture)
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
								off = off*cr.Shape[j] + int(x)
							}
							cr.Data[off] += dsp[ki] * f
						}
					}
				}
			}
		}
	}
	return res, nil
}
