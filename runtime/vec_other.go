//go:build !amd64 || purego

package runtime

// detectVec returns no vector kernels: off amd64, or under the purego
// tag, the slice kernels use their portable twins.
func detectVec() []*vecSet { return nil }
