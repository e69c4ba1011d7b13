package passes

import (
	"fmt"

	"github.com/attnc/attnc/ir"
	"github.com/attnc/attnc/kir"
)

// Tile chooses, for the target, the tiles of the kernels that fuse does
// not build: the block of queries and of keys each program of an
// attention or attention_grad kernel owns (fused elementwise kernels
// get theirs from fuse, which sizes them by the target's L1).
//
// Requires: a kernel program (Fuse) for a checked target.
//
// Guarantees: every attention and attention_grad instruction of every
// function has a tile in kp.Tiles. On a Go target it is 64 × 64: the Go
// runtime's attention multiplies score tiles whose rows are 64 floats
// apart with micro-kernels made for that stride (runA64, runB64), so the
// choice there is the runtime's, written down. On a GPU target the
// FlashAttention-2 rule: 128 queries (64 for heads wider than 128) by 64
// keys, halved, keys first, until a program's q tile, k and v tiles
// (f32, double-buffered) fit the target's shared memory; powers of two
// where the target needs them.
//
// Why: tile sizes are the compiler's decision, per op and target, so
// that the CUDA and Triton renderers print what this pass chose and
// nothing in their kernels is a constant of their own.
func Tile(kp *kir.Program) error {
	kp.Tiles = map[*ir.Instr]kir.AttnTile{}
	for _, f := range kp.IR.Funcs {
		for _, in := range f.Body {
			if in.Op != ir.OpAttention && in.Op != ir.OpAttentionGrad {
				continue
			}
			t, err := attnTile(in, kp.Target)
			if err != nil {
				return fmt.Errorf("tile: %s %%%d: %w", f.Name, in.ID, err)
			}
			kp.Tiles[in] = t
		}
	}
	return nil
}

// goAttnBlock is the Go runtime's attention tile (runtime.attnBQ and
// attnBK).
const goAttnBlock = 64

func attnTile(in *ir.Instr, t kir.Target) (kir.AttnTile, error) {
	if t.Kind == "go" {
		return kir.AttnTile{Q: goAttnBlock, K: goAttnBlock}, nil
	}
	fwd := in.Args
	if in.Op == ir.OpAttentionGrad {
		fwd, _, _, _ = ir.AttentionGradOperands(in.Args, in.Attrs)
	}
	q, _, v, _ := ir.AttentionOperands(fwd, in.Attrs)
	d, ok := q.Type.Shape[3].IsConst()
	if !ok {
		return kir.AttnTile{}, fmt.Errorf("the head dim %s is not a constant", q.Type.Shape[3])
	}
	dv := d
	if v != nil {
		if c, ok := (*v).Type.Shape[3].IsConst(); ok {
			dv = c
		}
	}
	bq, bk := 128, 64
	if d > 128 {
		bq = 64
	}
	// f32 tiles: q (bq × d), and k, v double-buffered (2 × bk × (d + dv)).
	fits := func() bool { return 4*(bq*int(d)+2*bk*int(d+dv)) <= t.SharedMem }
	for !fits() && (bk > 16 || bq > 16) {
		if bk >= bq/2 && bk > 16 {
			bk /= 2
		} else {
			bq /= 2
		}
	}
	if !fits() {
		return kir.AttnTile{}, fmt.Errorf("head dims %d and %d do not fit %d bytes of shared memory in 16 × 16 tiles", d, dv, t.SharedMem)
	}
	return kir.AttnTile{Q: bq, K: bk}, nil
}
