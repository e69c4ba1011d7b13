package runtime_test

import (
	"testing"

	"strconv"

	rt "github.com/attnc/attnc/runtime"
)

// BenchmarkEinsumLM times the three einsums a Transformer layer's
// training step calls, at the lm4 benchmark model's shapes (a batch of
// 16 × 255 tokens, d=128, FFN 512): the layer x·w, the input's gradient
// dy·wᵀ and the weight's gradient xᵀ·dy summed over the batch. Each
// result is released, as generated code does, so the buffers recycle.
func BenchmarkEinsumLM(b *testing.B) {
	benchEinsums(b, 16, 255, 128, 512)
}

// BenchmarkEinsumSmall is BenchmarkEinsumLM at the small stdlib models'
// shapes (partial_lm, seq2seq: 64 examples of 9 tokens, d=64, FFN 256),
// where a product is a few tens of MFLOP.
func BenchmarkEinsumSmall(b *testing.B) {
	benchEinsums(b, 64, 9, 64, 256)
}

// BenchmarkEinsumHybrid is BenchmarkEinsumLM at hybrid_ssm's shapes (32
// examples of 64 tokens, d=64, FFN 256): products with k=64 and 2,048 rows.
func BenchmarkEinsumHybrid(b *testing.B) {
	benchEinsums(b, 32, 64, 64, 256)
}

func benchEinsums(b *testing.B, nb, l, d, ff int) {
	for _, c := range []struct {
		spec    string
		in, out int
	}{
		{"abc,cd->abd", d, d}, {"abc,cd->abd", d, ff}, {"abc,cd->abd", ff, d},
		{"abc,dc->abd", d, d}, {"abc,dc->abd", d, ff}, {"abc,dc->abd", ff, d},
		{"acb,acd->bd", d, d}, {"acb,acd->bd", d, ff}, {"acb,acd->bd", ff, d},
	} {
		r := newRand(3)
		var x, y *rt.Tensor
		switch c.spec {
		case "abc,cd->abd":
			x, y = randF32(r, nb, l, c.in), randF32(r, c.in, c.out)
		case "abc,dc->abd":
			x, y = randF32(r, nb, l, c.in), randF32(r, c.out, c.in)
		default:
			x, y = randF32(r, nb, l, c.in), randF32(r, nb, l, c.out)
		}
		b.Run(c.spec+"/"+strconv.Itoa(c.in)+"x"+strconv.Itoa(c.out), func(b *testing.B) {
			for b.Loop() {
				rt.Release(rt.Einsum(c.spec, x, y))
			}
			reportGFLOPS(b, 2*float64(nb*l*c.in*c.out))
		})
	}
}
