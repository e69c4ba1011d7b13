package ir

import (
	"errors"
	"flag"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// mb wraps a Builder with helpers that keep the test modules short. Errors
// stick in the Builder; each module checks Err once at the end.
type mb struct{ *Builder }

func newMB(name string, syms ...string) mb { return mb{NewBuilder(name, syms...)} }

func (b mb) input(name string, t Type) *Instr {
	return b.MustGiven(OpInput, t, Attrs{"name": StringAttr(name)})
}

func (b mb) param(name, init string, scale float64, t Type) *Instr {
	attrs := Attrs{"name": StringAttr(name), "init": WordAttr(init)}
	if scale != 0 {
		attrs["scale"] = FloatAttr(scale)
	}
	return b.MustGiven(OpParam, t, attrs)
}

func (b mb) op(op Op, attrs Attrs, args ...*Instr) *Instr { return b.Must(op, attrs, args...) }

func (b mb) given(op Op, t Type, attrs Attrs, args ...*Instr) *Instr {
	return b.MustGiven(op, t, attrs, args...)
}

func (b mb) done() (*Module, error) {
	if err := b.Err(); err != nil {
		return nil, err
	}
	return b.M, Verify(b.M)
}

// heads turns x[B, N, H*D] into [B, H, N, D].
func (b mb) heads(x *Instr, h, d int64) *Instr {
	s := x.Type.Shape
	r := b.given(OpReshape, TensorOf(F32, s[0], s[1], ConstDim(h), ConstDim(d)), nil, x)
	return b.op(OpTranspose, Attrs{"perm": IntsAttr(0, 2, 1, 3)}, r)
}

// merge turns x[B, H, N, D] into [B, N, H*D].
func (b mb) merge(x *Instr) *Instr {
	s := x.Type.Shape
	t := b.op(OpTranspose, Attrs{"perm": IntsAttr(0, 2, 1, 3)}, x)
	hd, _ := s[1].IsConst()
	d, _ := s[3].IsConst()
	return b.given(OpReshape, TensorOf(F32, s[0], s[2], ConstDim(hd*d)), nil, t)
}

func mustExpr(src string) *Expr {
	e, err := ParseExpr(src)
	if err != nil {
		panic(err)
	}
	return e
}

var (
	dB, dN, dS, dT, dK = SymDim("B"), SymDim("N"), SymDim("S"), SymDim("T"), SymDim("K")
	c                  = ConstDim
)

// seq2seqModule is an encoder-decoder: bidirectional encoder attention,
// causal decoder self-attention, cross-attention, teacher forcing by
// slicing, accuracy metric and predictions.
func seq2seqModule() (*Module, error) {
	b := newMB("seq2seq", "B", "S", "T")
	src := b.input("src", TensorOf(I32, dB, dS))
	tgt := b.input("tgt", TensorOf(I32, dB, dT))
	emb := b.param("embed.weight", "normal", 0.02, TensorOf(F32, c(256), c(64)))
	wq := b.param("enc.q.weight", "normal", 0.125, TensorOf(F32, c(64), c(64)))
	wo := b.param("enc.o.weight", "normal", 0.125, TensorOf(F32, c(64), c(64)))
	x := b.op(OpGather, Attrs{"axis": IntAttr(0)}, emb, src)
	xn := b.op(OpLayerNorm, Attrs{"eps": FloatAttr(1e-5)}, x)
	q := b.heads(b.op(OpMatMul, nil, xn, wq), 4, 16)
	enc := b.op(OpAttention, Attrs{"scale": FloatAttr(0.25)}, q, q, q)
	bo := b.param("enc.o.bias", "zeros", 0, TensorOf(F32, c(64)))
	encOut := b.op(OpEinsum, Attrs{"spec": StringAttr("bnd,de->bne"), "bias": BoolAttr(true)}, b.merge(enc), wo, bo)

	y := b.op(OpGather, Attrs{"axis": IntAttr(0)}, emb, tgt)
	yin := b.op(OpSlice, Attrs{"axis": IntAttr(1), "start": DimAttr(c(0)), "end": DimAttr(dT.Sub(c(1)))}, y)
	dq := b.heads(b.op(OpMatMul, nil, yin, wq), 4, 16)
	self := b.op(OpAttention, Attrs{"mask": ExprAttr(mustExpr("k <= q")), "scale": FloatAttr(0.25)}, dq, dq, dq)
	ek := b.heads(encOut, 4, 16)
	cross := b.op(OpAttention, Attrs{"scale": FloatAttr(0.25)}, self, ek, ek)
	logits := b.op(OpMatMul, nil, b.merge(cross), b.op(OpTranspose, Attrs{"perm": IntsAttr(1, 0)}, emb))
	targets := b.op(OpSlice, Attrs{"axis": IntAttr(1), "start": DimAttr(c(1)), "end": DimAttr(dT)}, tgt)
	loss := b.op(OpCrossEntropy, nil, logits, targets)
	pred := b.op(OpArgMax, Attrs{"axis": IntAttr(2)}, logits)
	correct := b.op(OpEq, nil, pred, targets)
	acc := b.op(OpReduceMean, Attrs{"axes": IntsAttr(0, 1), "keepdims": BoolAttr(false)}, b.op(OpCast, Attrs{"to": DTypeAttr(F32)}, correct))
	b.Output(OutLoss, LossName, loss)
	b.Output(OutMetric, "acc", acc)
	b.Output(OutValue, "pred", pred)
	b.Output(OutValue, "ranked", b.op(OpArgSort, Attrs{"descending": BoolAttr(true)}, logits))
	return b.done()
}

// attentionModule exercises the attention op's attributes: relative
// position bias read through a capture, sliding window, prefix-LM over a
// symbol, soft-capping, padding and segment masks from captured bool and
// i32 tensors, pointer-network probabilities and log-probabilities.
func attentionModule() (*Module, error) {
	b := newMB("attention_variants", "B", "S", "T")
	st := dS.Add(dT)
	xs := b.input("src", TensorOf(F32, dB, dS, c(64)))
	xt := b.input("tgt", TensorOf(F32, dB, dT, c(64)))
	pad := b.input("pad", TensorOf(Bool, dB, st))
	seg := b.input("segment", TensorOf(I32, dB, st))
	w := b.param("proj.weight", "uniform", 0.1, TensorOf(F32, c(64), c(64)))
	bias := b.param("rel.bias", "zeros", 0, TensorOf(F32, c(4), c(256)))
	x := b.op(OpConcat, Attrs{"axis": IntAttr(1)}, xs, xt)
	h := b.heads(b.op(OpMatMul, nil, b.op(OpRMSNorm, Attrs{"eps": FloatAttr(1e-6)}, x), w), 4, 16)
	att := func(mask, score string, caps ...*Instr) *Instr {
		attrs := Attrs{"scale": FloatAttr(0.125)}
		if mask != "" {
			attrs["mask"] = ExprAttr(mustExpr(mask))
		}
		if score != "" {
			attrs["score"] = ExprAttr(mustExpr(score))
		}
		return b.op(OpAttention, attrs, append([]*Instr{h, h, h}, caps...)...)
	}
	rel := att("k <= q && q - k < 128", "s + $0[h, clamp(q - k, 0, 255)]", bias)
	prefix := att("k < S || k <= q", "")
	softcap := att("", "30.0 * tanh(s / 30.0)")
	padded := att("$0[b, k] && k <= q", "", pad)
	segments := att("$1[b, q] == $1[b, k]", "where($0[b, k], s, -inf)", pad, seg)
	odd := att("q - k >= -3 && (q - k) % 4 != 0 || q / 2 == k / 2 && !(h == 1)",
		"-(2) * s + max(-1.5, -0.0) - min(abs(q - k), 8) + exp(0.5) - log(2.0) + sigmoid(s) + 1e-09 * s")
	sum := rel
	for _, v := range []*Instr{prefix, softcap, padded, segments, odd} {
		sum = b.op(OpAdd, nil, sum, v)
	}
	probs := b.op(OpAttention, Attrs{"scale": FloatAttr(0.25), "returns": WordAttr("probs")}, h, h)
	logp := b.op(OpAttention, Attrs{"mask": ExprAttr(mustExpr("k <= q")), "scale": FloatAttr(0.25), "returns": WordAttr("logprobs")}, h, h)
	out := b.op(OpAttention, Attrs{"scale": FloatAttr(0.25), "returns": WordAttr("out")}, h, h, h)
	loss := b.op(OpReduceMean, Attrs{"axes": IntsAttr(0, 1, 2, 3)}, b.op(OpAdd, nil, sum, out))
	b.Output(OutLoss, LossName, loss)
	b.Output(OutValue, "pointer", probs)
	b.Output(OutValue, "logprobs", logp)
	return b.done()
}

// elementwiseModule holds every elementwise op, the reductions, softmax,
// iota, select, const, broadcast and a forward and a reverse scan, as in an
// SSM layer.
func elementwiseModule() (*Module, error) {
	b := newMB("ssm", "B", "N")
	x := b.input("x", TensorOf(F32, dB, dN, c(32)))
	a := b.op(OpSigmoid, nil, b.param("ssm.a", "ones", 0, TensorOf(F32, c(32))))
	ab := b.given(OpBroadcast, x.Type, nil, a)
	h := b.op(OpScan, Attrs{"axis": IntAttr(1)}, ab, x)
	hr := b.op(OpScan, Attrs{"axis": IntAttr(1), "reverse": BoolAttr(true)}, ab, x)
	acc := h
	for _, op := range []Op{OpNeg, OpAbs, OpExp, OpLog, OpSqrt, OpRsqrt, OpTanh, OpRelu, OpGelu, OpGeluDeriv, OpSilu, OpSin, OpCos} {
		acc = b.op(OpAdd, nil, acc, b.op(op, nil, x))
	}
	for _, op := range []Op{OpSub, OpMul, OpDiv, OpMax, OpMin, OpPow} {
		acc = b.op(op, nil, acc, hr)
	}
	var conds []*Instr
	for _, op := range []Op{OpEq, OpNe, OpLt, OpLe, OpGt, OpGe} {
		conds = append(conds, b.op(op, nil, x, h))
	}
	cond := b.op(OpAnd, nil, conds[0], b.op(OpOr, nil, conds[1], b.op(OpNot, nil, conds[2])))
	sel := b.op(OpSelect, nil, cond, acc, b.given(OpConst, TensorOf(F32), Attrs{"value": FloatAttr(1)}))
	idx := b.given(OpIota, TensorOf(I32, dB, dN), Attrs{"axis": IntAttr(1)})
	three := b.given(OpConst, TensorOf(I32), Attrs{"value": FloatAttr(3)})
	block := b.op(OpMod, nil, b.op(OpDiv, nil, idx, three), three) // integer / and %
	pos := b.op(OpCast, Attrs{"to": DTypeAttr(F32)}, b.op(OpAbs, nil, b.op(OpNeg, nil, block)))
	neg := b.given(OpConst, TensorOf(F32), Attrs{"value": FloatAttr(-math.Inf(1))})
	tiny := b.given(OpConst, TensorOf(F32), Attrs{"value": FloatAttr(-1.5e-300)})
	y := b.op(OpMul, nil, b.op(OpSoftmax, Attrs{"axis": IntAttr(2)}, sel), b.op(OpMax, nil, neg, tiny))
	lse := b.op(OpLogSumExp, Attrs{"axes": IntsAttr(2), "keepdims": BoolAttr(true)}, y)
	rmax := b.op(OpReduceMax, Attrs{"axes": IntsAttr(2), "keepdims": BoolAttr(false)}, lse)
	total := b.op(OpReduceSum, Attrs{"axes": IntsAttr(0, 1)}, b.op(OpAdd, nil, rmax, pos))
	count := b.op(OpReduceSum, Attrs{"axes": IntsAttr(0, 1), "keepdims": BoolAttr(false)}, idx)
	frozen := b.op(OpStopGradient, nil, total)
	b.Output(OutLoss, LossName, total)
	b.Output(OutMetric, "count", count)
	b.Output(OutMetric, "frozen", frozen)
	return b.done()
}

// gatherModule covers gather with batch_dims, scatter_add, reshape between
// symbolic shapes, einsum of three operands, cross_entropy with
// ignore_index and a loss with its own name.
func gatherModule() (*Module, error) {
	b := newMB("routing", "B", "N", "K")
	x := b.input("x", TensorOf(F32, dB, dN, c(4), c(32)))
	idx := b.input("topk", TensorOf(I32, dB, dK))
	labels := b.input("labels", TensorOf(I32, dB, dN))
	w := b.param("router.weight", "normal", 0.5, TensorOf(F32, c(128), c(16)))
	u := b.param("out.weight", "zeros", 0, TensorOf(F32, c(16), c(10)))
	flat := b.given(OpReshape, TensorOf(F32, dB, dN, c(128)), nil, x)
	picked := b.op(OpGather, Attrs{"axis": IntAttr(1), "batch_dims": IntAttr(1)}, flat, idx)
	back := b.given(OpScatterAdd, flat.Type, Attrs{"axis": IntAttr(1), "batch_dims": IntAttr(1)}, picked, idx)
	mixed := b.op(OpEinsum, Attrs{"spec": StringAttr("bnd,de,ef->bnf")}, back, w, u)
	loss := b.op(OpCrossEntropy, Attrs{"ignore_index": IntAttr(-1)}, mixed, labels)
	b.Output(OutLoss, "routing loss", loss)
	b.Output(OutValue, "picked", picked)
	return b.done()
}

// emptyModule has no symbols, one value, a quoted name and no outputs.
func emptyModule() (*Module, error) {
	b := newMB("a model \"v2\"")
	b.given(OpConst, TensorOf(I32), Attrs{"value": FloatAttr(3)})
	return b.done()
}

// backwardModule holds the ops autodiff introduces: attention returning
// its row statistics alongside its result (a tuple, taken apart by
// extract), the row sums, one attention_grad for q, k, v and a captured
// bias (a tuple of four), pad (slice's adjoint), dim_size, grad
// outputs, and the layout pass's bnhd attention and attention_grad.
func backwardModule() (*Module, error) {
	with := func(a Attrs, key string, v Attr) Attrs {
		out := Attrs{key: v}
		for k, x := range a {
			out[k] = x
		}
		return out
	}
	b := newMB("backward", "B", "N")
	x := b.input("x", TensorOf(F32, dB, c(2), dN, c(8)))
	bias := b.param("rel.bias", "normal", 0.02, TensorOf(F32, c(2), c(16)))
	attrs := func(extra ...any) Attrs {
		a := Attrs{"mask": ExprAttr(mustExpr("k <= q")), "score": ExprAttr(mustExpr("s + $0[h, clamp(q - k, 0, 15)]")), "scale": FloatAttr(0.25)}
		for i := 0; i < len(extra); i += 2 {
			a[extra[i].(string)] = extra[i+1].(Attr)
		}
		return a
	}
	pair := b.op(OpAttention, attrs("tiles", WordAttr("interval"), "with_lse", BoolAttr(true)), x, x, x, bias)
	y := b.op(OpExtract, Attrs{"index": IntAttr(0)}, pair)
	lse := b.op(OpExtract, Attrs{"index": IntAttr(1)}, pair)
	dy := b.op(OpSlice, Attrs{"axis": IntAttr(2), "start": DimAttr(c(1)), "end": DimAttr(dN)}, y)
	dyp := b.op(OpPad, Attrs{"axis": IntAttr(2), "before": DimAttr(c(1)), "after": DimAttr(c(0))}, dy)
	rs := b.op(OpReduceSum, Attrs{"axes": IntsAttr(3)}, b.op(OpMul, nil, dyp, y))
	all := b.op(OpAttentionGrad, attrs("wrt", IntsAttr(0, 1, 2, 3), "returns", WordAttr("out"), "tiles", WordAttr("interval")), x, x, x, bias, lse, rs, dyp)
	var grads []*Instr
	for i := range 4 {
		grads = append(grads, b.op(OpExtract, Attrs{"index": IntAttr(int64(i))}, all))
	}
	n := b.op(OpDimSize, Attrs{"dim": DimAttr(dN.Sub(c(1)))})
	gamma := b.param("ln.weight", "ones", 0, TensorOf(F32, c(8)))
	ln := b.op(OpLayerNormGrad, Attrs{"eps": FloatAttr(1e-5)}, x, grads[0])
	lns := b.op(OpLayerNormGrad, Attrs{"eps": FloatAttr(1e-5), "scale": BoolAttr(true)}, x, ln, gamma)
	rmss := b.op(OpRMSNormGrad, Attrs{"eps": FloatAttr(1e-6), "scale": BoolAttr(true)}, x, lns, gamma)
	rms := b.op(OpRMSNormGrad, Attrs{"eps": FloatAttr(1e-6)}, x, rmss)
	// The normparams pass's forms: affine norms, and norm gradients that
	// return their weights' gradients too.
	beta := b.param("ln.bias", "zeros", 0, TensorOf(F32, c(8)))
	lna := b.op(OpLayerNorm, Attrs{"eps": FloatAttr(1e-5), "affine": BoolAttr(true)}, rms, gamma, beta)
	rmsa := b.op(OpRMSNorm, Attrs{"eps": FloatAttr(1e-6), "affine": BoolAttr(true)}, lna, gamma)
	lnp := b.op(OpLayerNormGrad, Attrs{"eps": FloatAttr(1e-5), "scale": BoolAttr(true), "params": BoolAttr(true), "accumulate": BoolAttr(true)}, x, rmsa, gamma, rms)
	rmsp := b.op(OpRMSNormGrad, Attrs{"eps": FloatAttr(1e-6), "scale": BoolAttr(true), "params": BoolAttr(true), "accumulate": BoolAttr(true)}, x, b.op(OpExtract, Attrs{"index": IntAttr(0)}, lnp), gamma, x)
	dgamma := b.op(OpAdd, nil, b.op(OpExtract, Attrs{"index": IntAttr(1)}, lnp), b.op(OpExtract, Attrs{"index": IntAttr(1)}, rmsp))
	dparams := b.op(OpAdd, nil, dgamma, b.op(OpExtract, Attrs{"index": IntAttr(2)}, lnp))
	rms = b.op(OpAdd, nil, b.op(OpExtract, Attrs{"index": IntAttr(0)}, rmsp), dparams)
	// The layout pass's form: [B, N, H, D] operands (here N = 2 rows of
	// N heads), row statistics [B, N, H].
	bnhd := Attrs{"mask": ExprAttr(mustExpr("k <= q")), "scale": FloatAttr(0.25), "layout": WordAttr("bnhd")}
	pair2 := b.op(OpAttention, with(bnhd, "with_lse", BoolAttr(true)), x, x, x)
	y2 := b.op(OpExtract, Attrs{"index": IntAttr(0)}, pair2)
	lse2 := b.op(OpExtract, Attrs{"index": IntAttr(1)}, pair2)
	rs2 := b.op(OpReduceSum, Attrs{"axes": IntsAttr(3)}, b.op(OpMul, nil, dyp, y2))
	dv := b.op(OpExtract, Attrs{"index": IntAttr(1)}, b.op(OpAttentionGrad, with(bnhd, "wrt", IntsAttr(0, 2)), x, x, x, lse2, rs2, dyp))
	total := b.op(OpReduceSum, Attrs{"axes": IntsAttr(0, 1, 2, 3)}, b.op(OpAdd, nil, b.op(OpAdd, nil, rms, dv), b.op(OpAdd, nil, grads[1], grads[2])))
	// cross_entropy's gradient, as autodiff writes it.
	tgt := b.input("t", TensorOf(I32, dB, c(2), dN))
	dce := b.op(OpCrossEntropyGrad, Attrs{"ignore_index": IntAttr(-1)}, x, tgt, n)
	total = b.op(OpAdd, nil, total, b.op(OpReduceSum, Attrs{"axes": IntsAttr(0, 1, 2, 3)}, dce))
	b.Output(OutLoss, LossName, b.op(OpDiv, nil, total, n))
	b.Output(OutGrad, "rel.bias", grads[3])
	return b.done()
}

// recurModule runs a cell tanh(s + x·W) over a sequence, one with a
// fixed number of steps and no sequence, and the recur_grad autodiff
// writes for the first (its body the cell's vector-Jacobian product).
func recurModule() (*Module, error) {
	b := newMB("recur", "B", "N")
	x := b.input("x", TensorOf(F32, dB, dN, c(3)))
	w := b.param("cell.weight", "normal", 0.5, TensorOf(F32, c(3), c(4)))
	s0 := b.given(OpBroadcast, TensorOf(F32, dB, c(4)), nil, b.given(OpConst, TensorOf(F32), Attrs{"value": FloatAttr(0)}))

	cell := newMB("", "B", "N")
	st := cell.input("state", TensorOf(F32, dB, c(4)))
	xt := cell.input("x", TensorOf(F32, dB, c(3)))
	cw := cell.input("c0", w.Type)
	next := cell.op(OpTanh, nil, cell.op(OpAdd, nil, st, cell.op(OpMatMul, nil, xt, cw)))
	cell.Output(OutValue, "next", next)
	hs := b.op(OpRecur, Attrs{"axis": IntAttr(1), "body": ModuleAttr(cell.M), "cell": StringAttr("rnn")}, s0, x, w)

	fixed := newMB("", "B", "N")
	fs := fixed.input("state", TensorOf(F32, dB, c(4)))
	fixed.Output(OutValue, "next", fixed.op(OpSigmoid, nil, fs))
	loop := b.op(OpRecur, Attrs{"axis": IntAttr(0), "steps": DimAttr(c(5)), "body": ModuleAttr(fixed.M)}, s0)

	vjp := newMB("", "B", "N")
	vs := vjp.input("state", TensorOf(F32, dB, c(4)))
	vx := vjp.input("x", TensorOf(F32, dB, c(3)))
	vw := vjp.input("c0", w.Type)
	dy := vjp.input("dy", TensorOf(F32, dB, c(4)))
	t := vjp.op(OpTanh, nil, vjp.op(OpAdd, nil, vs, vjp.op(OpMatMul, nil, vx, vw)))
	one := vjp.given(OpConst, TensorOf(F32), Attrs{"value": FloatAttr(1)})
	g := vjp.op(OpMul, nil, dy, vjp.op(OpSub, nil, one, vjp.op(OpMul, nil, t, t)))
	vjp.Output(OutValue, "d0", g)
	vjp.Output(OutValue, "d2", vjp.op(OpMatMul, nil, vjp.op(OpTranspose, Attrs{"perm": IntsAttr(1, 0)}, vx), g))
	grads := b.op(OpRecurGrad, Attrs{"axis": IntAttr(1), "body": ModuleAttr(vjp.M), "cell": StringAttr("rnn"), "wrt": IntsAttr(0, 2)}, s0, x, w, hs, hs)
	dw := b.op(OpExtract, Attrs{"index": IntAttr(1)}, grads)

	fv := newMB("", "B", "N")
	fvs := fv.input("state", TensorOf(F32, dB, c(4)))
	fdy := fv.input("dy", TensorOf(F32, dB, c(4)))
	sg := fv.op(OpSigmoid, nil, fvs)
	fv.Output(OutValue, "d0", fv.op(OpMul, nil, fdy, fv.op(OpMul, nil, sg, fv.op(OpSub, nil, fv.given(OpConst, TensorOf(F32), Attrs{"value": FloatAttr(1)}), sg))))
	ds0 := b.op(OpExtract, Attrs{"index": IntAttr(0)}, b.op(OpRecurGrad, Attrs{"axis": IntAttr(0), "steps": DimAttr(c(5)), "body": ModuleAttr(fv.M), "wrt": IntsAttr(0)}, s0, loop, loop))
	loss := b.op(OpAdd, nil, b.op(OpReduceSum, Attrs{"axes": IntsAttr(0, 1, 2)}, hs), b.op(OpReduceSum, Attrs{"axes": IntsAttr(0, 1, 2)}, loop))
	loss = b.op(OpAdd, nil, loss, b.op(OpReduceSum, Attrs{"axes": IntsAttr(0, 1)}, ds0))
	b.Output(OutLoss, LossName, loss)
	b.Output(OutGrad, "cell.weight", dw)
	// A buffer and its update rule: an average of the weight.
	ema := b.MustGiven(OpBuffer, w.Type, Attrs{"name": StringAttr("cell.ema"), "init": WordAttr("normal"), "scale": FloatAttr(0.5)})
	decay := b.given(OpConst, TensorOf(F32), Attrs{"value": FloatAttr(0.9)})
	b.Output(OutUpdate, "cell.ema", b.op(OpAdd, nil, b.op(OpMul, nil, ema, decay), b.op(OpSub, nil, w, b.op(OpMul, nil, w, decay))))
	return b.done()
}

var goldenModules = []struct {
	name  string
	build func() (*Module, error)
}{
	{"seq2seq", seq2seqModule},
	{"attention", attentionModule},
	{"elementwise", elementwiseModule},
	{"gather", gatherModule},
	{"empty", emptyModule},
	{"backward", backwardModule},
	{"recur", recurModule},
}

func TestGolden(t *testing.T) {
	for _, g := range goldenModules {
		t.Run(g.name, func(t *testing.T) {
			m, err := g.build()
			if err != nil {
				t.Fatalf("build: %v", err)
			}
			got := Print(m)
			path := filepath.Join("testdata", g.name+".ir")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("Print differs from %s (run go test -update to accept):\n%s", path, lineDiff(string(want), got))
			}
			back, err := Parse(path, string(want))
			if err != nil {
				t.Fatalf("parse golden: %v", err)
			}
			if err := Verify(back); err != nil {
				t.Fatalf("verify parsed golden: %v", err)
			}
			if again := Print(back); again != string(want) {
				t.Errorf("Print(Parse(golden)) differs:\n%s", lineDiff(string(want), again))
			}
			if d := m.Diff(back); d != "" {
				t.Errorf("parsed module differs from built module: %s", d)
			}
		})
	}
}

// lineDiff shows the first differing line of two texts.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return "line " + strconv.Itoa(i+1) + ":\n\twant: " + a + "\n\tgot:  " + b
		}
	}
	return "(no difference)"
}

// TestTestdata parses every testdata/*.ir file. A canonical file (any name
// but *.in.ir) must verify and print back byte for byte; a non-canonical
// input NAME.in.ir must print as NAME.out.ir.
func TestTestdata(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.ir"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			m, err := Parse(path, string(src))
			if err != nil {
				t.Fatal(err)
			}
			if err := Verify(m); err != nil {
				t.Fatal(err)
			}
			got := Print(m)
			want := string(src)
			wantPath := path
			if base, ok := strings.CutSuffix(path, ".in.ir"); ok {
				wantPath = base + ".out.ir"
				if *update {
					if err := os.WriteFile(wantPath, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				out, err := os.ReadFile(wantPath)
				if err != nil {
					t.Fatalf("%v (run go test -update to create it)", err)
				}
				want = string(out)
			}
			if got != want {
				t.Errorf("Print differs from %s:\n%s", wantPath, lineDiff(want, got))
			}
			back, err := Parse(wantPath, got)
			if err != nil {
				t.Fatalf("reparse: %v", err)
			}
			if d := m.Diff(back); d != "" {
				t.Errorf("reparsed module differs: %s", d)
			}
		})
	}
}

// TestGoldenCoversAllOps keeps the golden files honest: every op of the
// table must appear in at least one of them, so every op's attributes go
// through the printer and the parser.
func TestGoldenCoversAllOps(t *testing.T) {
	seen := map[Op]bool{}
	for _, g := range goldenModules {
		src, err := os.ReadFile(filepath.Join("testdata", g.name+".ir"))
		if err != nil {
			t.Fatal(err)
		}
		m, err := Parse(g.name, string(src))
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range m.Instrs {
			seen[in.Op] = true
		}
	}
	for _, op := range AllOps() {
		if !seen[op] {
			t.Errorf("no golden module uses op %s", op)
		}
	}
	// Every attribute of every op, optional ones included, should be
	// printed somewhere too.
	attrSeen := map[string]bool{}
	for _, g := range goldenModules {
		m, err := g.build()
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range m.Instrs {
			for name := range in.Attrs {
				attrSeen[in.Op.String()+"."+name] = true
			}
		}
	}
	for _, op := range AllOps() {
		for _, spec := range op.Info().Attrs {
			if !attrSeen[op.String()+"."+spec.Name] {
				t.Errorf("no golden module sets attribute %s of %s", spec.Name, op)
			}
		}
	}
}

func TestInstrString(t *testing.T) {
	m, err := seq2seqModule()
	if err != nil {
		t.Fatal(err)
	}
	want := `%2 = param {name = "embed.weight", init = normal, scale = 0.02} : f32[256, 64]`
	if got := m.Instrs[2].String(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	var nilInstr *Instr
	if got := nilInstr.String(); got != "<nil>" {
		t.Errorf("nil instr prints %q", got)
	}
	// An invalid instruction still prints, for error messages.
	bad := &Instr{ID: 4, Op: OpAdd, Args: []*Instr{nil, m.Instrs[0]}, Attrs: Attrs{"zz": IntAttr(1), "aa": WordAttr("not a word")}}
	if got, want := bad.String(), `%4 = add %<nil>, %0 {aa = "not a word", zz = 1} : invalid[]`; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got := (Output{Kind: OutLoss, Name: "", Value: m.Instrs[0]}).String(); got != `loss "" = %0` {
		t.Errorf("unnamed loss prints %q", got)
	}
}

func TestAttrString(t *testing.T) {
	for _, tc := range []struct {
		a    Attr
		want string
	}{
		{IntAttr(-1), "-1"},
		{FloatAttr(1), "1.0"},
		{FloatAttr(1e-5), "1e-05"},
		{FloatAttr(math.Inf(-1)), "-inf"},
		{FloatAttr(math.NaN()), "nan"},
		{BoolAttr(true), "true"},
		{StringAttr("a\"b\n"), `"a\"b\n"`},
		{WordAttr("probs"), "probs"},
		{IntsAttr(), "[]"},
		{IntsAttr(0, 2, 1), "[0, 2, 1]"},
		{DimAttr(dS.Add(dT).Sub(c(1))), "S+T-1"},
		{DTypeAttr(Bool), "bool"},
		{ExprAttr(mustExpr("k <= q")), "(k <= q)"},
		{Attr{}, "<bad attribute>"},
	} {
		if got := tc.a.String(); got != tc.want {
			t.Errorf("%+v prints %s, want %s", tc.a, got, tc.want)
		}
	}
}

func TestParseAttrValues(t *testing.T) {
	// Values that are not in canonical form but read as their kind.
	src := `module m(N) {
  %0 = const {value = 2} : f32[]
  %1 = const {value = -3} : f32[]
  %2 = const {value = 1e3} : f32[]
  %3 = const {value = -inf} : f32[]
  %4 = const {value = nan} : f32[]
  %5 = iota {axis = 0} : i32[+N+0]
  %6 = slice %5 {axis = 0, start = 1, end = N*1} : i32[-1+N]
  %007 = const {value = 1.} : i32[]
}
`
	m, err := Parse("t.ir", src)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(m); err != nil {
		t.Fatal(err)
	}
	want := []float64{2, -3, 1000, math.Inf(-1)}
	for i, w := range want {
		if got := m.Instrs[i].Attrs.Float("value"); got != w {
			t.Errorf("%%%d value = %v, want %v", i, got, w)
		}
	}
	if !math.IsNaN(m.Instrs[4].Attrs.Float("value")) {
		t.Errorf("nan did not parse as NaN")
	}
	if got := m.Instrs[6].String(); got != "%6 = slice %5 {axis = 0, start = 1, end = N} : i32[N-1]" {
		t.Errorf("got %s", got)
	}
	if m.Instrs[7].ID != 7 {
		t.Errorf("%%007 has ID %d", m.Instrs[7].ID)
	}
}

func TestParseForwardReference(t *testing.T) {
	// A forward reference parses; Verify reports it.
	src := "module m() {\n  %1 = neg %2 : f32[]\n  %2 = const {value = 1.0} : f32[]\n}\n"
	m, err := Parse("t.ir", src)
	if err != nil {
		t.Fatal(err)
	}
	err = Verify(m)
	if err == nil || !strings.Contains(err.Error(), "used before it is defined") {
		t.Errorf("Verify = %v, want a use before definition", err)
	}
	if got := Print(m); got != src {
		t.Errorf("forward reference does not print back:\n%s", got)
	}
}

func TestParseErrors(t *testing.T) {
	const head = "module m(B, N) {\n"
	for _, tc := range []struct {
		src  string
		want []string // each a substring of one error, in order
	}{
		{"", []string{`t.ir:1:1: expected "module", found end of input`}},
		{"modul m() {}", []string{`t.ir:1:1: expected "module", found "modul"`}},
		{"module 3() {}", []string{`t.ir:1:8: expected module name, found "3"`}},
		{"module m(B, B) {}", []string{"t.ir:1:13: symbol B declared twice"}},
		{"module m(B {}", []string{`t.ir:1:12: expected ",", found "{"`}},
		{"module m() {", []string{`t.ir:1:13: expected "}", found end of input`}},
		{"module m() {} x", []string{`t.ir:1:15: expected end of input after the module, found "x"`}},
		{head + "  %0 = frob : f32[]\n}", []string{`t.ir:2:8: unknown op "frob"`}},
		{head + "  %0 = neg %7 : f32[]\n}", []string{"t.ir:2:12: %7 is not defined"}},
		{head + "  %0 = const {value = 1.0} : f32[]\n  %0 = neg %0 : f32[]\n}", []string{"t.ir:3:3: %0 is already defined at 2:3"}},
		{head + "  %0 = const {valu = 1.0} : f32[]\n}", []string{"t.ir:2:15: const has no attribute valu"}},
		{head + "  %0 = const {value = 1.0, value = 2.0} : f32[]\n}", []string{"t.ir:2:28: attribute value given twice"}},
		{head + "  %0 = const {value = x} : f32[]\n}", []string{`t.ir:2:23: expected a number, found "x"`}},
		{head + "  %0 = const {value = 1e999} : f32[]\n}", []string{"t.ir:2:23: number 1e999 is out of range"}},
		{head + "  %0 = iota {axis = 1.5} : i32[N]\n}", []string{`t.ir:2:21: expected an integer, found "1.5"`}},
		{head + "  %0 = iota {axis = 99999999999999999999} : i32[N]\n}", []string{"t.ir:2:21: integer 99999999999999999999 is out of range"}},
		{head + "  %0 = input {name = foo} : i32[N]\n}", []string{`t.ir:2:22: expected a string, found "foo"`}},
		{head + "  %0 = input {name = \"foo} : i32[N]\n}", []string{"t.ir:2:22: string literal not terminated"}},
		{head + "  %0 = input {name = \"\\q\"} : i32[N]\n}", []string{`t.ir:2:22: invalid string literal "\q"`}},
		{head + "  %0 = input {name = \"x\"} : f64[N]\n}", []string{"t.ir:2:29: unknown dtype f64"}},
		{head + "  %0 = input {name = \"x\"} : f32[N, ]\n}", []string{`t.ir:2:36: expected a dimension, found "]"`}},
		{head + "  %0 = input {name = \"x\"} : f32[N*M]\n}", []string{`t.ir:2:35: expected an integer, found "M"`}},
		{head + "  %0 = input {name = \"x\"} : f32[9223372036854775807+1]\n}", []string{"t.ir:2:53: dimension overflows int64"}},
		{head + "  %0 = input {name = \"x\"}\n}", []string{`t.ir:3:1: expected ":", found "}"`}},
		{head + "  %0 = input {name = \"x\"} f32[N]\n}", []string{`t.ir:2:27: expected ":", found "f32"`}},
		{head + "  %0 = input {name = \"x\" : f32[N]\n}", []string{`t.ir:2:26: expected ",", found ":"`}},
		{head + "  %0 = cast {to = f16} : f32[]\n}", []string{"t.ir:2:19: unknown dtype f16"}},
		{head + "  %0 = scan {reverse = yes} : f32[]\n}", []string{`t.ir:2:24: expected true or false, found "yes"`}},
		{head + "  %0 = attention {mask = k <= q} : f32[]\n}", []string{`t.ir:2:26: expected "(" to start an expression, found "k"`}},
		{head + "  %0 = attention {mask = (k <= )} : f32[]\n}", []string{`t.ir:2:32: expected an expression, found ")"`}},
		{head + "  %0 = attention {mask = (k <= q q)} : f32[]\n}", []string{`t.ir:2:34: expected ")" or an operator, found "q"`}},
		{head + "  %0 = attention {mask = (foo(q))} : f32[]\n}", []string{"t.ir:2:27: unknown function foo"}},
		{head + "  %0 = attention {mask = (clamp(q, 1))} : f32[]\n}", []string{"t.ir:2:27: clamp takes 3 arguments, got 2"}},
		{head + "  %0 = attention {score = ($x[q])} : f32[]\n}", []string{"t.ir:2:28: $ must be followed by a number"}},
		{head + "  %0 = attention {score = ($0(q))} : f32[]\n}", []string{`t.ir:2:30: expected "[" after $0, found "("`}},
		{head + "  %0 = attention {score = (q # k)} : f32[]\n}", []string{"t.ir:2:30: unexpected character '#'"}},
		{head + "  %0 = attention {score = (" + strings.Repeat("(", 300) + "q" + strings.Repeat(")", 300) + ")} : f32[]\n}", []string{"expression nested more than 200 deep"}},
		{head + "  %0 = neg % : f32[]\n}", []string{"t.ir:2:12: % must be followed by a number"}},
		{head + "  %0 = neg $1 : f32[]\n}", []string{"t.ir:2:12: unexpected character '$'"}},
		{head + "  %99999999999999999999 = neg : f32[]\n}", []string{"t.ir:2:3: value number 99999999999999999999 is out of range"}},
		{head + "  frob %0\n}", []string{`t.ir:2:3: expected an instruction (%N = ...) or an output (loss, metric, output, grad), found "frob"`}},
		{head + "  metric %0\n}", []string{"t.ir:2:10: expected the output's name (a string), found %0"}},
		{head + "  output \"x\" %0\n}", []string{`t.ir:2:14: expected "=", found %0`}},
		{head + "  loss %3\n}", []string{"t.ir:2:8: %3 is not defined"}},
		// Several errors are collected, one per bad line, in order.
		{head + "  %0 = frob : f32[]\n  %1 = neg %9 : f32[]\n  %2 = const {value = ?} : f32[]\n  %3 = const {value = 1.0} : f32[]\n}",
			[]string{`t.ir:2:8: unknown op "frob"`, "t.ir:3:12: %9 is not defined", `t.ir:4:23: unexpected character '?'`}},
	} {
		_, err := Parse("t.ir", tc.src)
		if err == nil {
			t.Errorf("Parse(%q) succeeded, want %q", tc.src, tc.want)
			continue
		}
		var list ParseErrors
		if !errors.As(err, &list) {
			t.Errorf("Parse(%q) error is %T, want ParseErrors", tc.src, err)
			continue
		}
		if len(list) != len(tc.want) {
			t.Errorf("Parse(%q) gave %d errors, want %d:\n%v", tc.src, len(list), len(tc.want), err)
			continue
		}
		for i, w := range tc.want {
			if !strings.Contains(list[i].Error(), w) {
				t.Errorf("Parse(%q) error %d = %q, want %q", tc.src, i, list[i].Error(), w)
			}
		}
	}
}

func TestParseErrorLimit(t *testing.T) {
	var sb strings.Builder
	sb.WriteString("module m() {\n")
	for range 50 {
		sb.WriteString("  %0 = frob : f32[]\n")
	}
	sb.WriteString("}\n")
	_, err := Parse("t.ir", sb.String())
	var list ParseErrors
	if !errors.As(err, &list) || len(list) != maxParseErrors {
		t.Errorf("got %d errors, want %d", len(list), maxParseErrors)
	}
}

func TestParseExprCanonical(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"k<=q&&q-k<128", "k <= q && q - k < 128"},
		{"(k <= q)", "k <= q"},
		{"-3", "-3"},
		{"- 3", "-3"},
		{"-(3)", "-(3)"},
		{"--3", "-(-3)"},
		{"-x", "-x"},
		{"--x", "--x"},
		{"!!b", "!!b"},
		{"a - -3", "a - (-3)"},
		{"a - (b - c)", "a - (b - c)"},
		{"(a - b) - c", "a - b - c"},
		{"a * (b + c)", "a * (b + c)"},
		{"-(a + b)", "-(a + b)"},
		{"(a || b) && c", "(a || b) && c"},
		{"a || b && c", "a || b && c"},
		{"a < b == c", "a < b == c"},
		{"q % 4", "q % 4"},
		{"q%4", "q % 4"},
		{"-inf", "-inf"},
		{"-(inf)", "-(inf)"},
		{"1e3", "1000.0"},
		{"2.50", "2.5"},
		{"1.", "1.0"},
		{"nan", "nan"},
		{"$0[]", "$0[]"},
		{"$12[b, h, q - k]", "$12[b, h, q - k]"},
		{"where($0[b,k], s, -inf)", "where($0[b, k], s, -inf)"},
		{"clamp(q-k,0,255) // comment", "clamp(q - k, 0, 255)"},
		{"-9223372036854775808", "-9223372036854775808"},
		{"x - -9223372036854775808", "x - (-9223372036854775808)"},
	} {
		e, err := ParseExpr(tc.in)
		if err != nil {
			t.Errorf("ParseExpr(%q): %v", tc.in, err)
			continue
		}
		if got := e.String(); got != tc.want {
			t.Errorf("ParseExpr(%q) prints %q, want %q", tc.in, got, tc.want)
		}
		back, err := ParseExpr(e.String())
		if err != nil || !back.Equal(e) {
			t.Errorf("%q does not round-trip: %v", e, err)
		}
	}
	for _, bad := range []string{"", "1 +", "(q", "q)", "9223372036854775808", "f(1)", "%", "k <= q,", "a b"} {
		if _, err := ParseExpr(bad); err == nil {
			t.Errorf("ParseExpr(%q) succeeded", bad)
		}
	}
}

// TestExprRoundTripRandom prints random trees, including shapes no parser
// produces (negated literals, nested negatives), and checks that each
// parses back to the same tree.
func TestExprRoundTripRandom(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for i := range 5000 {
		e := randomTree(r, 5)
		s := e.String()
		back, err := ParseExpr(s)
		if err != nil {
			t.Fatalf("#%d: ParseExpr(%q): %v", i, s, err)
		}
		if !back.Equal(e) {
			t.Fatalf("#%d: %q parses back as %q (%s)", i, s, back, dumpExpr(back))
		}
	}
}

// randomTree builds an untyped expression tree of any shape.
func randomTree(r *rand.Rand, depth int) *Expr {
	if depth == 0 || r.Intn(4) == 0 {
		switch r.Intn(6) {
		case 0:
			return Int(int64(r.Intn(21) - 10))
		case 1:
			return Float([]float64{0.5, -2.25, 1e-9, -1e21, math.Inf(1), math.Inf(-1), 3}[r.Intn(7)])
		case 2:
			return &Expr{Kind: EBool, Int: int64(r.Intn(2))}
		case 3:
			return Capture(r.Intn(3), Var("q"), Int(-1))
		default:
			return Var([]string{"q", "k", "h", "b", "s", "N"}[r.Intn(6)])
		}
	}
	switch n := r.Intn(10); {
	case n == 0:
		return &Expr{Kind: ENeg, Args: []*Expr{randomTree(r, depth-1)}}
	case n == 1:
		return &Expr{Kind: ENot, Args: []*Expr{randomTree(r, depth-1)}}
	case n == 2:
		names := ExprFuncNames()
		name := names[r.Intn(len(names))]
		args := make([]*Expr, ExprFuncs[name])
		for i := range args {
			args[i] = randomTree(r, depth-1)
		}
		return Call(name, args...)
	default:
		kinds := []ExprKind{EAdd, ESub, EMul, EDiv, EMod, ELt, ELe, EGt, EGe, EEq, ENe, EAnd, EOr}
		return Bin(kinds[r.Intn(len(kinds))], randomTree(r, depth-1), randomTree(r, depth-1))
	}
}

func dumpExpr(e *Expr) string {
	if e == nil {
		return "nil"
	}
	s := "(" + strconv.Itoa(int(e.Kind))
	switch e.Kind {
	case EInt, EBool, ECapture:
		s += " " + strconv.FormatInt(e.Int, 10)
	case EFloat:
		s += " " + FormatFloat(e.Num)
	case EVar, ECall:
		s += " " + e.Name
	}
	for _, a := range e.Args {
		s += " " + dumpExpr(a)
	}
	return s + ")"
}

func TestParseDimAndType(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"128", "128"},
		{"N", "N"},
		{" N - 1 ", "N-1"},
		{"T+S", "S+T"},
		{"S + T - 1", "S+T-1"},
		{"3 - 2*N", "-2*N+3"},
		{"N*2", "2*N"},
		{"N - N", "0"},
		{"-N+N+1", "1"},
		{"-3", "-3"},
		{"+N", "N"},
		{"-9223372036854775808", "-9223372036854775808"},
	} {
		d, err := ParseDim(tc.in)
		if err != nil {
			t.Errorf("ParseDim(%q): %v", tc.in, err)
			continue
		}
		if got := d.String(); got != tc.want {
			t.Errorf("ParseDim(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
	for _, bad := range []string{"", "N N", "2*3", "N*M", "*N", "N-", "9223372036854775807+1", "-9223372036854775808*N", "N+(1)"} {
		if d, err := ParseDim(bad); err == nil {
			t.Errorf("ParseDim(%q) = %s, want an error", bad, d)
		}
	}
	ty, err := ParseType("f32[B, S+T, 128]")
	if err != nil || !ty.Equal(TensorOf(F32, dB, dS.Add(dT), c(128))) {
		t.Errorf("ParseType = %s, %v", ty, err)
	}
	ty, err = ParseType("bool[]")
	if err != nil || !ty.Equal(TensorOf(Bool)) {
		t.Errorf("ParseType(bool[]) = %s, %v", ty, err)
	}
	ty, err = ParseType("(f32[B, N], i32[])")
	if err != nil || !ty.Equal(TupleOf(TensorOf(F32, dB, dN), TensorOf(I32))) || ty.String() != "(f32[B, N], i32[])" {
		t.Errorf("ParseType of a tuple = %s, %v", ty, err)
	}
	if ty.Equal(TensorOf(F32, dB, dN)) || TupleOf(TensorOf(F32)).Equal(TupleOf(TensorOf(F32), TensorOf(F32))) {
		t.Error("a tuple equals a tensor or a longer tuple")
	}
	for _, bad := range []string{"", "f32", "f32[", "x[N]", "f32[N]]", "invalid[]", "(f32[N]", "(f32[N],)", "((f32[]))"} {
		if ty, err := ParseType(bad); err == nil {
			t.Errorf("ParseType(%q) = %s, want an error", bad, ty)
		}
	}
	_, err = ParseType("f32[N,,]")
	if err == nil || err.Error() != `1:7: expected a dimension, found ","` {
		t.Errorf("ParseType error = %v", err)
	}
}

// TestDimRoundTripRandom checks that every dim arithmetic can build prints
// and parses back to an equal dim.
func TestDimRoundTripRandom(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	syms := []string{"B", "N", "S", "T"}
	for range 2000 {
		d := ConstDim(int64(r.Intn(21) - 10))
		for range r.Intn(5) {
			e := SymDim(syms[r.Intn(len(syms))]).Scale(int64(r.Intn(7) - 3))
			if r.Intn(2) == 0 {
				d = d.Add(e)
			} else {
				d = d.Sub(e)
			}
		}
		back, err := ParseDim(d.String())
		if err != nil || !back.Equal(d) {
			t.Fatalf("%s parses back as %s, %v", d, back, err)
		}
	}
}
