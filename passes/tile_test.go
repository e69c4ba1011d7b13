package passes

import (
	"fmt"
	"strings"
	"testing"

	"github.com/attnc/attnc/ir"
	"github.com/attnc/attnc/kir"
)

// TestTileAttention: the tile pass gives every attention op a tile: 64 ×
// 64 on the Go targets (the runtime's), and on GPU targets the largest
// FlashAttention-2 block whose f32 tiles fit the shared memory, keys
// halved first; a head dim that is not a constant is an error there.
func TestTileAttention(t *testing.T) {
	tile := func(target string, d int) (kir.AttnTile, error) {
		m, err := ir.Parse("tile", fmt.Sprintf(`module tile(B, N) {
  %%0 = input {name = "x"} : f32[B, 2, N, %d]
  %%1 = attention %%0, %%0, %%0 {scale = 0.125} : f32[B, 2, N, %d]
  %%2 = reduce_sum %%1 {axes = [0, 1, 2, 3]} : f32[]
  loss %%2
}`, d, d))
		if err != nil {
			t.Fatal(err)
		}
		prog, err := Lower(m)
		if err != nil {
			t.Fatal(err)
		}
		tg, err := kir.TargetByName(target)
		if err != nil {
			t.Fatal(err)
		}
		kp, err := Fuse(prog, tg)
		if err != nil {
			t.Fatal(err)
		}
		if err := Tile(kp); err != nil {
			return kir.AttnTile{}, err
		}
		if len(kp.Tiles) != 1 {
			t.Fatalf("%d tiles for one attention op", len(kp.Tiles))
		}
		for _, tl := range kp.Tiles {
			return tl, nil
		}
		return kir.AttnTile{}, nil
	}
	for _, c := range []struct {
		target string
		d      int
		want   kir.AttnTile
	}{
		{"go-avx512", 16, kir.AttnTile{Q: 64, K: 64}},
		{"go-avx2", 256, kir.AttnTile{Q: 64, K: 64}},
		{"cuda-sm80", 64, kir.AttnTile{Q: 128, K: 64}},    // 96 KiB of 163
		{"cuda-sm80", 128, kir.AttnTile{Q: 128, K: 32}},   // 128 × 64 needs 192 KiB
		{"triton-sm80", 256, kir.AttnTile{Q: 64, K: 16}},  // wide heads: 64 queries, keys halved twice
		{"triton-sm90", 128, kir.AttnTile{Q: 128, K: 64}}, // 192 KiB of 227
	} {
		got, err := tile(c.target, c.d)
		if err != nil {
			t.Errorf("%s, d = %d: %v", c.target, c.d, err)
			continue
		}
		if got != c.want {
			t.Errorf("%s, d = %d: tiles %v, want %v", c.target, c.d, got, c.want)
		}
	}
	m, err := ir.Parse("sym", `module sym(B, N, D) {
  %0 = input {name = "x"} : f32[B, 2, N, D]
  %1 = attention %0, %0, %0 {scale = 0.125} : f32[B, 2, N, D]
  %2 = reduce_sum %1 {axes = [0, 1, 2, 3]} : f32[]
  loss %2
}`)
	if err != nil {
		t.Fatal(err)
	}
	prog, err := Lower(m)
	if err != nil {
		t.Fatal(err)
	}
	tg, _ := kir.TargetByName("cuda-sm90")
	kp, err := Fuse(prog, tg)
	if err != nil {
		t.Fatal(err)
	}
	if err := Tile(kp); err == nil || !strings.Contains(err.Error(), "not a constant") {
		t.Errorf("a symbolic head dim on a GPU: %v", err)
	}
}
