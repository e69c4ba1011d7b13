package passes

import (
	"sort"

	"github.com/attnc/attnc/ir"
	"github.com/attnc/attnc/kir"
)

// Plan decides each function's memory: for every buffer the function
// allocates, the step after which nothing reads it any more, so the
// renderer hands it back to the runtime's pool there (rt.Release) for
// later steps and the next call to reuse, instead of leaving it to the
// garbage collector; which reshapes are views of their operand's buffer;
// and which values can be dropped (set to nil) after their last reader.
//
// Requires: a kernel program (Fuse): the groups say which values are
// materialised (a group's members are not; its root reads its inputs).
//
// Guarantees: a buffer is released only when every value that may share
// it is dead, and never when it belongs to the model (a param), the
// caller (an input) or the result (a function result). Values that may
// share a buffer form one class: a reshape written as a view and its
// operand, and the result of an op the runtime may answer with (part of)
// an operand (freshResult says which cannot). A multi-result op's
// tensors each own their buffer: each extract is a class of its own, so
// a result among them (a norm gradient's dγ, a grad output) pins only
// itself, and the results no extract takes out are released right after
// the op runs.
//
// Why: liveness is the compiler's knowledge, not a renderer's; the Go
// renderer prints this plan as it is, and the CUDA target will allocate
// device buffers from the same one.
//
//	%4 = exp %3 : f32[B, N, 8]
//	%5 = reduce_sum %4 {axes = [0, 1, 2]} : f32[]   // release %4 after
func Plan(kp *kir.Program) error {
	kp.Plans = map[string]*kir.MemPlan{}
	for _, f := range kp.IR.Funcs {
		kp.Plans[f.Name] = planFunc(f, kp.Funcs[f.Name])
	}
	return nil
}

// freshResult reports whether the runtime call for in always returns
// tensors with buffers of their own, shared with no operand (a tuple:
// each of its tensors): every op but the sources (a param or input is
// the model's or the caller's buffer), extract (it names a tuple's
// tensor) and an einsum of one operand (a sum over no letters, or a
// transpose to the same order, may return its operand). A reshape copies
// unless the plan makes it a view.
func freshResult(in *ir.Instr) bool {
	switch in.Op {
	case ir.OpParam, ir.OpBuffer, ir.OpInput, ir.OpExtract:
		return false
	case ir.OpEinsum:
		return len(in.Args) >= 2
	}
	return true
}

func planFunc(f *ir.Func, fk *kir.FuncKernels) *kir.MemPlan {
	group := func(in *ir.Instr) *kir.Group {
		if fk == nil {
			return nil
		}
		return fk.Of[in]
	}
	isRoot := func(in *ir.Instr) bool { g := group(in); return g != nil && g.Root == in }
	parent := map[*ir.Instr]*ir.Instr{}
	var find func(*ir.Instr) *ir.Instr
	find = func(v *ir.Instr) *ir.Instr {
		p, ok := parent[v]
		if !ok || p == v {
			return v
		}
		root := find(p)
		parent[v] = root
		return root
	}
	union := func(a, b *ir.Instr) {
		ra, rb := find(a), find(b)
		if ra != rb {
			parent[ra] = rb
		}
	}
	result := map[*ir.Instr]bool{}
	for _, o := range f.Results {
		result[o.Value] = true
	}
	// body lists the materialised values with the operands their code
	// reads, at their index in f.Body.
	type entry struct {
		i    int
		in   *ir.Instr
		args []*ir.Instr
	}
	var body []entry
	for i, in := range f.Body {
		switch g := group(in); {
		case g == nil:
			body = append(body, entry{i, in, in.Args})
		case g.Root == in:
			body = append(body, entry{i, in, g.Inputs})
		}
	}
	views := map[*ir.Instr]bool{}
	for _, e := range body {
		in := e.in
		parent[in] = in
		if in.Op == ir.OpReshape && !result[in] {
			views[in] = true
		}
		if isRoot(in) || freshResult(in) && !views[in] || in.Op == ir.OpExtract {
			continue
		}
		for _, a := range e.args {
			union(in, a)
		}
	}
	index := map[*ir.Instr]int{}
	for i, in := range f.Body {
		index[in] = i
	}
	end := map[*ir.Instr]int{}     // class → the last instruction that reads or defines a member
	last := map[*ir.Instr]int{}    // value → the last instruction that reads it
	pinned := map[*ir.Instr]bool{} // class → holds a param, an input or a result
	for _, e := range body {
		c := find(e.in)
		end[c] = max(end[c], e.i)
		for _, a := range e.args {
			ca := find(a)
			end[ca] = max(end[ca], e.i)
			last[a] = e.i
		}
		if e.in.Op == ir.OpParam || e.in.Op == ir.OpBuffer || e.in.Op == ir.OpInput || result[e.in] {
			pinned[c] = true
		}
	}
	plan := &kir.MemPlan{Release: make([][]*ir.Instr, len(f.Body)), Drop: make([][]*ir.Instr, len(f.Body)), Views: views,
		Unread: map[*ir.Instr][]int{}}
	taken := map[*ir.Instr]map[int]bool{}
	for _, e := range body {
		if e.in.Op == ir.OpExtract {
			t := e.in.Args[0]
			if taken[t] == nil {
				taken[t] = map[int]bool{}
			}
			taken[t][e.in.Attrs.Int("index")] = true
		}
	}
	for _, e := range body {
		in := e.in
		c := find(in)
		if in.Type.IsTuple() {
			// Its tensors are released through their extracts.
			for k := range in.Type.Tuple {
				if !taken[in][k] {
					plan.Unread[in] = append(plan.Unread[in], k)
				}
			}
			if i, ok := last[in]; ok {
				plan.Drop[i] = append(plan.Drop[i], in)
			}
			continue
		}
		if !pinned[c] && (freshResult(in) || isRoot(in) || in.Op == ir.OpExtract) && !views[in] {
			plan.Release[end[c]] = append(plan.Release[end[c]], in)
			continue
		}
		if i, ok := last[in]; ok && !result[in] && in.Op != ir.OpParam && in.Op != ir.OpBuffer && in.Op != ir.OpInput {
			plan.Drop[i] = append(plan.Drop[i], in)
		}
	}
	for _, vs := range append(plan.Release, plan.Drop...) {
		sort.Slice(vs, func(i, j int) bool { return index[vs[i]] < index[vs[j]] })
	}
	return plan
}
