package kir

import (
	"fmt"
	"strings"

	"github.com/attnc/attnc/ir"
)

// A Program is a lowered graph IR program with the kernels the passes
// made of it: for each function, the groups of its instructions that
// run as one kernel each. An instruction in no group stays a call of the
// runtime's op (the ops with no kernel lowering yet: docs/IR.md).
type Program struct {
	IR      *ir.Program
	Target  Target
	Kernels *Module
	Funcs   map[string]*FuncKernels // by function name
	// GraphInstrs is, by function name, how many instructions the
	// function had as autodiff left the graph, before the passes that
	// rewrite it for speed (nil when unknown): what Steps are set
	// against.
	GraphInstrs map[string]int
	// Plans is, by function name, the plan pass's memory plan (nil
	// before it runs).
	Plans map[string]*MemPlan
	// Shards is, by function name, how the shard pass lets the function
	// run on shards of its batch at once (nil before it runs; a function
	// it does not let has no entry and a reason in NoShard).
	Shards  map[string]*ShardPlan
	NoShard map[string]string
	// Tiles is the tile pass's block of queries and keys for each
	// attention and attention_grad instruction (nil before it runs).
	Tiles map[*ir.Instr]AttnTile
}

// An AttnTile is the block of queries (Q) and keys (K) one program of an
// attention kernel owns.
type AttnTile struct{ Q, K int }

// A MemPlan says when a function's buffers die (the plan pass): Release[i]
// lists the values whose buffers the function hands back to the runtime's
// pool after its step i (Body[i]); Drop[i] the other values last read
// there, which it forgets; Views the reshapes it writes as views of their
// operand's buffer; Unread, for a multi-result op, the results no extract
// takes out, released as soon as the op has run.
type MemPlan struct {
	Release, Drop [][]*ir.Instr
	Views         map[*ir.Instr]bool
	Unread        map[*ir.Instr][]int
}

// A ShardPlan says how a function runs on shards of its batch, one per
// core, and how their results combine into the whole batch's (the shard
// pass). Each shard runs the function on rows [lo, hi) of every
// input's first axis, Batch; the forward computation is independent
// across those rows up to the Parts, the reductions over the batch; the
// function's loss and metrics are the Tail's scalar arithmetic on the
// Parts. A shard reports each part as a sum over its rows and a count
// (PartKind says which), the parts add across shards, and the Tail is
// evaluated again on the sums; output tensors, batch first, are the
// shards' joined. Where the function has gradients, the loss is an
// affine function of the part Loss, so each shard's gradients, weighted
// by the share of that part's denominator the shard holds, add up to the
// whole batch's.
type ShardPlan struct {
	Batch string      // the symbol of every input's first dim
	Parts []ShardPart // in body order
	Tail  []*ir.Instr // the scalar instructions the results read after the parts, in body order
	Loss  int         // index in Parts of the part the loss is affine in (a sum, when it adds several sums); -1 for a function without gradients
}

// A ShardPart is one reduction over the batch that the results read.
type ShardPart struct {
	Instr *ir.Instr
	Kind  PartKind
}

// A PartKind says how a part's value is made of a sum and a count: its
// value is sum/den, den the denominator below.
type PartKind uint8

const (
	PartSum          PartKind = iota + 1 // reduce_sum over every axis: den 1
	PartMean                             // reduce_mean over every axis: den the element count
	PartCrossEntropy                     // cross_entropy: den max(n, 1), n the targets not ignored
)

var partKindNames = [...]string{PartSum: "sum", PartMean: "mean", PartCrossEntropy: "cross_entropy"}

func (k PartKind) String() string {
	if int(k) < len(partKindNames) && partKindNames[k] != "" {
		return partKindNames[k]
	}
	return fmt.Sprintf("part(%d)", uint8(k))
}

// Steps counts what function fn runs: its kernels and the runtime calls
// that compute something, everything but the instructions that only
// name a value (param, input, const), view one (reshape) or take one
// out of a tuple (extract).
func (p *Program) Steps(fn string) (kernels, calls int) {
	var f *ir.Func
	for _, g := range p.IR.Funcs {
		if g.Name == fn {
			f = g
		}
	}
	if f == nil {
		return 0, 0
	}
	fk := p.Funcs[fn]
	for _, in := range f.Body {
		if fk != nil && fk.Of[in] != nil {
			continue
		}
		switch in.Op {
		case ir.OpParam, ir.OpBuffer, ir.OpInput, ir.OpConst, ir.OpReshape, ir.OpExtract:
		default:
			calls++
		}
	}
	if fk != nil {
		kernels = len(fk.Groups)
	}
	return kernels, calls
}

// FuncKernels are one function's groups.
type FuncKernels struct {
	Groups []*Group
	// Of maps every member of a group to its group.
	Of map[*ir.Instr]*Group
}

// A Group is instructions of a function that one kernel computes: Root
// is the last, the only one read outside the group; Members are all of
// them in program order; Inputs are the values the group reads from
// outside, in the order of the kernel's first params (the result buffer
// is the last param).
type Group struct {
	Root    *ir.Instr
	Members []*ir.Instr
	Inputs  []*ir.Instr
	Kernel  *Kernel
}

// Group returns the group of instruction in of function fn, or nil.
func (p *Program) Group(fn string, in *ir.Instr) *Group {
	if f := p.Funcs[fn]; f != nil {
		return f.Of[in]
	}
	return nil
}

// Label names a group for profiles and comments: the root's ID, the kind
// "fused", the members' ops and the result type.
func (g *Group) Label() string {
	ops := make([]string, len(g.Members))
	for i, m := range g.Members {
		ops[i] = fmt.Sprintf("%%%d %s", m.ID, m.Op)
	}
	return fmt.Sprintf("%%%d = fused {%s} : %s", g.Root.ID, strings.Join(ops, ", "), g.Root.Type)
}

// Print returns the program as its functions' steps — each a launch of
// a kernel ("%14 = kernel LossAndGrad_fused14(%12, %9, %10)", with the
// instructions it computes) or an instruction the runtime runs as it is —
// followed by the kernels.
func (p *Program) Print() string {
	var sb strings.Builder
	for _, f := range p.IR.Funcs {
		fk := p.Funcs[f.Name]
		n := 0
		if fk != nil {
			n = len(fk.Groups)
		}
		fmt.Fprintf(&sb, "// %s: %d instructions, %d of them in %d kernels (target %s)\n", f.Name, len(f.Body), p.members(f.Name), n, p.Target.Name)
		k, c := p.Steps(f.Name)
		fmt.Fprintf(&sb, "// %s runs %d steps (%d kernels, %d runtime calls)", f.Name, k+c, k, c)
		if g := p.GraphInstrs[f.Name]; g > 0 {
			fmt.Fprintf(&sb, " for the %d instructions of its graph after autodiff (%.2f a graph instruction)", g, float64(k+c)/float64(g))
		}
		sb.WriteString("\n")
		if sp := p.Shards[f.Name]; sp != nil {
			parts := make([]string, len(sp.Parts))
			for i, pt := range sp.Parts {
				parts[i] = fmt.Sprintf("%%%d %s", pt.Instr.ID, pt.Kind)
			}
			fmt.Fprintf(&sb, "// %s runs on shards of %s at once: parts %s", f.Name, sp.Batch, strings.Join(parts, ", "))
			if sp.Loss >= 0 {
				fmt.Fprintf(&sb, "; loss from %%%d", sp.Parts[sp.Loss].Instr.ID)
			}
			sb.WriteString("\n")
		} else if why, ok := p.NoShard[f.Name]; ok {
			fmt.Fprintf(&sb, "// %s runs on the whole batch: %s\n", f.Name, why)
		}
		fmt.Fprintf(&sb, "func %s {\n", f.Name)
		plan := p.Plans[f.Name]
		for i, in := range f.Body {
			var g *Group
			if fk != nil {
				g = fk.Of[in]
			}
			switch {
			case g == nil:
				fmt.Fprintf(&sb, "  %s", in)
			case g.Root == in:
				args := make([]string, len(g.Inputs))
				for i, a := range g.Inputs {
					args[i] = fmt.Sprintf("%%%d", a.ID)
				}
				fmt.Fprintf(&sb, "  %%%d = kernel %s(%s) : %s    // %s", in.ID, g.Kernel.Name, strings.Join(args, ", "), in.Type, g.Label())
			default:
				continue
			}
			if t, ok := p.Tiles[in]; ok {
				fmt.Fprintf(&sb, "    // tiles %d×%d", t.Q, t.K)
			}
			if plan != nil {
				if plan.Views[in] {
					sb.WriteString("    // view")
				}
				if ks := plan.Unread[in]; len(ks) > 0 {
					fmt.Fprintf(&sb, "    // release results %v", ks)
				}
				if vs := plan.Release[i]; len(vs) > 0 {
					sb.WriteString("    // release")
					for _, v := range vs {
						fmt.Fprintf(&sb, " %%%d", v.ID)
					}
				}
			}
			sb.WriteString("\n")
		}
		sb.WriteString("}\n\n")
	}
	sb.WriteString(Print(p.Kernels))
	return sb.String()
}

func (p *Program) members(fn string) int {
	n := 0
	if f := p.Funcs[fn]; f != nil {
		for _, g := range f.Groups {
			n += len(g.Members)
		}
	}
	return n
}
