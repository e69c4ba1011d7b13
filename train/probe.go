package train

import (
	"fmt"

	"github.com/attnc/attnc/runtime"
)

// A ProbeModel computes a model's attention probabilities on its inputs
// (the probe package attnc compiles beside the model: passes.ProbeAttention),
// with the model's weights copied into its Params.
type ProbeModel interface {
	ForwardMap(in map[string]*runtime.Tensor) (map[string]*runtime.Tensor, error)
	Params() []runtime.Named
}

// probe is the trainer's attention probe: a constructor and the label of
// each output (attn.0, attn.1, …), or nil.
var probe *struct {
	new    func() (ProbeModel, error)
	labels []string
}

// SetProbe registers the attention probe attnc compiled for the trainer's
// model: example.safetensors then holds each attention op's
// probabilities on the example ("attention:i", labelled in the metadata),
// which attnc draws.
func SetProbe(newProbe func() (ProbeModel, error), labels []string) {
	probe = &struct {
		new    func() (ProbeModel, error)
		labels []string
	}{newProbe, labels}
}

// probeExample runs the probe on ex with m's weights and returns its
// tensors, named "attention:i", and their labels.
func probeExample(m Model, ex Batch) ([]runtime.Named, map[string]string, error) {
	if probe == nil {
		return nil, nil, nil
	}
	p, err := probe.new()
	if err != nil {
		return nil, nil, err
	}
	trained := map[string]*runtime.Tensor{}
	for _, w := range m.Params() {
		trained[w.Name] = w.T
	}
	for _, w := range p.Params() {
		src := trained[w.Name]
		if src == nil || len(src.F) != len(w.T.F) {
			return nil, nil, fmt.Errorf("the attention probe's weight %s has no match among the model's", w.Name)
		}
		copy(w.T.F, src.F)
	}
	out, err := p.ForwardMap(ex)
	if err != nil {
		return nil, nil, err
	}
	var ts []runtime.Named
	meta := map[string]string{}
	for i, label := range probe.labels {
		t := out[fmt.Sprintf("output:attn.%d", i)]
		if t == nil {
			return nil, nil, fmt.Errorf("the attention probe returned no attn.%d", i)
		}
		name := fmt.Sprintf("attention:%d", i)
		ts = append(ts, runtime.Named{Name: name, T: t})
		meta[name] = label
	}
	return ts, meta, nil
}
