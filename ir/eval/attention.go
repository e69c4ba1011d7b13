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
// then softmax over the admitted keys. A key whose score s' is -Inf counts
// as masked. Masked keys get probability 0 and log-probability -Inf; the
// score expression is evaluated only at admitted keys, so it may read
// captured tensors at indices that are valid only there. A query with no
// admitted key gives zeros (out, probs) and -Inf (logprobs, lse). A NaN
// score makes its row NaN (masked keys keep 0 and -Inf); a +Inf score
// makes the row's lse +Inf and the rest of it NaN.
// attentionWithLSE evaluates attention with with_lse: the pair (result,
// lse), each from the definition.
func attentionWithLSE(in *ir.Instr, args []*Tensor, syms map[string]int64) (*Tensor, error) {
	one := func(returns string, args []*Tensor, argInstrs []*ir.Instr) (*Tensor, error) {
		attrs := ir.Attrs{}
		for k, v := range in.Attrs {
			if k != "with_lse" {
				attrs[k] = v
			}
		}
		if returns != "" {
			attrs["returns"] = ir.WordAttr(returns)
		}
		return attention(&ir.Instr{ID: in.ID, Op: in.Op, Args: argInstrs, Attrs: attrs}, args, syms)
	}
	y, err := one("", args, in.Args)
	if err != nil {
		return nil, err
	}
	// lse takes no v.
	q, k, _, caps := ir.AttentionOperands(args, in.Attrs)
	qi, ki, _, capIs := ir.AttentionOperands(in.Args, in.Attrs)
	lse, err := one("lse", append([]*Tensor{q, k}, caps...), append([]*ir.Instr{qi, ki}, capIs...))
	if err != nil {
		return nil, err
	}
	return &Tensor{Tuple: []*Tensor{y, lse}}, nil
}

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

	ev := newAttnEval(q, k, caps, scale, mask, score, syms)
	scores := make([]float64, nk)
	keep := make([]bool, nk)
	for b := range nb {
		for h := range nh {
			for qi := range nq {
				kept, m, err := ev.row(b, h, qi, keep, nil, scores)
				if err != nil {
					return nil, err
				}
				row := (b*nh+h)*nq + qi
				if kept == 0 {
					switch returns {
					case "lse":
						out.Data[row] = math.Inf(-1)
					case "logprobs":
						orow := out.Data[row*dv:][:dv]
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
				if returns == "lse" {
					out.Data[row] = lse
					continue
				}
				orow := out.Data[row*dv:][:dv]
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

// attnEval evaluates the rows of an attention op from its definition; the
// forward op and its gradient share it.
type attnEval struct {
	q, k        *Tensor
	scale       float64
	mask, score *ir.Expr
	vars        map[string]float64
	capture     func(i int, idx []int) (float64, error)
}

func newAttnEval(q, k *Tensor, caps []*Tensor, scale float64, mask, score *ir.Expr, syms map[string]int64) *attnEval {
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
	return &attnEval{q: q, k: k, scale: scale, mask: mask, score: score, vars: vars, capture: capture}
}

// at binds the index variables for evaluating an expression at one point.
func (a *attnEval) at(b, h, qi, ki int) {
	a.vars["b"], a.vars["h"], a.vars["q"], a.vars["k"] = float64(b), float64(h), float64(qi), float64(ki)
}

func (a *attnEval) fail(what string, e *ir.Expr, b, h, qi, ki int, err error) error {
	return fmt.Errorf("%s %s at b=%d, h=%d, q=%d, k=%d: %w", what, e, b, h, qi, ki, err)
}

// row evaluates row (b, h, qi): keep[k] says whether the mask admits key
// k, raw[k] (when raw is not nil) is scale·q·k, and scores[k] is the score
// after the score modification, both for admitted keys only. The score
// expression is evaluated only at admitted keys, so it may read captured
// tensors at indices valid only there. It returns the number of admitted
// keys and the largest score.
func (a *attnEval) row(b, h, qi int, keep []bool, raw, scores []float64) (kept int, m float64, err error) {
	nh, nq, d := a.q.Shape[1], a.q.Shape[2], a.q.Shape[3]
	nk := a.k.Shape[2]
	qrow := a.q.Data[((b*nh+h)*nq+qi)*d:][:d]
	m = math.Inf(-1)
	for ki := range nk {
		a.at(b, h, qi, ki)
		keep[ki] = true
		if a.mask != nil {
			ok, err := a.mask.Eval(a.vars, a.capture)
			if err != nil {
				return 0, 0, a.fail("mask", a.mask, b, h, qi, ki, err)
			}
			keep[ki] = ok != 0
		}
		if !keep[ki] {
			continue
		}
		krow := a.k.Data[((b*nh+h)*nk+ki)*d:][:d]
		s := 0.0
		for j := range d {
			s += qrow[j] * krow[j]
		}
		s *= a.scale
		if raw != nil {
			raw[ki] = s
		}
		if a.score != nil {
			a.vars["s"] = s
			if s, err = a.score.Eval(a.vars, a.capture); err != nil {
				return 0, 0, a.fail("score", a.score, b, h, qi, ki, err)
			}
		}
		if math.IsInf(s, -1) {
			// A score of -inf masks the key (where(c, s, -inf) is how a
			// score writes a mask): probability 0 and no gradient, and a
			// row of such keys is a fully masked row.
			keep[ki] = false
			continue
		}
		scores[ki] = s
		m = nanMax(m, s)
		kept++
	}
	return kept, m, nil
}
