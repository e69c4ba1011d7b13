package runtime

// SetGroupBytes sets the attention kernels' group budget (see inGroups)
// and returns the old one, for tests that want many small groups.
func SetGroupBytes(n int) int {
	old := groupBytes
	groupBytes = n
	return old
}

// SetOnePassPairsPerCore sets when AttentionGrad computes dq in its key
// pass (see byKeys) and returns the old setting: 0 always, a large
// number never.
func SetOnePassPairsPerCore(n int) int {
	old := onePassPairsPerCore
	onePassPairsPerCore = n
	return old
}

// SetShortAttention turns the short-sequence attention kernels on or off
// and returns the old setting.
func SetShortAttention(on bool) bool {
	old := !shortOff
	shortOff = !on
	return old
}

// ShortAttentionCalls returns how many calls the short kernels served.
func ShortAttentionCalls() int64 { return shortCalls.Load() }

// ShortAttentionKernels reports whether this machine has them.
func ShortAttentionKernels() bool { return shortKernels() }
