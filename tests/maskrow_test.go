package tests

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/attnc/attnc/ir"
	"github.com/attnc/attnc/ir/eval"
	"github.com/attnc/attnc/passes"
)

// TestMaskRowErrors runs masks that fail, which the generated code
// evaluates with AttnSpec.MaskRow, and insists that the generated code
// fails where the reference does: a captured read out of range by key
// (checked once per row, then redone pair by pair), by query (computed
// once per row) or by a key index that is not k + r (checked per key),
// and a modulo by a symbol that is zero; and that a read out of range
// only where && skips it is no error. A read out of range reports the
// reference's message at the reference's first failing pair: one head
// and one tile, so the kernel visits the pairs in the reference's order.
func TestMaskRowErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a Go program")
	}
	docQ := ir.Capture(0, eb, eq)
	cases := []struct {
		name  string
		mask  *ir.Expr
		n     int
		fails bool // the reference fails
		same  bool // and the generated code with the same message
	}{
		{"next_key", ir.Bin(ir.EEq, ir.Capture(0, eb, ir.Bin(ir.EAdd, ek, ir.Int(1))), docQ), 9, true, true},
		{"next_query", ir.Bin(ir.EEq, ir.Capture(0, eb, ir.Bin(ir.EAdd, eq, ir.Int(1))), ir.Capture(0, eb, ek)), 9, true, true},
		{"twice_key", ir.Bin(ir.EAnd, ir.Bin(ir.ELe, ek, eq), ir.Bin(ir.EEq, ir.Capture(0, eb, ir.Bin(ir.ESub, ir.Bin(ir.EMul, ek, ir.Int(2)), eq)), docQ)), 7, true, true},
		{"mod_zero", ir.Bin(ir.EEq, ir.Bin(ir.EMod, ir.Bin(ir.ESub, eq, ek), ir.Bin(ir.ESub, ir.Var("N"), ir.Int(6))), docQ), 6, true, false},
		{"guarded", ir.Bin(ir.EAnd, ir.Bin(ir.ELt, ek, ir.Bin(ir.ESub, ir.Var("N"), ir.Int(1))), ir.Bin(ir.EEq, ir.Capture(0, eb, ir.Bin(ir.EAdd, ek, ir.Int(1))), docQ)), 9, false, false},
	}
	var units []*unit
	var mods []*ir.Module
	for i, c := range cases {
		cb := &caseBuilder{Builder: ir.NewBuilder(c.name), ints: map[string][2]any{"doc": {0, 2}}}
		q, k := cb.in("q", ir.F32, "B", 1, "N", 4), cb.in("k", ir.F32, "B", 1, "N", 4)
		doc := cb.in("doc", ir.I32, "B", "N")
		cb.out("y", cb.op(ir.OpAttention, attnAttrs("mask", c.mask, "returns", "probs"), q, k, doc))
		cb.finish()
		require.NoError(t, cb.Err(), c.name)
		prog, err := passes.Run(cb.M, passes.Options{VerifyEach: true})
		require.NoError(t, err, c.name)
		env, err := cb.fill(cb.M, trial{syms: syms("B", 1, "N", c.n)}, rand.New(rand.NewPCG(uint64(i), 5)))
		require.NoError(t, err)
		units = append(units, &unit{name: "maskrow_" + strings.ReplaceAll(c.name, "_", ""), prog: prog, envs: []eval.Env{env}})
		mods = append(mods, cb.M)
	}
	results := runUnits(t, units)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := results[units[i].name]
			require.Len(t, res, 1)
			ref, err := eval.Run(mods[i], units[i].envs[0])
			if !c.fails {
				require.NoError(t, err, "reference")
				require.Empty(t, res[0].Err, "the generated code failed")
				for _, d := range compareOutputs(mods[i], ref, res[0], 1e-4) {
					t.Error(d)
				}
				return
			}
			require.Error(t, err, "the reference fails")
			require.NotEmpty(t, res[0].Err, "the generated code fails where the reference does (%v)", err)
			if c.same {
				msg := strings.TrimPrefix(res[0].Err, "forward: ")
				assert.True(t, strings.HasSuffix(err.Error(), ": "+msg), "generated %q, reference %q", msg, err)
			}
			t.Log(fmt.Sprintf("reference: %v; generated: %s", err, res[0].Err))
		})
	}
}
