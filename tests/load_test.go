package tests

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestGoAPILoadAllocatesOnlyTheModel: Load refuses a file whose header
// honestly describes a 40 GiB tensor (sparse on disk) before allocating
// it, whether the tensor claims to be a weight or is one the model does
// not have; a missing weight is named; what Save wrote loads.
func TestGoAPILoadAllocatesOnlyTheModel(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go package")
	}
	dir := userModule(t)
	lm := elaborateSource(t, "tiny.attn", `model tiny {
  input x: f32[B, N]
  let w = param(1)
  loss mean(x * w)
}
`)
	generate(t, lm.IR, nil, dir, "tiny")
	const huge = 40 << 30
	write := func(name, hdr string, size int64) {
		head := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
		head = append(head, hdr...)
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, head, 0o644))
		if err := os.Truncate(path, int64(len(head))+size); err != nil {
			t.Skipf("no sparse files here: %v", err)
		}
	}
	big := fmt.Sprintf(`"dtype":"F32","shape":[1048576,%d]`, huge/4/1048576)
	write("huge-weight", fmt.Sprintf(`{"w":{%s,"data_offsets":[0,%d]}}`, big, huge), huge)
	write("huge-extra", fmt.Sprintf(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"extra":{%s,"data_offsets":[4,%d]}}`, big, 4+huge), 4+huge)
	write("empty", `{}`, 0)
	out, err := runMain(t, dir, `package main

import (
	"fmt"
	"runtime"

	"example.com/user/gen/tiny"
)

func main() {
	m, err := tiny.New(tiny.DefaultConfig(), 1)
	if err != nil {
		panic(err)
	}
	if err := m.Save("saved"); err != nil {
		panic(err)
	}
	for _, path := range []string{"huge-weight", "huge-extra", "empty", "saved"} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		err := m.Load(path)
		runtime.ReadMemStats(&after)
		fmt.Printf("%v | under 64 MiB: %v\n", err, after.TotalAlloc-before.TotalAlloc < 64<<20)
	}
}
`, false)
	require.NoError(t, err, out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 4, out)
	for i, want := range []string{
		`load huge-weight: tensor "w": is f32[1048576 10240], want f32[1] | under 64 MiB: true`,
		`load huge-extra: tensor "extra": the model has no weight of this name | under 64 MiB: true`,
		`load empty: weight "w" is missing | under 64 MiB: true`,
		`<nil> | under 64 MiB: true`,
	} {
		assert.Equal(t, want, lines[i])
	}
}
