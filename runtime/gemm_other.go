//go:build !amd64 || purego

package runtime

// detectKernels returns no assembly kernels: off amd64, or under the
// purego tag, products use the portable scalar kernels.
func detectKernels() []*gemmKernel { return nil }
