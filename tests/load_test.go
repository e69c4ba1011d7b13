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
// not have; a missing weight is named; what Save wrote loads, and so
// does a training checkpoint (its optimizer moments skipped, its
// checksum verified over them too).
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
	"os"
	"runtime"

	"example.com/user/gen/tiny"
	"example.com/user/gen/tiny/rt"
)

func main() {
	m, err := tiny.New(tiny.DefaultConfig(), 1)
	if err != nil {
		panic(err)
	}
	if err := m.Save("saved"); err != nil {
		panic(err)
	}
	// A training checkpoint: the weight and its optimizer moments, with
	// a checksum (SaveSafetensors writes one); then one whose last byte,
	// in a moment Load skips, is flipped; then a moment of no weight.
	w := m.Params()[0].T
	if err := rt.SaveSafetensors("checkpoint", []rt.Named{{Name: "w", T: w}, {Name: "adamw.m/w", T: w}, {Name: "adamw.v/w", T: w}}, map[string]string{"step": "3"}); err != nil {
		panic(err)
	}
	b, err := os.ReadFile("checkpoint")
	if err != nil {
		panic(err)
	}
	b[len(b)-1] ^= 1
	if err := os.WriteFile("flipped", b, 0o644); err != nil {
		panic(err)
	}
	if err := rt.SaveSafetensors("stray-moment", []rt.Named{{Name: "w", T: w}, {Name: "adamw.m/x", T: w}}, nil); err != nil {
		panic(err)
	}
	for _, path := range []string{"huge-weight", "huge-extra", "empty", "saved", "checkpoint", "flipped", "stray-moment"} {
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
	require.Len(t, lines, 7, out)
	for i, want := range []string{
		`load huge-weight: tensor "w": is f32[1048576 10240], want f32[1] | under 64 MiB: true`,
		`load huge-extra: tensor "extra": the model has no weight of this name | under 64 MiB: true`,
		`load empty: weight "w" is missing | under 64 MiB: true`,
		`<nil> | under 64 MiB: true`,
		`<nil> | under 64 MiB: true`,
		`checksum`,
		`load stray-moment: tensor "adamw.m/x": an optimizer moment of "x", which the model does not have | under 64 MiB: true`,
	} {
		assert.Contains(t, lines[i], want)
	}
}
