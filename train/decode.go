package train

import "github.com/attnc/attnc/runtime"

// A Decoder runs a model's compiled decode step one token at a time,
// keeping its caches between steps (the step package's Decoder, which
// attnc generates beside the model for a causal model).
type Decoder interface {
	Reset()
	Len() int
	Step(token int32) ([]float32, error)
	// SetInput gives an input read whole at every step (a source).
	SetInput(name string, t *runtime.Tensor)
	// Greedy decodes from start: at most n tokens, ending after stop.
	Greedy(start int32, n int, stop int32) ([]int32, error)
}

// newDecoder makes a Decoder with a trained model's weights, or is nil
// when attnc compiled no decode step for the trainer's model.
var newDecoder func(weights []runtime.Named) (Decoder, error)

// SetDecoder registers the constructor of the decode step attnc compiled
// for the trainer's model; attnc generate then runs it instead of
// Forward.
func SetDecoder(f func(weights []runtime.Named) (Decoder, error)) { newDecoder = f }
