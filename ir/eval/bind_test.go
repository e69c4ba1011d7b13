package eval_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/attnc/attnc/ir"
	"github.com/attnc/attnc/ir/eval"
)

func TestBindSyms(t *testing.T) {
	type decl struct {
		name string
		dims []ir.Dim
		size []int
	}
	S, T, N := sym("S"), sym("T"), sym("N")
	cases := []struct {
		name  string
		decls []decl
		given map[string]int64
		want  map[string]int64
	}{
		{"lone symbols", []decl{{"x", []ir.Dim{S, T}, sh(2, 3)}}, nil, map[string]int64{"S": 2, "T": 3}},
		{"sum solved after the lone symbol", []decl{{"st", []ir.Dim{S.Add(T)}, sh(8)}, {"s", []ir.Dim{S}, sh(3)}}, nil, map[string]int64{"S": 3, "T": 5}},
		{"difference", []decl{{"x", []ir.Dim{N.Sub(cd(1))}, sh(4)}}, nil, map[string]int64{"N": 5}},
		{"multiple", []decl{{"x", []ir.Dim{N.Scale(2)}, sh(8)}}, nil, map[string]int64{"N": 4}},
		{"negative coefficient", []decl{{"x", []ir.Dim{S.Sub(T)}, sh(2)}, {"s", []ir.Dim{S}, sh(7)}}, nil, map[string]int64{"S": 7, "T": 5}},
		{"chain of solutions", []decl{{"a", []ir.Dim{S.Add(T).Add(N)}, sh(10)}, {"b", []ir.Dim{S.Add(T)}, sh(6)}, {"c", []ir.Dim{S}, sh(4)}}, nil,
			map[string]int64{"S": 4, "T": 2, "N": 4}},
		{"given", []decl{{"x", []ir.Dim{S.Add(T)}, sh(9)}}, map[string]int64{"S": 4}, map[string]int64{"S": 4, "T": 5}},
		{"given and unused", nil, map[string]int64{"N": 4}, map[string]int64{"N": 4}},
		{"nothing binds", nil, nil, map[string]int64{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := ir.NewBuilder("bind", "S", "T", "N")
			inputs := map[string]*eval.Tensor{}
			for _, d := range tc.decls {
				input(b, d.name, ir.F32, d.dims...)
				inputs[d.name] = eval.NewTensor(ir.F32, d.size...)
			}
			if err := b.Err(); err != nil {
				t.Fatal(err)
			}
			got, err := eval.BindSyms(b.M, inputs, tc.given)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Errorf("bound %v, want %v", got, tc.want)
			}
			for s, v := range tc.want {
				if got[s] != v {
					t.Errorf("bound %v, want %v", got, tc.want)
				}
			}
		})
	}
}

// TestLanguageModel runs a whole small model — embedding, projection,
// shifted cross entropy, a metric — and checks the loss against a direct
// computation.
func TestLanguageModel(t *testing.T) {
	const vocab, d = 5, 3
	b := ir.NewBuilder("lm", "B", "N")
	B, N := sym("B"), sym("N")
	tokens := input(b, "tokens", ir.I32, B, N)
	emb := param(b, "embed", "normal", 1, cd(vocab), cd(d))
	w := param(b, "out", "normal", 0.5, cd(d), cd(vocab))
	x := b.Must(ir.OpGather, attrs("axis", ir.IntAttr(0)), emb, tokens)
	logits := b.Must(ir.OpMatMul, nil, x, b.MustGiven(ir.OpBroadcast, ir.TensorOf(ir.F32, B, cd(d), cd(vocab)), nil, w))
	cut := func(v *ir.Instr, start, end ir.Dim) *ir.Instr {
		return b.Must(ir.OpSlice, attrs("axis", ir.IntAttr(1), "start", ir.DimAttr(start), "end", ir.DimAttr(end)), v)
	}
	pred := cut(logits, cd(0), N.Sub(cd(1)))
	next := cut(tokens, cd(1), N)
	loss := b.Must(ir.OpCrossEntropy, nil, pred, next)
	right := b.Must(ir.OpEq, nil, b.Must(ir.OpArgMax, attrs("axis", ir.IntAttr(2)), pred), next)
	acc := b.Must(ir.OpReduceMean, axes(false, 0, 1), b.Must(ir.OpCast, attrs("to", ir.DTypeAttr(ir.F32)), right))
	b.Output(ir.OutLoss, "loss", loss)
	b.Output(ir.OutMetric, "accuracy", acc)
	b.Output(ir.OutValue, "logits", logits)
	if err := b.Err(); err != nil {
		t.Fatal(err)
	}

	params, err := eval.InitParams(b.M, 3)
	if err != nil {
		t.Fatal(err)
	}
	in, err := eval.RandomInputs(b.M, map[string]int64{"B": 2, "N": 6}, 4, func(string) (int, int) { return 0, vocab })
	if err != nil {
		t.Fatal(err)
	}
	res, err := eval.Run(b.M, eval.Env{Inputs: in, Params: params})
	if err != nil {
		t.Fatal(err)
	}

	// The same model, written out.
	tok, E, W := in["tokens"], params["embed"], params["out"]
	total, hits := 0.0, 0.0
	for bi := range 2 {
		for n := range 5 {
			row := make([]float64, vocab)
			for v := range vocab {
				for j := range d {
					row[v] += E.At(int(tok.At(bi, n)), j) * W.At(j, v)
				}
			}
			target := int(tok.At(bi, n+1))
			z, best := 0.0, 0
			for v, l := range row {
				z += math.Exp(l)
				if l > row[best] {
					best = v
				}
			}
			total += math.Log(z) - row[target]
			if best == target {
				hits++
			}
		}
	}
	loss0, ok := res.Loss()
	if !ok || math.Abs(loss0-total/10) > 1e-12*math.Abs(total/10) {
		t.Errorf("loss = %v (%v), want %v", loss0, ok, total/10)
	}
	if got := res.Outputs["accuracy"].Data[0]; got != hits/10 {
		t.Errorf("accuracy = %v, want %v", got, hits/10)
	}
	if got := res.Outputs["logits"]; got == nil || !slices.Equal(got.Shape, sh(2, 6, vocab)) {
		t.Errorf("logits output = %v", got)
	}
	if res.Outputs["loss"] != res.Values[loss.ID] {
		t.Errorf("Outputs[loss] is not the loss value")
	}
}

func TestTensor(t *testing.T) {
	x := eval.NewTensor(ir.F32, 2, 3)
	x.Set(5, 1, 2)
	x.Set(-1, 0, 1)
	if x.At(1, 2) != 5 || x.Data[5] != 5 || x.At(0, 1) != -1 || x.Size() != 6 || x.Rank() != 2 {
		t.Errorf("At/Set/Size: %v", x)
	}
	if got, want := x.String(), "f32[2, 3] [[0 -1 0] [0 0 5]]"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	if got, want := boolT(sh(2), 1, 0).String(), "bool[2] [true false]"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	if got, want := f32(nil, math.Inf(-1)).String(), "f32[] -inf"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	big := eval.NewTensor(ir.I32, 100)
	if s := big.String(); len(s) > 200 || s[len(s)-4:] != "…]" {
		t.Errorf("String of a large tensor = %q", s)
	}
	y := x.Clone()
	y.Set(7, 0, 0)
	if x.At(0, 0) != 0 {
		t.Errorf("Clone shares data")
	}
	defer func() {
		if recover() == nil {
			t.Errorf("At out of range did not panic")
		}
	}()
	x.At(2, 0)
}

// TestRunDoesNotPanic feeds Run random malformed tensors; every outcome
// must be a result or an error.
func TestRunDoesNotPanic(t *testing.T) {
	c := newCtx("N")
	table := c.in(eval.NewTensor(ir.F32, 4, 2))
	idx := c.in(i32(sh(3), 0, 1, 2), sym("N"))
	g := c.op(ir.OpGather, attrs("axis", ir.IntAttr(0)), table, idx)
	ce := c.op(ir.OpCrossEntropy, nil, g, idx)
	c.b.Output(ir.OutLoss, "loss", ce)
	if err := c.b.Err(); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 5))
	succeeded, failed := 0, 0
	for range 500 {
		n := rng.IntN(4)
		data := make([]float64, n+rng.IntN(2))
		for i := range data {
			data[i] = float64(rng.IntN(9) - 3)
			if rng.IntN(5) == 0 {
				data[i] += 0.5
			}
		}
		dt := ir.I32
		if rng.IntN(8) == 0 {
			dt = ir.F32
		}
		in := map[string]*eval.Tensor{
			"x0": c.inputs["x0"],
			"x1": {DType: dt, Shape: []int{n}, Data: data},
		}
		res, err := eval.Run(c.b.M, eval.Env{Inputs: in})
		if err != nil {
			failed++
			continue
		}
		if _, ok := res.Loss(); !ok {
			t.Fatalf("no loss for %v", in["x1"])
		}
		succeeded++
	}
	if failed == 0 || succeeded == 0 {
		t.Errorf("%d runs succeeded and %d failed; the inputs should give both", succeeded, failed)
	}
}
