package main

import (
	"fmt"
	"sort"

	"github.com/attnc/attnc/ir"
	"github.com/attnc/attnc/lang"
	"github.com/attnc/attnc/train"
)

// A tokenRoom is how many distinct tokens a model can take in an input:
// the rows of the embedding table it indexes, or the classes of the
// logits it is the target of, whichever is fewer.
type tokenRoom struct {
	n    int
	what string
}

// tokenRooms finds, for each i32 input of m, the room it has for token
// values: the input (or a slice, reshape, pad or transpose of it) used as
// the index of an embedding lookup (gather along axis 0 of a table) or
// as cross-entropy targets.
func tokenRooms(m *ir.Module) map[string]tokenRoom {
	from := map[*ir.Instr]string{}
	rooms := map[string]tokenRoom{}
	note := func(input string, n int64, what string) {
		if r, ok := rooms[input]; !ok || int(n) < r.n {
			rooms[input] = tokenRoom{int(n), what}
		}
	}
	for _, in := range m.Instrs {
		switch in.Op {
		case ir.OpInput:
			if in.Type.DType == ir.I32 {
				from[in] = in.Name()
			}
		case ir.OpSlice, ir.OpReshape, ir.OpPad, ir.OpTranspose, ir.OpBroadcast:
			if name, ok := from[in.Args[0]]; ok {
				from[in] = name
			}
		case ir.OpGather:
			name, ok := from[in.Args[1]]
			if !ok || in.Attrs.Int("axis") != 0 || in.Attrs.Int("batch_dims") != 0 {
				continue
			}
			if n, ok := in.Args[0].Type.Shape[0].IsConst(); ok {
				note(name, n, fmt.Sprintf("its embedding of %s has %d rows", name, n))
			}
		case ir.OpCrossEntropy:
			name, ok := from[in.Args[1]]
			logits := in.Args[0].Type
			if !ok || logits.Rank() == 0 {
				continue
			}
			if n, ok := logits.Shape[logits.Rank()-1].IsConst(); ok {
				note(name, n, fmt.Sprintf("its logits for %s have %d classes", name, n))
			}
		}
	}
	return rooms
}

// checkTokens reports, before anything is built, a task whose tokens do
// not fit the model (a vocabulary smaller than the data's), which would
// otherwise fail in the first step with an index out of range.
func checkTokens(m *lang.Model, task train.Task) error {
	ranges := train.TokenRanges(task)
	rooms := tokenRooms(m.IR)
	names := make([]string, 0, len(ranges))
	for n := range ranges {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		r, room := ranges[name], rooms[name]
		if room.what == "" || r.Bound <= room.n {
			continue
		}
		hint := ""
		for _, s := range m.Config {
			if s.Value.Kind == "int" && int(s.Value.Int) == room.n {
				hint = fmt.Sprintf(" (-config %s=%d, or edit the model)", s.Key, r.Bound)
				break
			}
		}
		return fmt.Errorf("task %s: %s do not fit the model %s: %s. Give it room for %d tokens%s", task.Name(), r.What, m.Name, room.what, r.Bound, hint)
	}
	return nil
}
