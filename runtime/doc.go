// Package runtime is what generated Go code imports: dense tensors, a
// parallel for over tiles, the kernels the renderer calls (elementwise,
// reductions, matmul, einsum, layout, normalisation, cross-entropy, scan,
// and flash-style attention with its backward pass), a seeded RNG for
// parameter initialisation, and safetensors I/O.
//
// # Semantics
//
// Every kernel computes, in float32, what the op of the same name in
// attnc's IR means (ir/ops.go gives the meaning, ir/eval the float64
// reference); the tests compare each kernel with the reference on random
// inputs. Kernels take the result shape the compiler inferred where the
// op needs one (broadcasting ops) and never modify their operands: every
// result is a freshly allocated tensor that shares no memory with the
// inputs.
//
// Misuse that only a bug in the caller can cause (operand shapes that do
// not fit, an axis out of range) panics with a message naming the kernel.
// Bad data that a caller cannot rule out statically (an index out of
// range in Gather, ScatterAdd or a CrossEntropy target, a corrupt
// checkpoint) is reported as an error.
//
// # Parallelism
//
// Kernels split their work with ParallelFor, which runs chunks on up to
// GOMAXPROCS goroutines and runs small loops inline. Results do not depend
// on the number of goroutines, except for the order of floating-point
// additions in AttentionGrad's capture gradient, which is fixed for a given
// GOMAXPROCS.
//
// # Copies in generated packages
//
// The Go backend copies this package's non-test .go files, except
// source.go, into every generated package as internal/rt (package rt), so
// a generated model depends on nothing but the standard library. The
// files therefore import only the standard library, use no cgo and no
// embedding, and each is self-contained apart from its siblings. In
// attnc's own runtime package, Source (in source.go) embeds the files for
// the generator and SourceFiles returns the copies ready to write.
package runtime
