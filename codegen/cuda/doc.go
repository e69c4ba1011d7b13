// Package cuda renders lowered IR as CUDA C kernels plus a Go host runner
// (behind the build tag cuda). It makes no optimisation decisions.
package cuda
