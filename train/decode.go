package train

import (
	"fmt"

	"github.com/attnc/attnc/runtime"
)

// A StepModel is a model's one-token decode step, compiled by attnc from
// the model (passes.Decode): its inputs are the token and the states the
// step before left, its outputs the next-token scores and the states
// after it.
type StepModel interface {
	ForwardMap(in map[string]*runtime.Tensor) (map[string]*runtime.Tensor, error)
	Params() []runtime.Named
}

// A DecoderState is one state a step carries: its input and output names
// and its shape with the batch dim 1 and, for a cache (Axis ≥ 0), no rows
// along Axis at the start.
type DecoderState struct {
	Input, Output string
	Shape         []int
	Axis          int
}

// A DecoderSpec describes a trainer's compiled decode step.
type DecoderSpec struct {
	New            func() (StepModel, error)
	Tokens, Logits string
	States         []DecoderState
}

// decoderSpec is the trainer's decode step, set by its main package when
// attnc could derive one (SetDecoder), else nil.
var decoderSpec *DecoderSpec

// SetDecoder registers the decode step attnc compiled for the trainer's
// model; attnc generate then runs it instead of Forward.
func SetDecoder(s DecoderSpec) { decoderSpec = &s }

// A decoder runs a step model one token at a time with the weights of a
// trained model, carrying the caches and states between tokens.
type decoder struct {
	spec   *DecoderSpec
	step   StepModel
	states map[string]*runtime.Tensor
	n      int // tokens fed since the last reset
}

func newDecoder(spec *DecoderSpec, m Model) (*decoder, error) {
	step, err := spec.New()
	if err != nil {
		return nil, err
	}
	trained := map[string]*runtime.Tensor{}
	for _, p := range m.Params() {
		trained[p.Name] = p.T
	}
	for _, p := range step.Params() {
		w := trained[p.Name]
		if w == nil || len(w.F) != len(p.T.F) {
			return nil, fmt.Errorf("the decode step's weight %s has no match among the model's", p.Name)
		}
		copy(p.T.F, w.F)
	}
	d := &decoder{spec: spec, step: step}
	d.reset()
	return d, nil
}

// reset forgets every token: empty caches, zero states.
func (d *decoder) reset() {
	d.states = map[string]*runtime.Tensor{}
	for _, s := range d.spec.States {
		d.states[s.Input] = runtime.New(runtime.F32, s.Shape...)
	}
	d.n = 0
}

// feed runs the step on the next token and returns its scores for the
// token after it.
func (d *decoder) feed(tok int32) ([]float32, error) {
	in := map[string]*runtime.Tensor{d.spec.Tokens: runtime.FromI32([]int{1, 1}, []int32{tok})}
	for k, v := range d.states {
		in[k] = v
	}
	out, err := d.step.ForwardMap(in)
	if err != nil {
		return nil, err
	}
	logits := out["output:"+d.spec.Logits]
	if logits == nil || logits.DType != runtime.F32 {
		return nil, fmt.Errorf("the decode step returned no %s", d.spec.Logits)
	}
	for _, s := range d.spec.States {
		next := out["output:"+s.Output]
		if next == nil {
			return nil, fmt.Errorf("the decode step returned no %s", s.Output)
		}
		d.states[s.Input] = next
	}
	d.n++
	return logits.F, nil
}
