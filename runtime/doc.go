// Package runtime is what generated Go code imports: tensors, a parallel
// for over tiles, the kernels the renderer calls, a seeded RNG and
// safetensors I/O. It depends only on the standard library and chosen
// third-party packages, never on the compiler.
package runtime
