package train

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/attnc/attnc/runtime"
)

// causalReverser is a decoder for the reverse task that is causal in tgt:
// its prediction at position p reads src and tgt[:p+1] only. It is right
// except where a hash of what it reads says otherwise (about one position
// in five), so decoding it greedily differs from teacher forcing after
// its first mistake. It counts its forward passes and the rows they ran.
type causalReverser struct {
	vocab       int
	calls, rows int
}

func (m *causalReverser) ForwardMap(in map[string]*runtime.Tensor) (map[string]*runtime.Tensor, error) {
	src, tgt := in["src"], in["tgt"]
	n, l := src.Shape[0], src.Shape[1]
	m.calls++
	m.rows += n
	pred := runtime.New(runtime.I32, n, l+1)
	for e := 0; e < n; e++ {
		h := uint32(2166136261)
		for _, x := range src.I[e*l : (e+1)*l] {
			h = (h ^ uint32(x)) * 16777619
		}
		for p := 0; p <= l; p++ {
			h = (h ^ uint32(tgt.I[e*(l+1)+p])) * 16777619
			right := int32(0)
			if p < l {
				right = src.I[e*l+l-1-p]
			}
			if h%5 == 0 {
				right = 2 + (right-1)%int32(m.vocab-2)
			}
			pred.I[e*(l+1)+p] = right
		}
	}
	return map[string]*runtime.Tensor{"loss": runtime.FromF32(nil, []float32{0}), "output:pred": pred}, nil
}

func (m *causalReverser) LossAndGradMap(in map[string]*runtime.Tensor) (map[string]*runtime.Tensor, error) {
	return m.ForwardMap(in)
}
func (m *causalReverser) Params() []runtime.Named { return nil }
func (m *causalReverser) Grads() []runtime.Named  { return nil }

// Greedy decoding that starts from the teacher-forced predictions gives
// every token that decoding every position gives, with fewer rows run.
func TestDecodeSeqFromTeacherForcing(t *testing.T) {
	task := &seqTask{reverse: true, length: 7, vocab: 12}
	b := task.Batch(rand.New(rand.NewPCG(4, 5)), 64)
	full := &causalReverser{vocab: 12}
	wantMetrics, wantRows, err := decodeSeq(full, task, b, nil)
	require.NoError(t, err)
	short := &causalReverser{vocab: 12}
	tf, err := short.ForwardMap(b)
	require.NoError(t, err)
	gotMetrics, gotRows, err := decodeSeq(short, task, b, tf)
	require.NoError(t, err)
	assert.Equal(t, wantRows, gotRows)
	assert.Equal(t, wantMetrics, gotMetrics)
	assert.Greater(t, wantMetrics["seq_acc"], 0.0, "some examples are right throughout")
	assert.Less(t, wantMetrics["seq_acc"], 1.0, "some are not")
	assert.Equal(t, 7, full.calls)
	assert.Less(t, short.rows, full.rows-64, "the tokens known from teacher forcing are not decoded again (%d rows, teacher forcing's included; %d decoding all)", short.rows, full.rows)
}

// causalSorter points, at step s, to the smallest unchosen element
// (given the elements perm[:s] chosen before), except where a hash of
// what it read says otherwise (about one step in five): then to the
// largest. It reads perm[:s] only, as a causal pointer decoder does.
type causalSorter struct{ rows int }

func (m *causalSorter) ForwardMap(in map[string]*runtime.Tensor) (map[string]*runtime.Tensor, error) {
	x, perm := in["x"], in["perm"]
	size, n := perm.Shape[0], perm.Shape[1]
	m.rows += size
	ptr := runtime.New(runtime.I32, size, n)
	for e := 0; e < size; e++ {
		used := make([]bool, n)
		h := uint32(2166136261)
		for s := 0; s < n; s++ {
			lo, hi := -1, -1
			for k := 0; k < n; k++ {
				if used[k] {
					continue
				}
				if lo < 0 || x.F[e*n+k] < x.F[e*n+lo] {
					lo = k
				}
				if hi < 0 || x.F[e*n+k] > x.F[e*n+hi] {
					hi = k
				}
			}
			c := lo
			if h%5 == 0 {
				c = hi
			}
			ptr.I[e*n+s] = int32(c)
			p := perm.I[e*n+s]
			used[p] = true
			h = (h ^ uint32(p)) * 16777619
		}
	}
	return map[string]*runtime.Tensor{"loss": runtime.FromF32(nil, []float32{0}), "output:pointers": ptr}, nil
}

func (m *causalSorter) LossAndGradMap(in map[string]*runtime.Tensor) (map[string]*runtime.Tensor, error) {
	return m.ForwardMap(in)
}
func (m *causalSorter) Params() []runtime.Named { return nil }
func (m *causalSorter) Grads() []runtime.Named  { return nil }

func TestDecodeSortFromTeacherForcing(t *testing.T) {
	task := &sortTask{n: 6, order: "random"}
	b := task.Batch(rand.New(rand.NewPCG(6, 7)), 64)
	full := &causalSorter{}
	wantMetrics, wantChosen, err := decodeSort(full, task, b, nil)
	require.NoError(t, err)
	short := &causalSorter{}
	tf, err := short.ForwardMap(b)
	require.NoError(t, err)
	gotMetrics, gotChosen, err := decodeSort(short, task, b, tf)
	require.NoError(t, err)
	assert.Equal(t, wantChosen, gotChosen)
	assert.Equal(t, wantMetrics, gotMetrics)
	assert.Greater(t, wantMetrics["exact"], 0.0)
	assert.Less(t, wantMetrics["exact"], 1.0)
	assert.Less(t, short.rows, full.rows-64, "%d rows, %d decoding all", short.rows, full.rows)
}

// fakeDecoder answers Greedy with the reversed source it was given, and
// records how it was called.
type fakeDecoder struct {
	inputs []string
	starts []int32
	src    *runtime.Tensor
}

func (f *fakeDecoder) Reset()                        {}
func (f *fakeDecoder) Len() int                      { return 0 }
func (f *fakeDecoder) Step(int32) ([]float32, error) { return nil, nil }
func (f *fakeDecoder) SetInput(name string, t *runtime.Tensor) {
	f.inputs, f.src = append(f.inputs, name), t
}
func (f *fakeDecoder) Greedy(start int32, n int, stop int32) ([]int32, error) {
	f.starts = append(f.starts, start)
	out := make([]int32, n)
	for i := range out {
		out[i] = f.src.I[len(f.src.I)-1-i]
	}
	return out, nil
}

// predict decodes copy/reverse examples with the compiled decode step
// when the trainer has one: each example's source given once, decoding
// from the start token for the target's length.
func TestPredictUsesTheDecoder(t *testing.T) {
	fake := &fakeDecoder{}
	SetDecoder(func([]runtime.Named) (Decoder, error) { return fake, nil })
	defer SetDecoder(nil)
	task := &seqTask{reverse: true, length: 5, vocab: 12}
	b := task.Batch(rand.New(rand.NewPCG(2, 3)), 3)
	rows, err := predictSeq(&causalReverser{vocab: 12}, task, b)
	require.NoError(t, err)
	assert.Equal(t, []string{"src", "src", "src"}, fake.inputs)
	assert.Equal(t, []int32{BOS, BOS, BOS}, fake.starts)
	for e, row := range rows {
		assert.Equal(t, b["tgt"].I[e*6+1:(e+1)*6], row, "example %d", e)
	}
}
