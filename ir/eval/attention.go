package eval

import (
	"fmt"
	"math"

	"github.com/attnc/attnc/ir"
)

// attention evaluates the attention op from its definition, one query at
// a time with the scores materialised. For each batch b, head h and
// query q it computes, for every key k the mask admits,
//
//	s' = score(s = scale·⟨q, k⟩, q, k, h, b)   (s' = s without a score)
//
// then softmax over the admitted keys. Masked keys get probability 0 and
// log-probability -Inf; the score expression is evaluated only at admitted
// keys, so it may read captured tensors at indices that are valid only
// there. A query with no admitted key gives zeros (out, probs) and -Inf
// (logprobs).
func attention(in *ir.Instr, args []*Tensor, syms map[string]int64) (*Tensor, error) {
	q, k, v, caps := ir.AttentionOperands(args, in.Attrs)
	returns := in.Attrs.Str("returns")
	if returns == "" {
		returns = "out"
	}
	scale := in.Attrs.Float("scale")
	mask, score := in.Attrs.Expr("mask"), in.Attrs.Expr("score")

	nb, nh, nq, d := q.Shape[0], q.Shape[1], q.Shape[2], q.Shape[3]
	nk := k.Shape[2]
	if k.Shape[0] != nb || k.Shape[1] != nh || k.Shape[3] != d {
		return nil, fmt.Errorf("q %v and k %v do not match", q.Shape, k.Shape)
	}
	dv := nk // the last dim of the result
	if returns == "out" {
		if v == nil {
			return nil, fmt.Errorf("returning out needs v")
		}
		if (*v).Shape[0] != nb || (*v).Shape[1] != nh || (*v).Shape[2] != nk {
			return nil, fmt.Errorf("k %v and v %v do not match", k.Shape, (*v).Shape)
		}
		dv = (*v).Shape[3]
	}
	out := NewTensor(ir.F32, nb, nh, nq, dv)
	if returns == "lse" {
		out = NewTensor(ir.F32, nb, nh, nq)
	}

	vars := map[string]float64{}
	for s, val := range syms {
		vars[s] = float64(val)
	}
	capture := func(i int, idx []int) (float64, error) {
		if i < 0 || i >= len(caps) {
			return 0, fmt.Errorf("capture $%d does not exist (%d captured)", i, len(caps))
		}
		t := caps[i]
		if len(idx) != len(t.Shape) {
			return 0, fmt.Errorf("capture $%d of shape %v read with %d indices", i, t.Shape, len(idx))
		}
		off := 0
		for j, x := range idx {
			if x < 0 || x >= t.Shape[j] {
				return 0, fmt.Errorf("capture $%d read at %v, outside its shape %v", i, idx, t.Shape)
			}
			off = off*t.Shape[j] + x
		}
		return t.Data[off], nil
	}
	where := func(what string, e *ir.Expr, b, h, qi, ki int, err error) error {
		return fmt.Errorf("%s %s at b=%d, h=%d, q=%d, k=%d: %w", what, e, b, h, qi, ki, err)
	}

	scores := make([]float64, nk)
	keep := make([]bool, nk)
	for b := range nb {
		vars["b"] = float64(b)
		for h := range nh {
			vars["h"] = float64(h)
			for qi := range nq {
				vars["q"] = float64(qi)
				qrow := q.Data[((b*nh+h)*nq+qi)*d:][:d]
				m := math.Inf(-1)
				kept := 0
				for ki := range nk {
					vars["k"] = float64(ki)
					keep[ki] = true
					if mask != nil {
						ok, err := mask.Eval(vars, capture)
						if err != nil {
							return nil, where("mask", mask, b, h, qi, ki, err)
						}
						keep[ki] = ok != 0
					}
					if !keep[ki] {
						continue
					}
					krow := k.Data[((b*nh+h)*nk+ki)*d:][:d]
					s := 0.0
					for j := range d {
						s += qrow[j] * krow[j]
					}
					s *= scale
					if score != nil {
						vars["s"] = s
						var err error
						if s, err = score.Eval(vars, capture); err != nil {
							return nil, where("score", score, b, h, qi, ki, err)
						}
					}
					scores[ki] = s
					m = nanMax(m, s)
					kept++
				}
				if returns == "lse" {
					row := (b*nh+h)*nq + qi
					out.Data[row] = math.Inf(-1)
					if kept > 0 {
						sum := 0.0
						for ki := range nk {
							if keep[ki] {
								sum += math.Exp(scores[ki] - m)
							}
						}
						out.Data[row] = shiftedLog(m, sum)
					}
					continue
				}
				orow := out.Data[((b*nh+h)*nq+qi)*dv:][:dv]
				if kept == 0 {
					if returns == "logprobs" {
						for j := range orow {
							orow[j] = math.Inf(-1)
						}
					}
					continue // out and probs stay zero
				}
				sum := 0.0
				for ki := range nk {
					if keep[ki] {
						sum += math.Exp(scores[ki] - m)
					}
				}
				lse := shiftedLog(m, sum)
				for ki := range nk {
					var p, logp float64
					if keep[ki] {
						p, logp = math.Exp(scores[ki]-m)/sum, scores[ki]-lse
					} else {
						p, logp = 0, math.Inf(-1)
					}
					switch returns {
					case "probs":
						orow[ki] = p
					case "logprobs":
						orow[ki] = logp
					default:
						if keep[ki] {
							vrow := (*v).Data[((b*nh+h)*nk+ki)*dv:][:dv]
							for j := range dv {
								orow[j] += p * vrow[j]
							}
						}
					}
				}
			}
		}
	}
	return out, nil
}
