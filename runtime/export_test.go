package runtime

// SetGroupBytes sets the attention kernels' group budget (see inGroups)
// and returns the old one, for tests that want many small groups.
func SetGroupBytes(n int) int {
	old := groupBytes
	groupBytes = n
	return old
}
