package kir

import (
	"fmt"
	"slices"

	"github.com/attnc/attnc/ir"
)

// Verify checks every kernel of m and returns the first problem found,
// naming the kernel and the instruction:
//
//   - kernel names are unique; a kernel's params are buffers with unique
//     names whose dims use only the module's symbols; its grid has 1 to 3
//     axes, each an integer expression of the symbols;
//   - every instruction has its op's operand count, attributes (names,
//     kinds, required ones, words from the allowed set), result count and
//     regions, and result types its type rule accepts;
//   - every operand is defined before its use, in its block or one that
//     encloses it, and every value is defined once;
//   - the regions of for and if end with a yield of the right types, and
//     yield appears nowhere else; program_id names an axis of the grid.
func Verify(m *Module) error {
	syms := map[string]bool{}
	for _, s := range m.Syms {
		if syms[s] {
			return fmt.Errorf("kir: symbol %s declared twice", s)
		}
		syms[s] = true
	}
	names := map[string]bool{}
	for _, k := range m.Kernels {
		if names[k.Name] {
			return fmt.Errorf("kir: two kernels named %s", k.Name)
		}
		names[k.Name] = true
		if err := verifyKernel(k, syms); err != nil {
			return fmt.Errorf("kir: kernel %s: %w", k.Name, err)
		}
	}
	return nil
}

type verifier struct {
	k       *Kernel
	syms    map[string]bool
	defined map[*Value]bool
	ids     map[int]bool
}

func verifyKernel(k *Kernel, syms map[string]bool) error {
	if !isIdent(k.Name) {
		return fmt.Errorf("name %q is not an identifier", k.Name)
	}
	v := &verifier{k: k, syms: syms, defined: map[*Value]bool{}, ids: map[int]bool{}}
	seen := map[string]bool{}
	for _, p := range k.Params {
		if p.Name == "" || !isIdent(p.Name) || seen[p.Name] {
			return fmt.Errorf("param %q: want a unique identifier", p.Name)
		}
		seen[p.Name] = true
		if p.Type.Kind != KBuffer || p.Def != nil {
			return fmt.Errorf("param %s is %s, want a buffer", p.Name, p.Type)
		}
		for _, d := range p.Type.Dims {
			for _, t := range d.Terms {
				if !syms[t.Sym] {
					return fmt.Errorf("param %s: dim %s uses %s, not a symbol of the module", p.Name, d, t.Sym)
				}
			}
		}
		v.defined[p] = true
	}
	if len(k.Grid) < 1 || len(k.Grid) > 3 {
		return fmt.Errorf("grid of %d axes, want 1 to 3", len(k.Grid))
	}
	for i, g := range k.Grid {
		if err := checkGrid(g, syms); err != nil {
			return fmt.Errorf("grid axis %d: %w", i, err)
		}
	}
	if k.Body == nil {
		return fmt.Errorf("no body")
	}
	if len(k.Body.Args) > 0 {
		return fmt.Errorf("the body has arguments")
	}
	return v.block(k.Body, false)
}

// checkGrid accepts integer index expressions of the symbols (no q, k,
// h, b, s or captures). Check records the kinds Eval needs for floor
// division.
func checkGrid(e *ir.Expr, syms map[string]bool) error {
	if e == nil {
		return fmt.Errorf("no extent")
	}
	vars := map[string]ir.ScalarKind{}
	for s := range syms {
		vars[s] = ir.KInt
	}
	k, err := e.Check(ir.ExprEnv{Vars: vars})
	if err != nil {
		return fmt.Errorf("%s: %w", e, err)
	}
	if k != ir.KInt {
		return fmt.Errorf("%s is not an integer expression of the symbols", e)
	}
	return nil
}

// block checks b's instructions in order; inRegion says b is the body of
// a for or if, which must end with its yield.
func (v *verifier) block(b *Block, inRegion bool) error {
	for _, a := range b.Args {
		if err := v.define(a); err != nil {
			return err
		}
	}
	for i, in := range b.Instrs {
		if in.Op == OpYield && !(inRegion && i == len(b.Instrs)-1) {
			return fmt.Errorf("%s: yield may only end a region of for or if", in)
		}
		if err := v.instr(in); err != nil {
			return fmt.Errorf("%s: %w", in, err)
		}
	}
	if inRegion && (len(b.Instrs) == 0 || b.Instrs[len(b.Instrs)-1].Op != OpYield) {
		return fmt.Errorf("a region of for or if must end with yield")
	}
	// A region's values are not visible after it (nested regions have
	// already taken theirs away).
	if inRegion {
		for _, in := range b.Instrs {
			for _, r := range in.Results {
				delete(v.defined, r)
			}
		}
		for _, a := range b.Args {
			delete(v.defined, a)
		}
	}
	return nil
}

func (v *verifier) define(x *Value) error {
	if x == nil {
		return fmt.Errorf("a nil value")
	}
	if x.Name != "" {
		return fmt.Errorf("value %s: only params have names", x.Ref())
	}
	if x.ID < 0 || v.ids[x.ID] {
		return fmt.Errorf("value %s is defined twice (or has a negative number)", x.Ref())
	}
	if x.Type.Kind != KIndex && x.Type.Kind != KTile {
		return fmt.Errorf("value %s is %s: only params are buffers", x.Ref(), x.Type)
	}
	v.ids[x.ID] = true
	v.defined[x] = true
	return nil
}

func (v *verifier) instr(in *Instr) error {
	info := in.Op.Info()
	if in.Op <= OpInvalid || in.Op >= numOps {
		return fmt.Errorf("invalid op")
	}
	if in.Op != OpElem && in.Elem != ir.OpInvalid {
		return fmt.Errorf("an elementwise function on a %s", in.Op)
	}
	switch {
	case info.Args == Variadic && len(in.Args) < info.MinArgs:
		return fmt.Errorf("%d operands, want at least %d", len(in.Args), info.MinArgs)
	case info.Args != Variadic && len(in.Args) != info.Args:
		return fmt.Errorf("%d operands, want %d", len(in.Args), info.Args)
	case info.Results != Variadic && len(in.Results) != info.Results:
		return fmt.Errorf("%d results, want %d", len(in.Results), info.Results)
	case len(in.Regions) != info.Regions:
		return fmt.Errorf("%d regions, want %d", len(in.Regions), info.Regions)
	}
	if err := checkAttrs(info, in.Attrs); err != nil {
		return err
	}
	args := make([]Type, len(in.Args))
	for i, a := range in.Args {
		if a == nil || !v.defined[a] {
			return fmt.Errorf("operand %d (%s) is not defined before its use", i, a.Ref())
		}
		args[i] = a.Type
	}
	if in.Op == OpProgramID && in.Attrs.Int("axis") >= len(v.k.Grid) {
		return fmt.Errorf("axis %d of a grid of %d axes", in.Attrs.Int("axis"), len(v.k.Grid))
	}
	if in.Op == OpSym && !v.syms[in.Attrs.Str("name")] {
		return fmt.Errorf("%s is not a symbol of the module", in.Attrs.Str("name"))
	}
	// The regions come first: their values are out of scope afterwards,
	// and for's rule reads its body's arguments and yield.
	for i, r := range in.Regions {
		if r == nil {
			return fmt.Errorf("region %d is missing", i)
		}
		if err := v.block(r, true); err != nil {
			return fmt.Errorf("region %d: %w", i, err)
		}
	}
	given := make([]Type, len(in.Results))
	for i, r := range in.Results {
		if r == nil {
			return fmt.Errorf("result %d is missing", i)
		}
		given[i] = r.Type
	}
	want, err := info.Infer(&inferCtx{in: in, args: args, given: given})
	if err != nil {
		return err
	}
	if len(want) != len(in.Results) {
		return fmt.Errorf("%d results, want %d", len(in.Results), len(want))
	}
	for i, r := range in.Results {
		if !r.Type.Equal(want[i]) {
			return fmt.Errorf("result %d is %s, want %s", i, r.Type, want[i])
		}
		if r.Def != in {
			return fmt.Errorf("result %d does not point back at its instruction", i)
		}
	}
	for _, r := range in.Results {
		if err := v.define(r); err != nil {
			return err
		}
	}
	return nil
}

// checkAttrs checks attrs against the op's specs.
func checkAttrs(info *OpInfo, attrs ir.Attrs) error {
	for name, a := range attrs {
		i := slices.IndexFunc(info.Attrs, func(s ir.AttrSpec) bool { return s.Name == name })
		if i < 0 {
			return fmt.Errorf("unknown attribute %s", name)
		}
		spec := info.Attrs[i]
		if a.Kind != spec.Kind {
			return fmt.Errorf("attribute %s is a %s, want a %s", name, a.Kind, spec.Kind)
		}
		if spec.Kind == ir.AttrWord && len(spec.Words) > 0 && !slices.Contains(spec.Words, a.Str) {
			return fmt.Errorf("attribute %s = %s, want one of %v", name, a.Str, spec.Words)
		}
	}
	for _, spec := range info.Attrs {
		if _, ok := attrs[spec.Name]; !ok && !spec.Optional {
			return fmt.Errorf("missing attribute %s", spec.Name)
		}
	}
	return nil
}

func isIdent(s string) bool { return ir.IsIdent(s) }
