package passes

import (
	"fmt"
	"slices"
	"strings"

	"github.com/attnc/attnc/ir"
	"github.com/attnc/attnc/kir"
)

// Shard decides whether each function (Forward, the training step
// LossAndGrad) may run on shards of its batch at once, one per core, and
// how their results combine (kir.ShardPlan); where it may not, kp.NoShard
// says why.
//
// Requires: a kernel program after Fuse (a part must be computed where
// the renderer can read it, not inside a kernel).
//
// Guarantees: a plan only where the step's forward computation is
// independent across the rows of every input's first axis up to the
// parts, so that a shard computes its rows' values exactly as the whole
// batch would:
//   - every input's first dim is one symbol, the batch, which no other
//     dim of any value the results read mentions;
//   - every instruction the loss and metrics read either reads no batched
//     value, or keeps the batch first and acts on each row alone (an
//     elementwise op, a product whose batch letter is the result's first,
//     an op whose axis is not the batch's, attention whose expressions
//     read the batch index only to index a captured tensor's first
//     axis), or is a part: a sum, mean or cross-entropy over every axis,
//     batch included;
//   - what reads a part is scalar arithmetic on parts and constants (the
//     tail), which the renderer evaluates again on the parts' totals;
//   - every output tensor has the batch first, so the shards' outputs
//     joined along it are the batch's;
//   - where the function has gradients, the loss is an affine function
//     (constant scale and offset) of one part, or of several sums, so
//     each shard's gradients, weighted by its share of that part's
//     denominator (1 for sums), add up to the batch's (the backward pass
//     is linear in the loss's gradient, and its own reductions over the
//     batch are sums).
//
// Why: GEMMs at a small model's sizes (a [2048×64]·[64×64] product is a
// tenth of a millisecond) leave a second core little to share per op; a
// shard of the batch per core shares the whole step, with one hand-off
// each way. The decision is the compiler's: it alone can tell a row-wise
// step from one that mixes examples (a batch statistic, a mask that
// reads b as a number).
//
//	// LossAndGrad runs on shards of B at once: parts %151 cross_entropy, %159 sum, %160 sum; loss from %151
func Shard(kp *kir.Program) error {
	kp.Shards = map[string]*kir.ShardPlan{}
	kp.NoShard = map[string]string{}
	for _, f := range kp.IR.Funcs {
		plan, why := shardPlan(f, kp.Funcs[f.Name])
		if plan == nil {
			kp.NoShard[f.Name] = why
			continue
		}
		kp.Shards[f.Name] = plan
	}
	return nil
}

// batchClass is what the shard analysis knows of a value.
type batchClass uint8

const (
	batchFree  batchClass = iota + 1 // the same for every row of the batch (params, constants)
	batchRows                        // batch first, each row computed from its own rows alone
	batchTotal                       // a part or the tail's arithmetic on parts
)

// tailOps are the ops the renderer evaluates again on the parts' totals.
var tailOps = map[ir.Op]bool{
	ir.OpConst: true, ir.OpAdd: true, ir.OpSub: true, ir.OpMul: true, ir.OpDiv: true,
	ir.OpMax: true, ir.OpMin: true, ir.OpNeg: true, ir.OpAbs: true,
	ir.OpExp: true, ir.OpLog: true, ir.OpSqrt: true,
}

func shardPlan(f *ir.Func, fk *kir.FuncKernels) (*kir.ShardPlan, string) {
	var inputs []*ir.Instr
	for _, in := range f.Body {
		if in.Op == ir.OpInput {
			inputs = append(inputs, in)
		}
	}
	if len(inputs) == 0 {
		return nil, "it has no inputs"
	}
	batch := ""
	for _, in := range inputs {
		if in.Type.Rank() == 0 {
			return nil, fmt.Sprintf("input %q is a scalar", in.Name())
		}
		d := in.Type.Shape[0]
		if len(d.Terms) != 1 || d.Terms[0].Coef != 1 || d.Const != 0 {
			return nil, fmt.Sprintf("input %q's first dim %s is not a size of its own", in.Name(), d)
		}
		if batch == "" {
			batch = d.Terms[0].Sym
		} else if d.Terms[0].Sym != batch {
			return nil, fmt.Sprintf("input %q's first dim is %s, not %s", in.Name(), d, batch)
		}
	}
	var roots, outputs []*ir.Instr
	var loss *ir.Instr
	grads := false
	for _, o := range f.Results {
		switch o.Kind {
		case ir.OutLoss, ir.OutMetric:
			roots = append(roots, o.Value)
			if o.Kind == ir.OutLoss {
				loss = o.Value
			}
		case ir.OutValue:
			roots = append(roots, o.Value)
			outputs = append(outputs, o.Value)
		case ir.OutGrad:
			grads = true
		case ir.OutUpdate:
			// An update is computed from the whole batch (a running
			// average of its rows): the shards' would have to be merged
			// by a rule the compiler cannot know.
			return nil, fmt.Sprintf("it updates the buffer %q from the batch", o.Name)
		}
	}
	if grads && loss == nil {
		return nil, "it has gradients but no loss"
	}
	need := dependencies(roots) // the forward slice: what the loss and metrics read
	plan := &kir.ShardPlan{Batch: batch, Loss: -1}
	class := map[*ir.Instr]batchClass{}
	for _, in := range f.Body {
		if !need[in] {
			continue
		}
		c, part, why := classify(in, batch, class)
		if why != "" {
			return nil, fmt.Sprintf("%%%d = %s %s", in.ID, in.Op, why)
		}
		class[in] = c
		switch {
		case part != 0:
			if fk != nil {
				if g := fk.Of[in]; g != nil && g.Root != in {
					return nil, fmt.Sprintf("%%%d = %s, a sum over the batch, is computed inside a kernel", in.ID, in.Op)
				}
			}
			plan.Parts = append(plan.Parts, kir.ShardPart{Instr: in, Kind: part})
		case c == batchTotal:
			plan.Tail = append(plan.Tail, in)
		}
	}
	for _, r := range roots {
		if slices.Contains(outputs, r) {
			if class[r] != batchRows || r.Type.IsTuple() {
				return nil, fmt.Sprintf("output %%%d is not a tensor with the batch first", r.ID)
			}
		} else if class[r] != batchTotal {
			return nil, fmt.Sprintf("result %%%d is not computed from sums over the batch", r.ID)
		}
	}
	if grads {
		p, why := affinePart(loss, plan)
		if why != "" {
			return nil, "the loss " + why
		}
		plan.Loss = p
	}
	return plan, ""
}

// classify returns the class of in given its operands' (which class
// holds), the kind of part it is (0 for none), or why it keeps the step
// whole.
func classify(in *ir.Instr, batch string, class map[*ir.Instr]batchClass) (batchClass, kir.PartKind, string) {
	var rows, total, free int
	for _, a := range in.Args {
		switch class[a] {
		case batchRows:
			rows++
		case batchTotal:
			total++
		default:
			free++
		}
	}
	outRows, why := batchedType(in.Type, batch)
	if why != "" {
		return 0, 0, why
	}
	for _, a := range in.Args {
		if _, why := batchedType(a.Type, batch); why != "" {
			return 0, 0, why
		}
	}
	if total > 0 {
		if rows > 0 || !tailOps[in.Op] || in.Type.Rank() != 0 || in.Type.DType != ir.F32 {
			return 0, 0, "reads a sum over the batch but is not scalar arithmetic on such sums"
		}
		for _, a := range in.Args {
			if class[a] != batchTotal && a.Op != ir.OpConst {
				return 0, 0, fmt.Sprintf("mixes sums over the batch with %%%d", a.ID)
			}
		}
		return batchTotal, 0, ""
	}
	switch in.Op {
	case ir.OpInput:
		return batchRows, 0, ""
	case ir.OpParam, ir.OpBuffer, ir.OpConst:
		return batchFree, 0, ""
	case ir.OpIota:
		if outRows {
			if in.Attrs.Int("axis") == 0 {
				return 0, 0, "numbers the rows of the batch"
			}
			return batchRows, 0, ""
		}
		return batchFree, 0, ""
	case ir.OpDimSize:
		if slices.Contains(in.Attrs["dim"].Dim.Syms(), batch) {
			return 0, 0, "reads the batch size"
		}
		return batchFree, 0, ""
	}
	if rows == 0 {
		if outRows {
			return batchRows, 0, "" // free values spread over the rows (broadcast)
		}
		return batchFree, 0, ""
	}
	if !outRows {
		if in.Type.Rank() == 0 && in.Type.DType == ir.F32 {
			switch in.Op {
			case ir.OpReduceSum:
				return batchTotal, kir.PartSum, ""
			case ir.OpReduceMean:
				return batchTotal, kir.PartMean, ""
			case ir.OpCrossEntropy:
				if class[in.Args[0]] == batchRows && class[in.Args[1]] == batchRows {
					return batchTotal, kir.PartCrossEntropy, ""
				}
			}
		}
		return 0, 0, "combines the rows of the batch"
	}
	if why := rowWise(in, class, batch); why != "" {
		return 0, 0, why
	}
	return batchRows, 0, ""
}

// batchedType reports whether t (each element of a tuple) has the batch
// as its first dim, or why it mentions the batch elsewhere.
func batchedType(t ir.Type, batch string) (bool, string) {
	if t.IsTuple() {
		first := false
		for i, e := range t.Tuple {
			b, why := batchedType(e, batch)
			if why != "" {
				return false, why
			}
			if i > 0 && b != first {
				return false, "returns batched and unbatched results together"
			}
			first = b
		}
		return first, ""
	}
	batched := false
	for i, d := range t.Shape {
		if !slices.Contains(d.Syms(), batch) {
			continue
		}
		if i != 0 || len(d.Terms) != 1 || d.Terms[0].Coef != 1 || d.Const != 0 {
			return false, fmt.Sprintf("has the batch size %s in dim %d of %s", batch, i, t)
		}
		batched = true
	}
	return batched, ""
}

// rowWise reports why in, which reads batched values and keeps the batch
// first, might combine rows, or "" when each row of its result depends on
// the same row of its batched operands alone.
func rowWise(in *ir.Instr, class map[*ir.Instr]batchClass, batch string) string {
	rows := func(i int) bool { return class[in.Args[i]] == batchRows }
	axisZero := func(i int) bool {
		ax := in.Attrs.Int("axis")
		return ax == 0 || ax == -in.Args[i].Type.Rank()
	}
	switch in.Op.Info().Class {
	case ir.ClassUnary, ir.ClassBinary:
		return ""
	}
	switch in.Op {
	case ir.OpSelect, ir.OpBroadcast, ir.OpReshape, ir.OpExtract:
		// Elementwise, or the rows laid out again with the batch kept
		// first (the types say it is).
		return ""
	case ir.OpLayerNorm, ir.OpRMSNorm:
		if in.Args[0].Type.Rank() < 2 {
			return "normalises over the batch"
		}
		return ""
	case ir.OpReduceSum, ir.OpReduceMax, ir.OpReduceMean, ir.OpLogSumExp:
		for _, ax := range in.Attrs.Ints("axes") {
			if ax == 0 || ax == -in.Args[0].Type.Rank() {
				return "reduces over the batch"
			}
		}
		return ""
	case ir.OpSoftmax, ir.OpArgMax, ir.OpScan, ir.OpSlice, ir.OpPad, ir.OpConcat:
		if axisZero(0) {
			return "acts along the batch"
		}
		return ""
	case ir.OpArgSort:
		if in.Args[0].Type.Rank() < 2 {
			return "sorts along the batch"
		}
		return ""
	case ir.OpTranspose:
		if p := in.Attrs.Ints("perm"); len(p) == 0 || p[0] != 0 {
			return "moves the batch"
		}
		return ""
	case ir.OpGather:
		if rows(0) && axisZero(0) {
			return "reads rows of the batch by index"
		}
		if in.Attrs.Int("batch_dims") > 0 && rows(0) != rows(1) {
			return "shares a batch dim between batched and unbatched operands"
		}
		return ""
	case ir.OpScatterAdd:
		// gather's adjoint: axis numbers the result's (the table's) dims.
		if ax := in.Attrs.Int("axis"); ax == 0 || ax == -in.Type.Rank() {
			return "adds into rows of the batch by index"
		}
		if in.Attrs.Int("batch_dims") > 0 && rows(0) != rows(1) {
			return "shares a batch dim between batched and unbatched operands"
		}
		return ""
	case ir.OpMatMul:
		return "" // the types keep the batch in the result's first dim, so it is a row or batch dim
	case ir.OpEinsum:
		n := len(in.Args)
		if in.Attrs.Bool("bias") {
			n-- // the bias, last, is a row added to the result's last dims
			// A batched bias is the result's whole shape (the batch is
			// first in both), so each row adds its own row.
			if rows(n) && in.Args[n].Type.Rank() != in.Type.Rank() {
				return "adds a batched bias"
			}
		}
		ins, out, err := ir.ParseEinsum(in.Attrs.Str("spec"), n)
		if err != nil {
			return err.Error()
		}
		letter := out[0]
		for i, s := range ins {
			if rows(i) {
				if s[0] != letter || strings.Count(s, string(letter)) != 1 {
					return "contracts or moves the batch"
				}
			} else if strings.IndexByte(s, letter) >= 0 {
				return "indexes an unbatched operand by the batch"
			}
		}
		return ""
	case ir.OpAttention:
		_, _, _, caps := ir.AttentionOperands(in.Args, in.Attrs)
		capRows := make([]bool, len(caps))
		for i, c := range caps {
			capRows[i] = class[c] == batchRows
		}
		for _, name := range []string{"mask", "score"} {
			if e := in.Attrs.Expr(name); e != nil {
				if why := batchIndexOnly(e, capRows, batch); why != "" {
					return fmt.Sprintf("has a %s that %s", name, why)
				}
			}
		}
		return ""
	case ir.OpRecur:
		return recurRowWise(in, class, batch)
	}
	return "has no rule for rows of a batch"
}

// recurRowWise reports why a recur might combine the batch's rows: it
// steps along the batch, or its cell (classified as a step of its own,
// its inputs of their operands' classes) does.
func recurRowWise(in *ir.Instr, class map[*ir.Instr]batchClass, batch string) string {
	if in.Attrs.Int("axis") == 0 {
		return "steps along the batch"
	}
	body := in.Body()
	inner := map[*ir.Instr]batchClass{}
	for i, bi := range body.Inputs() {
		c := class[in.Args[i]]
		if i == 0 {
			// The state is rows once a step has read rows, whatever init
			// was: its type says whether it carries the batch.
			if rows, _ := batchedType(bi.Type, batch); rows {
				c = batchRows
			}
		}
		if c == 0 {
			c = batchFree
		}
		inner[bi] = c
	}
	for _, bi := range body.Instrs {
		if bi.Op == ir.OpInput {
			continue
		}
		c, part, why := classify(bi, batch, inner)
		switch {
		case why != "":
			return fmt.Sprintf("has a cell whose %%%d = %s %s", bi.ID, bi.Op, why)
		case part != 0 || c == batchTotal:
			return fmt.Sprintf("has a cell whose %%%d = %s sums over the batch", bi.ID, bi.Op)
		}
		inner[bi] = c
	}
	return ""
}

// batchIndexOnly reports why e might read across a batch's rows: it reads
// the batch index b other than as the first index of a batched captured
// tensor, a batched capture at another first index, or the batch size.
func batchIndexOnly(e *ir.Expr, capRows []bool, batch string) string {
	switch e.Kind {
	case ir.EVar:
		switch e.Name {
		case "b":
			return "reads b as a number"
		case batch:
			return "reads the batch size " + batch
		}
		return ""
	case ir.ECapture:
		args := e.Args
		if int(e.Int) < len(capRows) && capRows[e.Int] {
			if len(args) == 0 || args[0].Kind != ir.EVar || args[0].Name != "b" {
				return fmt.Sprintf("reads the batched $%d at another row than b", e.Int)
			}
			args = args[1:]
		}
		for _, a := range args {
			if why := batchIndexOnly(a, capRows, batch); why != "" {
				return why
			}
		}
		return ""
	}
	for _, a := range e.Args {
		if why := batchIndexOnly(a, capRows, batch); why != "" {
			return why
		}
	}
	return ""
}

// affinePart returns the index of the part the loss is an affine
// function of (a multiple of it plus a constant), or of a sum of such
// terms over sums (parts of kind sum, whose shards' gradients all weigh
// 1), or why it is neither.
func affinePart(v *ir.Instr, plan *kir.ShardPlan) (int, string) {
	var parts []int
	var walk func(v *ir.Instr) string
	walk = func(v *ir.Instr) string {
		for i, p := range plan.Parts {
			if p.Instr == v {
				parts = append(parts, i)
				return ""
			}
		}
		isConst := func(i int) bool { return v.Args[i].Op == ir.OpConst }
		switch {
		case v.Op == ir.OpConst:
			return ""
		case v.Op == ir.OpNeg:
			return walk(v.Args[0])
		case v.Op == ir.OpMul && isConst(0):
			return walk(v.Args[1])
		case (v.Op == ir.OpMul || v.Op == ir.OpDiv) && isConst(1):
			return walk(v.Args[0])
		case v.Op == ir.OpAdd || v.Op == ir.OpSub:
			if why := walk(v.Args[0]); why != "" {
				return why
			}
			return walk(v.Args[1])
		}
		return fmt.Sprintf("(%%%d = %s)", v.ID, v.Op)
	}
	why := walk(v)
	if why == "" && len(parts) > 0 {
		slices.Sort(parts)
		parts = slices.Compact(parts)
		if len(parts) == 1 {
			return parts[0], ""
		}
		sums := true
		for _, p := range parts {
			sums = sums && plan.Parts[p].Kind == kir.PartSum
		}
		if sums {
			return parts[0], ""
		}
		// Means over every axis, and cross-entropies that count every
		// position, have denominators of the batch's rows times the same
		// other sizes: each shard's share of each is its share of the
		// rows, so any one of them weighs the gradients.
		rowShares := true
		for _, p := range parts {
			pt := plan.Parts[p]
			rowShares = rowShares && (pt.Kind == kir.PartMean || pt.Kind == kir.PartCrossEntropy && !pt.Instr.Attrs.Has("ignore_index"))
		}
		if rowShares {
			return parts[0], ""
		}
		why = "(a sum of means over the batch whose denominators need not be in proportion: a cross-entropy that ignores positions, or means with sums)"
	}
	if why == "" {
		why = "(no sum over the batch)"
	}
	return -1, "is not a multiple of one sum, mean or cross-entropy over the batch, nor a sum of sums " + why
}
