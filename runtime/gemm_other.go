//go:build !amd64 || purego

package runtime

// detectKernels returns no assembly kernels: off amd64, or under the
// purego tag, products use the portable scalar kernels.
func detectKernels() []*gemmKernel { return nil }

// packRows returns no assembly packers: see detectKernels.
func packRows(mr int) func(k4 int, src *float32, rs int, dst *float32) { return nil }

// copyRows returns no assembly copiers: see detectKernels.
func copyRows(width int) func(k int, src *float32, rs int, dst *float32) { return nil }

// transRows returns no assembly packers: see detectKernels.
func transRows(nr int) func(k4 int, src *float32, rs int, dst *float32) { return nil }
